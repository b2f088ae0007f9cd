//! One HTTP exchange: the unit every later stage (routes, aggregation, logs, store) consumes.
//! Serializes to the per-request record of SPEC.md with OpenTelemetry attribute names.

use serde::ser::{Serialize, SerializeMap, Serializer};
use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::server::{Attribution, Server};
use crate::shared::{assign_arc, assign_shared};

/// Why a transaction is incomplete or failed below HTTP (SPEC `error.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorType {
    /// No response within the configured timeout.
    Timeout,
    /// The connection was reset before the response completed.
    ConnectionReset,
    /// The connection closed before a response.
    ConnectionClosed,
    MalformedRequest,
    MalformedResponse,
    /// Bytes were lost; fields that could not be read are `None`.
    CaptureGap,
}

impl ErrorType {
    pub const ALL: [ErrorType; 6] = [
        ErrorType::Timeout,
        ErrorType::ConnectionReset,
        ErrorType::ConnectionClosed,
        ErrorType::MalformedRequest,
        ErrorType::MalformedResponse,
        ErrorType::CaptureGap,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::Timeout => "timeout",
            ErrorType::ConnectionReset => "connection_reset",
            ErrorType::ConnectionClosed => "connection_closed",
            ErrorType::MalformedRequest => "malformed_request",
            ErrorType::MalformedResponse => "malformed_response",
            ErrorType::CaptureGap => "capture_gap",
        }
    }
}

/// The gRPC side of an HTTP/2 exchange (SPEC's `rpc.*` attributes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rpc {
    /// `package.Service` from the path `/package.Service/Method`.
    pub service: Option<String>,
    pub method: Option<String>,
    /// The `grpc-status` of the trailers (or trailers-only response), else the code mapped
    /// from a non-200 HTTP status; `None` when the call did not end with a response.
    pub status: Option<u8>,
}

impl Rpc {
    /// The status code name (`UNAVAILABLE` …) when the call failed.
    pub fn error_name(&self) -> Option<&'static str> {
        self.status
            .filter(|s| *s != crate::http2::grpc::OK)
            .map(crate::http2::grpc::code_name)
    }
}

/// Finished transactions in completion order, as the engine hands them out. Each is boxed: a
/// record (~420 bytes) is written once, where it lives, and going from the request queue to the
/// output, the pipeline and back to [`crate::spares`] moves a pointer. By value, that was five
/// copies of it per request, 5 % of the pipeline's instructions.
pub type Records = Vec<Box<Transaction>>;

/// One request and its response (if any), as the server saw them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Transaction {
    /// First request byte, nanoseconds since the UNIX epoch.
    pub start_ns: u64,
    /// The standard methods are static; others are copied.
    pub method: Option<Cow<'static, str>>,
    /// Path without the query string, as sent (percent-encoding kept). Text fields are shared
    /// (`Arc<str>`): a connection repeating a value, or the router's template, costs no copy.
    pub path: Option<Arc<str>>,
    /// Query string after redaction of configured keys, without the `?`.
    pub query: Option<Arc<str>>,
    /// Route template (`/api/users/{id}`); set by the route stage, `None` from the engine.
    pub route: Option<Arc<str>>,
    pub status: Option<u16>,
    /// "1.0", "1.1" or "2".
    pub version: Option<&'static str>,
    /// First request byte -> last response byte.
    pub duration_ns: Option<u64>,
    /// First request byte -> first response byte.
    pub ttfb_ns: Option<u64>,
    /// Request body bytes (after de-chunking framing, i.e. the message body length on the wire
    /// minus chunk framing).
    pub request_body_size: Option<u64>,
    pub response_body_size: Option<u64>,
    /// Full request message length on the wire (head + body), for byte accounting.
    pub request_wire_bytes: u64,
    /// Full response message length on the wire (head + body).
    pub response_wire_bytes: u64,
    pub client: Option<SocketAddr>,
    pub server: Option<SocketAddr>,
    /// The server's service name (workload, process, configured name or `port-N`); shared by
    /// every record of a flow.
    pub service: Arc<str>,
    /// Namespace, pod, workload, container and process of the server, when known; shared by
    /// every record of a flow.
    pub attribution: Option<Arc<Attribution>>,
    pub user_agent: Option<Arc<str>>,
    /// API consumer: `key:<short hash>`, `sub:<jwt sub>` or the client IP (SPEC "client").
    pub client_id: Option<Arc<str>>,
    /// From X-Request-ID.
    pub request_id: Option<String>,
    /// From W3C traceparent.
    pub trace_id: Option<String>,
    /// Parent span id from W3C traceparent.
    pub parent_span_id: Option<String>,
    pub error: Option<ErrorType>,
    /// Set for gRPC calls (boxed: most transactions are not).
    pub rpc: Option<Box<Rpc>>,
}

impl Transaction {
    /// Makes this record a copy of `src`, reusing what it holds: its strings' buffers, and its
    /// `Arc`s where they are `src`'s own (no reference count written). A keeper of copies
    /// (the recent-requests ring) overwrites its oldest instead of dropping it and cloning.
    pub fn assign_from(&mut self, src: &Transaction) {
        // Exhaustive on purpose: a new field does not compile until it is copied here.
        let Transaction {
            start_ns,
            method,
            path,
            query,
            route,
            status,
            version,
            duration_ns,
            ttfb_ns,
            request_body_size,
            response_body_size,
            request_wire_bytes,
            response_wire_bytes,
            client,
            server,
            service,
            attribution,
            user_agent,
            client_id,
            request_id,
            trace_id,
            parent_span_id,
            error,
            rpc,
        } = src;
        self.start_ns = *start_ns;
        self.method.clone_from(method);
        assign_shared(&mut self.path, path);
        assign_shared(&mut self.query, query);
        assign_shared(&mut self.route, route);
        self.status = *status;
        self.version = *version;
        self.duration_ns = *duration_ns;
        self.ttfb_ns = *ttfb_ns;
        self.request_body_size = *request_body_size;
        self.response_body_size = *response_body_size;
        self.request_wire_bytes = *request_wire_bytes;
        self.response_wire_bytes = *response_wire_bytes;
        self.client = *client;
        self.server = *server;
        assign_arc(&mut self.service, service);
        assign_shared(&mut self.attribution, attribution);
        assign_shared(&mut self.user_agent, user_agent);
        assign_shared(&mut self.client_id, client_id);
        self.request_id.clone_from(request_id);
        self.trace_id.clone_from(trace_id);
        self.parent_span_id.clone_from(parent_span_id);
        self.error = *error;
        self.rpc.clone_from(rpc);
    }

    /// Duration in seconds, as logged.
    pub fn duration_s(&self) -> Option<f64> {
        self.duration_ns.map(|ns| ns as f64 / 1e9)
    }

    /// The Kubernetes namespace of the server (the `namespace` label); empty when unknown.
    pub fn namespace(&self) -> &str {
        self.attribution.as_deref().map_or("", |a| &a.namespace)
    }

    /// True when the server answered with 5xx, the exchange failed below HTTP, or a gRPC
    /// call ended with a server-side code (see [`crate::http2::grpc::is_server_failure`]).
    pub fn is_failure(&self) -> bool {
        self.error.is_some()
            || self.status.is_some_and(|s| s >= 500)
            || self
                .rpc
                .as_ref()
                .and_then(|r| r.status)
                .is_some_and(crate::http2::grpc::is_server_failure)
    }
}

/// What every record of one connection shares, fixed when its flow opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnMeta {
    pub client: SocketAddr,
    pub server: SocketAddr,
    /// The server's service name.
    pub service: Arc<str>,
    /// What is known about the server (namespace, pod, workload, container, process).
    pub attribution: Option<Arc<Attribution>>,
    /// The client IP as text (the default `client.id`), formatted once per flow.
    pub client_ip: Arc<str>,
}

impl ConnMeta {
    /// The connection `client` -> `server_addr`, served by `server` (resolved once per flow);
    /// `client_ip` is the client address as text (shared by the engine across flows).
    pub fn new(
        client: SocketAddr,
        server_addr: SocketAddr,
        server: Server,
        client_ip: Arc<str>,
    ) -> ConnMeta {
        ConnMeta {
            client,
            server: server_addr,
            service: server.service,
            attribution: server.attribution,
            client_ip,
        }
    }

    /// A record of this connection whose first request byte came at `start_ns`, with nothing
    /// else known yet.
    ///
    /// Every field is written out: `..Transaction::default()` would clone the shared empty
    /// `Arc<str>` (a reference count all threads write) only to drop it again.
    pub fn transaction(&self, start_ns: u64) -> Transaction {
        self.transaction_sharing(
            start_ns,
            Arc::clone(&self.service),
            self.attribution.clone(),
            Arc::clone(&self.client_ip),
        )
    }

    /// [`transaction`](Self::transaction) with the connection's shared fields given: clones
    /// of its own, or the same `Arc`s a reused record already holds (`crate::spares`).
    pub(crate) fn transaction_sharing(
        &self,
        start_ns: u64,
        service: Arc<str>,
        attribution: Option<Arc<Attribution>>,
        client_id: Arc<str>,
    ) -> Transaction {
        Transaction {
            start_ns,
            method: None,
            path: None,
            query: None,
            route: None,
            status: None,
            version: None,
            duration_ns: None,
            ttfb_ns: None,
            request_body_size: None,
            response_body_size: None,
            request_wire_bytes: 0,
            response_wire_bytes: 0,
            client: Some(self.client),
            server: Some(self.server),
            service,
            attribution,
            user_agent: None,
            client_id: Some(client_id),
            request_id: None,
            trace_id: None,
            parent_span_id: None,
            error: None,
            rpc: None,
        }
    }
}

#[cfg(test)]
impl ConnMeta {
    /// A finished record of this connection with every field set, for tests of code that
    /// copies or renews records.
    pub(crate) fn finished_sample(&self) -> Transaction {
        Transaction {
            method: Some("POST".into()),
            path: Some(Arc::from("/a")),
            query: Some(Arc::from("q=1")),
            route: Some(Arc::from("/a")),
            status: Some(500),
            version: Some("1.1"),
            duration_ns: Some(5),
            ttfb_ns: Some(4),
            request_body_size: Some(3),
            response_body_size: Some(2),
            request_wire_bytes: 10,
            response_wire_bytes: 20,
            user_agent: Some(Arc::from("curl")),
            request_id: Some("r-1".into()),
            trace_id: Some("t".into()),
            parent_span_id: Some("p".into()),
            error: Some(ErrorType::Timeout),
            rpc: Some(Box::new(Rpc::default())),
            ..self.transaction(1)
        }
    }
}

impl Serialize for Transaction {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("timestamp", &crate::time::rfc3339_micros(self.start_ns))?;
        m.serialize_entry("http.request.method", &self.method)?;
        m.serialize_entry("url.path", &self.path.as_deref())?;
        m.serialize_entry("url.query", &self.query.as_deref())?;
        m.serialize_entry("http.route", &self.route.as_deref())?;
        m.serialize_entry("http.response.status_code", &self.status)?;
        m.serialize_entry("network.protocol.version", &self.version)?;
        m.serialize_entry("duration_s", &self.duration_s())?;
        m.serialize_entry("ttfb_s", &self.ttfb_ns.map(|ns| ns as f64 / 1e9))?;
        m.serialize_entry("http.request.body.size", &self.request_body_size)?;
        m.serialize_entry("http.response.body.size", &self.response_body_size)?;
        m.serialize_entry("client.address", &self.client.map(|a| a.ip()))?;
        m.serialize_entry("client.port", &self.client.map(|a| a.port()))?;
        m.serialize_entry("server.address", &self.server.map(|a| a.ip()))?;
        m.serialize_entry("server.port", &self.server.map(|a| a.port()))?;
        m.serialize_entry("service.name", &*self.service)?;
        m.serialize_entry("user_agent.original", &self.user_agent.as_deref())?;
        m.serialize_entry("client.id", &self.client_id.as_deref())?;
        m.serialize_entry("request.id", &self.request_id)?;
        m.serialize_entry("trace.id", &self.trace_id)?;
        m.serialize_entry("span.parent_id", &self.parent_span_id)?;
        m.serialize_entry("error.type", &self.error.map(ErrorType::as_str))?;
        if let Some(rpc) = &self.rpc {
            m.serialize_entry("rpc.system", "grpc")?;
            m.serialize_entry("rpc.service", &rpc.service)?;
            m.serialize_entry("rpc.method", &rpc.method)?;
            m.serialize_entry("rpc.grpc.status_code", &rpc.status)?;
        }
        if let Some(a) = &self.attribution {
            serialize_attribution(&mut m, a)?;
        }
        m.end()
    }
}

/// The server's OpenTelemetry resource attributes; each is left out when unknown.
fn serialize_attribution<M: SerializeMap>(m: &mut M, a: &Attribution) -> Result<(), M::Error> {
    if !a.namespace.is_empty() {
        m.serialize_entry("k8s.namespace.name", &*a.namespace)?;
    }
    if let Some(pod) = &a.pod {
        m.serialize_entry("k8s.pod.name", &**pod)?;
    }
    if let Some(w) = &a.workload
        && let Some(key) = w.kind.and_then(|k| k.otel_key())
    {
        m.serialize_entry(key, &*w.name)?;
    }
    if let Some(id) = &a.container_id {
        m.serialize_entry("container.id", &**id)?;
    }
    if let Some(pid) = a.pid {
        m.serialize_entry("process.pid", &pid)?;
    }
    if let Some(exe) = &a.executable {
        m.serialize_entry("process.executable.name", &**exe)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assign_from_copies_every_field_and_keeps_buffers() {
        let meta = ConnMeta {
            client: "10.0.0.2:1000".parse().expect("addr"),
            server: "10.0.0.1:80".parse().expect("addr"),
            service: Arc::from("api"),
            attribution: None,
            client_ip: Arc::from("10.0.0.2"),
        };
        let service = Arc::clone(&meta.service);
        // Every field set but one the destination holds: it must be cleared.
        let src = Transaction {
            parent_span_id: None,
            ..meta.finished_sample()
        };
        let mut dst = Transaction {
            request_id: Some(String::with_capacity(64)),
            parent_span_id: Some("p".into()),
            ..Transaction::default()
        };
        let buffer = dst.request_id.as_deref().map(str::as_ptr);
        dst.assign_from(&src);
        assert_eq!(dst, src);
        assert_eq!(dst.request_id.as_deref().map(str::as_ptr), buffer);
        assert!(Arc::ptr_eq(&dst.service, &service));
        // Assigning the same record again writes no reference count.
        let count = Arc::strong_count(&service);
        dst.assign_from(&src);
        assert_eq!(Arc::strong_count(&service), count);
    }

    #[test]
    fn serializes_with_otel_names_in_spec_order() {
        let t = Transaction {
            start_ns: 1_795_585_921_123_456_000,
            method: Some("GET".into()),
            path: Some("/api/users/42".into()),
            query: Some("fields=name&token=REDACTED".into()),
            route: Some("/api/users/{id}".into()),
            status: Some(200),
            version: Some("1.1"),
            duration_ns: Some(412_000),
            ttfb_ns: Some(380_000),
            request_body_size: Some(0),
            response_body_size: Some(11),
            client: Some("127.0.0.1:51234".parse().expect("addr")),
            server: Some("127.0.0.1:18080".parse().expect("addr")),
            service: "port-18080".into(),
            user_agent: Some("curl/7.88.1".into()),
            client_id: Some("client-42".into()),
            request_id: Some("req-abc-123".into()),
            ..Default::default()
        };
        let json = serde_json::to_string(&t).expect("serializes");
        assert!(json.starts_with(
            r#"{"timestamp":"2026-11-25T05:52:01.123456Z","http.request.method":"GET","url.path":"/api/users/42""#
        ));
        assert!(json.contains(r#""duration_s":0.000412,"ttfb_s":0.00038,"#));
        assert!(json.contains(r#""client.address":"127.0.0.1","client.port":51234"#));
        assert!(json.ends_with(r#""trace.id":null,"span.parent_id":null,"error.type":null}"#));
    }

    #[test]
    fn grpc_calls_add_rpc_attributes() {
        let t = Transaction {
            version: Some("2"),
            status: Some(200),
            rpc: Some(Box::new(Rpc {
                service: Some("helloworld.Greeter".into()),
                method: Some("SayHello".into()),
                status: Some(14),
            })),
            ..Default::default()
        };
        let json = serde_json::to_string(&t).expect("serializes");
        assert!(json.contains(r#""network.protocol.version":"2""#));
        assert!(json.ends_with(
            r#""error.type":null,"rpc.system":"grpc","rpc.service":"helloworld.Greeter","rpc.method":"SayHello","rpc.grpc.status_code":14}"#
        ));
        assert!(t.is_failure(), "UNAVAILABLE is a server failure");
        assert_eq!(
            t.rpc.as_ref().and_then(|r| r.error_name()),
            Some("UNAVAILABLE")
        );
    }

    #[test]
    fn attribution_adds_the_known_otel_resource_keys_only() {
        use crate::server::{Workload, WorkloadKind};
        let on_kubernetes = Transaction {
            attribution: Some(Arc::new(Attribution {
                namespace: "shop".into(),
                pod: Some("checkout-7d9f8b6c5-x2k4p".into()),
                workload: Some(Workload {
                    kind: Some(WorkloadKind::Deployment),
                    name: "checkout".into(),
                }),
                container_id: Some("0123abcd".into()),
                pid: Some(4242),
                executable: Some("nginx".into()),
            })),
            ..Default::default()
        };
        let json = serde_json::to_string(&on_kubernetes).expect("serializes");
        assert!(json.ends_with(
            r#""error.type":null,"k8s.namespace.name":"shop","k8s.pod.name":"checkout-7d9f8b6c5-x2k4p","k8s.deployment.name":"checkout","container.id":"0123abcd","process.pid":4242,"process.executable.name":"nginx"}"#
        ), "{json}");
        let host = Transaction {
            attribution: Some(Arc::new(Attribution {
                pid: Some(7),
                executable: Some("nginx".into()),
                workload: Some(Workload {
                    kind: None,
                    name: "guessed".into(),
                }),
                ..Default::default()
            })),
            ..Default::default()
        };
        let json = serde_json::to_string(&host).expect("serializes");
        assert!(
            json.ends_with(
                r#""error.type":null,"process.pid":7,"process.executable.name":"nginx"}"#
            ),
            "{json}"
        );
        assert!(!json.contains("k8s."), "{json}");
    }
}
