//! `GET /api/v1/alerts`: how many alerts fire, and every active and recently resolved alert.

use axum::Json;
use axum::extract::State;

use super::ApiState;

/// `{"firing": N, "alerts": [AlertView…]}`.
pub async fn list(State(state): State<ApiState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "firing": state.alerts.firing_count(),
        "alerts": state.alerts.active_and_recent(),
    }))
}
