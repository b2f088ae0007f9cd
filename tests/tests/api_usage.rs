//! Analytics end to end, as root, against nginx's own access log: metrics per status, rate
//! limits, auth failures, route templates, client identity, the usage API and its auth, the
//! request log, the embedded store across a restart, and Redis (keys, TTLs, an outage).
//!
//! Each test runs nginx, the agent (and Redis) inside a private network namespace on its lo,
//! so the host's own traffic never mixes in. Run: `cargo xtask integration-test api_usage`.

use apitap_e2e::agent::Agent;
use apitap_e2e::metrics::Metrics;
use apitap_e2e::netns::Netns;
use apitap_e2e::nginx::{Access, Nginx};
use apitap_e2e::redis::Redis;
use apitap_e2e::scenario::ApiHost;
use apitap_e2e::{require_root, require_tool};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const PORT: u16 = 18081;
const TOKEN: &str = "e2e-token-4b1d";
/// API keys and their `client` label (`key:` + 12 hex of SHA-256).
const KEY_ALPHA: (&str, &str) = ("key-alpha-7f3c9", "key:dc14d3ffd070");
const KEY_BETA: (&str, &str) = ("key-beta-51d0e", "key:5db5ba6f98c4");
/// An unsigned JWT whose payload is {"sub":"alice","iat":1}.
const JWT_ALICE: &str = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSIsImlhdCI6MX0.sig";
/// Secrets sent on purpose; none may reach the request log.
const SECRETS: &[&str] = &[
    "supersecret-q-9a8b",
    "bearer-secret-77c1",
    "session-cookie-d00d",
    KEY_ALPHA.0,
    KEY_BETA.0,
];

fn tools() {
    require_root();
    for (tool, package) in [
        ("curl", "curl"),
        ("ab", "apache2-utils"),
        ("nginx", "nginx"),
    ] {
        require_tool(tool, package);
    }
}

/// One curl request from inside the namespace; extra arguments are passed as they are.
fn curl(ns: &Netns, path: &str, extra: &str) {
    ns.sh(&format!(
        "curl -s -o /dev/null --max-time 10 {extra} 'http://127.0.0.1:{PORT}{path}'"
    ))
    .expect("curl");
}

/// The scripted traffic: known requests of every status, three kinds of client identity.
fn drive(ns: &Netns) {
    let alpha = format!("-H 'X-API-Key: {}'", KEY_ALPHA.0);
    let beta = format!("-H 'X-API-Key: {}'", KEY_BETA.0);
    let jwt = format!("-H 'Authorization: Bearer {JWT_ALICE}'");
    for i in 1..=10 {
        curl(ns, &format!("/api/users/{i}"), &alpha);
    }
    for i in 1..=5 {
        curl(ns, &format!("/api/users/{}/orders", 100 + i), &jwt);
    }
    for _ in 0..3 {
        curl(
            ns,
            "/api/orders",
            &format!(
                "{alpha} -X POST -H 'Content-Type: application/json' --data '{{\"sku\":\"a\"}}'"
            ),
        );
    }
    for i in 0..2 {
        curl(ns, &format!("/api/items/{i}"), "-X DELETE");
    }
    for _ in 0..2 {
        curl(ns, "/api/cached", "");
    }
    for _ in 0..4 {
        curl(ns, "/api/secure", &jwt);
    }
    for _ in 0..3 {
        curl(ns, "/api/admin", &alpha);
    }
    for _ in 0..2 {
        curl(ns, "/nope", "");
    }
    for _ in 0..6 {
        curl(ns, "/api/limited", &beta);
    }
    for _ in 0..2 {
        curl(ns, "/api/fail", "");
    }
    curl(ns, "/api/down", "");
    // Secrets in a header, a cookie and a redacted query key, with a request id to look up.
    curl(
        ns,
        &format!("/api/users/77?fields=name&token={}", SECRETS[0]),
        &format!(
            "-H 'Authorization: Bearer {}' -H 'Cookie: session={}' -H 'X-Request-ID: e2e-req-1'",
            SECRETS[1], SECRETS[2]
        ),
    );
    ns.sh(&format!(
        "ab -q -n 200 -c 4 -k -H 'X-API-Key: {}' http://127.0.0.1:{PORT}/api/users/123 >/dev/null",
        KEY_ALPHA.0
    ))
    .expect("ab -k");
    ns.sh(&format!(
        "ab -q -n 50 -c 2 http://127.0.0.1:{PORT}/api/health >/dev/null"
    ))
    .expect("ab");
}

/// Waits until the agent has counted as many requests as nginx logged.
fn settle(agent: &Agent, nginx: &Nginx) -> (Metrics, Vec<Access>) {
    let log = nginx.access().expect("access log");
    let want = log.len() as u64;
    let m = agent
        .scrape_until(Duration::from_secs(15), |m| {
            m.sum("api_requests_total", &[]) == want
        })
        .expect("scrape");
    (m, log)
}

fn by_status(log: &[Access]) -> BTreeMap<u16, u64> {
    let mut out = BTreeMap::new();
    for a in log {
        *out.entry(a.status).or_default() += 1;
    }
    out
}

/// Polls `path` (with the token) until `done` holds on its JSON body, or 10 s pass.
fn api_until(
    agent: &Agent,
    path: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (code, body) = agent.get(path, Some(TOKEN)).expect("api");
        assert_eq!(code, 200, "{path}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        if done(&v) || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Sum of every count in a `usage_by_date` answer.
fn usage_total(v: &serde_json::Value) -> u64 {
    v["usage_by_date"]
        .as_object()
        .map(|days| {
            days.values()
                .filter_map(|d| d.as_object())
                .flat_map(|d| d.values())
                .filter_map(|n| n.as_u64())
                .sum()
        })
        .unwrap_or(0)
}

fn usage_field(v: &serde_json::Value, field: &str) -> u64 {
    v["usage_by_date"]
        .as_object()
        .map(|days| days.values().filter_map(|d| d[field].as_u64()).sum())
        .unwrap_or(0)
}

#[test]
fn metrics_usage_and_request_log_equal_the_nginx_access_log() {
    tools();
    let host = ApiHost::start("at-api-", PORT);
    let (ns, nginx) = (&host.ns, &host.nginx);
    let log_path = host.dir.path().join("requests.jsonl");
    let log_arg = log_path.display().to_string();
    let agent = host.agent(TOKEN, &["--log", &log_arg]);
    drive(ns);
    let (m, log) = settle(&agent, nginx);
    let lines = log.len() as u64;
    assert_eq!(
        lines,
        10 + 5 + 3 + 2 + 2 + 4 + 3 + 2 + 6 + 2 + 1 + 1 + 200 + 50
    );

    // Requests: in total and per status, exactly as nginx logged them.
    assert_eq!(
        m.sum("api_requests_total", &[]),
        lines,
        "{:?}",
        m.family("api_requests_total")
    );
    for (status, n) in by_status(&log) {
        assert_eq!(
            m.sum("api_requests_total", &[("status", &status.to_string())]),
            n,
            "status {status}"
        );
    }
    let statuses = by_status(&log);
    let n = |s: u16| statuses.get(&s).copied().unwrap_or(0);
    assert_eq!(m.sum("api_rate_limit_hits_total", &[]), n(429));
    assert_eq!(
        m.sum("api_rate_limit_hits_total", &[("client", KEY_BETA.1)]),
        n(429),
        "429s are charged to the key that sent them"
    );
    assert_eq!(m.sum("api_auth_failures_total", &[]), n(401) + n(403));
    assert_eq!(
        m.sum(
            "api_auth_failures_total",
            &[("client", "sub:alice"), ("status", "401")]
        ),
        4
    );
    assert_eq!(
        m.sum(
            "api_auth_failures_total",
            &[("client", KEY_ALPHA.1), ("status", "403")]
        ),
        3
    );
    assert_eq!(
        m.sum("api_errors_total", &[("error_type", "server_error")]),
        n(500) + n(503)
    );
    assert_eq!(m.count("apitap_events_lost_total"), 0);

    // Endpoints are templates: no raw id anywhere.
    let endpoints: Vec<String> = m
        .family("api_requests_total")
        .into_iter()
        .filter_map(|(l, _)| l.get("endpoint").cloned())
        .collect();
    for e in &endpoints {
        assert!(
            !e.split('/')
                .any(|seg| !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit())),
            "raw id in endpoint {e}"
        );
    }
    assert_eq!(
        m.sum("api_requests_total", &[("endpoint", "/api/users/{id}")]),
        10 + 1 + 200
    );
    assert_eq!(
        m.sum(
            "api_requests_total",
            &[("endpoint", "/api/users/{id}/orders")]
        ),
        5
    );

    // Clients: API-key hash and JWT sub, never the key itself.
    assert_eq!(
        m.sum("api_client_requests_total", &[("client", KEY_ALPHA.1)]),
        10 + 3 + 3 + 200
    );
    assert_eq!(
        m.sum("api_client_requests_total", &[("client", "sub:alice")]),
        5 + 4
    );
    assert_eq!(m.sum("api_client_requests_total", &[]), lines);

    // The analytics API: auth first.
    assert_eq!(agent.get("/api/v1/usage", None).expect("get").0, 401);
    assert_eq!(
        agent.get("/api/v1/usage", Some("wrong")).expect("get").0,
        403
    );
    let usage = api_until(&agent, "/api/v1/usage?days=1", |v| usage_total(v) == lines);
    assert_eq!(usage_total(&usage), lines, "{usage}");
    assert_eq!(usage_field(&usage, "/api/users/{id}:GET"), 10 + 1 + 200);
    assert_eq!(usage_field(&usage, "/api/orders:POST"), 3);
    let clients = api_until(&agent, "/api/v1/usage/clients?days=1", |v| {
        usage_total(v) == lines
    });
    assert_eq!(usage_total(&clients), lines, "{clients}");
    assert_eq!(usage_field(&clients, "sub:alice"), 9);
    let (code, top) = agent
        .get("/api/v1/endpoints?top=3", Some(TOKEN))
        .expect("get");
    assert_eq!(code, 200);
    let top: serde_json::Value = serde_json::from_str(&top).expect("json");
    assert_eq!(top["endpoints"][0]["endpoint"], "/api/users/{id}", "{top}");
    assert_eq!(top["endpoints"][0]["count"], 211);
    let (code, found) = agent
        .get("/api/v1/requests/e2e-req-1", Some(TOKEN))
        .expect("get");
    assert_eq!(code, 200, "{found}");
    assert!(
        found.contains("\"url.query\":\"fields=name&token=REDACTED\""),
        "{found}"
    );

    // The request log: one line per nginx line (method, status, client port), no secret.
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if text.lines().count() as u64 >= lines || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut logged: Vec<(u16, String, u16)> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            (
                v["client.port"].as_u64().expect("port") as u16,
                v["http.request.method"]
                    .as_str()
                    .expect("method")
                    .to_string(),
                v["http.response.status_code"].as_u64().expect("status") as u16,
            )
        })
        .collect();
    let mut truth: Vec<(u16, String, u16)> = log
        .iter()
        .map(|a| (a.remote_port, a.method.clone(), a.status))
        .collect();
    logged.sort();
    truth.sort();
    assert_eq!(logged, truth, "request log vs access log");
    for secret in SECRETS {
        assert!(
            !text.contains(secret),
            "secret {secret} reached the request log"
        );
    }
}

#[test]
fn embedded_usage_survives_an_agent_restart() {
    tools();
    let host = ApiHost::start("at-rst-", PORT);
    let (ns, nginx) = (&host.ns, &host.nginx);
    let mut agent = host.agent(TOKEN, &[]);
    for i in 0..7 {
        curl(ns, &format!("/api/users/{i}"), "");
    }
    let v = api_until(&agent, "/api/v1/usage?days=1", |v| usage_total(v) == 7);
    assert_eq!(usage_total(&v), 7);
    let status = agent.terminate().expect("terminate");
    assert!(status.success(), "{}", agent.stderr());

    let agent = host.agent(TOKEN, &[]);
    let v = api_until(&agent, "/api/v1/usage?days=1", |_| true);
    assert_eq!(usage_total(&v), 7, "counts kept across the restart: {v}");
    for i in 0..3 {
        curl(ns, &format!("/api/users/{i}"), "");
    }
    let v = api_until(&agent, "/api/v1/usage?days=1", |v| usage_total(v) == 10);
    assert_eq!(usage_field(&v, "/api/users/{id}:GET"), 10, "{v}");
    assert_eq!(nginx.access().expect("log").len(), 10);
}

#[test]
fn redis_keys_equal_nginx_counts_through_a_redis_outage() {
    tools();
    let host = ApiHost::start("at-rds-", PORT);
    let (ns, nginx) = (&host.ns, &host.nginx);
    let mut redis = Redis::start(Some(ns), 16379).expect("redis");
    // /health must go 503 for the store alone and back to 200: blind to the machine's disk.
    let config = host.config("");
    let agent = host.agent(
        TOKEN,
        &[
            "--redis-url",
            "redis://127.0.0.1:16379",
            "--config",
            &config,
        ],
    );
    let daily = |r: &Redis| {
        r.sum_hashes("usage:daily:*", |k| !k.ends_with(":client"))
            .expect("redis")
    };
    let wait_daily = |r: &Redis, want: u64| {
        let deadline = Instant::now() + Duration::from_secs(15);
        while daily(r) != want && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        daily(r)
    };

    for i in 0..20 {
        curl(
            ns,
            &format!("/api/users/{i}"),
            &format!("-H 'X-API-Key: {}'", KEY_ALPHA.0),
        );
    }
    assert_eq!(wait_daily(&redis, 20), 20);

    // Outage: Redis goes away. The agent keeps new increments, /health says the store is
    // down, and after the restart it writes them: nothing is lost.
    redis.stop();
    for i in 0..15 {
        curl(ns, &format!("/api/users/{i}/orders"), "");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let health = loop {
        let (code, body) = agent.get("/health", None).expect("health");
        if code == 503 || Instant::now() > deadline {
            break (code, body);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(health.0, 503, "health during the outage: {}", health.1);
    let h: serde_json::Value = serde_json::from_str(&health.1).expect("json");
    assert_eq!(h["checks"]["store"]["status"], "critical", "{h}");
    redis.start_again().expect("redis restart");
    assert_eq!(wait_daily(&redis, 35), 35);
    let deadline = Instant::now() + Duration::from_secs(10);
    while agent.get("/health", None).expect("health").0 != 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(agent.get("/health", None).expect("health").0, 200);

    // Every SPEC key, with its expiry, holds exactly what nginx served after the restart.
    for i in 0..5 {
        curl(
            ns,
            &format!("/api/users/{i}"),
            &format!("-H 'X-API-Key: {}'", KEY_ALPHA.0),
        );
    }
    assert_eq!(wait_daily(&redis, 40), 40);
    let clients = redis
        .sum_hashes("usage:daily:*", |k| k.ends_with(":client"))
        .expect("redis");
    let hourly = redis.sum_hashes("usage:hourly:*", |_| true).expect("redis");
    assert_eq!(clients, 40);
    assert_eq!(hourly, 40);
    let keys = redis
        .cli(&["--scan", "--pattern", "usage:*"])
        .expect("keys");
    for key in keys.lines() {
        let ttl: u64 = redis
            .cli(&["TTL", key])
            .expect("ttl")
            .trim()
            .parse()
            .expect("number");
        let (lo, hi) = if key.starts_with("usage:hourly:") {
            (6 * 86_400, 7 * 86_400)
        } else {
            (29 * 86_400, 30 * 86_400)
        };
        assert!((lo..=hi).contains(&ttl), "{key} TTL {ttl}");
    }
    let fields = redis
        .cli(&["--scan", "--pattern", "usage:daily:????-??-??"])
        .expect("keys");
    let day = fields.lines().next().expect("a daily key").to_string();
    assert_eq!(
        redis
            .cli(&["HGET", &day, "/api/users/{id}:GET"])
            .expect("hget")
            .trim(),
        "25"
    );
    assert_eq!(
        redis
            .cli(&["HGET", &day, "/api/users/{id}/orders:GET"])
            .expect("hget")
            .trim(),
        "15"
    );
    assert_eq!(
        redis
            .cli(&["HGET", &format!("{day}:client"), KEY_ALPHA.1])
            .expect("hget")
            .trim(),
        "25"
    );
    assert_eq!(nginx.access().expect("log").len(), 40);
}

#[test]
fn two_agents_sharing_one_redis_sum_to_both_access_logs() {
    tools();
    // One namespace, two API servers on two ports, one agent per server (each watches only its
    // own port, as two hosts of a fleet would), both writing to one Redis.
    let host = ApiHost::start("at-fleet-", PORT);
    let ns = &host.ns;
    let second_port = PORT + 2;
    let second = Nginx::start_with(
        Some(ns),
        &[format!("127.0.0.1:{second_port}")],
        apitap_e2e::nginx::API_LOCATIONS,
    )
    .expect("second nginx");
    let redis = Redis::start(Some(ns), 16380).expect("redis");
    let redis_url = "redis://127.0.0.1:16380";
    let first_agent = host.agent(TOKEN, &["--redis-url", redis_url]);
    let data = host.dir.path().join("data-2").display().to_string();
    let second_agent = Agent::start(
        Some(ns),
        &[
            "-i",
            "lo",
            "-p",
            &second_port.to_string(),
            "--data-dir",
            &data,
            "--api-token",
            TOKEN,
            "--redis-url",
            redis_url,
        ],
        "127.0.0.1:9465",
    )
    .expect("second apitap run");

    for i in 0..12 {
        curl(ns, &format!("/api/users/{i}"), "");
    }
    for i in 0..9 {
        ns.sh(&format!(
            "curl -s -o /dev/null --max-time 10 'http://127.0.0.1:{second_port}/api/users/{i}'"
        ))
        .expect("curl second");
    }
    ns.sh(&format!(
        "ab -q -n 100 -c 2 -k http://127.0.0.1:{second_port}/api/users/9 >/dev/null"
    ))
    .expect("ab second");

    let first_log = host.nginx.access().expect("log").len() as u64;
    let second_log = second.access().expect("log").len() as u64;
    assert_eq!((first_log, second_log), (12, 109));
    // Each agent counted only its own server.
    first_agent
        .scrape_until(Duration::from_secs(10), |m| {
            m.sum("api_requests_total", &[]) == first_log
        })
        .expect("scrape");
    let m2 = second_agent
        .scrape_until(Duration::from_secs(10), |m| {
            m.sum("api_requests_total", &[]) == second_log
        })
        .expect("scrape");
    assert_eq!(m2.sum("api_requests_total", &[]), second_log);
    // Redis holds the fleet-wide sum, under the same field from both agents.
    let deadline = Instant::now() + Duration::from_secs(15);
    let daily = || {
        redis
            .sum_hashes("usage:daily:*", |k| !k.ends_with(":client"))
            .expect("redis")
    };
    while daily() != first_log + second_log && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(daily(), first_log + second_log);
    let keys = redis
        .cli(&["--scan", "--pattern", "usage:daily:????-??-??"])
        .expect("keys");
    let day = keys.lines().next().expect("a daily key").to_string();
    assert_eq!(
        redis
            .cli(&["HGET", &day, "/api/users/{id}:GET"])
            .expect("hget")
            .trim(),
        (first_log + second_log).to_string()
    );
    // Each agent's usage API reads the shared store: the fleet-wide totals.
    let v = api_until(&first_agent, "/api/v1/usage?days=1", |v| {
        usage_total(v) == first_log + second_log
    });
    assert_eq!(usage_total(&v), first_log + second_log, "{v}");
}

#[test]
fn forwarded_for_names_the_client_only_behind_a_trusted_proxy() {
    tools();
    let host = ApiHost::start("at-xff-", PORT);
    let (ns, nginx) = (&host.ns, &host.nginx);
    // 127.0.0.1 is the trusted proxy; 127.0.0.2 is a client that is not one.
    ns.sh("ip addr add 127.0.0.2/8 dev lo 2>/dev/null; true")
        .expect("second loopback address");
    let config = host.config("[clients]\ntrusted_proxies = [\"127.0.0.1/32\"]\n");
    let agent = host.agent(TOKEN, &["--config", &config]);

    let xff = |v: &str| format!("-H 'X-Forwarded-For: {v}'");
    // Through the trusted proxy: the address it appended is the client.
    for _ in 0..7 {
        curl(ns, "/api/users/1", &xff("203.0.113.7"));
    }
    // A chain of trusted proxies: the right-most address that is not one.
    for _ in 0..3 {
        curl(ns, "/api/users/2", &xff("198.51.100.9, 127.0.0.1"));
    }
    // The client wrote its own header (6.6.6.6): the proxy's entry (192.0.2.50) wins.
    for _ in 0..4 {
        curl(ns, "/api/users/3", &xff("6.6.6.6, 192.0.2.50"));
    }
    // No header: the connection's address.
    for _ in 0..2 {
        curl(ns, "/api/users/4", "");
    }
    // Not from a trusted proxy: the header is ignored, whatever it says.
    for _ in 0..5 {
        curl(
            ns,
            "/api/users/5",
            &format!("--interface 127.0.0.2 {}", xff("203.0.113.7")),
        );
    }

    let (m, log) = settle(&agent, nginx);
    assert_eq!(log.len(), 7 + 3 + 4 + 2 + 5);
    let client = |c: &str| m.sum("api_client_requests_total", &[("client", c)]);
    let seen = m.family("api_client_requests_total");
    assert_eq!(client("203.0.113.7"), 7, "{seen:?}");
    assert_eq!(client("198.51.100.9"), 3, "{seen:?}");
    assert_eq!(client("192.0.2.50"), 4, "{seen:?}");
    assert_eq!(client("6.6.6.6"), 0, "{seen:?}");
    assert_eq!(client("127.0.0.1"), 2, "{seen:?}");
    assert_eq!(client("127.0.0.2"), 5, "{seen:?}");
    assert_eq!(m.sum("api_client_requests_total", &[]), log.len() as u64);
}
