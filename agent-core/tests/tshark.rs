//! Cross-check against Wireshark: on every fixture, tshark's HTTP dissector and apitap's replay
//! must find the same requests (methods) and the same final responses (status codes). Interim
//! 1xx responses, which tshark lists as responses and apitap folds into their transaction, are
//! counted explicitly. tshark is required: CI installs it, and this test fails without it.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

use agent_core::engine::{Engine, EngineConfig};
use agent_core::pcap::synth::Capture;
use agent_core::pcap::synth::mutate::{Mutation, mutate};
use agent_core::pcap::{self, CaptureReader, Decoder};

mod support;

use support::nginx::{as_log_line, as_nginx_counts, nginx_log};

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

/// Mirror-port damage against Wireshark: every real capture reordered (one direction's segments
/// up to 8 packets later, duplicates, late retransmits; one seed each) plus the kept
/// `wire/*.reorder.pcap` and `wire/*.loss.pcap`. apitap must find at least as many requests as
/// tshark's dissector, every record it reports without an error must be one of nginx's access
/// log lines, and on reordered captures (nothing lost) every log line must be found.
#[test]
fn on_mutated_captures_apitap_finds_at_least_what_tshark_finds() {
    let tmp = std::env::temp_dir().join(format!("apitap-tshark-{}", std::process::id()));
    fs::create_dir_all(&tmp).expect("temp dir");
    let mut files: Vec<(PathBuf, String, bool)> = Vec::new();
    for (i, path) in captures().iter().enumerate() {
        let name = stem_of(path);
        let c = Capture::read(File::open(path).expect("fixture")).expect("fixture reads");
        let file = tmp.join(format!("{name}.reorder.pcap"));
        fs::write(
            &file,
            mutate(&c, &Mutation::reorder(i as u64)).capture.to_pcap(),
        )
        .expect("write mutated capture");
        files.push((file, name, true));
    }
    let wire = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/wire");
    for e in fs::read_dir(wire).expect("tests/fixtures/wire") {
        let path = e.expect("entry").path();
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let lossless = file_name.contains(".reorder.");
        if lossless || file_name.contains(".loss.") {
            let name = file_name.split('.').next().unwrap_or_default().to_string();
            files.push((path, name, lossless));
        }
    }
    let mut failures = Vec::new();
    let (mut ours_total, mut theirs_total) = (0, 0);
    for (file, name, lossless) in &files {
        let mut reader = CaptureReader::new(File::open(file).expect("capture")).expect("header");
        let (mut decoder, mut engine) = (Decoder::new(&[]), Engine::new(EngineConfig::default()));
        let mut txs = Vec::new();
        pcap::replay(&mut reader, &mut decoder, &mut engine, |t| {
            txs.push(t.clone());
            Ok::<(), ()>(())
        })
        .expect("collecting cannot fail");
        let port = txs.iter().find_map(|t| t.server.map(|s| s.port()));
        let ports: Vec<u16> = port.into_iter().collect();
        let theirs = tshark_values(file, &ports, "http.request", "http.request.method").len();
        let ours = txs
            .iter()
            .filter(|t| t.method.is_some() || t.status.is_some())
            .count();
        (ours_total, theirs_total) = (ours_total + ours, theirs_total + theirs);
        let mut log = nginx_log(name);
        let mut unmatched = Vec::new();
        for t in txs.iter().filter(|t| t.error.is_none()) {
            let mut line = as_log_line(t);
            as_nginx_counts(name, t, &mut line);
            match log.iter().position(|l| *l == line) {
                Some(at) => {
                    log.remove(at);
                }
                None => unmatched.push(line),
            }
        }
        if ours < theirs || !unmatched.is_empty() || (*lossless && !log.is_empty()) {
            failures.push(format!(
                "{}: apitap {ours} requests, tshark {theirs}; not in nginx's log: {unmatched:?}; \
                 nginx lines not found: {}",
                file.display(),
                if *lossless { log.len() } else { 0 }
            ));
        }
    }
    let _ = fs::remove_dir_all(&tmp);
    eprintln!(
        "{} mutated captures: apitap {ours_total} requests, tshark {theirs_total}",
        files.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(ours_total >= theirs_total && theirs_total > 0);
}

fn stem_of(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_string()
}
