//! `GET /api/v1/requests/{id}`: the recent transactions with this `request.id` as SPEC records
//! (from the request log's lookup ring).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::ApiState;

/// 200 with `{"request_id":…, "transactions":[…]}`, or 404 with `{"error":…}` when no recent
/// transaction carried this id.
pub async fn get_request(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    let found = state.recent.get(&id);
    if found.is_empty() {
        let body = serde_json::json!({ "error": format!("no recent request with id {id:?}") });
        return (StatusCode::NOT_FOUND, Json(body)).into_response();
    }
    Json(serde_json::json!({ "request_id": id, "transactions": found })).into_response()
}
