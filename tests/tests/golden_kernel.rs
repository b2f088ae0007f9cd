//! The golden captures through the real classifier (root, BPF_PROG_TEST_RUN): every packet of
//! tests/fixtures runs through `tc_ingress` (segments larger than a test frame are split, see
//! `resegment`), the ring records are decoded as live capture decodes them, stamped with the
//! packet's capture time, and fed to the engine. What the kernel leaves out (length-only
//! records inside a burst) must not change a single transaction of the golden JSONL, with one
//! documented exception: a chunked body whose chunk framing fell in length-only records has no
//! body size (everything else exact), and the agent then has the server's port copied in full,
//! after which the same capture gives exactly the golden transactions.

use agent_common::programs;
use agent_core::engine::{Engine, EngineConfig};
use agent_core::pcap::{CaptureReader, link};
use apitap::capture::{needs_full_copy, record};
use apitap_e2e::bpf::Classifier;
use apitap_e2e::{frames, repo_root, require_root, resegment};
use std::fs::{self, File};
use std::path::{Path, PathBuf};

fn fixtures() -> Vec<PathBuf> {
    let dir = repo_root().join("tests/fixtures");
    let mut all: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("tests/fixtures exists")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("pcap" | "pcapng")
            )
        })
        .collect();
    all.sort();
    all
}

fn golden(path: &Path) -> String {
    fs::read_to_string(path.with_extension("expected.jsonl")).expect("every fixture has a golden")
}

/// The server port of a fixture, from its golden transactions.
fn server_port(golden: &str) -> u16 {
    let first: serde_json::Value =
        serde_json::from_str(golden.lines().next().expect("a transaction")).expect("json");
    first["server.port"].as_u64().expect("server.port") as u16
}

/// One replay of a capture through the classifier.
struct Replay {
    jsonl: String,
    records: usize,
    length_only: usize,
    /// The agent would have the port copied in full after these transactions.
    asks_full_copy: bool,
}

fn through_the_classifier(path: &Path, port: u16, copy_in_full: bool) -> Replay {
    let mut c = Classifier::load(agent_common::DEFAULT_SNAP_LEN, &[port]).expect("load");
    if copy_in_full {
        c.copy_in_full(port).expect("port map");
    }
    let mut reader = CaptureReader::new(File::open(path).expect("fixture")).expect("header");
    let mut engine = Engine::new(EngineConfig::default());
    let mut out = Vec::new();
    let (mut records, mut length_only) = (0, 0);
    while let Some(pkt) = reader.next_packet().expect("a readable capture") {
        engine.advance(pkt.ts_ns, &mut out);
        let ip = match link::network(pkt.linktype, pkt.data) {
            link::Network::Ipv4(ip) | link::Network::Ipv6(ip) => ip,
            _ => continue,
        };
        let wire = ip.len() + (pkt.orig_len as usize - pkt.data.len());
        for part in resegment::split(ip, wire) {
            c.run(programs::TC_INGRESS, &frames::ethernet(&part))
                .expect("test run");
            for rec in c.records() {
                let mut seg = record::decode(&rec, 0).expect("a well-formed record");
                seg.ts_ns = pkt.ts_ns;
                records += 1;
                if seg.payload.is_empty() && seg.payload_len > 0 {
                    length_only += 1;
                }
                engine.ingest(&seg, &mut out);
            }
        }
    }
    engine.finish(&mut out);
    Replay {
        jsonl: out
            .iter()
            .map(|t| format!("{}\n", serde_json::to_string(t).expect("serializes")))
            .collect(),
        records,
        length_only,
        asks_full_copy: out.iter().any(|t| needs_full_copy(t)),
    }
}

/// `got` equals `want` except for body sizes that are null in `got`.
fn only_body_sizes_unknown(want: &str, got: &str) -> bool {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    w.len() == g.len()
        && w.iter().zip(&g).all(|(w, g)| {
            let mut w: serde_json::Value = serde_json::from_str(w).expect("json");
            let g: serde_json::Value = serde_json::from_str(g).expect("json");
            for key in ["http.request.body.size", "http.response.body.size"] {
                if g[key].is_null() {
                    w[key] = serde_json::Value::Null;
                }
            }
            w == g
        })
}

#[test]
fn golden_captures_through_the_classifier_give_the_golden_transactions() {
    require_root();
    let mut failures = Vec::new();
    let (mut length_only, mut full_copies) = (0, Vec::new());
    for path in fixtures() {
        let want = golden(&path);
        let port = server_port(&want);
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
        let first = through_the_classifier(&path, port, false);
        length_only += first.length_only;
        eprintln!(
            "{name}: {} records, {} length-only",
            first.records, first.length_only
        );
        if first.jsonl == want {
            continue;
        }
        // HTTP/1.x framed from heads loses nothing but the size of chunked bodies; HTTP/2
        // frame headers may lie anywhere, so its first pass may lose more (counted).
        let http1 = !first.jsonl.contains("\"network.protocol.version\":\"2\"");
        if !first.asks_full_copy || (http1 && !only_body_sizes_unknown(&want, &first.jsonl)) {
            failures.push(format!("{name}:\n--- want\n{want}--- got\n{}", first.jsonl));
            continue;
        }
        full_copies.push(name.to_string());
        let again = through_the_classifier(&path, port, true);
        if again.jsonl != want {
            failures.push(format!(
                "{name} (port copied in full):\n--- want\n{want}--- got\n{}",
                again.jsonl
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(length_only > 0, "no fixture exercised length-only records");
    assert!(
        full_copies.iter().any(|n| n == "gzip-chunked"),
        "chunk framing beyond the first segment needs a full copy: {full_copies:?}"
    );
}
