//! Every request the server answered is counted, the ones only the server understood included:
//! garbage request lines, a TLS hello to the plain port, lower-case methods, spaces in the
//! target, an unknown HTTP version, malformed headers, CONNECT, LF-only heads and an HTTP/0.9
//! simple request, sent raw with nc to a real nginx in a private namespace. The agent's
//! `api_requests_total` by status must equal nginx's access log, its 400s included.
//!
//! Run: `cargo xtask integration-test malformed_requests` (root).

use apitap_e2e::metrics::Metrics;
use apitap_e2e::netns::Netns;
use apitap_e2e::nginx::Access;
use apitap_e2e::scenario::ApiHost;
use apitap_e2e::{require_root, require_tool};
use std::collections::BTreeMap;
use std::time::Duration;

const PORT: u16 = 18086;
const TOKEN: &str = "e2e-token-malformed";

/// Raw requests (printf format), each on its own connection, and how many of each.
const GARBAGE: &[(&str, usize)] = &[
    // nginx: 400, method "-".
    ("GARBAGE\\r\\n\\r\\n", 3),
    ("get /api/health HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n", 2),
    ("\\026\\003\\001\\000\\005hello", 2),
    ("GET /a b c HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n", 1),
    // nginx: 505, method "-".
    ("GET /api/health HTTP/2.0\\r\\nHost: x\\r\\n\\r\\n", 1),
];
/// Malformed headers after a good request line: nginx 400 with the method logged.
const BAD_HEADERS: &[(&str, usize)] = &[(
    "GET /api/health HTTP/1.1\\r\\nHost: x\\r\\nBad Header\\r\\n\\r\\n",
    2,
)];
/// Well-formed requests nginx serves, or refuses with a status for its own reasons (CONNECT,
/// a second Host header): ordinary transactions with that status.
const ODD_BUT_HTTP: &[(&str, usize)] = &[
    (
        "GET /api/health HTTP/1.1\\nHost: x\\nConnection: close\\n\\n",
        3,
    ),
    (
        "CONNECT example.com:443 HTTP/1.1\\r\\nHost: example.com\\r\\n\\r\\n",
        1,
    ),
    (
        "GET /api/health HTTP/1.1\\r\\nHost: x\\r\\nHost: y\\r\\n\\r\\n",
        1,
    ),
];
/// A good request, then garbage on the same keep-alive connection (two log lines each).
const KEEP_ALIVE_GARBAGE: (&str, usize) = (
    "GET /api/health HTTP/1.1\\r\\nHost: x\\r\\n\\r\\nGARBAGE\\r\\n\\r\\n",
    2,
);
/// HTTP/0.9: nginx answers with the body alone and logs 200; on the wire there is no status.
const HTTP09: (&str, usize) = ("GET /api/health\\r\\n", 1);

fn send(ns: &Netns, raw: &str, times: usize) {
    for _ in 0..times {
        ns.sh(&format!(
            "printf '{raw}' | timeout 5 nc -q 1 127.0.0.1 {PORT} >/dev/null || true"
        ))
        .expect("nc");
    }
}

fn by_status(log: &[Access]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for a in log {
        *out.entry(a.status.to_string()).or_default() += 1;
    }
    out
}

fn count(list: &[(&str, usize)]) -> u64 {
    list.iter().map(|(_, n)| *n as u64).sum()
}

#[test]
fn malformed_requests_the_server_answered_are_counted_like_nginx_logs_them() {
    require_root();
    for (tool, package) in [
        ("nc", "netcat-openbsd"),
        ("nginx", "nginx"),
        ("curl", "curl"),
    ] {
        require_tool(tool, package);
    }
    let host = ApiHost::start("at-bad-", PORT);
    let log_path = host.dir.path().join("requests.jsonl");
    let log_arg = log_path.display().to_string();
    let mut agent = host.agent(TOKEN, &["--log", &log_arg]);
    let ns = &host.ns;
    for list in [GARBAGE, BAD_HEADERS, ODD_BUT_HTTP] {
        for (raw, n) in list {
            send(ns, raw, *n);
        }
    }
    send(ns, KEEP_ALIVE_GARBAGE.0, KEEP_ALIVE_GARBAGE.1);
    send(ns, HTTP09.0, HTTP09.1);
    ns.sh(&format!(
        "curl -s -o /dev/null --max-time 5 http://127.0.0.1:{PORT}/api/users/1"
    ))
    .expect("curl");

    let log = host.nginx.access().expect("access log");
    let keep_alive = KEEP_ALIVE_GARBAGE.1 as u64;
    let garbage = count(GARBAGE) + keep_alive;
    let lines = log.len() as u64;
    assert_eq!(
        lines,
        count(GARBAGE) + count(BAD_HEADERS) + count(ODD_BUT_HTTP) + 2 * keep_alive + 1 + 1,
        "nginx logged {log:#?}"
    );
    let m: Metrics = agent
        .scrape_until(Duration::from_secs(15), |m| {
            m.sum("api_requests_total", &[]) == lines
        })
        .expect("scrape");
    let families = m.family("api_requests_total");
    assert_eq!(m.sum("api_requests_total", &[]), lines, "{families:?}");

    // By status, exactly as nginx logged them; nginx's 200 for the HTTP/0.9 request is a
    // response without a status line on the wire, so apitap records no status for it.
    let http09 = HTTP09.1 as u64;
    for (status, n) in by_status(&log) {
        let want = if status == "200" { n - http09 } else { n };
        assert_eq!(
            m.sum("api_requests_total", &[("status", &status)]),
            want,
            "status {status}: {families:?}"
        );
    }
    assert_eq!(m.sum("api_requests_total", &[("status", "")]), http09);

    // What nginx could not parse: one method and one endpoint, `_OTHER` and `malformed`.
    assert_eq!(
        m.sum(
            "api_requests_total",
            &[("method", "_OTHER"), ("endpoint", "malformed")]
        ),
        garbage,
        "{families:?}"
    );
    assert_eq!(
        m.sum("api_requests_total", &[("endpoint", "malformed")]),
        garbage + count(BAD_HEADERS),
        "{families:?}"
    );
    assert_eq!(
        m.sum("api_errors_total", &[("error_type", "malformed_request")]),
        garbage + count(BAD_HEADERS),
        "{:?}",
        m.family("api_errors_total")
    );
    assert_eq!(
        m.sum("api_errors_total", &[("error_type", "server_error")]),
        GARBAGE[4].1 as u64,
        "the 505s are server errors too"
    );
    assert_eq!(m.sum("apitap_non_http_flows_total", &[]), 0);

    agent.terminate().expect("agent stops");
    let records = std::fs::read_to_string(&log_path).expect("request log");
    let malformed = records
        .lines()
        .filter(|l| l.contains(r#""http.request.method":"_OTHER""#))
        .filter(|l| l.contains(r#""http.route":"malformed""#))
        .filter(|l| l.contains(r#""error.type":"malformed_request""#))
        .count() as u64;
    assert_eq!(malformed, garbage, "{records}");
    assert!(records.contains(r#""network.protocol.version":"0.9""#));
}
