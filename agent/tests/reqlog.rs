//! The request log against the real file system and a real pipe: rotation, sampling, the drop
//! counter of a full queue, and that secrets cannot reach a line.
//!
//! Run: `cargo test -p apitap --test reqlog` (no root, no network).

use apitap::reqlog;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Command;

use agent_core::engine::{Engine, EngineConfig};
use agent_core::{Direction, ErrorType, Segment, TcpFlags, Transaction};
use reqlog::{LogConfig, RequestLog};

fn txn(i: u64, status: u16, duration_ms: u64) -> Transaction {
    Transaction {
        start_ns: 1_795_585_921_000_000_000 + i * 1_000_000,
        method: Some("GET".into()),
        path: Some(format!("/api/users/{i}").into()),
        route: Some("/api/users/{id}".into()),
        status: Some(status),
        version: Some("1.1"),
        duration_ns: Some(duration_ms * 1_000_000),
        client: Some("127.0.0.1:40000".parse().expect("addr")),
        server: Some("127.0.0.1:18080".parse().expect("addr")),
        service: "port-18080".into(),
        request_id: Some(format!("req-{i}")),
        ..Default::default()
    }
}

fn lines_of(path: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(path)
        .expect("read log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is one JSON record"))
        .collect()
}

fn file_config(path: &Path) -> LogConfig {
    LogConfig {
        path: path.to_string_lossy().into_owned(),
        flush_interval_ms: 50,
        ..LogConfig::default()
    }
}

#[test]
fn rotation_keeps_exactly_the_configured_number_of_files_of_whole_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("apitap.log");
    let cfg = LogConfig {
        max_bytes: 8 * 1024,
        keep_files: 3,
        ..file_config(&path)
    };
    let (log, writer) = RequestLog::spawn(&cfg).expect("spawn");
    for i in 0..500 {
        log.record(&txn(i, 200, 1));
    }
    let stats_before_close = log.stats();
    drop(log);
    writer.join().expect("writer thread");

    let mut names: Vec<String> = fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into())
        .collect();
    names.sort();
    assert_eq!(names, ["apitap.log", "apitap.log.1", "apitap.log.2"]);
    for name in &names {
        let p = dir.path().join(name);
        assert!(
            fs::metadata(&p).expect("meta").len() <= 8 * 1024,
            "{name} over max_bytes"
        );
        assert!(!lines_of(&p).is_empty());
    }
    // The newest record is last in the live file; .1 holds the records just before it.
    let live = lines_of(&path);
    assert_eq!(live.last().expect("a record")["request.id"], "req-499");
    let older = lines_of(&reqlog::numbered(&path, 1));
    let last_of_older = older.last().expect("a record")["request.id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(
        live[0]["request.id"],
        format!("req-{}", &last_of_older[4..].parse::<u64>().expect("n") + 1)
    );
    assert_eq!(stats_before_close.dropped, 0);
    assert_eq!(stats_before_close.sampled_out, 0);
}

#[test]
fn sampling_keeps_every_error_and_every_slow_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("apitap.log");
    let cfg = LogConfig {
        sample_rate: 0.0,
        slow_threshold_ms: 500,
        ..file_config(&path)
    };
    let (log, writer) = RequestLog::spawn(&cfg).expect("spawn");
    let mut want = Vec::new();
    for i in 0..1_000u64 {
        let t = match i % 10 {
            0 => txn(i, 500, 1),
            1 => txn(i, 429, 1),
            2 => txn(i, 401, 1),
            3 => txn(i, 200, 501),
            4 => Transaction {
                status: None,
                error: Some(ErrorType::ConnectionReset),
                ..txn(i, 200, 1)
            },
            _ => txn(i, 200, 1),
        };
        if i % 10 <= 4 {
            want.push(format!("req-{i}"));
        }
        log.record(&t);
    }
    let stats = log.stats();
    drop(log);
    writer.join().expect("writer thread");
    let got: Vec<String> = lines_of(&path)
        .iter()
        .map(|v| v["request.id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(got, want);
    assert_eq!((stats.sampled_out, stats.dropped), (500, 0));
}

#[test]
fn a_full_queue_drops_and_counts_and_every_record_is_accounted_for() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("stalled.pipe");
    let ok = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo (coreutils) runs");
    assert!(ok.success());
    // A reader that does not read yet: the writer fills the pipe and its buffer, then blocks.
    let reader = std::thread::spawn({
        let fifo = fifo.clone();
        move || fs::File::open(fifo).expect("open fifo for reading")
    });
    let cfg = LogConfig {
        queue_capacity: 8,
        max_bytes: u64::MAX,
        ..file_config(&fifo)
    };
    let (log, writer) = RequestLog::spawn(&cfg).expect("spawn");
    let pipe = reader.join().expect("reader");
    let total = 5_000u64;
    for i in 0..total {
        log.record(&txn(i, 200, 1));
    }
    let stats = log.stats();
    assert!(
        stats.dropped > 0,
        "a writer blocked on a full pipe must make the queue drop"
    );
    drop(log);
    let read = BufReader::new(pipe)
        .lines()
        .collect::<Result<Vec<String>, _>>()
        .expect("lines")
        .len() as u64;
    writer.join().expect("writer thread");
    assert_eq!(read + stats.dropped, total, "written + dropped = recorded");
    assert!(read < total);
}

/// The engine drops Authorization, Cookie, Set-Cookie and API-key headers and redacts query
/// values before a Transaction exists, and Transaction has no field that could hold them:
/// whatever the request carried, the line shows none of it.
#[test]
fn secrets_in_the_request_never_reach_the_log_line() {
    let request = b"GET /api/users/7?fields=name&token=SECRET-QUERY HTTP/1.1\r\nHost: x\r\n\
Authorization: Bearer SECRET-BEARER\r\nCookie: session=SECRET-COOKIE\r\nX-API-Key: SECRET-APIKEY\r\n\
Proxy-Authorization: Basic SECRET-PROXY\r\nX-Request-ID: req-secret-test\r\n\r\n";
    let response =
        b"HTTP/1.1 200 OK\r\nSet-Cookie: session=SECRET-SETCOOKIE\r\nContent-Length: 2\r\n\r\nok";
    let client = "127.0.0.1:40000".parse().expect("addr");
    let server = "127.0.0.1:18080".parse().expect("addr");
    let seg = |ts_ns, direction, seq, payload: &'static [u8]| Segment {
        ts_ns,
        client,
        server,
        direction,
        seq,
        ack: 0,
        flags: TcpFlags(TcpFlags::ACK | TcpFlags::PSH),
        payload_len: payload.len() as u32,
        payload,
        ifindex: 1,
    };
    let mut engine = Engine::new(EngineConfig::default());
    let mut out = Vec::new();
    let t0 = 1_795_585_921_000_000_000;
    engine.ingest(&seg(t0, Direction::ToServer, 1_000, request), &mut out);
    engine.ingest(
        &seg(t0 + 1_000_000, Direction::ToClient, 9_000, response),
        &mut out,
    );
    engine.finish(&mut out);
    assert_eq!(out.len(), 1, "one exchange: {out:?}");

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("apitap.log");
    let (log, writer) = RequestLog::spawn(&file_config(&path)).expect("spawn");
    log.record(&out[0]);
    drop(log);
    writer.join().expect("writer thread");
    let text = fs::read_to_string(&path).expect("read");
    assert!(
        text.contains("req-secret-test"),
        "the record was written: {text}"
    );
    assert!(!text.contains("SECRET"), "a secret leaked: {text}");
    assert!(
        !text.to_ascii_lowercase().contains("authorization")
            && !text.to_ascii_lowercase().contains("cookie")
    );
}
