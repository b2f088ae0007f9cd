//! Golden replay of the captures in tests/fixtures (made from a real nginx by make-fixtures.sh):
//! every fixture is decoded and run through the engine in process, compared line by line with
//! `NAME.expected.jsonl` (`UPDATE_GOLDEN=1` rewrites them), and each transaction is matched
//! one-to-one with nginx's own access-log line for it.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use agent_core::Transaction;
use agent_core::engine::{Engine, EngineConfig};
use agent_core::pcap::{self, CaptureReader, Decoder};

mod support;

use support::nginx::{LogLine, as_log_line, as_nginx_counts, nginx_log};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

fn captures() -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = fs::read_dir(fixtures_dir())
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
    assert!(
        all.len() >= 12,
        "expected the 12 fixtures of make-fixtures.sh, found {}",
        all.len()
    );
    all
}

fn replay(path: &Path) -> Vec<Transaction> {
    let (out, err) = replay_with(File::open(path).expect("fixture opens"), &[]);
    assert!(err.is_none(), "{}: {err:?}", path.display());
    out
}

fn replay_with(
    input: impl std::io::Read,
    ports: &[u16],
) -> (Vec<Transaction>, Option<pcap::PcapError>) {
    let mut reader = CaptureReader::new(input).expect("fixture has a capture header");
    let mut decoder = Decoder::new(ports);
    let mut engine = Engine::new(EngineConfig::default());
    let mut out = Vec::new();
    let err = pcap::replay(&mut reader, &mut decoder, &mut engine, |t| {
        out.push(t.clone());
        Ok::<(), ()>(())
    })
    .expect("collecting cannot fail");
    (out, err)
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .expect("fixture name")
        .to_string()
}

#[test]
fn replay_matches_the_golden_transactions() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for path in captures() {
        let lines: Vec<String> = replay(&path)
            .iter()
            .map(|t| serde_json::to_string(t).expect("transactions serialize"))
            .collect();
        let got = lines.iter().map(|l| format!("{l}\n")).collect::<String>();
        let golden = fixtures_dir().join(format!("{}.expected.jsonl", stem(&path)));
        if update {
            fs::write(&golden, &got).expect("write golden file");
            continue;
        }
        let want = fs::read_to_string(&golden).unwrap_or_default();
        if got != want {
            failures.push(format!("{}:\n--- want\n{want}--- got\n{got}", stem(&path)));
        }
    }
    assert!(
        failures.is_empty(),
        "golden mismatch (UPDATE_GOLDEN=1 rewrites):\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_transaction_matches_its_nginx_access_log_line() {
    let mut failures = Vec::new();
    for path in captures() {
        let name = stem(&path);
        let mut ours: Vec<LogLine> = replay(&path)
            .iter()
            .map(|t| {
                let mut line = as_log_line(t);
                as_nginx_counts(&name, t, &mut line);
                line
            })
            .collect();
        let mut theirs = nginx_log(&name);
        let key = |l: &LogLine| (l.port, l.method.clone(), l.uri.clone(), l.status);
        ours.sort_by_key(key);
        theirs.sort_by_key(key);
        if ours != theirs {
            failures.push(format!("{name}:\n  ours  {ours:?}\n  nginx {theirs:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "transactions differ from nginx's access log:\n{}",
        failures.join("\n")
    );
}

#[test]
fn explicit_ports_give_the_same_transactions_as_inference() {
    for path in captures() {
        let inferred = replay(&path);
        let port = inferred[0].server.expect("server address").port();
        let (explicit, err) = replay_with(File::open(&path).expect("fixture opens"), &[port]);
        assert!(err.is_none());
        assert_eq!(explicit, inferred, "{}", stem(&path));
    }
}

#[test]
fn a_truncated_capture_yields_what_it_could_then_an_error() {
    let bytes = fs::read(fixtures_dir().join("ab.pcap")).expect("ab fixture");
    let cut = &bytes[..bytes.len() * 2 / 3];
    let (out, err) = replay_with(cut, &[]);
    assert!(
        matches!(err, Some(pcap::PcapError::Truncated { .. })),
        "{err:?}"
    );
    let complete = out.iter().filter(|t| t.error.is_none()).count();
    assert!(
        (10..20).contains(&complete),
        "{complete} complete transactions before the cut"
    );
}
