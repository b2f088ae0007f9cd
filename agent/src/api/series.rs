//! `GET /api/v1/series?service=…&namespace=…&since=…`: per-second requests, errors and p95 of each service
//! over the last 15 minutes, from the series ring the analysis stage publishes every second.

use agent_core::series::{SeriesSnapshot, ServiceSeries};
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::HashMap;

use super::query::{known, optional_u64};
use super::v1::{Params, params};
use super::{ApiError, ApiState};

#[derive(Serialize)]
struct SeriesRow<'a> {
    namespace: &'a str,
    service: &'a str,
    requests: &'a [u32],
    errors: &'a [u32],
    /// p95 of the second in milliseconds; null when nothing with a duration completed in it.
    p95_ms: Vec<Option<f64>>,
}

impl<'a> SeriesRow<'a> {
    fn new(s: &'a ServiceSeries) -> SeriesRow<'a> {
        SeriesRow {
            namespace: &s.namespace,
            service: &s.service,
            requests: &s.requests,
            errors: &s.errors,
            // f32 seconds -> ms, rounded to the microsecond so JSON does not carry float noise.
            p95_ms: s
                .p95_s
                .iter()
                .map(|p| p.map(|v| (f64::from(v) * 1e6).round() / 1e3))
                .collect(),
        }
    }
}

/// The body for `service` in `namespace` (every service when `None`; the namespace is empty
/// off Kubernetes), with the points after second `since` (all 900 when `None`).
pub fn body(
    snap: &SeriesSnapshot,
    service: Option<(&str, &str)>,
    since: Option<u64>,
) -> Result<Value, ApiError> {
    let since = since.unwrap_or(0).max(snap.start_s().saturating_sub(1));
    let tails: Vec<ServiceSeries> = match service {
        Some((namespace, name)) => vec![
            snap.service(namespace, name)
                .ok_or_else(|| {
                    ApiError::NotFoundWhat(format!(
                        "no series for service {name:?} in namespace {namespace:?}"
                    ))
                })?
                .since(since, snap.end_s),
        ],
        None => snap
            .services
            .iter()
            .map(|s| s.since(since, snap.end_s))
            .collect(),
    };
    let rows: Vec<SeriesRow<'_>> = tails.iter().map(SeriesRow::new).collect();
    Ok(json!({
        "start_s": (since + 1).min(snap.end_s + 1),
        "end_s": snap.end_s,
        "step_s": 1,
        "stats": snap.stats,
        "services": rows,
    }))
}

/// GET /api/v1/series
pub async fn series(State(state): State<ApiState>, p: Params) -> Result<Json<Value>, ApiError> {
    let p: HashMap<String, String> = params(p)?;
    known(&p, &["service", "namespace", "since"])?;
    let since = optional_u64(&p, "since")?;
    let snap = state.series.borrow().clone();
    let namespace = p.get("namespace").map_or("", String::as_str);
    let service = p.get("service").map(|s| (namespace, s.as_str()));
    body(&snap, service, since).map(Json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_core::series::{SeriesRing, WINDOW_S};
    use rstest::rstest;

    const NS: u64 = 1_000_000_000;
    const T0: u64 = 1_795_000_000;

    fn snap() -> SeriesSnapshot {
        let mut r = SeriesRing::new(8);
        r.record("nginx", T0 * NS, false, Some(0.0015));
        r.record("nginx", T0 * NS, true, Some(0.0015));
        r.record("api", (T0 + 1) * NS, false, None);
        r.snapshot((T0 + 2) * NS)
    }

    #[rstest]
    fn every_service_with_the_whole_window() {
        let v = body(&snap(), None, None).expect("body");
        assert_eq!(v["end_s"], T0 + 2);
        assert_eq!(v["start_s"], T0 + 3 - WINDOW_S as u64);
        let services = v["services"].as_array().expect("array");
        assert_eq!(services.len(), 2);
        let nginx = &services[1];
        assert_eq!(nginx["service"], "nginx");
        assert_eq!(
            nginx["requests"].as_array().expect("points").len(),
            WINDOW_S
        );
        assert_eq!(nginx["requests"][WINDOW_S - 3], 2);
        assert_eq!(nginx["errors"][WINDOW_S - 3], 1);
        let p95 = nginx["p95_ms"][WINDOW_S - 3].as_f64().expect("p95");
        assert!((p95 - 1.5).abs() < 0.04, "{p95}");
        assert!(nginx["p95_ms"][WINDOW_S - 1].is_null());
    }

    #[rstest]
    fn one_service_since_a_second() {
        let v = body(&snap(), Some(("", "nginx")), Some(T0 - 1)).expect("body");
        assert_eq!(v["start_s"], T0);
        assert_eq!(v["services"][0]["requests"], json!([2, 0, 0]));
    }

    #[rstest]
    fn an_unknown_service_is_404() {
        let err = body(&snap(), Some(("", "nope")), None).expect_err("unknown");
        assert_eq!(err.status(), axum::http::StatusCode::NOT_FOUND);
    }

    #[rstest]
    fn since_in_the_future_is_empty() {
        let v = body(&snap(), None, Some(T0 + 10)).expect("body");
        assert_eq!(v["services"][0]["requests"], json!([]));
    }
}
