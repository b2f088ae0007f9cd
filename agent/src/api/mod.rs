//! The HTTP endpoint (--listen): GET /metrics, /health, /healthz, /readyz, and the analytics
//! API under /api/v1 behind a bearer token. [`router`] builds every route of the agent.

mod alerts;
mod auth;
mod error;
mod overview;
mod probes;
mod query;
mod requests;
mod series;
mod v1;

pub use auth::{ApiToken, TOKEN_FILE};
pub use error::ApiError;
pub use overview::InterfaceNames;

use agent_core::aggregate::snapshot::Snapshot;
use agent_core::export::SelfMetric;
use agent_core::series::SeriesSnapshot;
use axum::Router;
use axum::routing::get;
use std::sync::Arc;
use tokio::sync::watch;

use crate::alert::AlertManager;
use crate::health::HealthInputs;
use crate::reqlog::RecentRequests;
use crate::store::UsageStore;

/// The `apitap_*` self-metrics of the capture, engine and pipeline, gathered on each scrape.
pub type SelfMetrics = Arc<dyn Fn() -> Vec<SelfMetric> + Send + Sync>;

/// What the handlers read. Cheap to clone (all shared).
#[derive(Clone)]
pub struct ApiState {
    /// The aggregator's latest snapshot.
    pub snapshot: watch::Receiver<Arc<Snapshot>>,
    /// Self-metrics of the other stages; the store's own are added by /metrics.
    pub self_metrics: SelfMetrics,
    pub store: UsageStore,
    pub health: Arc<HealthInputs>,
    pub token: ApiToken,
    /// Recent transactions by request id (`/api/v1/requests/{id}`).
    pub recent: Arc<RecentRequests>,
    /// Active and recent alerts (`/api/v1/alerts`).
    pub alerts: Arc<AlertManager>,
    /// Per-second series of every service (`/api/v1/series`), published every second.
    pub series: watch::Receiver<Arc<SeriesSnapshot>>,
    /// Interfaces with classifiers attached (`/api/v1/capture`).
    pub interfaces: InterfaceNames,
}

impl ApiState {
    fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.borrow().clone()
    }
}

/// Every route of the agent: the probes and /metrics without auth, /api/v1/* behind the token.
pub fn router(state: ApiState) -> Router {
    let token = state.token.clone();
    let api = v1::routes()
        .route("/services", get(overview::services))
        .route("/capture", get(overview::capture))
        .route("/series", get(series::series))
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn_with_state(
            token,
            auth::require_token,
        ));
    Router::new()
        .merge(crate::page::routes())
        .route("/metrics", get(probes::metrics))
        .route("/health", get(probes::health))
        .route("/healthz", get(probes::healthz))
        .route("/readyz", get(probes::readyz))
        .nest("/api/v1", api)
        .fallback(error::not_found)
        .with_state(state)
        // gzip for /metrics, the JSON API and the page when the client accepts it (bodies
        // under 32 bytes are sent as they are).
        .layer(tower_http::compression::CompressionLayer::new())
}

/// Serves `router` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests;
