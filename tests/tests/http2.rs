//! HTTP/2 and gRPC end to end, as root: the agent attached to a veth between two network
//! namespaces while real clients talk to real servers (nginx with an h2c listener driven by
//! nghttp and h2load; a grpcio server and client). Counts are checked exactly against nginx's
//! access log and the gRPC server's call log, with nothing lost.
//! Run: `cargo xtask integration-test h2_`.

use apitap_e2e::agent::Agent;
use apitap_e2e::grpc::{self, Call, GrpcServer};
use apitap_e2e::metrics::Metrics;
use apitap_e2e::netns::{self, Pair};
use apitap_e2e::nginx::{API_LOCATIONS, Nginx};
use apitap_e2e::{TempDir, require_root, require_tool};
use std::collections::BTreeMap;
use std::time::Duration;

const H2_PORT: u16 = 8080;
const GRPC_PORT: u16 = 50051;

fn tools() {
    require_root();
    require_tool("nghttp", "nghttp2-client");
    require_tool("h2load", "nghttp2-client");
    require_tool("nginx", "nginx");
}

fn counted<T: Ord>(items: impl IntoIterator<Item = T>) -> BTreeMap<T, u64> {
    let mut m = BTreeMap::new();
    for i in items {
        *m.entry(i).or_insert(0) += 1;
    }
    m
}

/// Nothing lost between the kernel and the engine.
fn assert_nothing_lost(m: &Metrics) {
    assert_eq!(m.count("apitap_events_lost_total"), 0);
    assert_eq!(m.count("apitap_events_dropped_total{stage=\"capture\"}"), 0);
    assert_eq!(m.count("apitap_reassembly_gaps_total"), 0);
    assert_eq!(m.count("apitap_h2_header_blocks_lost_total"), 0);
    assert_eq!(m.count("apitap_h2_unknown_fields_total"), 0);
    assert_eq!(m.count("apitap_orphan_responses_total"), 0);
    for reason in [
        "h2_frame_size",
        "h2_frame_shape",
        "h2_padding",
        "h2_hpack",
        "h2_protocol",
    ] {
        assert_eq!(
            m.count(&format!("apitap_parse_errors_total{{reason=\"{reason}\"}}")),
            0,
            "{reason}"
        );
    }
}

/// The request log's records: (client port, method, path?query, status).
fn logged(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("request log lines are JSON"))
        .collect()
}

#[test]
fn h2_streams_from_nghttp_and_h2load_equal_nginx_access_log() {
    tools();
    let pair = Pair::new().expect("namespaces and veth");
    let listen = format!("{}:{H2_PORT} http2", netns::SRV_V4);
    let nginx = Nginx::start_with(Some(&pair.srv), &[listen], API_LOCATIONS).expect("nginx h2c");
    let dir = TempDir::new("h2-log").expect("temp dir");
    let log = dir.path().join("requests.jsonl");
    let log_arg = log.display().to_string();
    let port = H2_PORT.to_string();
    let agent = Agent::start(
        Some(&pair.srv),
        &["-i", &pair.srv_if, "-p", &port, "--log", &log_arg],
        "127.0.0.1:9464",
    )
    .expect("apitap run");

    let base = format!("http://{}:{H2_PORT}", netns::SRV_V4);
    // 40 streams at once on one connection, every status of the API.
    let mut urls = Vec::new();
    for i in 1..=25 {
        urls.push(format!("'{base}/api/users/{i}?token=t{i}'"));
    }
    for p in [
        "/api/orders",
        "/api/cached",
        "/api/secure",
        "/api/admin",
        "/api/limited",
        "/api/fail",
        "/api/down",
        "/api/items/7",
        "/api/health",
        "/big",
    ] {
        urls.push(format!("'{base}{p}'"));
        if urls.len() == 40 {
            break;
        }
    }
    // nghttp requests each distinct URI once: the padding differs by its query.
    while urls.len() < 40 {
        urls.push(format!("'{base}/api/health?n={}'", urls.len()));
    }
    pair.cli
        .sh(&format!("nghttp -n {} >/dev/null", urls.join(" ")))
        .expect("nghttp");
    // 3000 streams on 4 connections, 10 in flight on each, over three paths.
    let report = pair
        .cli
        .sh(&format!(
            "h2load -n 3000 -c 4 -m 10 '{base}/api/users/1' '{base}/api/limited' '{base}/api/health'"
        ))
        .expect("h2load");
    assert!(
        report.contains("requests: 3000 total, 3000 started, 3000 done"),
        "{report}"
    );

    let access = nginx.access().expect("access log");
    assert_eq!(access.len(), 40 + 3000);
    let m = agent
        .scrape_until(Duration::from_secs(15), |m| {
            m.sum("api_requests_total", &[]) == access.len() as u64
        })
        .expect("scrape");
    let h2: Vec<String> =
        m.0.iter()
            .filter(|(k, v)| {
                (k.starts_with("apitap_h2")
                    || k.contains("gap")
                    || k.contains("orphan")
                    || k.contains("parse_errors")
                    || k.contains("uncopied"))
                    && **v > 0.0
            })
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
    assert_eq!(
        m.sum("api_requests_total", &[]),
        3040,
        "self-metrics: {h2:#?}\nagent log:\n{}",
        agent.stderr()
    );
    assert_eq!(m.count("apitap_h2_streams_total"), 3040);
    assert_eq!(m.count("apitap_h2_connections_total"), 5);
    let by_status = counted(access.iter().map(|a| a.status.to_string()));
    for (status, n) in &by_status {
        assert_eq!(
            m.sum("api_requests_total", &[("status", status)]),
            *n,
            "status {status}"
        );
    }
    assert_eq!(m.sum("api_rate_limit_hits_total", &[]), by_status["429"]);
    assert_eq!(
        m.sum("api_errors_total", &[("error_type", "server_error")]),
        by_status["500"] + by_status["503"]
    );
    assert_nothing_lost(&m);

    // The request log: one line per stream, the same (port, method, URI, status) as nginx's.
    drop(agent);
    let ours = counted(logged(&log).iter().map(|r| {
        assert_eq!(r["network.protocol.version"], "2");
        let uri = match r["url.query"].as_str() {
            Some(q) => format!("{}?{q}", r["url.path"].as_str().unwrap_or("")),
            None => r["url.path"].as_str().unwrap_or("").to_string(),
        };
        (
            r["client.port"].as_u64().unwrap_or(0) as u16,
            r["http.request.method"].as_str().unwrap_or("").to_string(),
            uri,
            r["http.response.status_code"].as_u64().unwrap_or(0) as u16,
        )
    }));
    let theirs = counted(access.iter().map(|a| {
        let uri = match a.uri.split_once('?') {
            Some((p, q)) if q.starts_with("token=") => format!("{p}?token=REDACTED"),
            _ => a.uri.clone(),
        };
        (a.remote_port, a.method.clone(), uri, a.status)
    }));
    assert_eq!(ours, theirs);
}

#[test]
fn h2_grpc_calls_equal_the_server_log_with_codes_rate_limits_and_auth_failures() {
    require_root();
    let pair = Pair::new().expect("namespaces and veth");
    let listen = format!("{}:{GRPC_PORT}", netns::SRV_V4);
    let server = GrpcServer::start(&pair.srv, &listen).expect("gRPC server");
    let port = GRPC_PORT.to_string();
    let agent = Agent::start(
        Some(&pair.srv),
        &["-i", &pair.srv_if, "-p", &port],
        "127.0.0.1:9464",
    )
    .expect("apitap run");
    // 20 rounds of the 11-call plan on one channel (one HTTP/2 connection).
    let results = grpc::run_client(&pair.cli, &listen, 20, 0).expect("gRPC client");
    assert_eq!(results.len(), 220);
    let calls = server.calls();
    assert_eq!(calls.len(), 220);
    let m = agent
        .scrape_until(Duration::from_secs(15), |m| {
            m.sum("api_requests_total", &[]) == 220
        })
        .expect("scrape");
    assert_eq!(
        m.sum("api_requests_total", &[]),
        220,
        "agent log:\n{}",
        agent.stderr()
    );
    assert_eq!(m.count("apitap_grpc_calls_total"), 220);
    let codes = counted(calls.iter().map(|c: &Call| c.code.clone()));
    // Every non-OK code is its own error_type, counted exactly.
    for (code, n) in &codes {
        let got = m.sum("api_errors_total", &[("error_type", code)]);
        let want = if code == "OK" { 0 } else { *n };
        assert_eq!(got, want, "{code}");
    }
    assert_eq!(
        m.sum("api_rate_limit_hits_total", &[]),
        codes["RESOURCE_EXHAUSTED"]
    );
    assert_eq!(
        m.sum("api_auth_failures_total", &[("status", "UNAUTHENTICATED")]),
        codes["UNAUTHENTICATED"]
    );
    assert_eq!(
        m.sum(
            "api_auth_failures_total",
            &[("status", "PERMISSION_DENIED")]
        ),
        codes["PERMISSION_DENIED"]
    );
    for method in ["GetItem", "ListItems", "Upload", "Chat"] {
        let path = format!("/shop.Catalog/{method}");
        let want = calls.iter().filter(|c| c.path == path).count() as u64;
        assert_eq!(
            m.sum("api_requests_total", &[("endpoint", &path)]),
            want,
            "{path}"
        );
    }
    assert_nothing_lost(&m);
}

#[test]
fn h2_grpc_connection_joined_mid_stream_reports_no_wrong_method() {
    require_root();
    let pair = Pair::new().expect("namespaces and veth");
    let listen = format!("{}:{GRPC_PORT}", netns::SRV_V4);
    let server = GrpcServer::start(&pair.srv, &listen).expect("gRPC server");
    let dir = TempDir::new("h2-join").expect("temp dir");
    let log = dir.path().join("requests.jsonl");
    let log_arg = log.display().to_string();
    // The client's connection is open and has made calls (filling the HPACK tables) before
    // the agent starts: 30 rounds with a pause, the agent attached after ~1 s.
    let cli = std::thread::scope(|s| {
        let client = s.spawn(|| grpc::run_client(&pair.cli, &listen, 30, 15).expect("gRPC client"));
        std::thread::sleep(Duration::from_millis(1500));
        let port = GRPC_PORT.to_string();
        let agent = Agent::start(
            Some(&pair.srv),
            &["-i", &pair.srv_if, "-p", &port, "--log", &log_arg],
            "127.0.0.1:9464",
        )
        .expect("apitap run");
        let results = client.join().expect("client thread");
        let m = agent
            .scrape_until(Duration::from_secs(5), |_| false)
            .expect("scrape");
        (results, m)
    });
    let (results, m) = cli;
    assert_eq!(results.len(), 330);
    assert_eq!(m.count("apitap_h2_joined_connections_total"), 1);
    let calls = server.calls();
    let records = logged(&log);
    assert!(
        records.len() > 50,
        "the agent saw the later calls: {}",
        records.len()
    );
    // Every method reported is the one the server logged for a call on that connection with
    // that code; unknown ones are counted, never guessed.
    let server_side = counted(
        calls
            .iter()
            .map(|c| (c.port, c.path.clone(), c.code.clone())),
    );
    let mut seen: BTreeMap<(u16, String, String), u64> = BTreeMap::new();
    let mut unknown = 0;
    for r in &records {
        let code = r["rpc.grpc.status_code"].as_u64().map(|c| c as u8);
        let Some(path) = r["url.path"].as_str() else {
            unknown += 1;
            continue;
        };
        let name = code.map_or("?", agent_core_code_name);
        let key = (
            r["client.port"].as_u64().unwrap_or(0) as u16,
            path.to_string(),
            name.to_string(),
        );
        *seen.entry(key.clone()).or_insert(0) += 1;
        assert!(
            seen[&key] <= server_side.get(&key).copied().unwrap_or(0),
            "{key:?} not in the server's log"
        );
    }
    assert!(m.count("apitap_h2_unknown_fields_total") >= unknown);
    assert_eq!(m.count("apitap_events_lost_total"), 0);
}

/// gRPC code names, as agent-core names them (the e2e crate does not link agent-core).
fn agent_core_code_name(code: u8) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    NAMES.get(usize::from(code)).copied().unwrap_or("UNKNOWN")
}
