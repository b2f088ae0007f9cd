//! Figures for the sinks behind the pipeline, never assertions (run by `cargo xtask bench`, or
//! `cargo bench -p apitap --bench sinks`; needs `redis-server` on PATH):
//!
//! - **alerts**: one evaluation tick with 100 services and 2,000 endpoint rows of which 200 are
//!   covered by `[[alerts.endpoints]]` rules (log notifier off);
//! - **request log**: the hot-path cost of `record` and the writer's sustained rate to a file in
//!   the temp file system (a queue holding every record, so nothing drops);
//! - **recent requests**: `RecentRequests::insert` with the ring full, unique ids and one id;
//! - **usage store**: `record` per transaction (rotating over 1,000 clients, and one client
//!   repeating one endpoint) and one flush of 1,000 distinct keys, embedded and against a real
//!   `redis-server` on loopback, and a Redis round trip.
//!
//! Record the output with the machine and its load.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agent_core::Transaction;
use agent_core::aggregate::snapshot::{EndpointStats, ServiceStats, Snapshot};
use apitap::alert::{AlertConfig, AlertManager, EndpointRule};
use apitap::reqlog::{LogConfig, RequestLog};
use apitap::store::{StoreOptions, UsageStore, now_ns};

const SECOND_NS: u64 = 1_000_000_000;

fn main() {
    // `cargo bench` passes `--bench`; a filter argument picks one measurement.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    if wanted("alerts") {
        rt.block_on(alert_tick());
    }
    if wanted("reqlog") {
        request_log();
    }
    if wanted("store") {
        rt.block_on(store());
    }
    if wanted("recent") {
        recent_requests();
    }
}

/// `RecentRequests::insert` per transaction with a request id, the ring at its default
/// capacity (10,000) and full: every id different, then every request sending the same id.
fn recent_requests() {
    let n = 100_000u64;
    let unique: Vec<Transaction> = (0..n).map(log_txn).collect();
    let same: Vec<Transaction> = (0..n)
        .map(|i| Transaction {
            request_id: Some("fixed-id".into()),
            ..log_txn(i)
        })
        .collect();
    for (name, records) in [("unique ids", &unique), ("one id", &same)] {
        let r = apitap::reqlog::RecentRequests::new(10_000);
        for t in &records[..20_000] {
            r.insert(t);
        }
        let start = Instant::now();
        for t in &records[20_000..] {
            r.insert(t);
        }
        let per = start.elapsed().as_nanos() as f64 / (n - 20_000) as f64;
        println!("recent requests: insert {per:.0} ns/call ({name}, ring full)");
    }
}

async fn alert_tick() {
    let mut cfg = AlertConfig {
        log: false,
        ..AlertConfig::default()
    };
    cfg.endpoints = (0..10)
        .map(|i| EndpointRule {
            endpoint: format!("/api/r{i}"),
            ..Default::default()
        })
        .collect();
    let (m, _tasks) = AlertManager::spawn(&cfg).expect("alert config");
    let t0 = now_ns();
    let snap = |k: u64| Snapshot {
        taken_ns: t0 + k * SECOND_NS,
        services: (0..100)
            .map(|s| ServiceStats {
                service: format!("svc-{s}"),
                requests: 100 * k,
                ..Default::default()
            })
            .collect(),
        endpoints: (0..2_000)
            .map(|e| EndpointStats {
                service: format!("svc-{}", e % 20),
                method: "GET".into(),
                endpoint: format!("/api/r{}", e / 20),
                count: 10 * k,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let snaps: Vec<Snapshot> = (1..=300).map(snap).collect();
    let start = Instant::now();
    for s in &snaps {
        m.on_snapshot(s);
    }
    let per_tick = start.elapsed() / snaps.len() as u32;
    println!(
        "alerts: on_snapshot {per_tick:?} per tick (100 services, 200 covered endpoint rows, 300 ticks)"
    );
}

fn log_txn(i: u64) -> Transaction {
    Transaction {
        start_ns: 1_795_585_921_000_000_000 + i * 1_000_000,
        method: Some("GET".into()),
        path: Some(format!("/api/users/{i}").into()),
        route: Some("/api/users/{id}".into()),
        status: Some(200),
        version: Some("1.1"),
        duration_ns: Some(1_000_000),
        client: Some("127.0.0.1:40000".parse().expect("addr")),
        server: Some("127.0.0.1:18080".parse().expect("addr")),
        service: "port-18080".into(),
        request_id: Some(format!("req-{i}")),
        ..Default::default()
    }
}

fn request_log() {
    let n = 200_000u64;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("apitap.log");
    let cfg = LogConfig {
        path: path.to_string_lossy().into_owned(),
        queue_capacity: n as usize,
        max_bytes: u64::MAX,
        ..LogConfig::default()
    };
    let (log, writer) = RequestLog::spawn(&cfg).expect("spawn");
    let records: Vec<Transaction> = (0..n).map(log_txn).collect();
    let start = Instant::now();
    for t in &records {
        log.record(t);
    }
    let pushed = start.elapsed();
    let dropped = log.stats().dropped;
    drop(log);
    writer.join().expect("writer");
    let total = start.elapsed();
    let bytes = std::fs::metadata(&path).expect("meta").len();
    println!(
        "reqlog: record() {:.0} ns/call; writer {n} lines in {total:?} = {:.0} lines/s, {:.1} MB/s, {} bytes/line ({dropped} dropped)",
        pushed.as_nanos() as f64 / n as f64,
        n as f64 / total.as_secs_f64(),
        bytes as f64 / total.as_secs_f64() / 1e6,
        bytes / n,
    );
}

/// A throwaway redis-server on a free loopback port, killed on drop.
struct Redis {
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Redis {
    fn start() -> Redis {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let dir = tempfile::tempdir().expect("tempdir");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is not installed: apt-get install -y redis-server");
        let redis = Redis {
            port,
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(mut conn) = redis::Client::open(redis.url()).and_then(|c| c.get_connection())
                && redis::cmd("PING").query::<String>(&mut conn).is_ok()
            {
                return redis;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not start on port {port}");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn store() {
    const N: u64 = 1_000_000;
    let now = now_ns();
    let txs: Vec<Transaction> = (0..1000)
        .map(|i| Transaction {
            start_ns: now,
            method: Some("GET".into()),
            route: Some(format!("/api/r{}/{{id}}", i % 100).into()),
            client_id: Some(format!("key:{i:04}").into()),
            ..Transaction::default()
        })
        .collect();
    let redis = Redis::start();
    let remote = UsageStore::redis(&redis.url(), StoreOptions::default()).expect("store");
    let dir = tempfile::tempdir().expect("tempdir");
    let embedded = UsageStore::embedded(dir.path(), StoreOptions::default()).expect("store");
    for (name, store) in [("redis", &remote), ("embedded", &embedded)] {
        let start = Instant::now();
        for i in 0..N {
            store.record(&txs[(i % 1000) as usize]);
        }
        let record = start.elapsed();
        let keys = store.stats().pending;
        // One client repeating one endpoint (a keep-alive connection's usual traffic): runs.
        let start = Instant::now();
        for _ in 0..N {
            store.record(&txs[7]);
        }
        let repeated = start.elapsed();
        let start = Instant::now();
        store.flush().await.expect("flush");
        let flush = start.elapsed();
        // A second flush of the same keys (existing fields, as in steady state).
        for i in 0..N {
            store.record(&txs[(i % 1000) as usize]);
        }
        let start = Instant::now();
        store.flush().await.expect("flush");
        let flush_again = start.elapsed();
        println!(
            "store {name}: record {:.0} ns/transaction ({N} transactions rotating over {keys} keys), {:.0} ns repeating one; flush {keys} keys {flush:?}, again {flush_again:?}",
            record.as_nanos() as f64 / N as f64,
            repeated.as_nanos() as f64 / N as f64,
        );
    }
    let start = Instant::now();
    for _ in 0..1000 {
        remote.ping().await.expect("ping");
    }
    println!("store redis: ping {:?} each", start.elapsed() / 1000);
}
