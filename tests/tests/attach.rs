//! Attachment on a shared node, as root, with both mechanisms (TCX links and the forced
//! netlink fallback):
//! - another program's u32 filters on the same clsact qdisc, one added before apitap starts
//!   and one after, are still there after apitap stops and still see every packet they match;
//! - after a SIGKILL (no chance to detach) a restarted apitap runs exactly one set of
//!   programs, counts exactly, and no killed apitap's ring stays in the kernel.
//!
//! The "foreign" filters count client SYNs to port 80 (u32 on the TCP flags byte, with a
//! mirred mirror action, whose statistics are the count: cls_matchall and gact are not built
//! into the test kernel). Run: `cargo xtask integration-test attach`.

use apitap_e2e::agent::{Agent, apitap_bin};
use apitap_e2e::metrics::Metrics;
use apitap_e2e::netns::{self, Netns, Pair};
use apitap_e2e::nginx::Nginx;
use apitap_e2e::tc::{apitap_rings, netlink_filters, tcx_programs};
use apitap_e2e::{require_root, require_tool, unique};
use std::time::{Duration, Instant};

const FOREIGN_PREF: u32 = 12;
const MIRROR: &str = "atmirror0";

fn tools() {
    require_root();
    require_tool("curl", "curl");
    require_tool("ab", "apache2-utils");
    require_tool("tc", "iproute2");
    require_tool("nginx", "nginx");
}

/// Adds the foreign filter on `ifname` ingress: IPv4 SYNs to `port` (20-byte IP header),
/// mirrored to [`MIRROR`]; `pipe` lets the packet go on.
fn add_foreign_filter(ns: &Netns, ifname: &str, port: u16) {
    ns.sh(&format!(
        "tc filter add dev {ifname} ingress protocol ip prio {FOREIGN_PREF} u32 \
         match ip dport {port} 0xffff match u8 0x02 0xff at 33 \
         action mirred egress mirror dev {MIRROR}"
    ))
    .expect("foreign u32 filter");
}

/// Packets the foreign filter on `ifname` ingress matched (its action's statistics).
fn foreign_count(ns: &Netns, ifname: &str) -> u64 {
    let out = ns
        .sh(&format!("tc -s filter show dev {ifname} ingress"))
        .expect("tc -s filter show");
    let mut in_ours = false;
    for line in out.lines() {
        if line.starts_with("filter ") {
            in_ours = line.contains(&format!("pref {FOREIGN_PREF} u32"));
        }
        if in_ours && let Some(rest) = line.trim().strip_prefix("Sent ") {
            // "Sent 180 bytes 3 pkt (dropped 0, ...)"
            let pkts = rest.split_whitespace().nth(2).expect("packet count");
            return pkts.parse().expect("a number");
        }
    }
    panic!("the foreign filter is gone from {ifname} ingress:\n{out}");
}

fn has_clsact(ns: &Netns, ifname: &str) -> bool {
    ns.sh(&format!("tc qdisc show dev {ifname}"))
        .expect("tc qdisc show")
        .contains("clsact")
}

/// `n` curl connections to `url` from `ns`, each answered 200.
fn connections(ns: &Netns, url: &str, n: usize) {
    for _ in 0..n {
        let code = ns
            .sh(&format!(
                "curl -s -o /dev/null -w '%{{http_code}}' --max-time 10 '{url}'"
            ))
            .expect("curl");
        assert_eq!(code.trim(), "200", "{url}");
    }
}

/// apitap's programs on `ifname` `hook`, as the mechanism in use shows them.
fn apitap_programs(ns: &Netns, mode: &str, ifname: &str, hook: &str) -> Vec<String> {
    let names: Vec<String> = if mode == "tcx" {
        tcx_programs(ns, ifname, hook).expect("TCX query")
    } else {
        // One line per filter: "... handle 0x1 tc_ingress direct-action ... name tc_ingress".
        netlink_filters(ns, ifname, hook)
            .expect("tc filter show")
            .lines()
            .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("tc_")))
            .map(str::to_string)
            .collect()
    };
    names
        .into_iter()
        .filter(|n| n == "tc_ingress" || n == "tc_egress")
        .collect()
}

fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn transactions(agent: &Agent, want: u64) -> Metrics {
    agent
        .scrape_until(Duration::from_secs(10), |m| {
            m.get("apitap_transactions_total") == Some(want as f64)
        })
        .expect("scrape")
}

fn foreign_filters_survive(mode: &str) {
    tools();
    let pair = Pair::new().expect("namespaces and veth");
    let srv = &pair.srv;
    srv.sh(&format!(
        "ip link add {MIRROR} type veth peer name {MIRROR}p && ip link set {MIRROR} up && ip link set {MIRROR}p up"
    ))
    .expect("mirror target");
    // Before apitap: a clsact qdisc and a filter of another program on the veth.
    srv.sh(&format!("tc qdisc add dev {} clsact", pair.srv_if))
        .expect("clsact on the veth");
    add_foreign_filter(srv, &pair.srv_if, 80);
    let nginx = Nginx::start(
        Some(srv),
        &[format!("{}:80", netns::SRV_V4), "127.0.0.1:80".to_string()],
    )
    .expect("nginx");
    let mut agent = Agent::start(
        Some(srv),
        &[
            "-i",
            &pair.srv_if,
            "-i",
            "lo",
            "-p",
            "80",
            "--attach-mode",
            mode,
        ],
        "127.0.0.1:9464",
    )
    .expect("apitap run");

    // After apitap started: another program's filter on lo. With netlink filters the qdisc is
    // the one apitap added; TCX needs none, so the other program adds its own.
    assert_eq!(
        has_clsact(srv, "lo"),
        mode == "netlink",
        "clsact on lo after apitap started in {mode} mode"
    );
    if mode == "tcx" {
        srv.sh("tc qdisc add dev lo clsact").expect("clsact on lo");
    }
    add_foreign_filter(srv, "lo", 80);

    let m = agent.scrape().expect("scrape");
    assert_eq!(m.count("apitap_attached_programs"), 3, "veth ×2 + lo");
    assert_eq!(
        m.count(&format!("apitap_attach_mode{{mode=\"{mode}\"}}")),
        1,
        "{:?}",
        m.family("apitap_attach_mode")
    );
    assert_eq!(
        apitap_programs(srv, mode, &pair.srv_if, "ingress"),
        ["tc_ingress"]
    );
    assert_eq!(
        apitap_programs(srv, mode, &pair.srv_if, "egress"),
        ["tc_egress"]
    );
    assert_eq!(apitap_programs(srv, mode, "lo", "ingress"), ["tc_ingress"]);

    let veth_url = format!("http://{}:80/", netns::SRV_V4);
    connections(&pair.cli, &veth_url, 5);
    connections(srv, "http://127.0.0.1:80/", 5);
    assert_eq!(
        foreign_count(srv, &pair.srv_if),
        5,
        "SYNs on the veth, apitap attached"
    );
    assert_eq!(foreign_count(srv, "lo"), 5, "SYNs on lo, apitap attached");
    let m = transactions(&agent, 10);
    assert_eq!(
        m.count("apitap_transactions_total"),
        10,
        "{}",
        agent.stderr()
    );
    assert_eq!(nginx.totals().expect("access log").0, 10);

    let status = agent.terminate().expect("terminate");
    assert!(
        status.success(),
        "apitap exited with {status}: {}",
        agent.stderr()
    );
    for (ifname, hook) in [
        (pair.srv_if.as_str(), "ingress"),
        (pair.srv_if.as_str(), "egress"),
        ("lo", "ingress"),
    ] {
        assert!(
            apitap_programs(srv, mode, ifname, hook).is_empty(),
            "apitap left a program on {ifname} {hook}"
        );
    }
    assert!(
        has_clsact(srv, &pair.srv_if),
        "the other program's qdisc on the veth"
    );
    assert!(
        has_clsact(srv, "lo"),
        "the qdisc on lo holds another program's filter: kept"
    );
    if mode == "netlink" {
        assert!(
            agent
                .stderr()
                .contains("kept the clsact qdisc apitap added"),
            "{}",
            agent.stderr()
        );
    }
    // Both foreign filters still see (and pass) every connection after apitap is gone.
    connections(&pair.cli, &veth_url, 5);
    connections(srv, "http://127.0.0.1:80/", 5);
    assert_eq!(
        foreign_count(srv, &pair.srv_if),
        10,
        "SYNs on the veth after apitap"
    );
    assert_eq!(foreign_count(srv, "lo"), 10, "SYNs on lo after apitap");
}

#[test]
fn foreign_u32_filters_survive_apitap_with_tcx_links() {
    foreign_filters_survive("tcx");
}

#[test]
fn foreign_u32_filters_survive_apitap_with_netlink_filters() {
    foreign_filters_survive("netlink");
}

fn rings_settle(want: usize) -> usize {
    // Programs and maps are freed after their last reference goes (deferred in the kernel).
    let mut n = usize::MAX;
    wait_until(Duration::from_secs(5), || {
        n = apitap_rings().expect("list rings").len();
        n == want
    });
    n
}

fn sigkill_then_restart(mode: &str) {
    tools();
    assert_eq!(
        rings_settle(0),
        0,
        "an apitap ring is already loaded: another apitap runs on this machine \
         (hold /tmp/apitap-root.lock)"
    );
    let ns = Netns::new(&unique("at-kill-")).expect("namespace");
    let port = "18082";
    let nginx = Nginx::start(Some(&ns), &[format!("127.0.0.1:{port}")]).expect("nginx");
    let args = ["-i", "lo", "-p", port, "--attach-mode", mode];
    let mut first = Agent::start(Some(&ns), &args, "127.0.0.1:9464").expect("apitap run");
    assert_eq!(apitap_rings().expect("rings").len(), 1);
    first.sigkill().expect("SIGKILL");

    if mode == "tcx" {
        // The links died with the process, and with them the programs and the ring.
        assert!(
            wait_until(Duration::from_secs(5), || {
                apitap_programs(&ns, mode, "lo", "ingress").is_empty()
            }),
            "a TCX link outlived its process"
        );
        assert_eq!(
            rings_settle(0),
            0,
            "the killed apitap's ring is still loaded"
        );
    } else {
        // netlink filters outlive their process: the situation apitap must clean up.
        assert_eq!(apitap_programs(&ns, mode, "lo", "ingress"), ["tc_ingress"]);
        assert_eq!(apitap_rings().expect("rings").len(), 1, "the orphaned ring");
        let bin = apitap_bin();
        let out = ns
            .cmd(bin.to_str().expect("utf-8"), &["check", "-i", "lo"])
            .output()
            .expect("apitap check");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("stale apitap filters: 1 on lo"), "{text}");
    }

    let mut second = Agent::start(Some(&ns), &args, "127.0.0.1:9464").expect("apitap run again");
    assert_eq!(
        apitap_programs(&ns, mode, "lo", "ingress"),
        ["tc_ingress"],
        "exactly one set of apitap programs"
    );
    assert!(apitap_programs(&ns, mode, "lo", "egress").is_empty());
    assert_eq!(
        rings_settle(1),
        1,
        "only the running apitap's ring is loaded"
    );
    let m = second.scrape().expect("scrape");
    let removed = if mode == "netlink" { 1 } else { 0 };
    assert_eq!(m.count("apitap_stale_filters_removed_total"), removed);
    if mode == "netlink" {
        assert!(
            second.stderr().contains("removed a stale apitap filter"),
            "{}",
            second.stderr()
        );
    }

    ns.sh(&format!(
        "ab -q -n 500 -c 4 -k http://127.0.0.1:{port}/ >/dev/null"
    ))
    .expect("ab");
    let m = transactions(&second, 500);
    assert_eq!(
        m.count("apitap_transactions_total"),
        500,
        "{}",
        second.stderr()
    );
    assert_eq!(nginx.totals().expect("access log").0, 500);
    assert_eq!(m.count("apitap_events_lost_total"), 0);

    let status = second.terminate().expect("terminate");
    assert!(status.success(), "{}", second.stderr());
    assert!(apitap_programs(&ns, mode, "lo", "ingress").is_empty());
    assert_eq!(rings_settle(0), 0, "a ring stayed after a clean stop");
}

#[test]
fn sigkill_then_restart_leaves_one_set_of_programs_with_tcx_links() {
    sigkill_then_restart("tcx");
}

#[test]
fn sigkill_then_restart_leaves_one_set_of_programs_with_netlink_filters() {
    sigkill_then_restart("netlink");
}

#[test]
fn a_live_apitaps_netlink_filters_are_never_taken_for_stale_ones() {
    tools();
    assert_eq!(rings_settle(0), 0, "another apitap runs on this machine");
    let ns = Netns::new(&unique("at-two-")).expect("namespace");
    let args = ["-i", "lo", "-p", "18083", "--attach-mode", "netlink"];
    let mut first = Agent::start(Some(&ns), &args, "127.0.0.1:9464").expect("first apitap");
    let mut second = Agent::start(Some(&ns), &args, "127.0.0.1:9465").expect("second apitap");
    assert_eq!(
        apitap_programs(&ns, "netlink", "lo", "ingress"),
        ["tc_ingress", "tc_ingress"],
        "the second apitap removed the first one's filter"
    );
    let m = second.scrape().expect("scrape");
    assert_eq!(m.count("apitap_stale_filters_removed_total"), 0);
    assert_eq!(rings_settle(2), 2);
    assert!(second.terminate().expect("terminate").success());
    assert_eq!(
        apitap_programs(&ns, "netlink", "lo", "ingress"),
        ["tc_ingress"]
    );
    assert!(first.terminate().expect("terminate").success());
    assert!(apitap_programs(&ns, "netlink", "lo", "ingress").is_empty());
    assert!(
        !has_clsact(&ns, "lo"),
        "the qdisc the first apitap added, unused now, is gone"
    );
}

/// Two apitaps with TCX links on one hook: the second is placed first in the chain, so the
/// first only sees packets if the second's programs let the chain go on (TCX_NEXT). The same
/// holds for any program after apitap's, a CNI's included.
#[test]
fn every_tcx_program_after_apitaps_still_runs() {
    tools();
    assert_eq!(rings_settle(0), 0, "another apitap runs on this machine");
    let ns = Netns::new(&unique("at-chain-")).expect("namespace");
    let port = "18084";
    let nginx = Nginx::start(Some(&ns), &[format!("127.0.0.1:{port}")]).expect("nginx");
    let args = ["-i", "lo", "-p", port, "--attach-mode", "tcx"];
    let earlier = Agent::start(Some(&ns), &args, "127.0.0.1:9464").expect("first apitap");
    let later = Agent::start(Some(&ns), &args, "127.0.0.1:9465").expect("second apitap");
    assert_eq!(
        apitap_programs(&ns, "tcx", "lo", "ingress"),
        ["tc_ingress", "tc_ingress"]
    );
    ns.sh(&format!(
        "ab -q -n 300 -c 2 -k http://127.0.0.1:{port}/ >/dev/null"
    ))
    .expect("ab");
    assert_eq!(nginx.totals().expect("access log").0, 300);
    for (which, agent) in [
        ("first in the chain", &later),
        ("second in the chain", &earlier),
    ] {
        let m = transactions(agent, 300);
        assert_eq!(
            m.count("apitap_transactions_total"),
            300,
            "the apitap {which}: {}",
            agent.stderr()
        );
    }
}
