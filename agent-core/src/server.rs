//! Who serves at an address: the service name and attribution (namespace, pod, workload,
//! container, process) of the server end of a flow.
//!
//! The engine asks its [`ResolveServer`] once per flow, when the flow opens, and every record
//! of the connection shares the answer ([`Server`]: two `Arc`s, so no string is copied per
//! request). `apitap replay` and tests use [`PortNames`] (`port-N`, or a name per port); live
//! capture resolves from the servers it discovered in every network namespace of the host.

use foldhash::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::shared::{assign_arc, assign_shared};

/// The kind of Kubernetes workload that owns a pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorkloadKind {
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
    Job,
    CronJob,
    /// A pod no controller owns.
    Pod,
}

impl WorkloadKind {
    /// Lower-case kind as Kubernetes spells it in a resource name (`deployment`).
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployment",
            WorkloadKind::ReplicaSet => "replicaset",
            WorkloadKind::StatefulSet => "statefulset",
            WorkloadKind::DaemonSet => "daemonset",
            WorkloadKind::Job => "job",
            WorkloadKind::CronJob => "cronjob",
            WorkloadKind::Pod => "pod",
        }
    }

    /// The OpenTelemetry resource attribute naming a workload of this kind
    /// (`k8s.deployment.name`); `None` for a bare pod (its name is `k8s.pod.name`).
    pub fn otel_key(self) -> Option<&'static str> {
        match self {
            WorkloadKind::Deployment => Some("k8s.deployment.name"),
            WorkloadKind::ReplicaSet => Some("k8s.replicaset.name"),
            WorkloadKind::StatefulSet => Some("k8s.statefulset.name"),
            WorkloadKind::DaemonSet => Some("k8s.daemonset.name"),
            WorkloadKind::Job => Some("k8s.job.name"),
            WorkloadKind::CronJob => Some("k8s.cronjob.name"),
            WorkloadKind::Pod => None,
        }
    }

    /// Parses the `kind` of an owner reference (`Deployment`, `StatefulSet` …).
    pub fn from_kind(kind: &str) -> Option<WorkloadKind> {
        Some(match kind {
            "Deployment" => WorkloadKind::Deployment,
            "ReplicaSet" => WorkloadKind::ReplicaSet,
            "StatefulSet" => WorkloadKind::StatefulSet,
            "DaemonSet" => WorkloadKind::DaemonSet,
            "Job" => WorkloadKind::Job,
            "CronJob" => WorkloadKind::CronJob,
            _ => return None,
        })
    }
}

/// A workload: its kind (when known) and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Workload {
    /// `None` when the name was derived from the pod name and the kind could not be told.
    pub kind: Option<WorkloadKind>,
    pub name: Box<str>,
}

/// What is known about the process behind a server, recorded once per server. Every field is
/// optional: off Kubernetes there is no pod, and an unreadable /proc entry leaves the process
/// unknown.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Attribution {
    /// Kubernetes namespace; empty off Kubernetes (the `namespace` label).
    pub namespace: Box<str>,
    pub pod: Option<Box<str>>,
    pub workload: Option<Workload>,
    pub container_id: Option<Box<str>>,
    pub pid: Option<u32>,
    /// Executable name (`nginx`), from /proc/<pid>/exe or comm.
    pub executable: Option<Box<str>>,
}

/// The server end of a flow as every record of the flow carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    /// The `service` label: workload, process name, configured name, or `port-N`.
    pub service: Arc<str>,
    /// `None` when nothing but the port is known.
    pub attribution: Option<Arc<Attribution>>,
}

impl Server {
    /// Becomes `other`, cloning only the fields that do not already hold the same value (by
    /// pointer): renewing a kept server for the same one writes no reference count.
    pub fn assign_from(&mut self, other: &Server) {
        assign_arc(&mut self.service, &other.service);
        assign_shared(&mut self.attribution, &other.attribution);
    }
}

/// A server known by its service name alone.
impl From<&str> for Server {
    fn from(service: &str) -> Server {
        Server {
            service: service.into(),
            attribution: None,
        }
    }
}

/// Why the engine does not track a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// Configuration excludes this server.
    Excluded,
    /// No server on this host listens at the address: an outgoing call, counted by the node
    /// that serves it (or a server that appeared since the last discovery scan).
    NotLocal,
}

/// Resolves the server of a new flow. Called once per flow; must not block.
pub trait ResolveServer: Send {
    fn resolve(&mut self, server: SocketAddr) -> Result<Server, Skip>;

    /// [`resolve`](Self::resolve) into `into`, the server of a connection that ended: a field
    /// that already holds the answer is left as it is (see [`Server::assign_from`]), so a new
    /// connection to the same server writes no reference count. On an error `into` is left
    /// as it was.
    fn resolve_into(&mut self, server: SocketAddr, into: &mut Server) -> Result<(), Skip> {
        *into = self.resolve(server)?;
        Ok(())
    }
}

/// `port-N`, or the name configured for the port; nothing else is known. Names are built once
/// per port, so resolving allocates only the first time a port is seen.
#[derive(Debug, Default)]
pub struct PortNames {
    names: HashMap<u16, Arc<str>>,
}

impl PortNames {
    /// `names`: port -> service name; other ports are `port-N`.
    pub fn new(names: impl IntoIterator<Item = (u16, String)>) -> PortNames {
        PortNames {
            names: names
                .into_iter()
                .map(|(port, name)| (port, Arc::from(name)))
                .collect(),
        }
    }

    /// The service name of `port`.
    pub fn name(&mut self, port: u16) -> Arc<str> {
        Arc::clone(self.name_ref(port))
    }

    fn name_ref(&mut self, port: u16) -> &Arc<str> {
        self.names
            .entry(port)
            .or_insert_with(|| Arc::from(format!("port-{port}")))
    }
}

impl ResolveServer for PortNames {
    fn resolve(&mut self, server: SocketAddr) -> Result<Server, Skip> {
        Ok(Server {
            service: self.name(server.port()),
            attribution: None,
        })
    }

    fn resolve_into(&mut self, server: SocketAddr, into: &mut Server) -> Result<(), Skip> {
        assign_arc(&mut into.service, self.name_ref(server.port()));
        into.attribution = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_names_are_configured_or_port_n_and_shared() {
        let mut names = PortNames::new([(8080, "users".to_string())]);
        let a = names
            .resolve("10.0.0.1:8080".parse().expect("addr"))
            .expect("resolved");
        assert_eq!(&*a.service, "users");
        let b = names.name(9090);
        let c = names.name(9090);
        assert_eq!(&*b, "port-9090");
        assert!(Arc::ptr_eq(&b, &c), "one name per port, shared");
    }

    #[test]
    fn resolving_into_a_kept_server_keeps_what_is_already_right() {
        let mut names = PortNames::new([(8080, "users".to_string())]);
        let addr = "10.0.0.1:8080".parse().expect("addr");
        let mut kept = names.resolve(addr).expect("resolved");
        let before = Arc::clone(&kept.service);
        names.resolve_into(addr, &mut kept).expect("resolved");
        assert!(
            Arc::ptr_eq(&kept.service, &before),
            "the same name, untouched"
        );
        assert_eq!(
            Arc::strong_count(&before),
            3,
            "the table, the kept server, `before`"
        );
        names
            .resolve_into("10.0.0.1:9090".parse().expect("addr"), &mut kept)
            .expect("resolved");
        assert_eq!(&*kept.service, "port-9090");
        assert_eq!(Arc::strong_count(&before), 2, "the old name was let go");

        let pod = Server {
            service: "orders".into(),
            attribution: Some(Arc::new(Attribution::default())),
        };
        kept.assign_from(&pod);
        assert_eq!(kept, pod);
        assert!(Arc::ptr_eq(&kept.service, &pod.service));
        let attribution = kept.attribution.clone().expect("attributed");
        kept.assign_from(&pod);
        assert!(Arc::ptr_eq(
            kept.attribution.as_ref().expect("attributed"),
            &attribution
        ));
        kept.assign_from(&Server::from("orders"));
        assert_eq!(kept.attribution, None);
    }

    #[test]
    fn owner_kinds_map_to_otel_keys() {
        assert_eq!(
            WorkloadKind::from_kind("Deployment").and_then(WorkloadKind::otel_key),
            Some("k8s.deployment.name")
        );
        assert_eq!(WorkloadKind::from_kind("Node"), None);
        assert_eq!(WorkloadKind::Pod.otel_key(), None);
    }
}
