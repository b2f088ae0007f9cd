//! `GET /api/v1/requests/{id}`: the recent transactions with this `request.id` as SPEC records.
//! Mount it behind the /api bearer-token layer with `State<Arc<RecentRequests>>`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::RecentRequests;

/// 200 with `{"request_id":…, "transactions":[…]}`, or 404 with `{"error":…}` when no recent
/// transaction carried this id.
pub async fn get_request(
    State(recent): State<Arc<RecentRequests>>,
    Path(id): Path<String>,
) -> Response {
    let found = recent.get(&id);
    if found.is_empty() {
        let body = serde_json::json!({ "error": format!("no recent request with id {id:?}") });
        return (StatusCode::NOT_FOUND, Json(body)).into_response();
    }
    Json(serde_json::json!({ "request_id": id, "transactions": found })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_core::Transaction;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn call(recent: Arc<RecentRequests>, uri: &str) -> (StatusCode, serde_json::Value) {
        let app = Router::new()
            .route("/api/v1/requests/{id}", get(get_request))
            .with_state(recent);
        let req = axum::http::Request::get(uri)
            .body(Body::empty())
            .expect("request");
        let resp = app.oneshot(req).await.expect("response");
        let status = resp.status();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        (status, serde_json::from_slice(&bytes).expect("json"))
    }

    #[tokio::test]
    async fn known_id_returns_its_records_and_unknown_is_404() {
        let recent = Arc::new(RecentRequests::new(10));
        recent.insert(&Transaction {
            request_id: Some("req-1".into()),
            status: Some(502),
            service: "port-8080".into(),
            ..Default::default()
        });
        let (status, body) = call(Arc::clone(&recent), "/api/v1/requests/req-1").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["transactions"][0]["http.response.status_code"], 502);
        assert_eq!(body["transactions"][0]["request.id"], "req-1");
        let (status, _) = call(recent, "/api/v1/requests/nope").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
