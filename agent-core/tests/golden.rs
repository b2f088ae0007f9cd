//! Golden replay of the captures in tests/fixtures (made from a real nginx by make-fixtures.sh):
//! every fixture is decoded and run through the engine in process, compared line by line with
//! `NAME.expected.jsonl` (`UPDATE_GOLDEN=1` rewrites them), and each transaction is matched
//! one-to-one with nginx's own access-log line for it.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use agent_core::Transaction;
use agent_core::engine::{Engine, EngineConfig};
use agent_core::pcap::{self, CaptureReader, Decoder};

/// Default redacted query keys (SPEC), applied to nginx's logged URI before comparing.
const REDACTED_KEYS: [&str; 7] = agent_core::identity::DEFAULT_REDACT_KEYS;

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

/// One nginx access-log line: `$remote_port $request_method $request_uri $status
/// $request_length $bytes_sent`.
#[derive(Debug, PartialEq, Eq)]
struct LogLine {
    port: u16,
    method: String,
    uri: String,
    status: u16,
    request_length: u64,
    bytes_sent: u64,
}

fn nginx_log(path: &Path) -> Vec<LogLine> {
    let log = fixtures_dir().join(format!("{}.nginx.log", stem(path)));
    let text = fs::read_to_string(&log).expect("every fixture has its nginx log");
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            assert_eq!(f.len(), 6, "{}: {l}", log.display());
            LogLine {
                port: f[0].parse().expect("port"),
                method: f[1].to_string(),
                uri: redact(f[2]),
                status: f[3].parse().expect("status"),
                request_length: f[4].parse().expect("request length"),
                bytes_sent: f[5].parse().expect("bytes sent"),
            }
        })
        .collect()
}

fn redact(uri: &str) -> String {
    let Some((path, query)) = uri.split_once('?') else {
        return uri.to_string();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if REDACTED_KEYS.contains(&k.to_ascii_lowercase().as_str()) => {
                format!("{k}=REDACTED")
            }
            _ => kv.to_string(),
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

fn as_log_line(t: &Transaction) -> LogLine {
    let uri = match (&t.path, &t.query) {
        (Some(p), Some(q)) => format!("{p}?{q}"),
        (Some(p), None) => p.to_string(),
        (None, _) => String::new(),
    };
    LogLine {
        port: t.client.map_or(0, |c| c.port()),
        method: t.method.as_deref().unwrap_or_default().to_string(),
        uri,
        status: t.status.unwrap_or(0),
        request_length: t.request_wire_bytes,
        bytes_sent: t.response_wire_bytes,
    }
}

/// Where nginx's byte counts legitimately differ from the bytes on the wire.
fn as_nginx_counts(fixture: &str, t: &Transaction, line: &mut LogLine) {
    match fixture {
        // `$bytes_sent` includes the interim "HTTP/1.1 100 Continue" the record does not.
        "expect-100" => line.bytes_sent += "HTTP/1.1 100 Continue\r\n\r\n".len() as u64,
        // `return 201` discards the request body without counting it in `$request_length`.
        "post-json" => line.request_length -= t.request_body_size.unwrap_or(0),
        _ => {}
    }
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
        let mut theirs = nginx_log(&path);
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
