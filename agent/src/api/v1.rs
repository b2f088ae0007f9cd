//! The analytics API under /api/v1: usage by day (from the store), the popular endpoints and
//! clients (from the latest snapshot), recent requests by id and the alerts.

use agent_core::aggregate::{ClientStats, EndpointStats};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

use super::query::{bounded, choice, int, known};
use super::{ApiError, ApiState};
use crate::store::{UsageKind, last_dates, now_ns};

/// Longest usage period (the daily retention of the store).
pub const MAX_DAYS: u32 = 30;
/// Most rows of a top list.
pub const MAX_TOP: u32 = 1000;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/usage", get(usage))
        .route("/usage/clients", get(usage_clients))
        .route("/endpoints", get(endpoints))
        .route("/clients", get(clients))
        .route("/requests/{id}", get(super::requests::get_request))
        .route("/alerts", get(super::alerts::list))
}

pub type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

pub fn params(p: Params) -> Result<HashMap<String, String>, ApiError> {
    p.map(|Query(map)| map)
        .map_err(|e| ApiError::BadRequest(e.body_text()))
}

#[derive(Serialize)]
struct UsageBody {
    period_days: u32,
    /// Every date of the period (oldest first), each with its counts by field.
    usage_by_date: BTreeMap<String, BTreeMap<String, u64>>,
}

async fn usage_of(
    state: &ApiState,
    kind: UsageKind,
    p: Params,
) -> Result<Json<UsageBody>, ApiError> {
    let days = bounded(&params(p)?, "days", 7, 1, MAX_DAYS)?;
    let mut found = state
        .store
        .usage(kind, days)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let usage_by_date = last_dates(now_ns(), days)
        .into_iter()
        .map(|date| {
            let counts = found.remove(&date).unwrap_or_default();
            (date, counts)
        })
        .collect();
    Ok(Json(UsageBody {
        period_days: days,
        usage_by_date,
    }))
}

/// GET /api/v1/usage?days=7: requests per `{endpoint}:{METHOD}` per day.
async fn usage(State(state): State<ApiState>, p: Params) -> Result<Json<UsageBody>, ApiError> {
    usage_of(&state, UsageKind::Endpoints, p).await
}

/// GET /api/v1/usage/clients?days=7: requests per client per day.
async fn usage_clients(
    State(state): State<ApiState>,
    p: Params,
) -> Result<Json<UsageBody>, ApiError> {
    usage_of(&state, UsageKind::Clients, p).await
}

#[derive(Serialize)]
struct EndpointRow<'a> {
    namespace: &'a str,
    service: &'a str,
    method: &'a str,
    endpoint: &'a str,
    count: u64,
    errors: u64,
    error_rate: f64,
    avg_latency_ms: f64,
    p50_latency_ms: f64,
    p95_latency_ms: f64,
    p99_latency_ms: f64,
}

/// Orders of `/endpoints?sort=` (descending; ties by count, then by key).
const ENDPOINT_SORTS: [&str; 3] = ["count", "error_rate", "p95"];
/// Orders of `/clients?sort=` (descending; ties by count, then by name).
const CLIENT_SORTS: [&str; 3] = ["count", "rate_limited", "auth_failures"];

/// GET /api/v1/endpoints?top=10&sort=count: the endpoints with the most requests since start
/// (or the highest error rate, or p95).
async fn endpoints(
    State(state): State<ApiState>,
    p: Params,
) -> Result<Json<serde_json::Value>, ApiError> {
    let p = params(p)?;
    known(&p, &["top", "sort"])?;
    let top = int(&p, "top", 10, 1, MAX_TOP)?;
    let sort = choice(&p, "sort", &ENDPOINT_SORTS)?;
    let snapshot = state.snapshot();
    let mut sorted: Vec<&EndpointStats> = snapshot.endpoints.iter().collect();
    let key = |e: &EndpointStats| match sort {
        "error_rate" => e.error_rate,
        "p95" => e.p95_s,
        _ => e.count as f64,
    };
    sorted.sort_by(|a, b| {
        key(b)
            .total_cmp(&key(a))
            .then_with(|| b.count.cmp(&a.count))
            .then_with(|| {
                (&a.service, &a.method, &a.endpoint).cmp(&(&b.service, &b.method, &b.endpoint))
            })
    });
    sorted.truncate(top as usize);
    let rows: Vec<EndpointRow<'_>> = sorted
        .into_iter()
        .map(|e| EndpointRow {
            namespace: &e.namespace,
            service: &e.service,
            method: &e.method,
            endpoint: &e.endpoint,
            count: e.count,
            errors: e.errors,
            error_rate: e.error_rate,
            avg_latency_ms: e.avg_s * 1e3,
            p50_latency_ms: e.p50_s * 1e3,
            p95_latency_ms: e.p95_s * 1e3,
            p99_latency_ms: e.p99_s * 1e3,
        })
        .collect();
    Ok(Json(serde_json::json!({
        "timestamp": agent_core::time::rfc3339_micros(snapshot.taken_ns),
        "endpoints": rows,
    })))
}

#[derive(Serialize)]
struct ClientRow<'a> {
    client: &'a str,
    count: u64,
    errors: u64,
    error_rate: f64,
    rate_limited: u64,
    auth_failures: u64,
}

/// GET /api/v1/clients?top=10&sort=count: the API consumers with the most requests since
/// start (or the most 429s, or 401/403s).
async fn clients(
    State(state): State<ApiState>,
    p: Params,
) -> Result<Json<serde_json::Value>, ApiError> {
    let p = params(p)?;
    known(&p, &["top", "sort"])?;
    let top = int(&p, "top", 10, 1, MAX_TOP)?;
    let sort = choice(&p, "sort", &CLIENT_SORTS)?;
    let snapshot = state.snapshot();
    let mut sorted: Vec<&ClientStats> = snapshot.clients.iter().collect();
    let key = |c: &ClientStats| match sort {
        "rate_limited" => c.rate_limited,
        "auth_failures" => c.auth_failures,
        _ => c.count,
    };
    sorted.sort_by(|a, b| {
        key(b)
            .cmp(&key(a))
            .then_with(|| b.count.cmp(&a.count))
            .then_with(|| a.client.cmp(&b.client))
    });
    sorted.truncate(top as usize);
    let rows: Vec<ClientRow<'_>> = sorted
        .into_iter()
        .map(|c| ClientRow {
            client: &c.client,
            count: c.count,
            errors: c.errors,
            error_rate: if c.count == 0 {
                0.0
            } else {
                c.errors as f64 / c.count as f64
            },
            rate_limited: c.rate_limited,
            auth_failures: c.auth_failures,
        })
        .collect();
    Ok(Json(serde_json::json!({
        "timestamp": agent_core::time::rfc3339_micros(snapshot.taken_ns),
        "clients": rows,
    })))
}
