//! GET /health: one report built from the capture status, the usage store probe, the data
//! directory's file system, host memory and every watched service's figures in the latest
//! snapshot, each check with its own status; the report's status is the worst of them.

mod capture;
mod discovery;
mod services;
mod system;

pub use capture::CaptureHealth;
pub use discovery::DiscoveryHealth;
pub use system::SystemProbe;

use agent_core::aggregate::snapshot::Snapshot;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::alert::Thresholds;
use crate::config::HealthConfig;
use crate::store::UsageStore;

/// Severity of a check and of the whole report, in increasing order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Healthy,
    Warning,
    Critical,
    /// The agent cannot do its job (capture not attached).
    Unhealthy,
}

impl Status {
    /// HTTP 200 for healthy or warning, 503 otherwise (SPEC).
    pub fn is_serving(self) -> bool {
        self <= Status::Warning
    }
}

/// Where `value` stands against a rising warning/critical pair (`value >= critical` is critical).
pub fn rising(value: f64, warning: f64, critical: f64) -> Status {
    if value >= critical {
        Status::Critical
    } else if value >= warning {
        Status::Warning
    } else {
        Status::Healthy
    }
}

/// Everything /health reads besides the snapshot and the store.
pub struct HealthInputs {
    pub capture: Arc<CaptureHealth>,
    /// The embedded store's directory, whose file system is checked.
    pub data_dir: PathBuf,
    pub limits: HealthConfig,
    /// Service-wide alert thresholds the per-service checks compare against.
    pub thresholds: Thresholds,
    pub system: SystemProbe,
    /// Server discovery and the Kubernetes API (live capture only).
    pub discovery: Option<DiscoveryHealth>,
}

impl HealthInputs {
    pub fn new(
        capture: Arc<CaptureHealth>,
        data_dir: PathBuf,
        limits: HealthConfig,
        thresholds: Thresholds,
    ) -> Self {
        HealthInputs {
            capture,
            data_dir,
            limits,
            thresholds,
            system: SystemProbe::new(),
            discovery: None,
        }
    }

    /// Adds the `discovery` and `kubernetes` checks.
    pub fn with_discovery(mut self, d: DiscoveryHealth) -> Self {
        self.discovery = Some(d);
        self
    }
}

/// The body of GET /health.
#[derive(Clone, Debug, Serialize)]
pub struct HealthReport {
    pub status: Status,
    pub timestamp: String,
    pub checks: BTreeMap<String, Value>,
}

/// One check: its status and details, flattened into one JSON object.
fn check(status: Status, details: Value) -> (Status, Value) {
    let mut value = json!({ "status": status });
    if let (Value::Object(out), Value::Object(more)) = (&mut value, details) {
        out.extend(more);
    }
    (status, value)
}

/// Runs every check; `now_ns` stamps the report.
pub async fn report(
    inputs: &HealthInputs,
    snapshot: &Snapshot,
    store: &UsageStore,
    now_ns: u64,
) -> HealthReport {
    let mut checks = BTreeMap::new();
    let mut worst = Status::Healthy;
    let mut add = |name: String, (status, value): (Status, Value)| {
        worst = worst.max(status);
        checks.insert(name, value);
    };
    add("capture".into(), capture::check(&inputs.capture));
    add("store".into(), store_check(store).await);
    add(
        "disk".into(),
        system::disk_check(&inputs.data_dir, &inputs.limits),
    );
    add("memory".into(), inputs.system.memory_check(&inputs.limits));
    if let Some(d) = &inputs.discovery {
        add("discovery".into(), discovery::check(d));
        add("kubernetes".into(), discovery::kube_check(d));
    }
    for service in &snapshot.services {
        add(
            services::check_name(service),
            services::check(service, &inputs.thresholds),
        );
    }
    HealthReport {
        status: worst,
        timestamp: agent_core::time::rfc3339_micros(now_ns),
        checks,
    }
}

/// Probe failure is critical; a probe that works while the last flush failed is a warning
/// (increments are kept and retried).
async fn store_check(store: &UsageStore) -> (Status, Value) {
    let h = store.health().await;
    let status = match (h.response_time, &h.error) {
        (None, _) => Status::Critical,
        (Some(_), Some(_)) => Status::Warning,
        (Some(_), None) => Status::Healthy,
    };
    check(
        status,
        json!({
            "backend": h.backend,
            "response_time_ms": h.response_time.map(|d| d.as_secs_f64() * 1e3),
            "pending_increments": h.pending,
            "dropped_increments": h.dropped,
            "error": h.error,
        }),
    )
}

#[cfg(test)]
mod tests;
