//! One /health check per watched service: its 5-minute error rate and p95 latency against the
//! alert thresholds.

use agent_core::aggregate::snapshot::ServiceStats;
use serde_json::{Value, json};

use super::{Status, rising};
use crate::alert::Thresholds;

/// `service:checkout` off Kubernetes, `service:shop/checkout` in namespace `shop`.
pub fn check_name(s: &ServiceStats) -> String {
    if s.namespace.is_empty() {
        format!("service:{}", s.service)
    } else {
        format!("service:{}/{}", s.namespace, s.service)
    }
}

pub fn check(s: &ServiceStats, t: &Thresholds) -> (Status, Value) {
    let p95_ms = s.p95_5m_s * 1e3;
    let status = rising(s.error_rate_5m, t.error_rate_warning, t.error_rate_critical).max(rising(
        p95_ms,
        t.p95_warning_ms as f64,
        t.p95_critical_ms as f64,
    ));
    super::check(
        status,
        json!({
            "namespace": s.namespace,
            "service": s.service,
            "error_rate_5m": s.error_rate_5m,
            "p95_latency_ms_5m": p95_ms,
            "requests_last_minute": s.requests_last_minute,
            "availability_5m": s.availability_5m,
            "active_connections": s.active_connections,
            "thresholds": {
                "error_rate_warning": t.error_rate_warning,
                "error_rate_critical": t.error_rate_critical,
                "p95_warning_ms": t.p95_warning_ms,
                "p95_critical_ms": t.p95_critical_ms,
            },
        }),
    )
}
