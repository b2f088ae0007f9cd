//! Unauthenticated endpoints: the Prometheus scrape and the health probes.

use agent_core::export::{Format, prometheus};
use axum::Json;
use axum::extract::State;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::ApiState;
use crate::health;
use crate::store::now_ns;

/// GET /metrics: Prometheus text 0.0.4, or OpenMetrics 1.0 when the Accept header prefers it.
pub async fn metrics(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    let accept = headers.get(ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::from_accept(accept);
    let snapshot = state.snapshot();
    let mut self_metrics = (state.self_metrics)();
    self_metrics.extend(state.store.self_metrics());
    let body = prometheus::render(&snapshot, &self_metrics, format);
    let mut response = body.into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    response
}

/// GET /health: 200 when healthy or warning, 503 otherwise, with every check in the body.
pub async fn health(State(state): State<ApiState>) -> Response {
    let snapshot = state.snapshot();
    let report = health::report(&state.health, &snapshot, &state.store, now_ns()).await;
    let code = if report.status.is_serving() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(report)).into_response()
}

/// GET /healthz: the process answers.
pub async fn healthz() -> Response {
    Json(json!({"status": "alive"})).into_response()
}

/// GET /readyz: 200 once capture is attached, 503 before.
pub async fn readyz(State(state): State<ApiState>) -> Response {
    let capture = &state.health.capture;
    let body = json!({
        "status": if capture.is_ready() { "ready" } else { "not ready" },
        "programs_attached": capture.programs_attached(),
    });
    let code = if capture.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}
