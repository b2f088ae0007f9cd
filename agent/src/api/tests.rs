//! The router end to end through tower's `oneshot`, with a real embedded store in a temporary
//! directory: authentication, status codes, content types and body shapes.

use super::*;
use agent_core::aggregate::snapshot::{ClientStats, EndpointStats, ServiceStats};
use agent_core::export::MetricKind;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use crate::alert::{AlertConfig, Thresholds};
use crate::config::HealthConfig;
use crate::health::CaptureHealth;
use crate::store::{StoreOptions, now_ns};

const TOKEN: &str = "s3cret-token-for-tests";

struct Fixture {
    _dir: tempfile::TempDir,
    state: ApiState,
    capture: Arc<CaptureHealth>,
    snapshot_tx: watch::Sender<Arc<Snapshot>>,
}

fn snapshot() -> Snapshot {
    let endpoint = |endpoint: &str, count, p95_s| EndpointStats {
        service: "port-8080".into(),
        method: "GET".into(),
        endpoint: endpoint.into(),
        count,
        errors: 1,
        error_rate: 1.0 / count as f64,
        avg_s: 0.010,
        p50_s: 0.008,
        p95_s,
        p99_s: 0.050,
        ..EndpointStats::default()
    };
    Snapshot {
        taken_ns: now_ns(),
        endpoints: vec![
            endpoint("/api/users/{id}", 40, 0.02),
            endpoint("/api/orders", 60, 0.03),
            endpoint("/", 5, 0.001),
        ],
        clients: vec![
            ClientStats {
                client: "key:aa".into(),
                count: 70,
                errors: 7,
                ..ClientStats::default()
            },
            ClientStats {
                client: "key:bb".into(),
                count: 35,
                ..ClientStats::default()
            },
        ],
        services: vec![ServiceStats {
            service: "port-8080".into(),
            requests: 105,
            ..ServiceStats::default()
        }],
        ..Snapshot::default()
    }
}

/// nginx served two requests (one failed) in the second before the snapshot.
fn series_snapshot() -> agent_core::series::SeriesSnapshot {
    let mut ring = agent_core::series::SeriesRing::new(8);
    let now = now_ns();
    ring.record("port-8080", now - 1_000_000_000, false, Some(0.002));
    ring.record("port-8080", now - 1_000_000_000, true, Some(0.004));
    ring.snapshot(now)
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = UsageStore::embedded(dir.path(), StoreOptions::default()).expect("store");
    let capture = Arc::new(CaptureHealth::new());
    capture.set_ready(true);
    capture.set_programs_attached(2);
    let health = HealthInputs::new(
        capture.clone(),
        dir.path().to_path_buf(),
        HealthConfig::default(),
        Thresholds::default(),
    );
    let (snapshot_tx, snapshot_rx) = watch::channel(Arc::new(snapshot()));
    let self_metrics: SelfMetrics = Arc::new(|| {
        vec![SelfMetric {
            name: "apitap_events_lost_total".into(),
            help: "Events lost in the ring buffer.".into(),
            kind: MetricKind::Counter,
            labels: vec![],
            value: 3.0,
        }]
    });
    let state = ApiState {
        snapshot: snapshot_rx,
        self_metrics,
        store,
        health: Arc::new(health),
        token: ApiToken::new(TOKEN),
        recent: Arc::new(RecentRequests::new(10)),
        alerts: AlertManager::spawn(&AlertConfig::default())
            .expect("default alert config")
            .0,
        series: watch::channel(Arc::new(series_snapshot())).1,
        interfaces: Arc::new(|| vec!["lo".to_string()]),
    };
    Fixture {
        _dir: dir,
        state,
        capture,
        snapshot_tx,
    }
}

async fn get(
    f: &Fixture,
    uri: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, header::HeaderMap, String) {
    let mut request = Request::builder().uri(uri);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let request = request.body(Body::empty()).expect("request");
    let response = router(f.state.clone())
        .oneshot(request)
        .await
        .expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        headers,
        String::from_utf8(body.to_vec()).expect("utf-8"),
    )
}

async fn get_json(f: &Fixture, uri: &str) -> (StatusCode, Value) {
    let bearer = format!("Bearer {TOKEN}");
    let (status, _, body) = get(f, uri, &[("authorization", &bearer)]).await;
    (status, serde_json::from_str(&body).expect("JSON body"))
}

#[rstest::rstest]
#[case::no_header(None, StatusCode::UNAUTHORIZED)]
#[case::not_bearer(Some("Basic dXNlcjpwYXNz"), StatusCode::UNAUTHORIZED)]
#[case::empty_bearer(Some("Bearer "), StatusCode::UNAUTHORIZED)]
#[case::wrong_token(Some("Bearer nope"), StatusCode::FORBIDDEN)]
#[case::token_prefix(Some("Bearer s3cret"), StatusCode::FORBIDDEN)]
#[case::right_token(Some("Bearer s3cret-token-for-tests"), StatusCode::OK)]
#[case::scheme_is_case_insensitive(Some("bearer s3cret-token-for-tests"), StatusCode::OK)]
#[tokio::test]
async fn api_needs_the_bearer_token(#[case] authorization: Option<&str>, #[case] want: StatusCode) {
    let f = fixture();
    let headers: Vec<(&str, &str)> = authorization
        .map(|a| ("authorization", a))
        .into_iter()
        .collect();
    for uri in [
        "/api/v1/usage",
        "/api/v1/usage/clients",
        "/api/v1/endpoints",
        "/api/v1/clients",
    ] {
        let (status, headers, body) = get(&f, uri, &headers).await;
        assert_eq!(status, want, "{uri}: {body}");
        if want == StatusCode::UNAUTHORIZED {
            assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
            assert_eq!(body, r#"{"error":"missing bearer token"}"#);
        }
    }
}

#[tokio::test]
async fn unknown_api_paths_are_behind_auth_too() {
    let f = fixture();
    assert_eq!(
        get(&f, "/api/v1/nothing", &[]).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get_json(&f, "/api/v1/nothing").await.0,
        StatusCode::NOT_FOUND
    );
}

#[rstest::rstest]
#[case::days_zero("/api/v1/usage?days=0")]
#[case::days_too_many("/api/v1/usage?days=31")]
#[case::days_not_a_number("/api/v1/usage/clients?days=x")]
#[case::top_zero("/api/v1/endpoints?top=0")]
#[case::top_too_large("/api/v1/clients?top=1001")]
#[case::unknown_parameter("/api/v1/endpoints?limit=3")]
#[tokio::test]
async fn bad_query_parameters_are_a_json_400(#[case] uri: &str) {
    let (status, body) = get_json(&fixture(), uri).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn usage_reports_every_day_of_the_period() {
    let f = fixture();
    let now = now_ns();
    let tx = agent_core::Transaction {
        start_ns: now,
        method: Some("GET".into()),
        route: Some("/api/users/{id}".into()),
        client_id: Some("key:aa".into()),
        ..agent_core::Transaction::default()
    };
    for _ in 0..3 {
        f.state.store.record(&tx);
    }
    f.state.store.flush().await.expect("flush");
    f.state.store.record(&tx);
    let today = agent_core::time::utc_date(now);

    let (status, body) = get_json(&f, "/api/v1/usage?days=7").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["period_days"], 7);
    let by_date = body["usage_by_date"].as_object().expect("object");
    assert_eq!(by_date.len(), 7);
    assert_eq!(by_date[&today]["/api/users/{id}:GET"], 4);

    let (_, body) = get_json(&f, "/api/v1/usage/clients").await;
    assert_eq!(body["period_days"], 7, "7 days by default");
    assert_eq!(body["usage_by_date"][&today]["key:aa"], 4);
}

#[tokio::test]
async fn endpoints_and_clients_come_from_the_latest_snapshot() {
    let f = fixture();
    let (status, body) = get_json(&f, "/api/v1/endpoints?top=2").await;
    assert_eq!(status, StatusCode::OK);
    let rows = body["endpoints"].as_array().expect("array");
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0]["endpoint"].as_str(), rows[0]["count"].as_u64()),
        (Some("/api/orders"), Some(60))
    );
    assert_eq!(rows[1]["endpoint"], "/api/users/{id}");
    assert!((rows[0]["p95_latency_ms"].as_f64().expect("p95") - 30.0).abs() < 1e-9);
    for key in [
        "error_rate",
        "avg_latency_ms",
        "p50_latency_ms",
        "p99_latency_ms",
        "service",
        "method",
    ] {
        assert!(rows[0].get(key).is_some(), "{key} in {}", rows[0]);
    }

    let (_, body) = get_json(&f, "/api/v1/clients?top=1").await;
    assert_eq!(body["clients"].as_array().map(Vec::len), Some(1));
    assert_eq!(body["clients"][0]["client"], "key:aa");
    assert!((body["clients"][0]["error_rate"].as_f64().expect("rate") - 0.1).abs() < 1e-9);

    let mut next = snapshot();
    next.clients.truncate(0);
    f.snapshot_tx.send(Arc::new(next)).expect("receiver alive");
    let (_, body) = get_json(&f, "/api/v1/clients").await;
    assert_eq!(body["clients"], serde_json::json!([]));
}

#[rstest::rstest]
#[case::no_accept(None, "text/plain; version=0.0.4; charset=utf-8")]
#[case::prometheus_scraper(
    Some(
        "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
    ),
    "application/openmetrics-text; version=1.0.0; charset=utf-8"
)]
#[case::plain_text(Some("text/plain"), "text/plain; version=0.0.4; charset=utf-8")]
#[tokio::test]
async fn metrics_negotiate_the_content_type_without_auth(
    #[case] accept: Option<&str>,
    #[case] want: &str,
) {
    let f = fixture();
    let headers: Vec<(&str, &str)> = accept.map(|a| ("accept", a)).into_iter().collect();
    let (status, headers, body) = get(&f, "/metrics", &headers).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], want);
    assert!(body.contains("apitap_events_lost_total 3"), "{body}");
    assert!(
        body.contains("apitap_store_write_failures_total{backend=\"embedded\"} 0"),
        "{body}"
    );
    assert!(
        body.contains("apitap_store_pending_increments{backend=\"embedded\"} 0"),
        "{body}"
    );
    if want.starts_with("application/openmetrics-text") {
        assert!(body.ends_with("# EOF\n"), "{body}");
    }
}

#[tokio::test]
async fn health_has_the_spec_shape() {
    let f = fixture();
    let (status, _, body) = get(&f, "/health", &[]).await;
    let body: Value = serde_json::from_str(&body).expect("JSON");
    let overall = body["status"].as_str().expect("status");
    assert!(
        ["healthy", "warning", "critical", "unhealthy"].contains(&overall),
        "{body}"
    );
    assert_eq!(
        status == StatusCode::OK,
        overall == "healthy" || overall == "warning",
        "{body}"
    );
    assert!(
        body["timestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') && t.contains('T'))
    );
    let checks = &body["checks"];
    assert_eq!(checks["capture"]["status"], "healthy");
    assert_eq!(checks["capture"]["programs_attached"], 2);
    assert_eq!(checks["store"]["status"], "healthy");
    assert_eq!(checks["store"]["backend"], "embedded");
    assert!(checks["store"]["response_time_ms"].as_f64().is_some());
    assert!(checks["disk"]["free_percent"].as_f64().is_some());
    assert!(checks["memory"]["used_percent"].as_f64().is_some());
    assert_eq!(checks["service:port-8080"]["status"], "healthy");
}

#[tokio::test]
async fn health_is_503_when_capture_is_down_or_a_service_is_critical() {
    let f = fixture();
    f.capture.set_programs_attached(0);
    let (status, _, body) = get(&f, "/health", &[]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains(r#""status":"unhealthy""#), "{body}");

    f.capture.set_programs_attached(2);
    let mut next = snapshot();
    next.services[0].error_rate_5m = 0.5;
    f.snapshot_tx.send(Arc::new(next)).expect("receiver alive");
    let (status, _, body) = get(&f, "/health", &[]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(body["checks"]["service:port-8080"]["status"], "critical");
}

#[tokio::test]
async fn probes_answer_without_auth() {
    let f = fixture();
    let (status, _, body) = get(&f, "/healthz", &[]).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, r#"{"status":"alive"}"#)
    );
    assert_eq!(get(&f, "/readyz", &[]).await.0, StatusCode::OK);
    f.capture.set_ready(false);
    assert_eq!(
        get(&f, "/readyz", &[]).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(get(&f, "/nope", &[]).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_known_request_id_returns_its_records_and_an_unknown_one_is_404() {
    let f = fixture();
    f.state.recent.insert(&agent_core::Transaction {
        request_id: Some("req-1".into()),
        status: Some(502),
        service: "port-8080".into(),
        ..Default::default()
    });
    assert_eq!(
        get(&f, "/api/v1/requests/req-1", &[]).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = get_json(&f, "/api/v1/requests/req-1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["request_id"], "req-1");
    assert_eq!(body["transactions"][0]["http.response.status_code"], 502);
    assert_eq!(body["transactions"][0]["request.id"], "req-1");
    let (status, body) = get_json(&f, "/api/v1/requests/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "no recent request with id \"nope\"");
}

#[tokio::test]
async fn alerts_are_listed_behind_the_token() {
    let f = fixture();
    assert_eq!(
        get(&f, "/api/v1/alerts", &[]).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = get_json(&f, "/api/v1/alerts").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::json!({"firing": 0, "alerts": []}));
}

#[test]
fn generated_token_is_private_and_reused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let first = ApiToken::resolve(None, &data_dir).expect("generated");
    let path = data_dir.join(auth::TOKEN_FILE);
    let text = std::fs::read_to_string(&path).expect("token file");
    let token = text.trim();
    assert_eq!(token.len(), 64);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(first.matches(token.as_bytes()));
    let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let again = ApiToken::resolve(None, &data_dir).expect("reused");
    assert!(again.matches(token.as_bytes()));
    assert!(
        !format!("{again:?}").contains(token),
        "Debug never shows the token"
    );
}

#[test]
fn configured_token_wins_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = ApiToken::resolve(Some("configured-token"), dir.path()).expect("configured");
    assert!(token.matches(b"configured-token"));
    assert!(!dir.path().join(auth::TOKEN_FILE).exists());
}

/// `curl` against the real listener: status, content type and auth over TCP.
fn curl(url: &str, args: &[&str]) -> (String, String) {
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-m",
            "10",
            "-o",
            "-",
            "-w",
            "\n%{http_code} %{content_type}",
        ])
        .args(args)
        .arg(url)
        .output()
        .expect("curl is installed");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let (body, meta) = text.rsplit_once('\n').expect("status line");
    (body.to_string(), meta.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_over_tcp_and_shuts_down() {
    let f = fixture();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, router(f.state.clone()), async move {
        let _ = stopped.await;
    }));
    let results = tokio::task::spawn_blocking(move || {
        let bearer = format!("Authorization: Bearer {TOKEN}");
        [
            curl(
                &format!("{base}/metrics"),
                &["-H", "Accept: application/openmetrics-text; version=1.0.0"],
            ),
            curl(&format!("{base}/api/v1/endpoints?top=1"), &[]),
            curl(
                &format!("{base}/api/v1/endpoints?top=1"),
                &["-H", "Authorization: Bearer wrong"],
            ),
            curl(&format!("{base}/api/v1/endpoints?top=1"), &["-H", &bearer]),
            curl(&format!("{base}/healthz"), &[]),
        ]
    })
    .await
    .expect("curl task");
    assert!(
        results[0]
            .1
            .starts_with("200 application/openmetrics-text; version=1.0.0"),
        "{:?}",
        results[0].1
    );
    assert!(
        results[0].0.ends_with("# EOF\n"),
        "OpenMetrics ends with # EOF: {:?}",
        results[0].0
    );
    assert_eq!(results[1].1, "401 application/json");
    assert_eq!(results[2].1, "403 application/json");
    assert_eq!(results[3].1, "200 application/json");
    assert!(
        results[3].0.contains("\"endpoint\":\"/api/orders\""),
        "{}",
        results[3].0
    );
    assert_eq!(results[4].1, "200 application/json");
    stop.send(()).expect("server running");
    server
        .await
        .expect("server task")
        .expect("graceful shutdown");
}

#[tokio::test]
async fn the_page_is_served_without_auth_under_a_strict_policy() {
    let f = fixture();
    for (path, kind) in [
        ("/", "text/html"),
        ("/assets/app.js", "text/javascript"),
        ("/assets/app.css", "text/css"),
    ] {
        let (status, headers, body) = get(&f, path, &[]).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .expect("ascii")
                .starts_with(kind)
        );
        assert_eq!(headers[header::CONTENT_SECURITY_POLICY], crate::page::CSP);
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(!body.is_empty());
    }
    let (_, _, html) = get(&f, "/", &[]).await;
    assert!(html.contains("<script src=\"/assets/app.js\" defer></script>"));
}

#[tokio::test]
async fn live_view_endpoints_need_the_token_and_answer_json() {
    let f = fixture();
    for path in ["/api/v1/services", "/api/v1/series", "/api/v1/capture"] {
        let (status, _, _) = get(&f, path, &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let (status, body) = get_json(&f, "/api/v1/services").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["services"][0]["service"], "port-8080");
    assert_eq!(body["services"][0]["requests"], 105);

    let (status, body) = get_json(&f, "/api/v1/series?service=port-8080").await;
    assert_eq!(status, StatusCode::OK);
    let requests = body["services"][0]["requests"].as_array().expect("points");
    assert_eq!(requests.len(), agent_core::series::WINDOW_S);
    assert_eq!(requests.iter().filter_map(Value::as_u64).sum::<u64>(), 2);
    let (status, _) = get_json(&f, "/api/v1/series?service=nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = get_json(&f, "/api/v1/series?since=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, body) = get_json(&f, "/api/v1/capture").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["interfaces"], serde_json::json!(["lo"]));
    assert_eq!(body["events_lost"], 3);
}

#[rstest::rstest]
#[case::count("count", &["/api/orders", "/api/users/{id}", "/"])]
#[case::error_rate("error_rate", &["/", "/api/users/{id}", "/api/orders"])]
#[case::p95("p95", &["/api/orders", "/api/users/{id}", "/"])]
#[tokio::test]
async fn endpoints_sort_by_the_chosen_key(#[case] sort: &str, #[case] want: &[&str]) {
    let f = fixture();
    let (status, body) = get_json(&f, &format!("/api/v1/endpoints?top=3&sort={sort}")).await;
    assert_eq!(status, StatusCode::OK);
    let got: Vec<&str> = body["endpoints"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| r["endpoint"].as_str())
        .collect();
    assert_eq!(got, want);
    let (status, _) = get_json(&f, "/api/v1/endpoints?sort=name").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn metrics_and_api_are_gzipped_when_accepted() {
    use std::io::Read;
    let f = fixture();
    let bearer = format!("Bearer {TOKEN}");
    for (path, auth) in [
        ("/metrics", None),
        ("/api/v1/series", Some(bearer.as_str())),
    ] {
        let mut headers = vec![("accept-encoding", "gzip")];
        if let Some(a) = auth {
            headers.push(("authorization", a));
        }
        let mut request = Request::builder().uri(path);
        for (k, v) in &headers {
            request = request.header(*k, *v);
        }
        let response = router(f.state.clone())
            .oneshot(request.body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        assert_eq!(
            response.headers()[header::CONTENT_ENCODING],
            "gzip",
            "{path}"
        );
        let zipped = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let mut plain = String::new();
        flate2::read::GzDecoder::new(&zipped[..])
            .read_to_string(&mut plain)
            .expect("gzip");
        assert!(zipped.len() < plain.len(), "{path}");
        if path == "/metrics" {
            // Process figures change between two scrapes; the capture counters do not.
            assert!(plain.contains("apitap_events_lost_total 3"), "{plain}");
        } else {
            let (_, _, unzipped) = get(&f, path, &headers[1..]).await;
            assert_eq!(plain, unzipped);
        }
    }
    // Without Accept-Encoding the body is plain.
    let (_, headers, _) = get(&f, "/metrics", &[]).await;
    assert!(headers.get(header::CONTENT_ENCODING).is_none());
}
