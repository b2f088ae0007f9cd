//! Capture end to end, as root: `apitap run` against real nginx, curl and ab in network
//! namespaces (veth and lo).
//! Without root or a needed kernel feature these tests fail loudly; they never skip.

use apitap_e2e::metrics::Metrics;
use apitap_e2e::netns::{self, Netns, Pair};
use apitap_e2e::nginx::Nginx;
use apitap_e2e::{agent::Agent, agent::apitap_bin, require_root, require_tool};
use std::process::Command;
use std::time::Duration;

// ---- apitap run against real nginx, curl and ab ----

fn tools() {
    require_root();
    require_tool("curl", "curl");
    require_tool("ab", "apache2-utils");
    require_tool("tc", "iproute2");
}

/// Waits until the agent's deduplicated flow bytes reach nginx's totals, then asserts the
/// exact equality and that nothing was lost or dropped.
fn assert_counts_match(agent: &Agent, nginx: &Nginx) -> Metrics {
    let (requests, req_bytes, resp_bytes) = nginx.totals().expect("access log");
    assert!(requests > 0, "nginx served no request");
    let m = agent
        .scrape_until(Duration::from_secs(10), |m| {
            m.get("apitap_flow_payload_bytes_total{direction=\"request\"}")
                == Some(req_bytes as f64)
                && m.get("apitap_flow_payload_bytes_total{direction=\"response\"}")
                    == Some(resp_bytes as f64)
        })
        .expect("scrape");
    assert_eq!(
        m.count("apitap_flow_payload_bytes_total{direction=\"request\"}"),
        req_bytes,
        "request bytes vs sum of $request_length over {requests} requests; agent log:\n{}",
        agent.stderr()
    );
    assert_eq!(
        m.count("apitap_flow_payload_bytes_total{direction=\"response\"}"),
        resp_bytes,
        "response bytes vs sum of $bytes_sent over {requests} requests"
    );
    assert_eq!(m.count("apitap_events_lost_total"), 0);
    assert_eq!(m.count("apitap_capture_errors_total{source=\"decode\"}"), 0);
    m
}

fn curl_load(ns: &Netns, base: &str) {
    let urls = [
        format!("{base}/"),
        format!("{base}/big"),
        format!("{base}/status/404"),
        format!("{base}/"),
    ];
    for u in &urls {
        ns.sh(&format!("curl -s -o /dev/null --max-time 10 '{u}'"))
            .expect("curl");
    }
    ns.sh(&format!(
        "curl -s -o /dev/null --max-time 10 -X PUT -H 'Content-Type: application/json' --data '{{\"name\":\"apitap\",\"n\":42}}' '{base}/upload/item.json'"
    ))
    .expect("curl PUT");
}

#[test]
fn veth_between_namespaces_counts_match_nginx_for_ipv4_and_ipv6() {
    tools();
    let pair = Pair::new().expect("namespaces and veth");
    let nginx = Nginx::start(
        Some(&pair.srv),
        &[
            format!("{}:80", netns::SRV_V4),
            format!("[{}]:80", netns::SRV_V6),
        ],
    )
    .expect("nginx");
    let agent = Agent::start(
        Some(&pair.srv),
        &["-i", &pair.srv_if, "-p", "80"],
        "127.0.0.1:9464",
    )
    .expect("apitap run");
    let v4 = format!("http://{}:80", netns::SRV_V4);
    let v6 = format!("http://[{}]:80", netns::SRV_V6);
    curl_load(&pair.cli, &v4);
    curl_load(&pair.cli, &v6);
    pair.cli
        .sh(&format!("ab -q -n 2000 -c 4 -k {v4}/ >/dev/null"))
        .expect("ab -k");
    pair.cli
        .sh(&format!("ab -q -n 300 -c 2 {v6}/big >/dev/null"))
        .expect("ab v6");
    let m = assert_counts_match(&agent, &nginx);
    assert_eq!(
        m.count("apitap_attached_programs"),
        2,
        "ingress and egress on the veth"
    );
    assert_responses_timed_by_the_stack(&m);
    let (requests, _, _) = nginx.totals().expect("access log");
    assert_eq!(requests, 2 * 5 + 2000 + 300);
}

/// nginx's port in the lo tests.
const LO_PORT: u16 = 18080;

/// A fresh namespace with nginx on 127.0.0.1:[`LO_PORT`] and the agent on its lo, with
/// `extra` arguments.
fn nginx_and_agent_on_lo(prefix: &str, extra: &[&str]) -> (Netns, Nginx, Agent) {
    tools();
    let ns = Netns::new(&apitap_e2e::unique(prefix)).expect("namespace");
    let nginx = Nginx::start(Some(&ns), &[format!("127.0.0.1:{LO_PORT}")]).expect("nginx");
    let port = LO_PORT.to_string();
    let mut args = vec!["-i", "lo", "-p", &port];
    args.extend_from_slice(extra);
    let agent = Agent::start(Some(&ns), &args, "127.0.0.1:9464").expect("apitap run");
    (ns, nginx, agent)
}

#[test]
fn loopback_counts_each_segment_exactly_once() {
    let (ns, nginx, agent) = nginx_and_agent_on_lo("at-lo-", &[]);
    let base = format!("http://127.0.0.1:{LO_PORT}");
    curl_load(&ns, &base);
    ns.sh(&format!("ab -q -n 2000 -c 4 -k {base}/ >/dev/null"))
        .expect("ab -k");
    ns.sh(&format!("ab -q -n 200 -c 2 {base}/big >/dev/null"))
        .expect("ab big");
    assert_counts_match(&agent, &nginx);
    // The kernel counter has no dedup: it must equal nginx's bytes plus what TCP really sent
    // twice (retransmits and loss probes do happen on a loaded lo; the engine counts those
    // bytes independently by sequence number). A second hook on lo would double it instead.
    let (_, req_bytes, resp_bytes) = nginx.totals().expect("access log");
    let m = agent
        .scrape_until(Duration::from_secs(5), |m| {
            m.get("apitap_engine_payload_bytes_total") == m.get("apitap_payload_bytes_total")
        })
        .expect("scrape");
    assert_eq!(
        m.count("apitap_payload_bytes_total"),
        req_bytes + resp_bytes + m.count("apitap_retransmit_bytes_total"),
        "kernel payload bytes vs nginx bytes + retransmitted bytes"
    );
    assert_eq!(m.count("apitap_attached_programs"), 1);
    // TCP segments on lo carry their headers in the linear part: the classifier must read
    // them in place (pulling a cloned skb copies its head: issue 10's profile).
    assert_eq!(
        m.get("apitap_headers_pulled_total"),
        Some(0.0),
        "headers pulled on lo"
    );
    assert_responses_timed_by_the_stack(&m);
}

/// nginx's responses leave with the departure time its TCP stack put on them, which the
/// classifier uses instead of reading the clock (Linux 5.18+). The counts checked before show
/// that it keeps every response after its request.
fn assert_responses_timed_by_the_stack(m: &apitap_e2e::metrics::Metrics) {
    let stamped = m.count("apitap_stack_stamps_total");
    if !apitap::capture::loader::kernel_has_tstamp_type() {
        eprintln!(
            "NOTE: this kernel is older than 5.18 (no __sk_buff.tstamp_type): every record reads the clock"
        );
        assert_eq!(stamped, 0);
        return;
    }
    assert!(
        stamped > 0,
        "no response timed with its departure time on Linux 5.18+"
    );
    assert!(stamped <= m.count("apitap_segments_total"));
}

#[test]
fn with_stack_stamps_off_every_record_reads_the_clock() {
    let (ns, nginx, agent) = nginx_and_agent_on_lo("at-clk-", &["--stack-stamps", "false"]);
    ns.sh(&format!(
        "ab -q -n 500 -c 2 -k http://127.0.0.1:{LO_PORT}/ >/dev/null"
    ))
    .expect("ab -k");
    let m = assert_counts_match(&agent, &nginx);
    assert_eq!(m.count("apitap_stack_stamps_total"), 0);
}

fn filters(ns: &Netns, ifname: &str, hook: &str) -> String {
    ns.sh(&format!("tc filter show dev {ifname} {hook}"))
        .expect("tc filter show")
}

fn has_clsact(ns: &Netns, ifname: &str) -> bool {
    ns.sh(&format!("tc qdisc show dev {ifname}"))
        .expect("tc qdisc show")
        .contains("clsact")
}

#[test]
fn sigterm_detaches_every_netlink_filter_and_removes_only_the_qdiscs_apitap_added() {
    tools();
    let pair = Pair::new().expect("namespaces and veth");
    // A clsact qdisc that exists before apitap starts must survive it.
    pair.srv
        .sh("tc qdisc add dev lo clsact")
        .expect("pre-existing qdisc");
    // Defaults: every interface that is up (and new ones), listening ports discovered and
    // followed: nginx starts after the agent. netlink filters (what `tc filter show` lists and
    // what needs a qdisc); TCX links are tested in tests/attach.rs.
    let mut agent = Agent::start(
        Some(&pair.srv),
        &["--attach-mode", "netlink"],
        "127.0.0.1:9464",
    )
    .expect("apitap run");
    let nginx = Nginx::start(Some(&pair.srv), &[format!("{}:80", netns::SRV_V4)]).expect("nginx");
    pair.srv
        .sh("ip link add atnew0 type veth peer name atnew1 && ip link set atnew0 up && ip link set atnew1 up")
        .expect("new interface");
    assert!(filters(&pair.srv, &pair.srv_if, "ingress").contains("tc_ingress"));
    assert!(filters(&pair.srv, &pair.srv_if, "egress").contains("tc_egress"));
    assert!(filters(&pair.srv, "lo", "ingress").contains("tc_ingress"));
    assert!(
        !filters(&pair.srv, "lo", "egress").contains("tc_"),
        "lo is hooked once"
    );
    // Ports are polled every 2 s and interfaces every 1 s.
    let m = agent
        .scrape_until(Duration::from_secs(5), |m| {
            m.get("apitap_attached_programs") == Some(7.0)
        })
        .expect("scrape");
    assert_eq!(
        m.count("apitap_attached_programs"),
        7,
        "both ends of the new veth pair were attached (ingress and egress each)"
    );
    std::thread::sleep(Duration::from_millis(2500));
    curl_load(&pair.cli, &format!("http://{}:80", netns::SRV_V4));
    let m = agent
        .scrape_until(Duration::from_secs(5), |m| {
            m.get("apitap_segments_total").unwrap_or(0.0) > 0.0
        })
        .expect("scrape");
    assert!(
        m.count("apitap_segments_total") > 0,
        "port 80, opened after the start, was not followed"
    );
    drop(nginx);

    let status = agent.terminate().expect("terminate");
    assert!(
        status.success(),
        "apitap exited with {status}: {}",
        agent.stderr()
    );
    for (ifname, hook) in [
        (&pair.srv_if, "ingress"),
        (&pair.srv_if, "egress"),
        (&"lo".to_string(), "ingress"),
        (&"lo".to_string(), "egress"),
        (&"atnew0".to_string(), "ingress"),
        (&"atnew1".to_string(), "egress"),
    ] {
        let f = filters(&pair.srv, ifname, hook);
        assert!(
            !f.contains("tc_ingress") && !f.contains("tc_egress"),
            "{ifname} {hook} still has: {f}"
        );
    }
    assert!(
        !has_clsact(&pair.srv, &pair.srv_if),
        "the qdisc apitap added on the veth is gone"
    );
    assert!(
        has_clsact(&pair.srv, "lo"),
        "the pre-existing qdisc on lo was kept"
    );
}

fn run_apitap(ns: &Netns, args: &[&str]) -> (i32, String) {
    let bin = apitap_bin();
    let out = ns
        .cmd(bin.to_str().expect("utf-8 path"), args)
        .output()
        .expect("run apitap");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_input_gives_one_clear_line_and_a_failure_exit() {
    require_root();
    let ns = Netns::new(&apitap_e2e::unique("at-bad-")).expect("namespace");
    let (code, err) = run_apitap(
        &ns,
        &[
            "run",
            "-i",
            "nosuch0",
            "-p",
            "80",
            "--listen",
            "127.0.0.1:9464",
        ],
    );
    assert_ne!(code, 0);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("unknown interface nosuch0"), "{err}");

    let (code, err) = run_apitap(&ns, &["run", "-p", "0"]);
    assert_ne!(code, 0);
    assert!(err.contains("port 0"), "{err}");

    // Without privileges: the capabilities are named.
    let bin = apitap_bin();
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ])
        .arg(&bin)
        .args(["run", "-i", "lo", "-p", "80", "--listen", "127.0.0.1:0"])
        .output()
        .expect("setpriv");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("CAP_BPF") && err.contains("CAP_NET_ADMIN") && err.contains("CAP_PERFMON"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn check_reports_a_working_kernel_in_a_fresh_namespace() {
    require_root();
    let ns = Netns::new(&apitap_e2e::unique("at-chk-")).expect("namespace");
    let bin = apitap_bin();
    let out = ns
        .cmd(bin.to_str().expect("utf-8 path"), &["check"])
        .output()
        .expect("apitap check");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "apitap check failed:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("tc_ingress and tc_egress pass the verifier"),
        "{text}"
    );
    assert!(text.contains("attach to lo"), "{text}");
    assert!(
        filters(&ns, "lo", "ingress").trim().is_empty(),
        "check left a filter on lo"
    );
    assert!(!has_clsact(&ns, "lo"), "check left its qdisc on lo");
}

const HUNDRED_MIB: u64 = 100 << 20;

/// The request log's lines, parsed.
fn request_log(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[test]
fn hundred_mib_upload_and_download_among_small_requests_cost_heads_only() {
    tools();
    let ns = Netns::new(&apitap_e2e::unique("at-big-")).expect("namespace");
    let port = 18080;
    let locations = "\
        location = / { return 200 \"hello from nginx\\n\"; }\n\
        location = /big100m { }\n\
        location /upload/ { dav_methods PUT; client_max_body_size 200m; }\n";
    let nginx =
        Nginx::start_with(Some(&ns), &[format!("127.0.0.1:{port}")], locations).expect("nginx");
    let big = std::fs::File::create(nginx.www().join("big100m")).expect("file");
    big.set_len(HUNDRED_MIB).expect("100 MiB");
    // nginx's workers (not root) store the upload there.
    std::fs::set_permissions(
        nginx.www().join("upload"),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .expect("chmod");
    let dir = apitap_e2e::TempDir::new("big").expect("temp dir");
    let upload = dir.path().join("upload.bin");
    std::fs::File::create(&upload)
        .and_then(|f| f.set_len(HUNDRED_MIB))
        .expect("100 MiB upload file");
    let log = dir.path().join("requests.jsonl");
    let data = dir.path().join("data");
    let agent = Agent::start(
        Some(&ns),
        &[
            "-i",
            "lo",
            "-p",
            &port.to_string(),
            "--data-dir",
            data.to_str().expect("utf-8"),
            "--log",
            log.to_str().expect("utf-8"),
        ],
        "127.0.0.1:9464",
    )
    .expect("apitap run");
    let base = format!("http://127.0.0.1:{port}");
    let before = agent.scrape().expect("scrape");
    // The two transfers and 2,000 small keep-alive requests at the same time.
    let started = std::time::Instant::now();
    ns.sh(&format!(
        "curl -s -o /dev/null --max-time 60 -T {} {base}/upload/up.bin & \
         curl -s -o /dev/null --max-time 60 {base}/big100m & \
         ab -q -n 2000 -c 2 -k {base}/ >/dev/null; wait",
        upload.display()
    ))
    .expect("load");
    let elapsed = started.elapsed();
    let (requests, _, _) = nginx.totals().expect("access log");
    assert_eq!(requests, 2002);
    // Every request logged, and a snapshot published after the last of them (the engine's
    // counters are published with it).
    let m = agent
        .scrape_until(Duration::from_secs(20), |m| {
            request_log(&log).len() >= 2002 && m.sum("api_requests_total", &[]) >= 2002
        })
        .expect("scrape");
    let lines = request_log(&log);
    // What reassembly saw, printed before any assertion so a failure says why.
    let seen: Vec<(&str, u64)> = [
        "apitap_reassembly_gap_bytes_total",
        "apitap_retransmit_bytes_total",
        "apitap_out_of_order_segments_total",
        "apitap_reorder_evidence_total",
        "apitap_reorder_recovered_total",
        "apitap_reorder_window_expired_total",
        "apitap_reorder_limit_total",
        "apitap_uncopied_bytes_total",
    ]
    .into_iter()
    .map(|k| (k, m.count(k)))
    .collect();
    let marked: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| !l["error.type"].is_null())
        .collect();
    eprintln!("reassembly: {seen:?}; records with an error: {marked:?}");
    assert_eq!(lines.len(), 2002, "every request counted once");
    assert_eq!(m.count("apitap_events_lost_total"), 0);
    assert_eq!(m.count("apitap_capture_errors_total{source=\"decode\"}"), 0);
    assert_eq!(
        m.count("apitap_reassembly_gaps_total"),
        0,
        "no byte of the transfers was missing"
    );
    let one = |method: &str, path: &str| {
        let found: Vec<&serde_json::Value> = lines
            .iter()
            .filter(|l| l["http.request.method"] == method && l["url.path"] == path)
            .collect();
        assert_eq!(found.len(), 1, "{method} {path}: {found:?}");
        found[0].clone()
    };
    let up = one("PUT", "/upload/up.bin");
    assert_eq!(up["http.request.body.size"], HUNDRED_MIB);
    assert_eq!(up["http.response.status_code"], 201);
    assert!(up["error.type"].is_null(), "{up}");
    let down = one("GET", "/big100m");
    assert_eq!(down["http.response.body.size"], HUNDRED_MIB);
    assert_eq!(down["http.response.status_code"], 200);
    assert!(down["error.type"].is_null(), "{down}");
    let small_ok = lines
        .iter()
        .filter(|l| l["url.path"] == "/" && l["http.response.status_code"] == 200)
        .count();
    assert_eq!(small_ok, 2000);
    // Heads only: 200 MiB of bodies cost at most 8 KiB of ring per MiB, plus the small
    // exchanges (one request and one response record each, under 1 KiB together).
    let ring = m.count("apitap_ring_bytes_total") - before.count("apitap_ring_bytes_total");
    let copied: Vec<(&str, u64)> = ["new_flow", "burst", "small", "port", "h2"]
        .into_iter()
        .map(|r| {
            let key = format!("apitap_copied_segments_total{{reason=\"{r}\"}}");
            (r, m.count(&key) - before.count(&key))
        })
        .collect();
    // The fullest one ring was when a drain began: some bytes waited, and never more than one
    // ring holds.
    let (peak, capacity, rings) = (
        m.count("apitap_ring_peak_bytes"),
        m.count("apitap_ring_capacity_bytes"),
        m.count("apitap_rings"),
    );
    eprintln!(
        "100 MiB up and down among 2,000 small requests: {ring} ring bytes, {} length-only segments, copied {copied:?}, {} out of order, ring peak {peak} of {} bytes per ring, {elapsed:?}",
        m.count("apitap_length_only_segments_total"),
        m.count("apitap_out_of_order_segments_total"),
        capacity / rings.max(1),
    );
    assert!(rings > 0, "apitap_rings is exported");
    assert!(
        peak > 0 && peak <= capacity / rings,
        "ring peak {peak} bytes, one ring {} bytes ({capacity} in {rings} rings)",
        capacity / rings
    );
    let bound = 200 * 8 * 1024 + 2000 * 1024;
    assert!(
        ring <= bound,
        "{ring} ring bytes for 200 MiB of bodies and 2,000 small exchanges (bound {bound})"
    );
}
