//! Alert notifications reaching real receivers: a webhook (a small HTTP server in this test
//! that fails once to exercise the retry), a real Alertmanager (Debian's
//! `prometheus-alertmanager`) and a real SMTP server (aiosmtpd from PyPI).
//!
//! Run: `cargo test -p apitap --test alerts` (no root). Needs `apt-get install
//! prometheus-alertmanager` and `pip install aiosmtpd`; without them the tests fail and say so.
//! Snapshots are synthetic, with wall-clock `taken_ns` one second apart, so nothing sleeps to
//! let a `for` duration pass.

use apitap::alert;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use agent_core::aggregate::snapshot::{ServiceStats, Snapshot};
use alert::{AlertConfig, AlertManager, SmtpConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

const SECOND_NS: u64 = 1_000_000_000;
const WAIT: Duration = Duration::from_secs(20);

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as u64
}

/// One service, 100 requests in the window, the given 5-minute error rate.
fn snapshot(taken_ns: u64, service: &str, error_rate: f64) -> Snapshot {
    Snapshot {
        taken_ns,
        services: vec![ServiceStats {
            service: service.into(),
            requests: 100,
            error_rate_5m: error_rate,
            p95_5m_s: 0.01,
            requests_last_minute: 20,
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Alerts that fire after one second of breach, with quick retries.
fn config() -> AlertConfig {
    AlertConfig {
        for_secs: 1,
        min_requests: 1,
        retry_initial_ms: 50,
        timeout_ms: 2_000,
        ..AlertConfig::default()
    }
}

/// Error rate 7 % (warning, not critical) at t, t+1 s (fires), then 1 % at t+2 s (resolves).
fn fire_then_resolve(m: &AlertManager, service: &str, t0: u64) {
    m.on_snapshot(&snapshot(t0, service, 0.07));
    assert_eq!(m.firing_count(), 0, "pending during `for`");
    m.on_snapshot(&snapshot(t0 + SECOND_NS, service, 0.07));
    assert_eq!(m.firing_count(), 1);
    m.on_snapshot(&snapshot(t0 + 2 * SECOND_NS, service, 0.01));
    assert_eq!(m.firing_count(), 0);
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Kills and reaps the child on drop.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_for_tcp(port: u16, what: &str) {
    let deadline = Instant::now() + WAIT;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on port {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A minimal HTTP/1.1 server: answers 503 to the first `fail_first` requests and 200 after,
/// handing every successfully received JSON body to the channel.
async fn webhook_receiver(
    fail_first: usize,
) -> (
    SocketAddr,
    mpsc::UnboundedReceiver<serde_json::Value>,
    Arc<AtomicUsize>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = mpsc::unbounded_channel();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let head_end = loop {
                let n = sock.read(&mut chunk).await.expect("read");
                assert!(n > 0, "connection closed mid-request");
                buf.extend_from_slice(&chunk[..n]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().expect("content-length"))
                .expect("a JSON POST has a content-length");
            while buf.len() < head_end + len {
                let n = sock.read(&mut chunk).await.expect("read body");
                assert!(n > 0, "connection closed mid-body");
                buf.extend_from_slice(&chunk[..n]);
            }
            let nth = count.fetch_add(1, Ordering::SeqCst);
            let status = if nth < fail_first {
                "503 Service Unavailable"
            } else {
                "200 OK"
            };
            let reply =
                format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            sock.write_all(reply.as_bytes()).await.expect("reply");
            if nth >= fail_first {
                tx.send(serde_json::from_slice(&buf[head_end..head_end + len]).expect("JSON body"))
                    .expect("send");
            }
        }
    });
    (addr, rx, seen)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<serde_json::Value>) -> serde_json::Value {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a notification in time")
        .expect("receiver alive")
}

fn metric(m: &AlertManager, notifier: &str, result: &str) -> f64 {
    m.self_metrics()
        .iter()
        .find(|s| {
            s.labels.contains(&("notifier".into(), notifier.into()))
                && s.labels.contains(&("result".into(), result.into()))
        })
        .map(|s| s.value)
        .expect("counter present")
}

/// Waits for a counter to reach `want`: a delivery is counted only after the receiver's
/// answer, which may come after the receiver has shown the message.
async fn wait_metric(m: &AlertManager, notifier: &str, result: &str, want: f64) {
    let deadline = Instant::now() + WAIT;
    while metric(m, notifier, result) < want {
        assert!(
            Instant::now() < deadline,
            "{notifier} {result} stuck at {}",
            metric(m, notifier, result)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(metric(m, notifier, result), want, "{notifier} {result}");
}

#[tokio::test]
async fn webhook_gets_firing_then_resolved_once_each_after_a_retry() {
    let (addr, mut rx, seen) = webhook_receiver(1).await;
    let cfg = AlertConfig {
        webhook: Some(format!("http://{addr}/hook")),
        ..config()
    };
    let (m, tasks) = AlertManager::spawn(&cfg).expect("spawn");
    let t0 = now_ns();
    fire_then_resolve(&m, "port-18080", t0);

    let firing = next(&mut rx).await;
    assert_eq!(firing["status"], "firing");
    assert_eq!(firing["name"], "ApiErrorRateHigh");
    assert_eq!(firing["severity"], "warning");
    assert_eq!(firing["service"], "port-18080");
    assert_eq!(firing["endpoint"], serde_json::Value::Null);
    assert_eq!(
        (firing["value"].as_f64(), firing["threshold"].as_f64()),
        (Some(0.07), Some(0.05))
    );
    assert_eq!(firing["started_at"], agent_core::time::rfc3339_micros(t0));
    assert_eq!(firing["ended_at"], serde_json::Value::Null);
    let resolved = next(&mut rx).await;
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["name"], "ApiErrorRateHigh");
    assert_eq!(
        resolved["ended_at"],
        agent_core::time::rfc3339_micros(t0 + 2 * SECOND_NS)
    );

    // Still healthy later: no repeat, no storm.
    m.on_snapshot(&snapshot(t0 + 3 * SECOND_NS, "port-18080", 0.01));
    assert!(
        tokio::time::timeout(Duration::from_millis(500), rx.recv())
            .await
            .is_err()
    );
    assert_eq!(
        seen.load(Ordering::SeqCst),
        3,
        "one failed attempt, then firing and resolved"
    );
    wait_metric(&m, "webhook", "sent", 2.0).await;
    assert_eq!(metric(&m, "webhook", "failed"), 0.0);
    let views = m.active_and_recent();
    assert_eq!(
        (views.len(), views[0].state, views[0].name),
        (1, "resolved", "ApiErrorRateHigh")
    );
    drop(m);
    for t in tasks {
        t.await
            .expect("notifier task ends once the manager is gone");
    }
}

#[tokio::test]
async fn unreachable_webhook_is_retried_a_bounded_number_of_times_and_counted() {
    let port = free_port(); // nothing listens there
    let cfg = AlertConfig {
        webhook: Some(format!("http://127.0.0.1:{port}/hook")),
        retry_attempts: 3,
        retry_initial_ms: 20,
        ..config()
    };
    let (m, tasks) = AlertManager::spawn(&cfg).expect("spawn");
    fire_then_resolve(&m, "port-9", now_ns());
    // Firing and resolved, 3 attempts each with 20 + 40 ms of backoff, then given up.
    let deadline = Instant::now() + WAIT;
    while metric(&m, "webhook", "failed") < 2.0 {
        assert!(Instant::now() < deadline, "deliveries not given up in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        (
            metric(&m, "webhook", "sent"),
            metric(&m, "webhook", "dropped")
        ),
        (0.0, 0.0)
    );
    drop(m);
    for t in tasks {
        t.await.expect("task ends");
    }
}

fn alertmanager_binary() -> &'static str {
    let ok = Command::new("prometheus-alertmanager")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "prometheus-alertmanager is not installed: apt-get install prometheus-alertmanager"
    );
    "prometheus-alertmanager"
}

async fn am_alerts(client: &reqwest::Client, port: u16) -> Vec<serde_json::Value> {
    let url = format!("http://127.0.0.1:{port}/api/v2/alerts");
    client
        .get(url)
        .send()
        .await
        .expect("GET alerts")
        .json()
        .await
        .expect("JSON alerts")
}

#[tokio::test]
async fn alertmanager_receives_the_alert_and_lists_it_until_resolved() {
    let bin = alertmanager_binary();
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("alertmanager.yml");
    std::fs::write(
        &conf,
        "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n",
    )
    .expect("config");
    let port = free_port();
    let _am = Guard(
        Command::new(bin)
            .arg(format!("--config.file={}", conf.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start alertmanager"),
    );
    // The agent's TLS provider (ring), which reqwest's rustls-no-provider build needs.
    apitap::tls::install_provider();
    let client = reqwest::Client::new();
    let deadline = Instant::now() + WAIT;
    loop {
        let ready = client
            .get(format!("http://127.0.0.1:{port}/-/ready"))
            .send()
            .await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "alertmanager not ready on port {port}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let cfg = AlertConfig {
        alertmanager_url: Some(format!("http://127.0.0.1:{port}/")),
        alertmanager_resend_secs: 1,
        ..config()
    };
    let (m, _tasks) = AlertManager::spawn(&cfg).expect("spawn");
    let t0 = now_ns();
    m.on_snapshot(&snapshot(t0, "port-18081", 0.5));
    m.on_snapshot(&snapshot(t0 + SECOND_NS, "port-18081", 0.5));
    assert_eq!(m.firing_count(), 2, "warning and critical");

    let ours = |alerts: &[serde_json::Value]| -> Vec<serde_json::Value> {
        alerts
            .iter()
            .filter(|a| a["labels"]["service"] == "port-18081")
            .cloned()
            .collect()
    };
    let deadline = Instant::now() + WAIT;
    let listed = loop {
        let listed = ours(&am_alerts(&client, port).await);
        if listed.len() == 2 {
            break listed;
        }
        assert!(Instant::now() < deadline, "alertmanager lists {listed:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut severities: Vec<&str> = listed
        .iter()
        .map(|a| a["labels"]["severity"].as_str().expect("severity"))
        .collect();
    severities.sort();
    assert_eq!(severities, ["critical", "warning"]);
    for a in &listed {
        assert_eq!(a["labels"]["alertname"], "ApiErrorRateHigh");
        assert_eq!(a["status"]["state"], "active");
        assert!(
            a["annotations"]["summary"]
                .as_str()
                .expect("summary")
                .contains("port-18081")
        );
        assert_eq!(a["generatorURL"], "http://127.0.0.1:9464/api/v1/alerts");
    }

    // Still firing a second later: re-sent to Alertmanager (which would otherwise resolve it
    // after its resolve_timeout), and to nobody else.
    m.on_snapshot(&snapshot(t0 + 2 * SECOND_NS, "port-18081", 0.5));
    m.on_snapshot(&snapshot(t0 + 3 * SECOND_NS, "port-18081", 0.0));
    let deadline = Instant::now() + WAIT;
    while !ours(&am_alerts(&client, port).await).is_empty() {
        assert!(
            Instant::now() < deadline,
            "resolved alerts still listed by alertmanager"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Fire, refresh and resolve for each severity.
    wait_metric(&m, "alertmanager", "sent", 6.0).await;
    assert_eq!(metric(&m, "alertmanager", "failed"), 0.0);
}

#[tokio::test]
async fn smtp_alert_reaches_a_real_smtp_server() {
    let has_aiosmtpd = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_aiosmtpd,
        "aiosmtpd is not installed: pip install aiosmtpd"
    );
    let port = free_port();
    let mut child = Command::new("python3")
        .args([
            "-u",
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start aiosmtpd");
    let stdout = child.stdout.take().expect("piped stdout");
    let _smtpd = Guard(child);
    let printed = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&printed);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let mut s = sink.lock().expect("lock");
            s.push_str(&line);
            s.push('\n');
        }
    });
    wait_for_tcp(port, "aiosmtpd").await;

    let smtp = SmtpConfig {
        server: "127.0.0.1".into(),
        port: Some(port),
        from: "apitap@example.test".into(),
        to: vec!["oncall@example.test".into()],
        username: None,
        password: None,
        // aiosmtpd without TLS here; tests/tls.rs has STARTTLS, implicit TLS and AUTH.
        tls: alert::SmtpTls::None,
        tls_config: Default::default(),
    };
    let cfg = AlertConfig {
        smtp: Some(smtp),
        ..config()
    };
    let (m, _tasks) = AlertManager::spawn(&cfg).expect("spawn");
    fire_then_resolve(&m, "port-18082", now_ns());

    let deadline = Instant::now() + WAIT;
    loop {
        let text = printed.lock().expect("lock").clone();
        let firing = text.contains("Subject: [apitap] FIRING warning ApiErrorRateHigh: port-18082");
        let resolved =
            text.contains("Subject: [apitap] RESOLVED warning ApiErrorRateHigh: port-18082");
        if firing && resolved {
            assert!(text.contains("oncall@example.test"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "mails not seen by aiosmtpd; it printed:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_metric(&m, "smtp", "sent", 2.0).await;
    assert_eq!(metric(&m, "smtp", "failed"), 0.0);
}
