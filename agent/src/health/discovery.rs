//! The `discovery` check: how servers are found and named on this host (scans, namespaces,
//! servers, what could not be read), and the `kubernetes` check: where workload names come
//! from (the API, or pod names when it is unreachable or denied).

use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::watch;

use super::Status;
use crate::discovery::{DiscoveryStats, ServerTable};
use crate::kube::KubeStatus;

/// What the two checks read.
pub struct DiscoveryHealth {
    pub stats: Arc<DiscoveryStats>,
    pub table: watch::Receiver<Arc<ServerTable>>,
    /// "v1" or "v2".
    pub cgroup_version: &'static str,
    /// `None` when the agent does not run in a cluster (no service account).
    pub kube: Option<Arc<KubeStatus>>,
}

/// Healthy once a scan ran; a warning before that.
pub fn check(d: &DiscoveryHealth) -> (Status, Value) {
    let s = d.stats.snapshot();
    let status = if s.scans == 0 {
        Status::Warning
    } else {
        Status::Healthy
    };
    let table = d.table.borrow().clone();
    super::check(
        status,
        json!({
            "scans": s.scans,
            "last_scan_ms": s.last_scan_micros as f64 / 1e3,
            "namespaces": s.namespaces,
            "servers": s.servers,
            "ports": table.ports,
            "cgroup": d.cgroup_version,
            "workload_names": table.sources,
            "skipped": {
                "exited": s.exited,
                "unreadable": s.unreadable,
                "odd_cgroup": s.odd_cgroups,
                "unowned": s.unowned,
                "malformed": s.malformed_lines,
                "address_conflict": s.address_conflicts,
                "over_budget": s.over_budget,
            },
        }),
    )
}

/// Off a cluster: healthy, workloads from pod names. In a cluster: a warning while the API
/// cannot be used (names fall back to pod names; capture goes on).
pub fn kube_check(d: &DiscoveryHealth) -> (Status, Value) {
    match &d.kube {
        None => super::check(
            Status::Healthy,
            json!({
                "api": "not in a cluster",
                "workload_names": "from pod names (/var/log/pods)",
            }),
        ),
        Some(k) => {
            let s = k.snapshot();
            let status = if s.connected {
                Status::Healthy
            } else {
                Status::Warning
            };
            let names = if s.connected {
                "from the API (owner references)"
            } else {
                "from pod names (/var/log/pods) until the API answers"
            };
            super::check(
                status,
                json!({
                    "api": if s.connected { "connected" } else { "unavailable" },
                    "workload_names": names,
                    "node": s.node,
                    "pods": s.pods,
                    "errors": s.errors,
                    "denied": s.denied,
                    "last_error": s.last_error,
                }),
            )
        }
    }
}
