//! One HTTP/2 stream: the header fields a record keeps, and the stream's progress until it
//! becomes a [`Transaction`].

use super::grpc;
use super::hpack::Field;
use crate::identity::{self, Credential, IdentityConfig};
use crate::recent::RecentFields;
use crate::{ErrorType, Rpc, Transaction};
use std::borrow::Cow;
use std::sync::Arc;

/// The fields of one header block that a record keeps. `unknown` counts fields that could
/// not be decoded: a pseudo-header missing while `unknown > 0` may be among them, so it is
/// reported as unknown (`None`), never guessed.
#[derive(Debug, Default)]
pub struct Head {
    /// The standard methods are static; others are copied.
    pub method: Option<Cow<'static, str>>,
    /// `:path` without its query, and the query redacted, shared with the connection's last
    /// ones when they repeat.
    pub path: Option<Arc<str>>,
    pub query: Option<Arc<str>>,
    pub status: Option<u16>,
    pub grpc_content_type: bool,
    pub grpc_status: Option<u8>,
    pub user_agent: Option<Arc<str>>,
    pub request_id: Option<String>,
    pub trace: Option<(String, String)>,
    pub key_id: Option<Arc<str>>,
    pub sub_id: Option<Arc<str>>,
    pub forwarded_for: identity::ForwardedFor,
    pub unknown: u32,
}

/// Longest `:method` and `:path` kept (longer values are left unknown).
const MAX_METHOD: usize = 32;
const MAX_PATH: usize = 8 * 1024;

impl Head {
    /// Takes one decoded field, deriving client ids and sharing nothing.
    pub fn field(&mut self, f: Field<'_>, id: &IdentityConfig) {
        self.field_known(f, id, &mut RecentFields::default());
    }

    /// Takes one decoded field; path, query and user agent are shared with the connection's
    /// last ones, and a client id is derived only when its credential is not the connection's
    /// last one of its kind (`recent`).
    pub fn field_known(&mut self, f: Field<'_>, id: &IdentityConfig, recent: &mut RecentFields) {
        let (Some(name), Some(value)) = (f.name, f.value) else {
            self.unknown += 1;
            return;
        };
        match name {
            b":method" if value.len() <= MAX_METHOD => {
                self.method = std::str::from_utf8(value)
                    .ok()
                    .map(crate::http::head::method_name);
            }
            b":path" if value.len() <= MAX_PATH => {
                if let Ok(target) = std::str::from_utf8(value) {
                    let (path, query) = crate::http::head::split_target(target, &id.redact_keys);
                    self.path = Some(recent.path.share(path));
                    self.query = query.map(|q| recent.query.share(&q));
                }
            }
            b":status" => self.status = parse_status(value),
            b"content-type" => self.grpc_content_type = grpc::is_grpc_content_type(value),
            b"grpc-status" => self.grpc_status = grpc::parse_status(value),
            b"user-agent" => {
                self.user_agent = identity::bounded_header(value, identity::MAX_USER_AGENT_CHARS)
                    .map(|ua| recent.user_agent.share(&ua));
            }
            b"x-request-id" => {
                self.request_id = identity::bounded_header(value, identity::MAX_REQUEST_ID_CHARS)
                    .map(Cow::into_owned);
            }
            b"traceparent" => {
                self.trace =
                    identity::parse_traceparent(value).map(|(t, p)| (t.to_owned(), p.to_owned()));
            }
            b"authorization" => {
                if self.sub_id.is_none() {
                    self.sub_id = recent.client.client_id(Credential::Authorization(value));
                }
            }
            b"x-forwarded-for" => {
                if !id.trusted_proxies.is_empty() {
                    self.forwarded_for.add(value, id);
                }
            }
            _ => {
                // HTTP/2 field names are lowercase; the configured header is compared
                // case-insensitively as for HTTP/1.
                if self.key_id.is_none()
                    && name.eq_ignore_ascii_case(id.client_id_header.as_bytes())
                    && !value.trim_ascii().is_empty()
                {
                    self.key_id = recent
                        .client
                        .client_id(Credential::ApiKey(value.trim_ascii()));
                }
            }
        }
    }
}

fn parse_status(v: &[u8]) -> Option<u16> {
    if v.len() != 3 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u16, |a, d| a * 10 + u16::from(d - b'0')))
}

/// A stream being tracked.
#[derive(Debug)]
pub struct Stream {
    pub tx: Transaction,
    /// The request's header block was decoded (`false`: lost, the record's fields are null).
    pub request_known: bool,
    pub req_ended: bool,
    /// A final (non-1xx) response head was seen.
    pub resp_head: bool,
    pub resp_ended: bool,
    pub first_resp_ns: Option<u64>,
    pub grpc: bool,
    pub grpc_status: Option<u8>,
    /// `None` once a size is unknown (a DATA frame whose pad length was not captured).
    pub req_body: Option<u64>,
    pub resp_body: Option<u64>,
    /// Bytes of this stream were lost: the record is `capture_gap`.
    pub gap: bool,
    /// A head decoded whole but without its required pseudo-headers.
    pub malformed: Option<ErrorType>,
    /// Recorded as a timeout; kept so that its late response is recognised.
    pub tombstone: bool,
}

impl Stream {
    /// A stream opened by a request head (or a lost one: `head` is `None`).
    /// `tx` is the connection's record for this stream's start (client IP as `client.id`);
    /// `recent` is the connection's memo of request fields.
    pub fn open(
        head: Option<Head>,
        mut tx: Transaction,
        identity: &IdentityConfig,
        recent: &mut RecentFields,
    ) -> Stream {
        tx.version = Some("2");
        let known = head.is_some();
        let mut grpc = false;
        let mut malformed = None;
        if let Some(h) = head {
            if h.unknown == 0 && (h.method.is_none() || h.path.is_none()) {
                malformed = Some(ErrorType::MalformedRequest);
            }
            grpc = h.grpc_content_type;
            tx.method = h.method;
            tx.path = h.path;
            tx.query = h.query;
            tx.user_agent = h.user_agent;
            tx.request_id = h.request_id;
            if let Some((trace, parent)) = h.trace {
                tx.trace_id = Some(trace);
                tx.parent_span_id = Some(parent);
            }
            if let Some(id) = h.key_id.or(h.sub_id) {
                tx.client_id = Some(id);
            } else if let Some(ip) = h.forwarded_for.client(tx.client.map(|a| a.ip()), identity) {
                tx.client_id = Some(recent.client.forwarded_id(ip));
            }
        }
        Stream {
            tx,
            request_known: known,
            req_ended: false,
            resp_head: false,
            resp_ended: false,
            first_resp_ns: None,
            grpc,
            grpc_status: None,
            req_body: Some(0),
            resp_body: Some(0),
            gap: !known,
            malformed,
            tombstone: false,
        }
    }

    /// The record of this stream, ended at `end_ns` with `error` (if any).
    pub fn finish(mut self, end_ns: u64, error: Option<ErrorType>) -> Transaction {
        let mut tx = std::mem::take(&mut self.tx);
        tx.duration_ns = Some(end_ns.saturating_sub(tx.start_ns));
        tx.ttfb_ns = self.first_resp_ns.map(|t| t.saturating_sub(tx.start_ns));
        let gap = self.gap;
        tx.request_body_size = self.req_body.filter(|_| !gap);
        tx.response_body_size = self.resp_body.filter(|_| !gap && self.resp_head);
        tx.error = error
            .or(self.malformed)
            .or(gap.then_some(ErrorType::CaptureGap));
        if self.grpc {
            let status = self.grpc_status.or_else(|| {
                tx.status
                    .filter(|_| self.resp_ended)
                    .and_then(grpc::status_from_http)
            });
            tx.rpc = Some(rpc(tx.path.as_deref(), status));
        }
        tx
    }

    /// The record of a stream that got no response head in time. The stream stays as a
    /// tombstone so that a late response is recognised.
    pub fn timeout(&mut self, now_ns: u64) -> Transaction {
        let mut tx = std::mem::take(&mut self.tx);
        tx.duration_ns = Some(now_ns.saturating_sub(tx.start_ns));
        tx.request_body_size = self.req_body.filter(|_| !self.gap);
        tx.error = Some(ErrorType::Timeout);
        if self.grpc {
            tx.rpc = Some(rpc(tx.path.as_deref(), None));
        }
        self.tombstone = true;
        tx
    }
}

/// The rpc attributes of a call to `path`.
fn rpc(path: Option<&str>, status: Option<u8>) -> Box<Rpc> {
    let (service, method) = match path.and_then(grpc::split_path) {
        Some((s, m)) => (Some(s.to_owned()), Some(m.to_owned())),
        None => (None, None),
    };
    Box::new(Rpc {
        service,
        method,
        status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_leave_pseudo_headers_unknown() {
        let id = IdentityConfig::default();
        let mut h = Head::default();
        h.field(
            Field {
                name: Some(b":method"),
                value: Some(b"GET"),
            },
            &id,
        );
        h.field(
            Field {
                name: None,
                value: None,
            },
            &id,
        );
        assert_eq!(h.method.as_deref(), Some("GET"));
        assert_eq!(h.path, None);
        assert_eq!(h.unknown, 1);
    }

    #[test]
    fn api_key_and_jwt_identify_the_client() {
        let id = IdentityConfig::default();
        let mut h = Head::default();
        h.field(
            Field {
                name: Some(b"authorization"),
                value: Some(b"Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.x"),
            },
            &id,
        );
        assert_eq!(h.sub_id.as_deref(), Some("sub:alice"));
        h.field(
            Field {
                name: Some(b"x-api-key"),
                value: Some(b"abc"),
            },
            &id,
        );
        assert_eq!(h.key_id.as_deref(), Some("key:ba7816bf8f01"));
    }
}
