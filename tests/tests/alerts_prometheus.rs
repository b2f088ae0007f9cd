//! Alerts and Prometheus end to end, as root: an error burst against a real nginx fires the
//! error-rate alert, which reaches a webhook receiver and a real Alertmanager, shows in
//! /api/v1/alerts and /health, and resolves once healthy traffic dilutes the window; a real
//! Prometheus scrapes the agent and evaluates the shipped rules.
//!
//! Everything runs inside a private network namespace. Run:
//! `cargo xtask integration-test alerts_prometheus`.

use apitap_e2e::netns::Netns;
use apitap_e2e::scenario::{ApiHost, LISTEN};
use apitap_e2e::{TempDir, repo_root, require_root, require_tool};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const PORT: u16 = 18082;
const TOKEN: &str = "e2e-token-a1e7";
const HOOK_PORT: u16 = 18099;
const AM_PORT: u16 = 19093;

/// A child process killed on drop.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A webhook receiver inside `ns` that appends every POSTed body as one line to `out`.
fn webhook_receiver(ns: &Netns, out: &std::path::Path) -> Guard {
    let script = format!(
        r#"
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open({out:?}, "ab") as f:
            f.write(body.replace(b"\n", b" ") + b"\n")
        self.send_response(200)
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", {HOOK_PORT}), H).serve_forever()
"#,
        out = out.display().to_string()
    );
    Guard(
        ns.cmd("python3", &["-c", &script])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("webhook receiver"),
    )
}

/// Debian's Alertmanager inside `ns` with a do-nothing receiver.
fn alertmanager(ns: &Netns, dir: &TempDir) -> Guard {
    require_tool("prometheus-alertmanager", "prometheus-alertmanager");
    let conf = dir.path().join("alertmanager.yml");
    std::fs::write(
        &conf,
        "route:\n  receiver: sink\nreceivers:\n  - name: sink\n",
    )
    .expect("alertmanager config");
    let args = [
        format!("--config.file={}", conf.display()),
        format!("--storage.path={}", dir.path().join("am").display()),
        format!("--web.listen-address=127.0.0.1:{AM_PORT}"),
        "--cluster.listen-address=".to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let g = Guard(
        ns.cmd("prometheus-alertmanager", &args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("alertmanager"),
    );
    wait_for("alertmanager ready", Duration::from_secs(15), || {
        ns.sh(&format!(
            "curl -sf -o /dev/null http://127.0.0.1:{AM_PORT}/-/ready"
        ))
        .is_ok()
    });
    g
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn notifications(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn has(path: &std::path::Path, name: &str, status: &str) -> bool {
    notifications(path)
        .iter()
        .any(|n| n["name"] == name && n["status"] == status)
}

#[test]
fn an_error_burst_fires_reaches_webhook_and_alertmanager_then_resolves() {
    require_root();
    require_tool("ab", "apache2-utils");
    require_tool("python3", "python3");
    let host = ApiHost::start("at-alr-", PORT);
    let (ns, nginx, dir) = (&host.ns, &host.nginx, &host.dir);
    let hook_log = dir.path().join("webhook.jsonl");
    let _hook = webhook_receiver(ns, &hook_log);
    let _am = alertmanager(ns, dir);
    // /health must follow the service check alone: blind to the machine's disk and memory.
    let conf = host.config(&format!(
        "[alerts]\nfor_secs = 0\nmin_requests = 5\nrpm_warning = 100000\nrpm_critical = 200000\n\
         webhook = \"http://127.0.0.1:{HOOK_PORT}/hook\"\n\
         alertmanager_url = \"http://127.0.0.1:{AM_PORT}\"\n"
    ));
    let agent = host.agent(TOKEN, &["-c", &conf]);

    // The burst: 100 % errors.
    ns.sh(&format!(
        "ab -q -n 100 -c 2 http://127.0.0.1:{PORT}/api/fail >/dev/null"
    ))
    .expect("ab burst");
    wait_for("the firing webhook", Duration::from_secs(20), || {
        has(&hook_log, "ApiErrorRateHigh", "firing")
    });
    let fired: Vec<serde_json::Value> = notifications(&hook_log)
        .into_iter()
        .filter(|n| n["name"] == "ApiErrorRateHigh" && n["status"] == "firing")
        .collect();
    assert!(
        fired.iter().any(|n| n["severity"] == "critical"),
        "{fired:?}"
    );
    for n in &fired {
        // nginx serves on the agent's own host: the service is named by its process.
        assert_eq!(n["service"], "nginx");
        assert!(n["value"].as_f64().expect("value") >= n["threshold"].as_f64().expect("threshold"));
        assert!(n["started_at"].as_str().is_some_and(|s| s.ends_with('Z')));
    }
    let (code, body) = agent.get("/api/v1/alerts", Some(TOKEN)).expect("alerts");
    assert_eq!(code, 200);
    let alerts: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert!(alerts["firing"].as_u64().expect("firing") >= 1, "{alerts}");
    let (code, health) = agent.get("/health", None).expect("health");
    assert_eq!(
        code, 503,
        "a critical service check makes /health 503: {health}"
    );
    assert!(health.contains("\"critical\""), "{health}");
    wait_for(
        "Alertmanager to list the alert",
        Duration::from_secs(15),
        || {
            ns.sh(&format!(
                "curl -sf http://127.0.0.1:{AM_PORT}/api/v2/alerts"
            ))
            .map(|out| out.contains("ApiErrorRateHigh") && out.contains("\"service\":\"nginx\""))
            .unwrap_or(false)
        },
    );

    // Healthy traffic dilutes the 5-minute window below both thresholds: resolved, once.
    ns.sh(&format!(
        "ab -q -n 2500 -c 4 -k http://127.0.0.1:{PORT}/api/health >/dev/null"
    ))
    .expect("ab healthy");
    wait_for("the resolved webhook", Duration::from_secs(20), || {
        has(&hook_log, "ApiErrorRateHigh", "resolved")
    });
    let all = notifications(&hook_log);
    let count = |status: &str, severity: &str| {
        all.iter()
            .filter(|n| {
                n["name"] == "ApiErrorRateHigh"
                    && n["status"] == status
                    && n["severity"] == severity
            })
            .count()
    };
    assert_eq!(count("firing", "critical"), 1, "no repeat storm: {all:?}");
    assert_eq!(count("resolved", "critical"), 1, "{all:?}");
    let (code, health) = agent.get("/health", None).expect("health");
    assert_eq!(
        code, 200,
        "healthy again after the burst was diluted: {health}"
    );
    let m = agent.scrape().expect("scrape");
    assert_eq!(
        m.sum("api_requests_total", &[]),
        nginx.access().expect("log").len() as u64
    );
}

#[test]
fn a_real_prometheus_scrapes_the_agent_and_evaluates_the_rules() {
    require_root();
    require_tool("prometheus", "prometheus");
    let host = ApiHost::start("at-prm-", PORT);
    let (ns, nginx) = (&host.ns, &host.nginx);
    let agent = host.agent(TOKEN, &[]);
    ns.sh(&format!(
        "ab -q -n 300 -c 2 -k http://127.0.0.1:{PORT}/api/users/5 >/dev/null"
    ))
    .expect("ab");
    agent
        .scrape_until(Duration::from_secs(10), |m| {
            m.sum("api_requests_total", &[]) == 300
        })
        .expect("scrape");
    let script = repo_root().join("deploy/prometheus-scrape-test.sh");
    let out = ns
        .cmd(
            "bash",
            &[
                script.to_str().expect("utf-8 path"),
                &format!("http://{LISTEN}"),
                "--timeout",
                "45",
                "--require",
                "api_requests_total",
                "--require",
                "api_request_duration_seconds_bucket",
                "--require",
                "apitap_events_lost_total",
            ],
        )
        .output()
        .expect("scrape test");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "prometheus scrape test failed:\n{text}"
    );
    assert_eq!(nginx.access().expect("log").len(), 300);
}
