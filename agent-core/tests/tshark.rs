//! Cross-check against Wireshark: on every fixture, tshark's HTTP dissector and apitap's replay
//! must find the same requests (methods) and the same final responses (status codes). Interim
//! 1xx responses, which tshark lists as responses and apitap folds into their transaction, are
//! counted explicitly. tshark is required: CI installs it, and this test fails without it.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

use agent_core::engine::{Engine, EngineConfig};
use agent_core::pcap::{self, CaptureReader, Decoder};

fn captures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    let mut all: Vec<PathBuf> = fs::read_dir(dir)
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

/// tshark's values of `field` over every frame matching `filter` (a frame holding pipelined
/// messages lists one value per message).
fn tshark_values(path: &Path, ports: &[u16], filter: &str, field: &str) -> Vec<String> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-n").arg("-r").arg(path);
    for port in ports {
        cmd.arg("-d").arg(format!("tcp.port=={port},http"));
    }
    cmd.args(["-Y", filter, "-T", "fields", "-e", field]);
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) => panic!("tshark is required for this test (apt-get install tshark): {e}"),
    };
    assert!(
        out.status.success(),
        "tshark failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut values: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .flat_map(|l| l.split(',').map(str::to_string).collect::<Vec<_>>())
        .filter(|v| !v.is_empty())
        .collect();
    values.sort();
    values
}

#[test]
fn request_and_response_counts_agree_with_tshark() {
    agree_with_tshark(captures());
}

/// The re-encapsulated fixtures (tests/fixtures/wire/NAME.ENCAP.pcap): tshark opens the same
/// tunnels and reassembles the same fragments, and must find what apitap finds.
#[test]
fn encapsulated_fixtures_agree_with_tshark() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/wire");
    let encapsulated: Vec<PathBuf> = fs::read_dir(dir)
        .expect("tests/fixtures/wire exists")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            !name.contains(".reorder.") && !name.contains(".loss.")
        })
        .collect();
    assert!(encapsulated.len() >= 10, "{encapsulated:?}");
    agree_with_tshark(encapsulated);
}

fn agree_with_tshark(paths: Vec<PathBuf>) {
    let mut failures = Vec::new();
    for path in paths {
        let mut reader =
            CaptureReader::new(File::open(&path).expect("fixture opens")).expect("capture header");
        let (mut decoder, mut engine) = (Decoder::new(&[]), Engine::new(EngineConfig::default()));
        let mut txs = Vec::new();
        let err = pcap::replay(&mut reader, &mut decoder, &mut engine, |t| {
            txs.push(t.clone());
            Ok::<(), ()>(())
        })
        .expect("collecting cannot fail");
        assert!(err.is_none(), "{}: {err:?}", path.display());
        let mut ports: Vec<u16> = txs
            .iter()
            .filter_map(|t| t.server.map(|s| s.port()))
            .collect();
        ports.sort_unstable();
        ports.dedup();

        let mut methods: Vec<String> = txs
            .iter()
            .filter_map(|t| t.method.as_deref().map(String::from))
            .collect();
        methods.sort();
        let mut statuses: Vec<String> = txs
            .iter()
            .filter_map(|t| t.status.map(|s| s.to_string()))
            .collect();
        statuses.sort();
        let their_methods = tshark_values(&path, &ports, "http.request", "http.request.method");
        let (interim, their_statuses): (Vec<String>, Vec<String>) =
            tshark_values(&path, &ports, "http.response", "http.response.code")
                .into_iter()
                .partition(|code| code.starts_with('1'));
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let want_interim = if name.split('.').next() == Some("expect-100") {
            vec!["100".to_string()]
        } else {
            Vec::new()
        };

        if methods != their_methods || statuses != their_statuses || interim != want_interim {
            failures.push(format!(
                "{name}: requests ours {methods:?} tshark {their_methods:?}; responses ours {statuses:?} \
                 tshark {their_statuses:?}; interim {interim:?} (want {want_interim:?})"
            ));
        }
        assert!(!methods.is_empty(), "{name}: no requests found");
    }
    assert!(
        failures.is_empty(),
        "apitap and tshark disagree:\n{}",
        failures.join("\n")
    );
}
