//! The Redis usage store against a real `redis-server` spawned per test (no root needed):
//! exact keys and TTLs, one pipeline per flush, nothing lost across a Redis restart, two agents
//! summing into one Redis.

use agent_core::Transaction;
use agent_core::time::{utc_date, utc_hour};
use apitap::store;
use redis::Commands;
use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use store::{StoreOptions, UsageKind, UsageStore, now_ns};

/// A redis-server on a free loopback port, killed on drop.
struct RedisServer {
    port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    persistent: bool,
}

impl RedisServer {
    /// `persistent`: append-only file in a temp dir, so a restart keeps the data.
    fn start(persistent: bool) -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let mut server = RedisServer {
            port,
            child: None,
            dir: tempfile::tempdir().expect("tempdir"),
            persistent,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--appendonly", if self.persistent { "yes" } else { "no" }])
        .args(["--appendfsync", "always", "--dir"])
        .arg(self.dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        self.child = Some(cmd.spawn().expect("redis-server is installed"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(mut conn) = redis::Client::open(self.url()).and_then(|c| c.get_connection())
                && redis::cmd("PING").query::<String>(&mut conn).is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    /// SIGTERM (redis writes its append-only file and exits), then wait.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .expect("url")
            .get_connection()
            .expect("connect")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn tx(route: &str, method: &str, client: &str, start_ns: u64) -> Transaction {
    Transaction {
        start_ns,
        method: Some(method.to_owned().into()),
        route: Some(route.into()),
        client_id: Some(client.into()),
        ..Transaction::default()
    }
}

fn fast_options() -> StoreOptions {
    StoreOptions {
        flush_interval: Duration::from_millis(50),
        retry_initial: Duration::from_millis(50),
        retry_max: Duration::from_millis(200),
        ..StoreOptions::default()
    }
}

fn hgetall(conn: &mut redis::Connection, key: &str) -> HashMap<String, u64> {
    conn.hgetall(key).expect("HGETALL")
}

/// `calls` of one command in INFO commandstats.
fn command_calls(conn: &mut redis::Connection, command: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(conn)
        .expect("INFO");
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn writes_exactly_the_spec_keys_and_ttls_in_one_pipeline() {
    let redis = RedisServer::start(false);
    let store = UsageStore::redis(&redis.url(), StoreOptions::default()).expect("store");
    let now = now_ns();
    let (date, hour) = (utc_date(now), utc_hour(now));
    for i in 0..100 {
        store.record(&tx(
            "/api/users/{id}",
            "GET",
            if i % 2 == 0 { "key:aa" } else { "key:bb" },
            now,
        ));
    }
    store.record(&tx("/api/orders", "POST", "key:aa", now));
    store.flush().await.expect("flush");

    let mut conn = redis.conn();
    let mut keys: Vec<String> = conn.keys("*").expect("KEYS");
    keys.sort();
    let hourly_key = format!("usage:hourly:{date}:{hour:02}");
    let mut want = vec![
        format!("usage:daily:{date}"),
        format!("usage:daily:{date}:client"),
        hourly_key.clone(),
    ];
    want.sort();
    assert_eq!(keys, want);
    let daily = hgetall(&mut conn, &format!("usage:daily:{date}"));
    assert_eq!(
        daily,
        HashMap::from([
            ("/api/users/{id}:GET".into(), 100),
            ("/api/orders:POST".into(), 1)
        ])
    );
    let clients = hgetall(&mut conn, &format!("usage:daily:{date}:client"));
    assert_eq!(
        clients,
        HashMap::from([("key:aa".into(), 51), ("key:bb".into(), 50)])
    );
    assert_eq!(hgetall(&mut conn, &hourly_key), daily);

    for key in [
        format!("usage:daily:{date}"),
        format!("usage:daily:{date}:client"),
    ] {
        let ttl: i64 = conn.ttl(&key).expect("TTL");
        assert!(
            (30 * 86_400 - 10..=30 * 86_400).contains(&ttl),
            "{key} ttl {ttl}"
        );
    }
    let ttl: i64 = conn.ttl(&hourly_key).expect("TTL");
    assert!(
        (7 * 86_400 - 10..=7 * 86_400).contains(&ttl),
        "hourly ttl {ttl}"
    );

    // 101 requests, one flush: one MULTI/EXEC with one HINCRBY per field, not per request.
    assert_eq!(command_calls(&mut conn, "multi"), 1);
    assert_eq!(command_calls(&mut conn, "exec"), 1);
    assert_eq!(command_calls(&mut conn, "hincrby"), 6);
    assert_eq!(command_calls(&mut conn, "expire"), 3);

    let usage = store.usage(UsageKind::Endpoints, 7).await.expect("usage");
    assert_eq!(usage[&date]["/api/users/{id}:GET"], 100);
    let stats = store.stats();
    assert_eq!(
        (
            stats.writes,
            stats.write_failures,
            stats.pending,
            stats.dropped
        ),
        (303, 0, 0, 0)
    );
}

#[tokio::test]
async fn nothing_is_lost_across_a_redis_restart_and_health_reports_the_outage() {
    let mut redis = RedisServer::start(true);
    let store = UsageStore::redis(&redis.url(), fast_options()).expect("store");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let flusher = tokio::spawn(store::run_flusher(store.clone(), async move {
        let _ = stop_rx.await;
    }));
    let now = now_ns();
    let date = utc_date(now);
    for _ in 0..10 {
        store.record(&tx("/a", "GET", "c1", now));
    }
    wait_for_count(&redis, &date, "/a:GET", 10).await;
    let health = store.health().await;
    assert!(
        health.error.is_none() && health.response_time.is_some(),
        "{health:?}"
    );

    redis.stop();
    for _ in 0..25 {
        store.record(&tx("/a", "GET", "c1", now));
    }
    store.record(&tx("/during-outage", "PUT", "c2", now));
    let outage = wait_until(|| async { store.stats().write_failures > 0 }).await;
    assert!(outage, "a flush failed while redis was down");
    let health = store.health().await;
    assert!(
        health.error.is_some() && health.response_time.is_none(),
        "outage reported: {health:?}"
    );
    assert!(health.pending > 0, "increments kept: {health:?}");
    assert!(store.ping().await.is_err());

    redis.spawn();
    wait_for_count(&redis, &date, "/a:GET", 35).await;
    wait_for_count(&redis, &date, "/during-outage:PUT", 1).await;
    let mut conn = redis.conn();
    assert_eq!(
        hgetall(&mut conn, &format!("usage:daily:{date}:client")),
        HashMap::from([("c1".into(), 35), ("c2".into(), 1)])
    );
    let recovered = wait_until(|| async { store.health().await.error.is_none() }).await;
    assert!(recovered, "health recovers once redis is back");
    assert_eq!(store.stats().dropped, 0);

    let _ = stop_tx.send(());
    flusher.await.expect("flusher ends at shutdown");
}

#[tokio::test]
async fn pending_increments_beyond_the_bound_are_dropped_and_counted() {
    let mut redis = RedisServer::start(false);
    let options = StoreOptions {
        max_pending: 4,
        ..fast_options()
    };
    let store = UsageStore::redis(&redis.url(), options).expect("store");
    redis.stop();
    let now = now_ns();
    store.record(&tx("/a", "GET", "c", now)); // 3 keys
    store.record(&tx("/b", "GET", "c", now)); // client key merges; 1 of 2 new keys fits
    assert!(store.flush().await.is_err());
    let stats = store.stats();
    assert_eq!(
        (stats.pending, stats.dropped, stats.write_failures),
        (4, 1, 1)
    );
    let names: Vec<(String, f64)> = store
        .self_metrics()
        .into_iter()
        .map(|m| (m.name, m.value))
        .collect();
    assert!(names.contains(&("apitap_store_dropped_increments_total".into(), 1.0)));
    assert!(names.contains(&("apitap_store_write_failures_total".into(), 1.0)));
}

#[tokio::test]
async fn two_agents_sum_into_one_redis() {
    let redis = RedisServer::start(false);
    let a = UsageStore::redis(&redis.url(), StoreOptions::default()).expect("store a");
    let b = UsageStore::redis(&redis.url(), StoreOptions::default()).expect("store b");
    let now = now_ns();
    let date = utc_date(now);
    for round in 0..3 {
        for _ in 0..7 {
            a.record(&tx("/api/items/{id}", "GET", "key:aa", now));
        }
        for _ in 0..5 {
            b.record(&tx("/api/items/{id}", "GET", "key:bb", now));
        }
        let (ra, rb) = tokio::join!(a.flush(), b.flush());
        ra.expect("flush a");
        rb.expect("flush b");
        let mut conn = redis.conn();
        let daily = hgetall(&mut conn, &format!("usage:daily:{date}"));
        assert_eq!(daily["/api/items/{id}:GET"], 12 * (round + 1));
    }
    let clients = a.usage(UsageKind::Clients, 1).await.expect("usage");
    assert_eq!(
        clients[&date],
        [("key:aa".to_string(), 21), ("key:bb".to_string(), 15)]
            .into_iter()
            .collect()
    );
}

#[tokio::test]
async fn routes_are_kept_in_redis() {
    let redis = RedisServer::start(false);
    let store = UsageStore::redis(&redis.url(), StoreOptions::default()).expect("store");
    assert_eq!(store.load_routes().await.expect("load"), None);
    store
        .save_routes("[\"/a/{id}\"]".into())
        .await
        .expect("save");
    assert_eq!(
        store.load_routes().await.expect("load").as_deref(),
        Some("[\"/a/{id}\"]")
    );
}

#[tokio::test]
async fn starts_while_redis_is_down() {
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let store = UsageStore::redis(&format!("redis://127.0.0.1:{port}/"), fast_options())
        .expect("lazy store");
    store.record(&tx("/a", "GET", "c", now_ns()));
    assert!(store.flush().await.is_err());
    assert_eq!(store.stats().pending, 3);
    assert!(UsageStore::redis("http://nope", fast_options()).is_err());
}

async fn wait_until<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

async fn wait_for_count(redis: &RedisServer, date: &str, field: &str, want: u64) {
    let key = format!("usage:daily:{date}");
    let reached = wait_until(|| async {
        let mut conn = redis.conn();
        let got: Option<u64> = conn.hget(&key, field).expect("HGET");
        got == Some(want)
    })
    .await;
    assert!(reached, "{key} {field} reaches {want}");
}
