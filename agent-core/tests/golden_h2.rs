//! Golden replay of the HTTP/2 and gRPC captures in tests/fixtures/h2 (made from real nginx,
//! nghttp, curl, h2load and a real grpcio server and client by make-h2-fixtures.sh). Each
//! fixture is compared with `NAME.expected.jsonl` (`UPDATE_GOLDEN=1` rewrites them), matched one
//! to one with the server's own log (nginx's access log, the gRPC server's call log) and the
//! client's recorded results, and its stream counts are checked against tshark's HTTP/2
//! dissector. tshark is required (CI installs it).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

use agent_core::Transaction;
use agent_core::engine::{Engine, EngineConfig, EngineStats};
use agent_core::pcap::{self, CaptureReader, Decoder};

const NGINX_PORT: u16 = 18961;
const GRPC_PORT: u16 = 18962;
const FIXTURES: [&str; 5] = [
    "curl-prior-knowledge",
    "grpc",
    "h2load",
    "h2load-joined",
    "nghttp-40-streams",
];

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/h2")
}

fn pcap_path(name: &str) -> PathBuf {
    dir().join(format!("{name}.pcap"))
}

fn replay(name: &str) -> (Vec<Transaction>, EngineStats) {
    let file = File::open(pcap_path(name)).expect("fixture opens");
    let mut reader = CaptureReader::new(file).expect("capture header");
    let mut decoder = Decoder::new(&[]);
    let mut engine = Engine::new(EngineConfig::default());
    let mut out = Vec::new();
    let err = pcap::replay(&mut reader, &mut decoder, &mut engine, |t| {
        out.push(t.clone());
        Ok::<(), ()>(())
    })
    .expect("collecting cannot fail");
    assert!(err.is_none(), "{name}: {err:?}");
    (out, engine.stats().clone())
}

fn lines(name: &str, ext: &str) -> Vec<String> {
    let path = dir().join(format!("{name}.{ext}"));
    fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::to_string)
        .collect()
}

/// A multiset, for one-to-one comparisons.
fn counted<T: Ord>(items: impl IntoIterator<Item = T>) -> BTreeMap<T, usize> {
    let mut m = BTreeMap::new();
    for i in items {
        *m.entry(i).or_insert(0) += 1;
    }
    m
}

#[test]
fn replay_matches_the_golden_transactions() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for name in FIXTURES {
        let got: String = replay(name)
            .0
            .iter()
            .map(|t| serde_json::to_string(t).expect("serializes") + "\n")
            .collect();
        let golden = dir().join(format!("{name}.expected.jsonl"));
        if update {
            fs::write(&golden, &got).expect("write golden");
            continue;
        }
        let want = fs::read_to_string(&golden).unwrap_or_default();
        if got != want {
            failures.push(format!("{name}:\n--- want\n{want}--- got\n{got}"));
        }
    }
    assert!(
        failures.is_empty(),
        "golden mismatch (UPDATE_GOLDEN=1 rewrites):\n{}",
        failures.join("\n")
    );
}

/// (client port, method, URI with default keys redacted, status, response body bytes,
/// request body bytes) as nginx logs it: `$remote_port $request_method $request_uri $status
/// $body_bytes_sent $content_length $server_protocol`.
type Exchange = (u16, String, String, u16, u64, u64);

fn nginx_exchanges(name: &str) -> Vec<Exchange> {
    lines(name, "nginx.log")
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            assert_eq!(f.len(), 7, "{name}: {l}");
            assert_eq!(f[6], "HTTP/2.0", "{name}: every request is HTTP/2: {l}");
            (
                f[0].parse().expect("port"),
                f[1].to_string(),
                redact(f[2]),
                f[3].parse().expect("status"),
                f[4].parse().expect("body bytes"),
                f[5].parse().unwrap_or(0), // "-" without a body
            )
        })
        .collect()
}

fn redact(uri: &str) -> String {
    let Some((path, query)) = uri.split_once('?') else {
        return uri.to_string();
    };
    let keys = agent_core::identity::DEFAULT_REDACT_KEYS;
    let pairs: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if keys.contains(&k.to_ascii_lowercase().as_str()) => {
                format!("{k}=REDACTED")
            }
            _ => kv.to_string(),
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

fn exchange(t: &Transaction) -> Exchange {
    let uri = match (&t.path, &t.query) {
        (Some(p), Some(q)) => format!("{p}?{q}"),
        (Some(p), None) => p.to_string(),
        (None, _) => String::new(),
    };
    (
        t.client.map_or(0, |c| c.port()),
        t.method.as_deref().unwrap_or_default().to_string(),
        uri,
        t.status.unwrap_or(0),
        t.response_body_size.unwrap_or(u64::MAX),
        t.request_body_size.unwrap_or(u64::MAX),
    )
}

#[test]
fn nginx_fixtures_match_the_access_log_one_to_one() {
    for name in ["curl-prior-knowledge", "nghttp-40-streams", "h2load"] {
        let (txs, stats) = replay(name);
        assert!(
            txs.iter()
                .all(|t| t.version == Some("2") && t.error.is_none()),
            "{name}"
        );
        assert_eq!(
            counted(txs.iter().map(exchange)),
            counted(nginx_exchanges(name)),
            "{name}: ours vs nginx's access log"
        );
        assert_eq!(stats.h2.unknown_fields, 0, "{name}");
        assert_eq!(stats.h2.orphan_streams + stats.h2.resyncs, 0, "{name}");
    }
}

#[test]
fn many_streams_share_one_connection() {
    let (txs, stats) = replay("nghttp-40-streams");
    let first = txs
        .iter()
        .filter_map(|t| t.client)
        .min_by_key(|c| c.port())
        .expect("records");
    assert_eq!(txs.iter().filter(|t| t.client == Some(first)).count(), 40);
    assert_eq!(stats.h2.connections, 2);
    let (txs, stats) = replay("h2load");
    assert_eq!((txs.len(), stats.h2.connections), (200, 2));
    // h2load's own report: 200 done (the 404s of /missing are its "failed").
    let report = lines("h2load", "client.log").join("\n");
    assert!(
        report.contains("requests: 200 total, 200 started, 200 done"),
        "{report}"
    );
    let not_2xx = txs
        .iter()
        .filter(|t| t.status.is_some_and(|s| s >= 300))
        .count();
    assert!(
        report.contains(&format!("{} succeeded, {not_2xx} failed", 200 - not_2xx)),
        "{report}"
    );
}

#[test]
fn grpc_calls_match_the_server_log_and_the_client_results() {
    let (txs, stats) = replay("grpc");
    assert_eq!(stats.h2.grpc_calls, 22);
    let code = |t: &Transaction| {
        let rpc = t.rpc.as_ref().expect("every stream is a gRPC call");
        agent_core::http2::grpc::code_name(rpc.status.expect("every call ended with a status"))
    };
    // The server's log: client port, method, code.
    let ours = counted(txs.iter().map(|t| {
        format!(
            "{} {} {}",
            t.client.map_or(0, |c| c.port()),
            t.path.as_deref().unwrap_or(""),
            code(t)
        )
    }));
    let server = counted(lines("grpc", "server.log").iter().map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        format!("{} {} {}", f[0], f[1], f[2])
    }));
    assert_eq!(ours, server, "ours vs the gRPC server's log");
    // The client's results, in call order (one connection, calls one after another).
    let ours: Vec<String> = txs
        .iter()
        .map(|t| format!("{} {}", t.path.as_deref().unwrap_or(""), code(t)))
        .collect();
    assert_eq!(
        ours,
        lines("grpc", "client.log"),
        "ours vs the client's results"
    );
    for t in &txs {
        let rpc = t.rpc.as_ref().expect("rpc");
        assert_eq!(rpc.service.as_deref(), Some("shop.Catalog"));
        assert_eq!(
            Some(format!(
                "/shop.Catalog/{}",
                rpc.method.as_deref().unwrap_or("")
            )),
            t.path.as_deref().map(String::from)
        );
        assert_eq!(t.route, None, "the engine leaves routes to the route stage");
    }
    // The client sends x-api-key on the first 5 calls of each round of 11, then a Bearer JWT.
    let key = agent_core::identity::api_key_id(b"test-key-1");
    for (i, t) in txs.iter().enumerate() {
        let want = if i % 11 < 5 {
            key.as_str()
        } else {
            "sub:alice"
        };
        assert_eq!(t.client_id.as_deref(), Some(want), "call {i}");
    }
    let codes: Vec<&str> = txs.iter().map(code).collect();
    for c in [
        "OK",
        "NOT_FOUND",
        "UNAVAILABLE",
        "RESOURCE_EXHAUSTED",
        "UNAUTHENTICATED",
        "PERMISSION_DENIED",
    ] {
        assert!(codes.contains(&c), "{c} missing");
    }
}

#[test]
fn a_capture_joined_late_reports_no_wrong_path_and_counts_unknowns() {
    let (txs, stats) = replay("h2load-joined");
    let (full, _) = replay("h2load");
    assert_eq!(stats.h2.joined_connections, 2);
    assert!(
        stats.h2.unknown_fields > 0,
        "the cut removed dynamic-table entries: {:?}",
        stats.h2
    );
    // Every stream whose request is in the capture is recorded; responses to requests before
    // the cut are orphans. tshark sees the same split.
    let (their_requests, their_responses) = tshark_streams("h2load-joined", NGINX_PORT);
    assert_eq!(txs.len(), their_requests);
    assert_eq!(
        txs.len() as u64 + stats.h2.orphan_streams,
        their_responses as u64
    );
    // A path, when reported, is the one h2load sent on that stream: its status and body size
    // are that path's in the full capture.
    let truth = counted(
        full.iter()
            .map(|t| (t.path.clone(), t.status, t.response_body_size)),
    );
    for t in &txs {
        let rec = (t.path.clone(), t.status, t.response_body_size);
        if t.path.is_some() {
            assert!(
                truth.contains_key(&rec),
                "{rec:?} is not in the full capture"
            );
        }
    }
}

/// Streams with a request HEADERS frame (client to server) and with a `:status` (server to
/// client), counted by tshark's HTTP/2 dissector.
fn tshark_streams(name: &str, port: u16) -> (usize, usize) {
    let fields = |filter: &str| -> Vec<String> {
        let out = Command::new("tshark")
            .args(["-n", "-r"])
            .arg(pcap_path(name))
            .args(["-d", &format!("tcp.port=={port},http2"), "-Y", filter])
            .args([
                "-T",
                "fields",
                "-e",
                "tcp.stream",
                "-e",
                "http2.streamid",
                "-e",
                "http2.type",
            ])
            .output()
            .unwrap_or_else(|e| {
                panic!("tshark is required for this test (apt-get install tshark): {e}")
            });
        assert!(
            out.status.success(),
            "tshark: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    };
    // One line per frame-carrying packet: stream ids and types are comma-joined per frame.
    let streams = |lines: Vec<String>, want_type: &str| -> usize {
        let mut set = std::collections::BTreeSet::new();
        for l in lines {
            let f: Vec<&str> = l.split('\t').collect();
            let (conn, ids, types) = (f[0], f[1].split(','), f[2].split(','));
            for (id, ty) in ids.zip(types) {
                if ty == want_type {
                    set.insert((conn.to_string(), id.to_string()));
                }
            }
        }
        set.len()
    };
    let requests = streams(
        fields(&format!("http2.type == 1 && tcp.dstport == {port}")),
        "1",
    );
    let responses = streams(
        fields(&format!(
            "http2.header.name == \":status\" && tcp.srcport == {port}"
        )),
        "1",
    );
    (requests, responses)
}

#[test]
fn stream_counts_agree_with_tshark() {
    for name in FIXTURES {
        let port = if name == "grpc" {
            GRPC_PORT
        } else {
            NGINX_PORT
        };
        let (txs, stats) = replay(name);
        let (requests, responses) = tshark_streams(name, port);
        assert_eq!(
            txs.len(),
            requests,
            "{name}: records vs tshark's request streams"
        );
        assert_eq!(
            txs.iter().filter(|t| t.status.is_some()).count() as u64 + stats.h2.orphan_streams,
            responses as u64,
            "{name}: answered streams vs tshark's"
        );
    }
}
