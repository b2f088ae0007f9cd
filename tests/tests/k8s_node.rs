//! A simulated Kubernetes node (see `apitap_e2e::node`): pods are network namespaces on a
//! bridge, each nginx runs in a kubelet-style cgroup v2 path with a kubelet-style
//! /var/log/pods directory, and the agent runs on the node with its defaults (no --port, no
//! --interface). Every count is checked against each nginx's own access log.
//!
//! Run: `cargo xtask integration-test pods_on_a_bridge`.

use apitap_e2e::agent::Agent;
use apitap_e2e::metrics::Metrics;
use apitap_e2e::netns::Netns;
use apitap_e2e::nginx::{API_LOCATIONS, Nginx};
use apitap_e2e::node::{NODE_IP, Node, Pod};
use apitap_e2e::{TempDir, require_root, require_tool};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const TOKEN: &str = "e2e-node-token";
const LISTEN: &str = "127.0.0.1:9464";
const POD_PORT: u16 = 8080;
const HOST_PORT: u16 = 18080;
/// A port a pod opens long after it started.
const LATE_PORT: u16 = 8081;

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

/// One request of every status the API serves, from `from` to `ip:port`.
fn scripted(from: &Netns, ip: &str, port: u16) {
    let base = format!("http://{ip}:{port}");
    let mut line = String::new();
    for path in [
        "/api/users/1",
        "/api/users/2",
        "/api/users/3/orders",
        "/api/orders",
        "/api/cached",
        "/api/secure",
        "/api/admin",
        "/api/limited",
        "/api/fail",
        "/api/down",
        "/nope",
    ] {
        line.push_str(&format!(
            "curl -s -o /dev/null --max-time 10 '{base}{path}'; "
        ));
    }
    line.push_str(&format!(
        "ab -q -n 100 -c 2 -k {base}/api/items/7 >/dev/null"
    ));
    from.sh(&line).expect("traffic");
}

/// Requests by status in an nginx access log.
fn log_by_status(nginx: &Nginx) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for a in nginx.access().expect("access log") {
        *m.entry(a.status.to_string()).or_default() += 1;
    }
    m
}

/// `api_requests_total` of one (namespace, service) by status.
fn metric_by_status(m: &Metrics, namespace: &str, service: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (labels, v) in m.family("api_requests_total") {
        if labels.get("namespace").map(String::as_str) == Some(namespace)
            && labels.get("service").map(String::as_str) == Some(service)
        {
            *out.entry(labels["status"].clone()).or_default() += v as u64;
        }
    }
    out
}

/// Scrapes until every (namespace, service) counts exactly its server's access log.
fn until_exact(agent: &Agent, servers: &[(&str, &str, &Nginx)]) -> Metrics {
    let want: Vec<_> = servers
        .iter()
        .map(|(ns, svc, n)| (*ns, *svc, log_by_status(n)))
        .collect();
    let m = agent
        .scrape_until(Duration::from_secs(15), |m| {
            want.iter()
                .all(|(ns, svc, w)| metric_by_status(m, ns, svc) == *w)
        })
        .expect("scrape");
    for (ns, svc, w) in &want {
        assert_eq!(
            metric_by_status(&m, ns, svc),
            *w,
            "{ns}/{svc}: api_requests_total by status equals its nginx access log"
        );
    }
    m
}

fn pod_nginx(pod: &Pod) -> Nginx {
    Nginx::start_in(
        Some(&pod.ns),
        Some(pod.cgroup.path()),
        &[format!("0.0.0.0:{POD_PORT}")],
        API_LOCATIONS,
    )
    .expect("pod nginx")
}

fn log_lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// Requests counted for the cart pod (service `cart` of namespace `shop`).
fn cart_requests(m: &Metrics) -> u64 {
    m.sum(
        "api_requests_total",
        &[("namespace", "shop"), ("service", "cart")],
    )
}

/// `nginx` just started in the cart pod on `ip:port`: probes it from `from` until the agent
/// counts it (at most 15 s, else `late` is the failure), prints the time since `started` as
/// `MEASURE {what}`, then checks that a scripted run is counted exactly (the probes are left
/// out: those before discovery are skipped as not_local).
fn counted_once_discovered(
    agent: &Agent,
    from: &Netns,
    (ip, port): (&str, u16),
    nginx: &Nginx,
    started: Instant,
    (what, late, inexact): (&str, &str, &str),
) {
    let counted_before = cart_requests(&agent.scrape().expect("scrape"));
    let mut probes = 0;
    let counted_after = loop {
        from.sh(&format!(
            "curl -s -o /dev/null --max-time 5 http://{ip}:{port}/api/health"
        ))
        .expect("probe");
        probes += 1;
        if cart_requests(&agent.scrape().expect("scrape")) > counted_before {
            break started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(15), "{late}");
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!(
        "MEASURE {what}: first request counted {:.2} s after its nginx started ({probes} probes, \
         the ones before discovery are skipped as not_local)",
        counted_after.as_secs_f64()
    );
    // Probes still in the pipeline reach the snapshot (published every second) first.
    std::thread::sleep(Duration::from_millis(2500));
    let before = cart_requests(&agent.scrape().expect("scrape"));
    scripted(from, ip, port);
    let sent = nginx.access().expect("log").len() as u64 - probes;
    let after = agent
        .scrape_until(Duration::from_secs(15), |m| {
            cart_requests(m) == before + sent
        })
        .expect("scrape");
    assert_eq!(cart_requests(&after), before + sent, "{inexact}");
}

#[test]
fn pods_on_a_bridge_are_counted_exactly_once_and_named_by_workload_and_namespace() {
    tools();
    let mut node = Node::new().expect("node");
    let shop = node
        .pod("shop", "checkout-7d9f8b6c5-x2k4p", "192.0.2.11")
        .expect("pod");
    let blog = node.pod("blog", "web-0", "192.0.2.12").expect("pod");
    let client = node
        .pod("tools", "client-6c9d8f7b5-q2x4z", "192.0.2.13")
        .expect("pod");
    let shop_nginx = pod_nginx(&shop);
    let mut blog_nginx = Some(pod_nginx(&blog));
    let host_nginx = Nginx::start_with(
        Some(&node.ns),
        &[format!("0.0.0.0:{HOST_PORT}")],
        API_LOCATIONS,
    )
    .expect("host nginx");

    let dir = TempDir::new("node-agent").expect("dir");
    let config = dir.path().join("apitap.toml");
    std::fs::write(
        &config,
        format!(
            "[discovery]\npod_logs_root = {:?}\nretire_after_secs = 3\nsettle_secs = 0\n",
            node.pod_logs.path().display().to_string()
        ),
    )
    .expect("config");
    let request_log = dir.path().join("requests.jsonl");
    let data = dir.path().join("data").display().to_string();
    let mut agent = Agent::start(
        Some(&node.ns),
        &[
            "--config",
            &config.display().to_string(),
            "--data-dir",
            &data,
            "--api-token",
            TOKEN,
            "--log",
            &request_log.display().to_string(),
        ],
        LISTEN,
    )
    .expect("apitap run with its defaults");

    // The client pod calls both pods and the node's own nginx; the node calls one pod.
    scripted(&client.ns, &shop.ip, POD_PORT);
    scripted(&client.ns, &blog.ip, POD_PORT);
    scripted(&client.ns, NODE_IP, HOST_PORT);
    scripted(&node.ns, &shop.ip, POD_PORT);
    let blog_log = log_by_status(blog_nginx.as_ref().expect("running"));

    let m = until_exact(
        &agent,
        &[
            ("shop", "checkout", &shop_nginx),
            ("blog", "web", blog_nginx.as_ref().expect("running")),
            ("", "nginx", &host_nginx),
        ],
    );
    // Pod to pod crossed two veths: every segment was seen twice and read once.
    let duplicates = m.sum("apitap_segments_skipped_total", &[("reason", "duplicate")]);
    assert!(
        duplicates > 0,
        "copies on the second interface were seen and dropped"
    );
    let total = m.sum("api_requests_total", &[]);
    let logged = [&shop_nginx, &host_nginx]
        .iter()
        .map(|n| n.access().expect("log").len() as u64)
        .sum::<u64>()
        + blog_log.values().sum::<u64>();
    assert_eq!(total, logged, "no request counted twice, none elsewhere");

    // The request log carries the attribution, once per request.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut lines = log_lines(&request_log);
    while (lines.len() as u64) < logged && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        lines = log_lines(&request_log);
    }
    assert_eq!(lines.len() as u64, logged);
    let of = |service: &str| {
        lines
            .iter()
            .filter(|l| l["service.name"] == service)
            .collect::<Vec<_>>()
    };
    let checkout = of("checkout");
    assert_eq!(checkout.len(), shop_nginx.access().expect("log").len());
    let first = checkout[0];
    assert_eq!(first["k8s.namespace.name"], "shop");
    assert_eq!(first["k8s.pod.name"], "checkout-7d9f8b6c5-x2k4p");
    assert_eq!(first["k8s.deployment.name"], "checkout");
    assert_eq!(first["container.id"], shop.container.as_str());
    assert_eq!(first["process.executable.name"], "nginx");
    assert_eq!(
        first["process.pid"].as_i64(),
        shop_nginx.pid().map(i64::from),
        "the master holds the listening socket"
    );
    let web = of("web");
    assert_eq!(web[0]["k8s.pod.name"], "web-0");
    assert!(
        web[0].get("k8s.statefulset.name").is_none(),
        "a kind guessed from a pod name alone is not claimed"
    );
    let host = of("nginx");
    assert!(
        host[0].get("k8s.namespace.name").is_none(),
        "off Kubernetes"
    );
    assert_eq!(
        host[0]["process.pid"].as_i64(),
        host_nginx.pid().map(i64::from)
    );

    // /health names what discovery found and how.
    let (_, health) = agent.get("/health", None).expect("health");
    let health: serde_json::Value = serde_json::from_str(&health).expect("json");
    assert_eq!(
        health["checks"]["discovery"]["workload_names"]["pod_name"],
        2
    );
    assert!(
        health["checks"]["service:shop/checkout"].is_object(),
        "{health}"
    );

    // A pod that starts after the agent is followed: time to its first counted request.
    let cart = node
        .pod("shop", "cart-5c4d7f9b8-zq2lm", "192.0.2.14")
        .expect("pod");
    let started = Instant::now();
    let cart_nginx = pod_nginx(&cart);
    counted_once_discovered(
        &agent,
        &client.ns,
        (&cart.ip, POD_PORT),
        &cart_nginx,
        started,
        (
            "new pod",
            "a new pod's requests are counted within a few scans",
            "once discovered, every request of the new pod is counted",
        ),
    );

    // Every namespace was read by sock_diag (the agent runs as root, so it may enter the pods'
    // namespaces), at every scan: with settle_secs = 0 the cart pod is settled now, and a port
    // it opens is watched within a scan, where the /proc text would wait for refresh_secs.
    let m = agent.scrape().expect("scrape");
    assert_eq!(
        m.get("apitap_discovery_proc_table_reads_total"),
        Some(0.0),
        "no namespace fell back to /proc/<pid>/net/tcp: {}",
        agent.stderr()
    );
    let reads_and_scans = |m: &Metrics| {
        (
            m.sum("apitap_discovery_table_reads_total", &[]),
            m.sum("apitap_discovery_scans_total", &[]),
        )
    };
    let (reads0, scans0) = reads_and_scans(&m);
    let started = Instant::now();
    let late_nginx = Nginx::start_in(
        Some(&cart.ns),
        Some(cart.cgroup.path()),
        &[format!("0.0.0.0:{LATE_PORT}")],
        API_LOCATIONS,
    )
    .expect("late nginx");
    counted_once_discovered(
        &agent,
        &client.ns,
        (&cart.ip, LATE_PORT),
        &late_nginx,
        started,
        (
            "late port in a settled pod",
            "a port a settled pod opens is watched within a few scans",
            "every request to the late port is counted",
        ),
    );
    // Every namespace at every scan (a scrape may land mid-scan: one scan of slack).
    let m = agent.scrape().expect("scrape");
    let (reads, scans) = reads_and_scans(&m);
    let namespaces = m.sum("apitap_discovery_namespaces", &[]);
    assert!(
        scans - scans0 >= 2 && reads - reads0 >= (scans - scans0 - 1) * namespaces,
        "{} table reads in {} scans of {namespaces} namespaces",
        reads - reads0,
        scans - scans0
    );

    // A pod deleted while the agent runs: its series retire (retire_after_secs = 3).
    drop(blog_nginx.take());
    drop(blog);
    let gone = agent
        .scrape_until(Duration::from_secs(20), |m| {
            m.family("api_requests_total")
                .iter()
                .all(|(l, _)| l.get("service").map(String::as_str) != Some("web"))
        })
        .expect("scrape");
    for family in [
        "api_requests_total",
        "api_request_duration_seconds_count",
        "api_errors_total",
        "api_availability_ratio",
        "api_active_connections",
        "api_client_requests_total",
    ] {
        assert!(
            gone.family(family)
                .iter()
                .all(|(l, _)| l.get("service").map(String::as_str) != Some("web")),
            "{family}: the deleted pod's series are retired"
        );
    }
    assert_eq!(gone.sum("apitap_services_retired_total", &[]), 1);
    assert_eq!(
        metric_by_status(&gone, "shop", "checkout"),
        log_by_status(&shop_nginx),
        "the other pods' series stay"
    );

    let status = agent.terminate().expect("clean stop");
    assert!(status.success(), "{}", agent.stderr());
    drop(late_nginx);
    drop(cart_nginx);
    drop(shop_nginx);
    drop(host_nginx);
    drop((cart, shop, client));
}
