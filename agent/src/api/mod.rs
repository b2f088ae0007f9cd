//! The HTTP endpoint (--listen): GET /metrics, /health, /healthz, /readyz, and the analytics
//! API under /api/v1 behind a bearer token.

mod auth;
mod error;
mod probes;
mod query;
mod v1;

pub use auth::ApiToken;
pub use error::ApiError;

use agent_core::aggregate::snapshot::Snapshot;
use agent_core::export::SelfMetric;
use axum::Router;
use axum::routing::get;
use std::sync::Arc;
use tokio::sync::watch;

use crate::health::HealthInputs;
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
}

impl ApiState {
    fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.borrow().clone()
    }
}

/// All routes. `extra_v1` adds routes under /api/v1 (e.g. `/alerts`) behind the same token.
pub fn router_with(state: ApiState, extra_v1: Router<ApiState>) -> Router {
    let token = state.token.clone();
    let api = v1::routes()
        .merge(extra_v1)
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn_with_state(
            token,
            auth::require_token,
        ));
    Router::new()
        .route("/metrics", get(probes::metrics))
        .route("/health", get(probes::health))
        .route("/healthz", get(probes::healthz))
        .route("/readyz", get(probes::readyz))
        .nest("/api/v1", api)
        .fallback(error::not_found)
        .with_state(state)
}

/// All routes of this module, without extras (the tests' router).
#[cfg(test)]
pub fn router(state: ApiState) -> Router {
    router_with(state, Router::new())
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
