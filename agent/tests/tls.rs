//! TLS on every outbound connection, against real servers on loopback with a test PKI made
//! here by `openssl` (a CA, a server and a client certificate, and a second, wrong CA):
//! - an https webhook receiver that requires a client certificate (Python's ssl);
//! - a real Alertmanager serving https and requiring a client certificate (--web.config.file);
//! - aiosmtpd with STARTTLS and AUTH, and with implicit TLS and AUTH: the mail arrives with the
//!   right subject and body; a server that does not offer STARTTLS is an error, not a downgrade;
//! - redis-server with tls-port and tls-auth-clients: usage keys arrive exactly; without the
//!   client certificate nothing is written;
//! - a wrong CA: one clear line, counted, and for Redis nothing lost: the increments wait and are
//!   written once Redis presents a certificate the agent trusts.
//!
//! Run: `cargo test -p apitap --test tls` (no root). Needs openssl, python3 with aiosmtpd,
//! prometheus-alertmanager and redis-server (`cargo xtask prereqs` installs them).

use agent_core::Transaction;
use agent_core::time::utc_date;
use apitap::alert::{self, AlertConfig, AlertManager, SmtpConfig, SmtpTls};
use apitap::store::{StoreOptions, UsageStore, now_ns};
use apitap::tls::TlsConfig;
use redis::Commands;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent_core::aggregate::snapshot::{ServiceStats, Snapshot};

const SECOND_NS: u64 = 1_000_000_000;
const WAIT: Duration = Duration::from_secs(20);

// ---- the test PKI ---------------------------------------------------------------------------

/// A CA, a server certificate for 127.0.0.1 and localhost, a client certificate, and a second CA
/// with its own server certificate (what a wrong CA looks like from the client).
struct Pki {
    dir: tempfile::TempDir,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl is installed (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        for ca in ["ca", "wrong-ca"] {
            openssl(
                d,
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-days",
                    "2",
                    "-keyout",
                    &format!("{ca}.key"),
                    "-out",
                    &format!("{ca}.pem"),
                    "-subj",
                    &format!("/CN=apitap test {ca}"),
                ],
            );
        }
        std::fs::write(
            d.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        )
        .expect("ext");
        std::fs::write(d.join("client.ext"), "extendedKeyUsage=clientAuth\n").expect("ext");
        for (name, ca, ext) in [
            ("server", "ca", "server.ext"),
            ("client", "ca", "client.ext"),
            ("wrong-server", "wrong-ca", "server.ext"),
        ] {
            openssl(
                d,
                &[
                    "req",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.csr"),
                    "-subj",
                    &format!("/CN=apitap test {name}"),
                ],
            );
            openssl(
                d,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &format!("{name}.csr"),
                    "-CA",
                    &format!("{ca}.pem"),
                    "-CAkey",
                    &format!("{ca}.key"),
                    "-CAcreateserial",
                    "-days",
                    "2",
                    "-extfile",
                    ext,
                    "-out",
                    &format!("{name}.pem"),
                ],
            );
        }
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn p(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// Trusts the test CA and presents the client certificate.
    fn client_tls(&self) -> TlsConfig {
        TlsConfig {
            ca_file: Some(self.path("ca.pem")),
            cert_file: Some(self.path("client.pem")),
            key_file: Some(self.path("client.key")),
            insecure_skip_verify: false,
        }
    }

    /// Trusts only the wrong CA (and presents the right client certificate).
    fn wrong_ca_tls(&self) -> TlsConfig {
        TlsConfig {
            ca_file: Some(self.path("wrong-ca.pem")),
            ..self.client_tls()
        }
    }
}

// ---- helpers --------------------------------------------------------------------------------

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A child process whose stdout lines are collected; killed on drop.
struct Server {
    child: Child,
    out: Arc<Mutex<String>>,
}

impl Server {
    fn spawn(cmd: &mut Command) -> Server {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let stdout = child.stdout.take().expect("piped");
        let out = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&out);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let mut s = sink.lock().expect("lock");
                s.push_str(&line);
                s.push('\n');
            }
        });
        Server { child, out }
    }

    fn printed(&self) -> String {
        self.out.lock().expect("lock").clone()
    }

    /// Waits until the server printed `what` at least `n` times: a delivery counts as sent when
    /// the server answered, which can be before its output reached this process through the
    /// pipe. Fails with what it printed.
    async fn wait_count(&self, what: &str, n: usize) {
        let deadline = Instant::now() + WAIT;
        while self.printed().matches(what).count() < n {
            assert!(
                Instant::now() < deadline,
                "server printed {what:?} fewer than {n} times: {}",
                self.printed()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the server printed `line` (its "ready" line) or fails with what it printed.
    fn wait_for(&self, what: &str) {
        let deadline = Instant::now() + WAIT;
        while !self.printed().contains(what) {
            assert!(
                Instant::now() < deadline,
                "server never printed {what:?}: {}",
                self.printed()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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

/// Alerts that fire after one second of breach; log off, quick retries.
fn alert_config() -> AlertConfig {
    AlertConfig {
        for_secs: 1,
        min_requests: 1,
        retry_initial_ms: 50,
        retry_attempts: 2,
        timeout_ms: 3_000,
        log: false,
        ..AlertConfig::default()
    }
}

/// 7 % errors (a warning) for one second: fires; then 1 %: resolves.
fn fire_then_resolve(m: &AlertManager, service: &str) {
    let t0 = now_ns();
    m.on_snapshot(&snapshot(t0, service, 0.07));
    m.on_snapshot(&snapshot(t0 + SECOND_NS, service, 0.07));
    assert_eq!(m.firing_count(), 1);
    m.on_snapshot(&snapshot(t0 + 2 * SECOND_NS, service, 0.01));
    assert_eq!(m.firing_count(), 0);
}

fn counter(m: &AlertManager, notifier: &str, result: &str) -> f64 {
    m.self_metrics()
        .iter()
        .find(|s| {
            s.labels.contains(&("notifier".into(), notifier.into()))
                && s.labels.contains(&("result".into(), result.into()))
        })
        .map(|s| s.value)
        .expect("counter present")
}

async fn wait_counter(m: &AlertManager, notifier: &str, result: &str, want: f64) {
    let deadline = Instant::now() + WAIT;
    while counter(m, notifier, result) < want {
        assert!(
            Instant::now() < deadline,
            "{notifier} {result} stuck at {}",
            counter(m, notifier, result)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(counter(m, notifier, result), want, "{notifier} {result}");
}

/// A firing notification as the manager would make it.
fn example_notification() -> alert::notify::Notification {
    alert::notify::Notification {
        status: alert::notify::Status::Firing,
        name: "ApiErrorRateHigh",
        severity: alert::Severity::Warning,
        namespace: String::new(),
        service: "port-18099".into(),
        endpoint: None,
        method: None,
        value: 0.07,
        threshold: 0.05,
        started_at: "2026-11-30T10:00:00.000000Z".into(),
        ended_at: None,
        summary: "error rate 7.0 % on port-18099".into(),
        instance: "test".into(),
        refresh: false,
    }
}

// ---- https webhook --------------------------------------------------------------------------

/// An https server that requires a client certificate from the test CA and prints
/// `POST <client CN> <body>` per request.
const HTTPS_SINK: &str = r#"
import http.server, ssl, sys
port, cert, key, ca = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        peer = dict(x[0] for x in self.connection.getpeercert()["subject"])
        print("POST", peer["commonName"], body, flush=True)
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ctx.verify_mode = ssl.CERT_REQUIRED
ctx.load_verify_locations(ca)
srv = http.server.HTTPServer(("127.0.0.1", port), H)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("ready", flush=True)
srv.serve_forever()
"#;

fn https_sink(pki: &Pki, cert: &str) -> (Server, u16) {
    let port = free_port();
    let s = Server::spawn(Command::new("python3").args([
        "-u",
        "-c",
        HTTPS_SINK,
        &port.to_string(),
        &pki.p(&format!("{cert}.pem")),
        &pki.p(&format!("{cert}.key")),
        &pki.p("ca.pem"),
    ]));
    s.wait_for("ready");
    (s, port)
}

#[tokio::test]
async fn https_webhook_with_a_client_certificate_gets_firing_then_resolved() {
    let pki = Pki::new();
    let (sink, port) = https_sink(&pki, "server");
    let cfg = AlertConfig {
        webhook: Some(format!("https://127.0.0.1:{port}/hook")),
        tls_config: pki.client_tls(),
        ..alert_config()
    };
    cfg.validate().expect("valid");
    let (m, _tasks) = AlertManager::spawn(&cfg).expect("spawn");
    fire_then_resolve(&m, "port-18090");
    wait_counter(&m, "webhook", "sent", 2.0).await;
    sink.wait_count("POST apitap test client ", 2).await;
    let printed = sink.printed();
    let posts: Vec<serde_json::Value> = printed
        .lines()
        .filter_map(|l| l.strip_prefix("POST apitap test client "))
        .map(|body| serde_json::from_str(body).expect("JSON body"))
        .collect();
    assert_eq!(posts.len(), 2, "{printed}");
    assert_eq!(posts[0]["status"], "firing");
    assert_eq!(posts[1]["status"], "resolved");
    for p in &posts {
        assert_eq!(p["name"], "ApiErrorRateHigh");
        assert_eq!(p["service"], "port-18090");
    }
    assert_eq!(counter(&m, "webhook", "failed"), 0.0);
}

#[tokio::test]
async fn a_wrong_ca_fails_the_webhook_with_one_clear_line_and_is_counted() {
    let pki = Pki::new();
    let (sink, port) = https_sink(&pki, "server");
    let cfg = AlertConfig {
        webhook: Some(format!("https://127.0.0.1:{port}/hook")),
        tls_config: pki.wrong_ca_tls(),
        ..alert_config()
    };
    // The line the delivery task logs is this error's text.
    let notifier = alert::notify::WebhookNotifier::new(
        cfg.webhook.as_deref().expect("set"),
        &cfg.tls_config,
        Duration::from_secs(3),
    )
    .expect("client");
    let n = example_notification();
    let err = notifier
        .deliver(&n)
        .await
        .expect_err("untrusted server")
        .to_string();
    eprintln!("the webhook's error line: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("invalid peer certificate") && err.contains("UnknownIssuer"),
        "{err}"
    );

    let (m, _tasks) = AlertManager::spawn(&cfg).expect("spawn");
    fire_then_resolve(&m, "port-18091");
    wait_counter(&m, "webhook", "failed", 2.0).await;
    assert_eq!(counter(&m, "webhook", "sent"), 0.0);
    assert!(!sink.printed().contains("POST"), "{}", sink.printed());
}

// ---- Alertmanager over https with mutual TLS --------------------------------------------------

fn curl_tls(pki: &Pki, url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "3", "--cacert", &pki.p("ca.pem")])
        .args([
            "--cert",
            &pki.p("client.pem"),
            "--key",
            &pki.p("client.key"),
            url,
        ])
        .output()
        .expect("curl");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test]
async fn alertmanager_over_https_with_a_client_certificate_lists_the_alert() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("alertmanager.yml");
    std::fs::write(
        &conf,
        "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n",
    )
    .expect("config");
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n  client_ca_file: {}\n  \
             client_auth_type: RequireAndVerifyClientCert\n",
            pki.p("server.pem"),
            pki.p("server.key"),
            pki.p("ca.pem")
        ),
    )
    .expect("web config");
    let port = free_port();
    let _am = Server::spawn(
        Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", conf.display()))
            .arg(format!("--web.config.file={}", web.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address="),
    );
    let base = format!("https://127.0.0.1:{port}");
    let deadline = Instant::now() + WAIT;
    while curl_tls(&pki, &format!("{base}/-/ready")).is_none() {
        assert!(
            Instant::now() < deadline,
            "alertmanager not ready over https"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Without a client certificate Alertmanager refuses the connection.
    let anonymous = Command::new("curl")
        .args(["-sf", "--max-time", "3", "--cacert", &pki.p("ca.pem")])
        .arg(format!("{base}/-/ready"))
        .status()
        .expect("curl");
    assert!(
        !anonymous.success(),
        "alertmanager accepted a client without a certificate"
    );

    let cfg = AlertConfig {
        alertmanager_url: Some(base.clone()),
        tls_config: pki.client_tls(),
        ..alert_config()
    };
    let (m, _tasks) = AlertManager::spawn(&cfg).expect("spawn");
    let t0 = now_ns();
    m.on_snapshot(&snapshot(t0, "port-18092", 0.07));
    m.on_snapshot(&snapshot(t0 + SECOND_NS, "port-18092", 0.07));
    wait_counter(&m, "alertmanager", "sent", 1.0).await;
    let listed: Vec<serde_json::Value> = serde_json::from_str(
        &curl_tls(&pki, &format!("{base}/api/v2/alerts")).expect("GET alerts"),
    )
    .expect("JSON");
    let ours: Vec<_> = listed
        .iter()
        .filter(|a| a["labels"]["service"] == "port-18092")
        .collect();
    assert_eq!(ours.len(), 1, "{listed:?}");
    assert_eq!(ours[0]["labels"]["alertname"], "ApiErrorRateHigh");
    assert_eq!(ours[0]["labels"]["severity"], "warning");
}

// ---- SMTP: STARTTLS, implicit TLS, AUTH -------------------------------------------------------

/// aiosmtpd with STARTTLS required (or implicit TLS) and AUTH required; prints `AUTH <user>`
/// on a successful login, then every message as it arrived.
const SMTP_SINK: &str = r#"
import asyncio, ssl, sys
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
mode, port, cert, key, user, password = sys.argv[1], int(sys.argv[2]), *sys.argv[3:7]
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)
def auth(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and data.login.decode() == user and data.password.decode() == password
    print("AUTH", data.login.decode() if ok else "REFUSED", mechanism, flush=True)
    return AuthResult(success=ok)
class Handler:
    async def handle_DATA(self, server, session, envelope):
        print("MAIL FROM", envelope.mail_from, "TO", ",".join(envelope.rcpt_tos), flush=True)
        print(envelope.content.decode(), flush=True)
        print("END OF MESSAGE", flush=True)
        return "250 OK"
kw = dict(hostname="127.0.0.1", port=port, authenticator=auth, auth_required=True)
if mode == "starttls":
    c = Controller(Handler(), tls_context=ctx, require_starttls=True, **kw)
elif mode == "implicit":
    c = Controller(Handler(), server_kwargs={"tls_context": None}, ssl_context=ctx, auth_require_tls=False, **kw)
else:
    c = Controller(Handler(), auth_require_tls=False, **kw)
c.start()
print("ready", flush=True)
asyncio.get_event_loop().run_forever()
"#;

fn smtp_sink(pki: &Pki, mode: &str) -> (Server, u16) {
    let port = free_port();
    let s = Server::spawn(Command::new("python3").args([
        "-u",
        "-c",
        SMTP_SINK,
        mode,
        &port.to_string(),
        &pki.p("server.pem"),
        &pki.p("server.key"),
        "apitap",
        "s3cret-smtp",
    ]));
    s.wait_for("ready");
    (s, port)
}

fn smtp_config(port: u16, tls: SmtpTls, tls_config: TlsConfig) -> SmtpConfig {
    SmtpConfig {
        server: "127.0.0.1".into(),
        port: Some(port),
        from: "apitap@example.test".into(),
        to: vec!["oncall@example.test".into()],
        username: Some("apitap".into()),
        password: Some("s3cret-smtp".into()),
        tls,
        tls_config,
    }
}

async fn mail_arrives_over(mode: &str, tls: SmtpTls) {
    let pki = Pki::new();
    let (sink, port) = smtp_sink(&pki, mode);
    let tls_config = TlsConfig {
        ca_file: Some(pki.path("ca.pem")),
        ..TlsConfig::default()
    };
    let cfg = AlertConfig {
        smtp: Some(smtp_config(port, tls, tls_config)),
        ..alert_config()
    };
    cfg.validate().expect("valid");
    let (m, _tasks) = AlertManager::spawn(&cfg).expect("spawn");
    let service = format!("port-{port}");
    fire_then_resolve(&m, &service);
    wait_counter(&m, "smtp", "sent", 2.0).await;
    sink.wait_count("END OF MESSAGE", 2).await;
    let printed = sink.printed();
    let messages: Vec<&str> = printed.split("END OF MESSAGE").collect();
    assert_eq!(messages.len(), 3, "two messages: {printed}");
    assert_eq!(
        printed.matches("AUTH apitap").count(),
        2,
        "one login per message: {printed}"
    );
    assert!(!printed.contains("REFUSED"), "{printed}");
    for (msg, status) in messages.iter().zip(["FIRING", "RESOLVED"]) {
        assert!(
            msg.contains("MAIL FROM apitap@example.test TO oncall@example.test"),
            "{msg}"
        );
        let subject = format!("Subject: [apitap] {status} warning ApiErrorRateHigh: {service}");
        assert!(msg.contains(&subject), "{subject:?} not in {msg}");
        // The body starts with the summary, which names the service and the error rate.
        let body = msg.split("\n\n").nth(1).unwrap_or("");
        assert!(
            body.contains(&service) && body.contains('%'),
            "body: {body:?}"
        );
    }
    assert_eq!(counter(&m, "smtp", "failed"), 0.0);
}

#[tokio::test]
async fn smtp_with_starttls_and_auth_delivers_subject_and_body() {
    mail_arrives_over("starttls", SmtpTls::Starttls).await;
}

#[tokio::test]
async fn smtp_with_implicit_tls_and_auth_delivers_subject_and_body() {
    mail_arrives_over("implicit", SmtpTls::Implicit).await;
}

#[tokio::test]
async fn smtp_starttls_is_never_silently_dropped() {
    let pki = Pki::new();
    // A server that offers no STARTTLS: the password must not be sent in clear.
    let (sink, port) = smtp_sink(&pki, "plain");
    let cfg = AlertConfig {
        smtp: Some(smtp_config(port, SmtpTls::Starttls, TlsConfig::default())),
        ..alert_config()
    };
    let notifier =
        alert::notify::SmtpNotifier::new(cfg.smtp.as_ref().expect("set"), Duration::from_secs(3))
            .expect("notifier");
    let err = notifier
        .deliver(&example_notification())
        .await
        .expect_err("no STARTTLS offered")
        .to_string();
    eprintln!("the SMTP error line: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.to_lowercase().contains("starttls") || err.contains("TLS"),
        "{err}"
    );
    assert!(
        !sink.printed().contains("AUTH"),
        "credentials were sent: {}",
        sink.printed()
    );
}

// ---- Redis over TLS ---------------------------------------------------------------------------

/// redis-server with a TLS port that requires a client certificate from the test CA, and a
/// plain port on 127.0.0.1 for the test's own reading. Killed on drop.
struct TlsRedis {
    _server: Server,
    tls_port: u16,
    plain_port: u16,
}

impl TlsRedis {
    fn start(pki: &Pki, cert: &str) -> TlsRedis {
        let (tls_port, plain_port) = (free_port(), free_port());
        let server = Server::spawn(Command::new("redis-server").args([
            "--port",
            &plain_port.to_string(),
            "--tls-port",
            &tls_port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--tls-cert-file",
            &pki.p(&format!("{cert}.pem")),
            "--tls-key-file",
            &pki.p(&format!("{cert}.key")),
            "--tls-ca-cert-file",
            &pki.p("ca.pem"),
            "--tls-auth-clients",
            "yes",
        ]));
        let r = TlsRedis {
            _server: server,
            tls_port,
            plain_port,
        };
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(mut c) = r.plain()
                && redis::cmd("PING").query::<String>(&mut c).is_ok()
            {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not start (built with TLS?)"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}/", self.tls_port)
    }

    fn plain(&self) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.plain_port))?.get_connection()
    }

    fn daily(&self) -> HashMap<String, u64> {
        let key = format!("usage:daily:{}", utc_date(now_ns()));
        self.plain()
            .expect("plain connection")
            .hgetall(key)
            .expect("HGETALL")
    }
}

fn tx(route: &str, start_ns: u64) -> Transaction {
    Transaction {
        start_ns,
        method: Some("GET".into()),
        route: Some(route.into()),
        client_id: Some("key:aa".into()),
        ..Transaction::default()
    }
}

fn store_options(tls: TlsConfig) -> StoreOptions {
    StoreOptions {
        tls,
        ..StoreOptions::default()
    }
}

#[tokio::test]
async fn rediss_with_a_client_certificate_gets_the_usage_keys_exactly() {
    let pki = Pki::new();
    let redis = TlsRedis::start(&pki, "server");

    // Without the client certificate Redis refuses the session: nothing is written.
    let anonymous = TlsConfig {
        ca_file: Some(pki.path("ca.pem")),
        ..TlsConfig::default()
    };
    let store = UsageStore::redis(&redis.url(), store_options(anonymous)).expect("store");
    store.record(&tx("/api/a", now_ns()));
    assert!(
        store.flush().await.is_err(),
        "Redis took a client without a certificate"
    );
    assert!(redis.daily().is_empty());

    let store = UsageStore::redis(&redis.url(), store_options(pki.client_tls())).expect("store");
    let now = now_ns();
    for i in 0..250 {
        store.record(&tx(if i % 5 == 0 { "/api/b" } else { "/api/a" }, now));
    }
    store.flush().await.expect("flush over TLS");
    assert_eq!(
        redis.daily(),
        HashMap::from([("/api/a:GET".into(), 200), ("/api/b:GET".into(), 50)])
    );
    let stats = store.stats();
    assert_eq!(
        (stats.write_failures, stats.pending, stats.dropped),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn rediss_with_a_wrong_ca_fails_clearly_keeps_the_increments_and_writes_them_once_trusted() {
    let pki = Pki::new();
    // Redis presents a certificate of another CA than the one the agent trusts.
    let redis = TlsRedis::start(&pki, "wrong-server");
    let store = UsageStore::redis(&redis.url(), store_options(pki.client_tls())).expect("store");
    let now = now_ns();
    for _ in 0..100 {
        store.record(&tx("/api/a", now));
    }
    let err = store
        .flush()
        .await
        .expect_err("untrusted Redis")
        .to_string();
    eprintln!("the store's error line: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("invalid peer certificate") && err.contains("UnknownIssuer"),
        "{err}"
    );
    for _ in 0..20 {
        store.record(&tx("/api/a", now));
    }
    assert!(store.flush().await.is_err());
    let stats = store.stats();
    assert_eq!(stats.write_failures, 2, "two failed flushes, counted");
    assert_eq!(stats.pending, 3, "the increments wait (three keys)");
    assert_eq!(stats.dropped, 0);
    assert!(redis.daily().is_empty());

    // Redis now presents a certificate of the trusted CA (TLS settings change at run time).
    let mut plain = redis.plain().expect("plain");
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("tls-cert-file")
        .arg(pki.p("server.pem"))
        .arg("tls-key-file")
        .arg(pki.p("server.key"))
        .query::<()>(&mut plain)
        .expect("CONFIG SET tls-cert-file");
    let deadline = Instant::now() + WAIT;
    while store.flush().await.is_err() {
        assert!(Instant::now() < deadline, "the store never reconnected");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(redis.daily(), HashMap::from([("/api/a:GET".into(), 120)]));
    let stats = store.stats();
    assert_eq!((stats.pending, stats.dropped), (0, 0));
}
