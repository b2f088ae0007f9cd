//! The live views' summaries: `GET /api/v1/services` (one row per service from the latest
//! snapshot) and `GET /api/v1/capture` (capture health: what is attached and what was lost,
//! picked from the same self-metrics /metrics renders, so the two always agree).

use agent_core::aggregate::snapshot::Snapshot;
use agent_core::export::SelfMetric;
use axum::Json;
use axum::extract::State;
use serde_json::{Map, Value, json};

use super::query::known;
use super::v1::{Params, params};
use super::{ApiError, ApiState};

/// Names of the interfaces the classifiers are attached to, read on each request.
pub type InterfaceNames = std::sync::Arc<dyn Fn() -> Vec<String> + Send + Sync>;

pub fn services_body(snapshot: &Snapshot) -> Value {
    let rows: Vec<Value> = snapshot
        .services
        .iter()
        .map(|s| {
            json!({
                "service": s.service,
                "requests": s.requests,
                "requests_last_minute": s.requests_last_minute,
                "active_connections": s.active_connections,
                "error_rate_5m": s.error_rate_5m,
                "p95_5m_ms": s.p95_5m_s * 1e3,
                "availability_5m": s.availability_5m,
                "availability_1h": s.availability_1h,
                "availability_24h": s.availability_24h,
            })
        })
        .collect();
    json!({
        "timestamp": agent_core::time::rfc3339_micros(snapshot.taken_ns),
        "services": rows,
    })
}

/// GET /api/v1/services
pub async fn services(State(state): State<ApiState>, p: Params) -> Result<Json<Value>, ApiError> {
    known(&params(p)?, &[])?;
    Ok(Json(services_body(&state.snapshot())))
}

/// The sum of every sample of `name`.
fn total(metrics: &[SelfMetric], name: &str) -> u64 {
    metrics
        .iter()
        .filter(|m| m.name == name)
        .map(|m| m.value as u64)
        .sum()
}

pub fn capture_body(metrics: &[SelfMetric], interfaces: Vec<String>) -> Value {
    let mut parse_errors = Map::new();
    for m in metrics
        .iter()
        .filter(|m| m.name == "apitap_parse_errors_total")
    {
        if let Some((_, reason)) = m.labels.iter().find(|(k, _)| k == "reason") {
            parse_errors.insert(reason.clone(), json!(m.value as u64));
        }
    }
    json!({
        "interfaces": interfaces,
        "interfaces_attached": total(metrics, "apitap_attached_interfaces"),
        "programs_attached": total(metrics, "apitap_attached_programs"),
        "events_lost": total(metrics, "apitap_events_lost_total"),
        "events_dropped": total(metrics, "apitap_events_dropped_total"),
        "reassembly_gaps": total(metrics, "apitap_reassembly_gaps_total"),
        "gap_bytes": total(metrics, "apitap_reassembly_gap_bytes_total"),
        "parse_errors_total": total(metrics, "apitap_parse_errors_total"),
        "parse_errors": parse_errors,
        "capture_errors": total(metrics, "apitap_capture_errors_total"),
        "flows_tracked": total(metrics, "apitap_flows_tracked"),
        "segments": total(metrics, "apitap_segments_total"),
        "transactions": total(metrics, "apitap_transactions_total"),
    })
}

/// GET /api/v1/capture
pub async fn capture(State(state): State<ApiState>, p: Params) -> Result<Json<Value>, ApiError> {
    known(&params(p)?, &[])?;
    let metrics = (state.self_metrics)();
    Ok(Json(capture_body(&metrics, (state.interfaces)())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_core::aggregate::ServiceStats;
    use agent_core::export::MetricKind;
    use rstest::rstest;

    fn metric(name: &str, labels: &[(&str, &str)], value: f64) -> SelfMetric {
        SelfMetric {
            name: name.into(),
            help: String::new(),
            kind: MetricKind::Counter,
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            value,
        }
    }

    #[rstest]
    fn capture_sums_the_self_metrics() {
        let m = vec![
            metric("apitap_events_lost_total", &[], 3.0),
            metric("apitap_events_dropped_total", &[("stage", "capture")], 2.0),
            metric("apitap_events_dropped_total", &[("stage", "analysis")], 1.0),
            metric(
                "apitap_parse_errors_total",
                &[("reason", "bad_request_line")],
                4.0,
            ),
            metric(
                "apitap_parse_errors_total",
                &[("reason", "bad_header")],
                0.0,
            ),
            metric("apitap_attached_programs", &[], 1.0),
        ];
        let v = capture_body(&m, vec!["lo".into()]);
        assert_eq!(v["events_lost"], 3);
        assert_eq!(v["events_dropped"], 3);
        assert_eq!(v["parse_errors_total"], 4);
        assert_eq!(v["parse_errors"]["bad_request_line"], 4);
        assert_eq!(v["programs_attached"], 1);
        assert_eq!(v["interfaces"], json!(["lo"]));
        assert_eq!(v["reassembly_gaps"], 0);
    }

    #[rstest]
    fn services_in_milliseconds() {
        let snap = Snapshot {
            services: vec![ServiceStats {
                service: "nginx".into(),
                requests: 7,
                p95_5m_s: 0.25,
                error_rate_5m: 0.5,
                ..Default::default()
            }],
            ..Default::default()
        };
        let v = services_body(&snap);
        assert_eq!(v["services"][0]["service"], "nginx");
        assert_eq!(v["services"][0]["p95_5m_ms"], 250.0);
        assert_eq!(v["services"][0]["requests"], 7);
    }
}
