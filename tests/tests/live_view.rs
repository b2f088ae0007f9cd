//! The live views against a live agent watching a real nginx, as root, in a private network
//! namespace: headless Chromium (Debian's `chromium`, over the DevTools pipe) drives the page,
//! `apitap top` runs in tmux. What they show must equal /metrics at the same moment.
//!
//! Screenshots are kept under `target/e2e-artifacts/` (CI artefacts).
//! Run: `flock /tmp/apitap-root.lock cargo xtask integration-test live_view`.

use apitap_e2e::agent::{Agent, apitap_bin};
use apitap_e2e::chromium::Chromium;
use apitap_e2e::metrics::Metrics;
use apitap_e2e::netns::Netns;
use apitap_e2e::scenario::{ApiHost, LISTEN};
use apitap_e2e::tmux::Tmux;
use apitap_e2e::{require_root, require_tool};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

const PORT: u16 = 18093;
const TOKEN: &str = "live-view-token-91c2e";
const WRONG: &str = "not-the-token-5e1f";
const KEY_ALPHA: (&str, &str) = ("key-alpha-7f3c9", "key:dc14d3ffd070");
const KEY_BETA: (&str, &str) = ("key-beta-51d0e", "key:5db5ba6f98c4");
const WAIT: Duration = Duration::from_secs(20);

/// `target/e2e-artifacts/` of the target dir this test was built into.
fn artifacts() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.ancestors()
        .nth(3)
        .expect("test binary inside a target dir")
        .join("e2e-artifacts")
}

/// Known traffic: several endpoints, two API keys with 429s and 401s, plain clients.
fn drive(ns: &Netns) {
    let base = format!("http://127.0.0.1:{PORT}");
    let urls = |path: &str, n: usize| -> String {
        (0..n)
            .map(|_| format!("'{base}{path}'"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let users: String = (1..=12)
        .map(|i| format!("'{base}/api/users/{i}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let curl = |key: Option<&str>, urls: String| {
        let header = key.map_or(String::new(), |k| format!("-H 'X-API-Key: {k}'"));
        ns.sh(&format!(
            "curl -s --max-time 20 {header} -o /dev/null {urls}"
        ))
        .expect("curl");
    };
    curl(Some(KEY_ALPHA.0), users);
    curl(Some(KEY_ALPHA.0), urls("/api/limited", 5));
    curl(Some(KEY_ALPHA.0), urls("/api/secure", 2));
    curl(Some(KEY_BETA.0), urls("/api/limited", 3));
    curl(Some(KEY_BETA.0), urls("/api/health", 9));
    curl(None, urls("/api/fail", 4));
    ns.sh(&format!(
        "ab -q -n 100 -c 2 -k {base}/api/users/7 >/dev/null"
    ))
    .expect("ab");
}

/// Rows of a table as the page shows them: `(key, shown text of each column)`.
fn dom_rows(page: &mut Chromium, table: &str, cols: &[&str]) -> Vec<Value> {
    let cols: Vec<String> = cols.iter().map(|c| format!("'{c}'")).collect();
    let js = format!(
        "[...document.querySelectorAll('#{table} tbody tr')].map(tr => {{ \
           const o = Object.assign({{}}, tr.dataset); \
           for (const c of [{}]) o[c] = tr.querySelector('td.' + c).textContent; \
           return o; }})",
        cols.join(",")
    );
    page.eval(&js)
        .expect("rows")
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// "1,234" as shown -> 1234.
fn shown(v: &Value) -> u64 {
    let text = v.as_str().expect("text");
    text.replace(',', "")
        .parse()
        .unwrap_or_else(|_| panic!("not a count: {text:?}"))
}

fn is_visible(id: &str) -> String {
    format!("!document.getElementById('{id}').hidden")
}

/// The page: sign-in refused with a wrong token, then the dashboard, its numbers against
/// /metrics, sorting, no token anywhere but session storage, and the message when the agent
/// is gone. Then `apitap top` in tmux against the same agent.
#[test]
fn the_page_and_top_show_what_metrics_count() {
    require_root();
    for (tool, package) in [
        ("curl", "curl"),
        ("ab", "apache2-utils"),
        ("chromium", "chromium"),
        ("tmux", "tmux"),
    ] {
        require_tool(tool, package);
    }
    let host = ApiHost::start("ui-", PORT);
    let mut agent = host.agent(TOKEN, &[]);
    drive(&host.ns);
    let nginx_total = host.nginx.access().expect("access log").len() as u64;
    assert_eq!(nginx_total, 12 + 5 + 2 + 3 + 9 + 4 + 100);
    let m = agent
        .scrape_until(WAIT, |m| m.sum("api_requests_total", &[]) == nginx_total)
        .expect("scrape");
    assert_eq!(m.sum("api_requests_total", &[]), nginx_total, "{:?}", m.0);
    // The moment to compare at: a snapshot taken after the counts settled.
    let (_, body) = agent
        .get("/api/v1/endpoints?top=1", Some(TOKEN))
        .expect("api");
    let settled: Value = serde_json::from_str(&body).expect("json");
    let settled = settled["timestamp"]
        .as_str()
        .expect("timestamp")
        .to_string();

    gzip_checks(&host);
    page_checks(&host, &mut agent, &m, &settled);
    top_checks(&host, &agent, &m);

    // The agent goes away: the page says so plainly (checked in page_checks' tail below).
    agent.terminate().expect("agent stops");
}

/// Bytes on the wire of GET `path` with and without `Accept-Encoding: gzip` (curl inside the
/// namespace; `--compressed` checks that the gzip body decodes).
fn wire_sizes(host: &ApiHost, path: &str) -> (u64, u64) {
    let auth = format!("-H 'Authorization: Bearer {TOKEN}'");
    let size = |extra: &str| -> u64 {
        host.ns
            .sh(&format!(
                "curl -sf {auth} {extra} -o /dev/null -w '%{{size_download}}' 'http://{LISTEN}{path}'"
            ))
            .expect("curl")
            .trim()
            .parse()
            .expect("a size")
    };
    (size(""), size("--compressed"))
}

fn gzip_checks(host: &ApiHost) {
    for path in ["/metrics", "/api/v1/series", "/api/v1/endpoints?top=100"] {
        let (plain, gzip) = wire_sizes(host, path);
        eprintln!("{path}: {plain} bytes plain, {gzip} bytes gzip");
        assert!(
            gzip * 2 < plain,
            "{path}: {gzip} gzip vs {plain} plain bytes"
        );
    }
}

fn page_checks(host: &ApiHost, agent: &mut Agent, m: &Metrics, settled: &str) {
    let mut page = Chromium::start(Some(&host.ns), 1400, 1000).expect("chromium");
    page.navigate(&format!("http://{LISTEN}/"))
        .expect("navigate");

    // Sign-in: asked once; a wrong token is refused and forgotten.
    page.wait_for(&is_visible("signin"), WAIT, "the sign-in form")
        .expect("sign-in");
    page.eval("document.getElementById('token').focus()")
        .expect("focus");
    page.type_and_enter(WRONG).expect("type");
    let reason = page
        .wait_for(
            "document.getElementById('signin-reason').className === 'refused' && \
             document.getElementById('signin-reason').textContent",
            WAIT,
            "the refusal",
        )
        .expect("refused");
    assert!(reason.as_str().unwrap_or("").contains("403"), "{reason}");
    assert_eq!(
        page.eval("sessionStorage.getItem('apitap.token')")
            .expect("eval"),
        Value::Null
    );
    page.screenshot(&artifacts().join("live-view-signin.png"))
        .expect("screenshot");

    // The right token: the dashboard, once the page shows a snapshot taken after the counts
    // settled.
    page.eval("document.getElementById('token').focus()")
        .expect("focus");
    page.type_and_enter(TOKEN).expect("type");
    page.wait_for(
        &format!(
            "{} && (document.body.dataset.snapshot || '') >= '{settled}'",
            is_visible("dash")
        ),
        WAIT,
        "the dashboard at the settled snapshot",
    )
    .expect("dashboard");

    // Endpoints: every row's count equals api_requests_total for that series.
    let rows = dom_rows(&mut page, "endpoints-table", &["count"]);
    assert!(!rows.is_empty());
    let mut shown_total = 0;
    for r in &rows {
        let (svc, method, endpoint) = (
            r["service"].as_str().expect("service"),
            r["method"].as_str().expect("method"),
            r["endpoint"].as_str().expect("endpoint"),
        );
        let service = svc.rsplit('/').next().unwrap_or(svc);
        let want = m.sum(
            "api_requests_total",
            &[
                ("service", service),
                ("method", method),
                ("endpoint", endpoint),
            ],
        );
        assert_eq!(shown(&r["count"]), want, "{method} {endpoint}");
        shown_total += want;
    }
    assert_eq!(shown_total, m.sum("api_requests_total", &[]));
    assert!(
        rows.iter()
            .any(|r| r["endpoint"] == "/api/users/{id}" && shown(&r["count"]) == 112),
        "{rows:?}"
    );

    // Clients: requests, 429s and 401/403s per client equal the metrics.
    let clients = dom_rows(
        &mut page,
        "clients-table",
        &["count", "rate-limited", "auth-failures"],
    );
    for (key, limited, auth) in [(KEY_ALPHA.1, 5, 2), (KEY_BETA.1, 3, 0)] {
        let row = clients
            .iter()
            .find(|c| c["client"] == key)
            .unwrap_or_else(|| panic!("{key} not shown: {clients:?}"));
        let rl = m.sum("api_rate_limit_hits_total", &[("client", key)]);
        assert_eq!(
            (shown(&row["rate-limited"]), rl),
            (limited, limited),
            "{key}"
        );
        assert_eq!(
            shown(&row["auth-failures"]),
            m.sum("api_auth_failures_total", &[("client", key)])
        );
        assert_eq!(auth, shown(&row["auth-failures"]));
        assert_eq!(
            shown(&row["count"]),
            m.sum("api_client_requests_total", &[("client", key)])
        );
    }

    // Capture health shows the attached interface; services show a rate line.
    let capture = page
        .eval("document.querySelector('#capture-list dd[data-field=interfaces]').textContent")
        .expect("capture");
    assert!(
        capture.as_str().unwrap_or("").starts_with("lo "),
        "{capture}"
    );
    let spark = page
        .eval("document.querySelector('.card .spark-req').getAttribute('d').length")
        .expect("sparkline");
    assert!(spark.as_u64().unwrap_or(0) > 10, "a drawn requests line");

    // Nothing of the token outside session storage: not in the DOM, the URL, or any URL the
    // page fetched.
    let leaks = page
        .eval(&format!(
            "[document.documentElement.outerHTML.includes('{TOKEN}'), location.href.includes('{TOKEN}'), \
              performance.getEntriesByType('resource').some(e => e.name.includes('{TOKEN}')), \
              document.documentElement.outerHTML.includes('{WRONG}'), \
              sessionStorage.getItem('apitap.token') === '{TOKEN}']"
        ))
        .expect("eval");
    assert_eq!(leaks, serde_json::json!([false, false, false, false, true]));
    page.screenshot(&artifacts().join("live-view.png"))
        .expect("screenshot");

    // Sorting by error rate puts /api/fail (4 of 4 failed) first.
    page.eval("document.querySelector('#endpoints-table th[data-sort=error_rate]').click()")
        .expect("click");
    page.wait_for(
        "document.querySelector('#endpoints-table tbody tr').dataset.endpoint === '/api/fail'",
        WAIT,
        "the error-rate order",
    )
    .expect("sorted");

    // Unreachable agent: a plain message, not stale numbers.
    agent.terminate().expect("agent stops");
    page.wait_for(&is_visible("down"), WAIT, "the unreachable message")
        .expect("down");
    let text = page
        .eval("document.getElementById('down').textContent")
        .expect("text");
    assert!(
        text.as_str().unwrap_or("").contains("not answering"),
        "{text}"
    );
    assert_eq!(
        page.eval(&is_visible("dash")).expect("eval"),
        Value::Bool(false)
    );
    page.screenshot(&artifacts().join("live-view-down.png"))
        .expect("screenshot");
    // Restart for `top`.
    *agent = host.agent(TOKEN, &[]);
}

fn top_checks(host: &ApiHost, agent: &Agent, m: &Metrics) {
    // The restarted agent starts from zero: drive the same traffic again and settle.
    drive(&host.ns);
    let total = m.sum("api_requests_total", &[]);
    let now = agent
        .scrape_until(WAIT, |x| x.sum("api_requests_total", &[]) == total)
        .expect("scrape");
    let users = now.sum(
        "api_requests_total",
        &[("method", "GET"), ("endpoint", "/api/users/{id}")],
    );
    assert_eq!(users, 112);

    let exit_file = host.dir.path().join("top-exit");
    let line = format!(
        "ip netns exec {} {} top --url http://{LISTEN} --token {TOKEN} --interval 1; echo \"exit=$?\" > {}",
        host.ns.name,
        apitap_bin().display(),
        exit_file.display()
    );
    let tmux = Tmux::start(&line, 160, 48).expect("tmux");
    let screen = tmux
        .wait_for(WAIT, "the nginx endpoint with its count", |s| {
            s.lines()
                .any(|l| l.contains("/api/users/{id}") && l.contains(" 112 "))
        })
        .expect("top shows the endpoint");
    std::fs::write(artifacts().join("top.txt"), &screen).expect("write screen");
    let row = screen
        .lines()
        .find(|l| l.contains("/api/users/{id}"))
        .expect("row");
    let cells: Vec<&str> = row.split_whitespace().collect();
    let at = cells
        .iter()
        .position(|c| *c == "/api/users/{id}")
        .expect("endpoint cell");
    assert_eq!(cells[at - 1], "GET", "{row}");
    assert_eq!(cells[at + 1].replace(',', ""), users.to_string(), "{row}");

    // Keys: sort by error rate, then quit with exit code 0.
    tmux.send_keys(&["s"]).expect("keys");
    tmux.wait_for(WAIT, "the error-rate sort", |s| {
        s.contains("sorted by error rate")
    })
    .expect("sorted");
    tmux.send_keys(&["q"]).expect("keys");
    let deadline = std::time::Instant::now() + WAIT;
    while !exit_file.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let exit = std::fs::read_to_string(&exit_file).expect("top exited");
    assert_eq!(exit.trim(), "exit=0");
    assert!(!tmux.alive(), "the session ends with top");
}
