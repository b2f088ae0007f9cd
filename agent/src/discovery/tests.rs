//! Discovery over a fixture /proc tree (directories, files and symlinks as the kernel shows
//! them): two pods on one port, a host service, odd and vanishing entries.

use super::*;
use std::os::unix::fs::symlink;

const LOCAL_NS: u64 = 4026531840;
const SHOP_NS: u64 = 4026532001;
const BLOG_NS: u64 = 4026532002;
const SHOP_UID: &str = "11111111-2222-4333-8444-555555555555";
const BLOG_UID: &str = "66666666-7777-4888-9999-aaaaaaaaaaaa";
const CID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

const TCP_HEADER: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

/// A /proc/net/tcp line for a LISTEN socket on `addr_hex:port`.
fn listen_line(addr_hex: &str, port: u16, inode: u64) -> String {
    format!(
        "   0: {addr_hex}:{port:04X} 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 {inode} 1 0 100 0 0 10 0\n"
    )
}

fn fib_trie(addr: &str) -> String {
    format!(
        "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 127.0.0.1\n        /32 host LOCAL\n     |-- {addr}\n        /32 host LOCAL\n"
    )
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let f = Fixture {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        std::fs::create_dir_all(f.proc()).expect("proc");
        std::fs::create_dir_all(f.pods()).expect("pods");
        f
    }

    fn proc(&self) -> PathBuf {
        self.dir.path().join("proc")
    }

    fn pods(&self) -> PathBuf {
        self.dir.path().join("pods")
    }

    /// A process in namespace `ns` holding `sockets`, with its own tcp table text.
    #[allow(clippy::too_many_arguments)]
    fn process(
        &self,
        pid: u32,
        ns: u64,
        exe: &str,
        cgroup: &str,
        tcp: &str,
        addr: &str,
        sockets: &[u64],
    ) {
        let p = self.proc().join(pid.to_string());
        std::fs::create_dir_all(p.join("ns")).expect("ns");
        std::fs::create_dir_all(p.join("net")).expect("net");
        std::fs::create_dir_all(p.join("fd")).expect("fd");
        symlink(format!("net:[{ns}]"), p.join("ns/net")).expect("ns link");
        symlink(exe, p.join("exe")).expect("exe link");
        std::fs::write(p.join("cgroup"), cgroup).expect("cgroup");
        std::fs::write(p.join("net/tcp"), format!("{TCP_HEADER}{tcp}")).expect("tcp");
        std::fs::write(p.join("net/fib_trie"), fib_trie(addr)).expect("fib");
        for (i, s) in sockets.iter().enumerate() {
            symlink(format!("socket:[{s}]"), p.join(format!("fd/{}", i + 3))).expect("fd");
        }
    }

    fn pod_dir(&self, ns: &str, pod: &str, uid: &str) {
        std::fs::create_dir_all(self.pods().join(format!("{ns}_{pod}_{uid}"))).expect("pod dir");
    }

    fn config(&self) -> DiscoveryConfig {
        DiscoveryConfig {
            proc_root: self.proc(),
            pod_logs_root: self.pods(),
            ..DiscoveryConfig::default()
        }
    }
}

fn pod_cgroup(uid: &str) -> String {
    format!(
        "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/cri-containerd-{CID}.scope\n",
        uid.replace('-', "_")
    )
}

/// The simulated node: nginx on the host (0.0.0.0:80 and the agent on 127.0.0.1:9464), two
/// pods in different namespaces both on 8080 (wildcard), each with a sandbox process.
fn node() -> Fixture {
    let f = Fixture::new();
    let host_tcp = listen_line("00000000", 80, 100) + &listen_line("0100007F", 9464, 101);
    f.process(
        1,
        LOCAL_NS,
        "/usr/lib/systemd/systemd",
        "0::/init.scope\n",
        &host_tcp,
        "192.0.2.1",
        &[],
    );
    f.process(
        50,
        LOCAL_NS,
        "/usr/sbin/nginx",
        "0::/system.slice/nginx.service\n",
        &host_tcp,
        "192.0.2.1",
        &[100],
    );
    f.process(
        60,
        LOCAL_NS,
        "/usr/bin/apitap",
        "0::/system.slice/apitap.service\n",
        &host_tcp,
        "192.0.2.1",
        &[101],
    );
    for (sandbox, server, ns, uid, ip, inode) in [
        (200, 201, SHOP_NS, SHOP_UID, "192.0.2.11", 300),
        (210, 211, BLOG_NS, BLOG_UID, "192.0.2.12", 310),
    ] {
        let tcp = listen_line("00000000", 8080, inode);
        f.process(sandbox, ns, "/pause", &pod_cgroup(uid), &tcp, ip, &[]);
        f.process(
            server,
            ns,
            "/usr/sbin/nginx",
            &pod_cgroup(uid),
            &tcp,
            ip,
            &[inode],
        );
    }
    f.pod_dir("shop", "checkout-7d9f8b6c5-x2k4p", SHOP_UID);
    f.pod_dir("blog", "web-0", BLOG_UID);
    f
}

fn settings() -> Settings {
    Settings {
        rules: Vec::new(),
        own_port: Some(9464),
        local_netns: Some(LOCAL_NS),
        api: None,
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("literal")
}

#[test]
fn pods_on_one_port_are_told_apart_by_address_and_named_by_workload() {
    let f = node();
    let (table, stats) = scan_once(&f.config(), settings());
    let shop = table.resolve(addr("192.0.2.11:8080")).expect("shop pod");
    assert_eq!(&*shop.service, "checkout");
    let a = shop.attribution.as_deref().expect("attributed");
    assert_eq!(&*a.namespace, "shop");
    assert_eq!(a.pod.as_deref(), Some("checkout-7d9f8b6c5-x2k4p"));
    assert_eq!(
        a.workload.as_ref().map(|w| (w.kind, &*w.name)),
        Some((
            Some(agent_core::server::WorkloadKind::Deployment),
            "checkout"
        ))
    );
    assert_eq!(a.container_id.as_deref(), Some(CID));
    assert_eq!((a.pid, a.executable.as_deref()), (Some(201), Some("nginx")));

    let blog = table.resolve(addr("192.0.2.12:8080")).expect("blog pod");
    assert_eq!(&*blog.service, "web");
    assert_eq!(
        blog.attribution.as_deref().map(|a| &*a.namespace),
        Some("blog")
    );

    assert_eq!(
        table.ports,
        BTreeSet::from([80, 8080]),
        "the agent's own port is not watched"
    );
    assert_eq!(stats.namespaces, 3);
    assert_eq!(stats.unowned, 0);
    assert_eq!(
        table.sources,
        WorkloadSources {
            api: 0,
            pod_name: 2,
            unknown_pod: 0
        }
    );
}

#[test]
fn a_host_service_is_named_by_its_process_on_every_local_address() {
    let f = node();
    let (table, _) = scan_once(&f.config(), settings());
    for server in ["127.0.0.1:80", "192.0.2.1:80", "[::ffff:192.0.2.1]:80"] {
        let s = table.resolve(addr(server)).expect(server);
        assert_eq!(&*s.service, "nginx", "{server}");
        let a = s.attribution.as_deref().expect("process known");
        assert_eq!((&*a.namespace, a.pid), ("", Some(50)));
    }
    assert_eq!(
        table.resolve(addr("127.0.0.1:9464")),
        Err(Skip::Excluded),
        "the agent itself"
    );
    assert_eq!(
        table.resolve(addr("198.51.100.7:8080")),
        Err(Skip::NotLocal),
        "a remote server"
    );
    assert_eq!(
        table.resolve(addr("192.0.2.11:9999")),
        Err(Skip::NotLocal),
        "no listener there"
    );
}

#[test]
fn rules_rename_and_exclude_and_an_excluded_port_leaves_the_filter() {
    let f = node();
    let rules = vec![
        ServiceRule {
            namespace: Some("blog".into()),
            exclude: true,
            ..Default::default()
        },
        ServiceRule {
            process: Some("nginx".into()),
            port: Some(80),
            name: Some("edge".into()),
            ..Default::default()
        },
    ];
    let (table, _) = scan_once(
        &f.config(),
        Settings {
            rules,
            ..settings()
        },
    );
    assert_eq!(table.resolve(addr("192.0.2.12:8080")), Err(Skip::Excluded));
    assert_eq!(
        &*table.resolve(addr("127.0.0.1:80")).expect("host").service,
        "edge"
    );
    assert_eq!(
        table.ports,
        BTreeSet::from([80, 8080]),
        "8080 is still served by shop"
    );
}

#[test]
fn vanishing_unreadable_and_odd_entries_are_counted_and_skipped() {
    let f = node();
    // A process listed whose entries are gone (it exited mid-scan).
    std::fs::create_dir_all(f.proc().join("400")).expect("dir");
    // A namespace link with unexpected content.
    let p = f.proc().join("401");
    std::fs::create_dir_all(p.join("ns")).expect("dir");
    symlink("garbage", p.join("ns/net")).expect("link");
    // A pod whose cgroup path cannot be read and whose fds cannot be walked.
    let odd_ns = 4026532003;
    let tcp = listen_line("00000000", 8081, 320);
    f.process(
        220,
        odd_ns,
        "/usr/sbin/nginx",
        "0::/kubepods/besteffort/podNOT-A-UID/x\n",
        &tcp,
        "192.0.2.13",
        &[],
    );
    // Malformed socket lines next to a good one.
    let p = f.proc().join("220/net/tcp");
    let text = std::fs::read_to_string(&p).expect("tcp") + "  7: not a socket line\n";
    std::fs::write(&p, text).expect("tcp");
    // Non-numeric entries are not processes.
    std::fs::create_dir_all(f.proc().join("self")).expect("dir");

    let (table, stats) = scan_once(&f.config(), settings());
    assert_eq!(stats.exited, 1);
    assert_eq!(stats.unreadable, 1);
    assert_eq!(stats.odd_cgroups, 1);
    assert_eq!(stats.unowned, 1);
    assert_eq!(stats.malformed_lines, 1);
    let odd = table
        .resolve(addr("192.0.2.13:8081"))
        .expect("still a server");
    assert_eq!(&*odd.service, "port-8081", "nothing known but the port");
    assert_eq!(
        &*table
            .resolve(addr("192.0.2.11:8080"))
            .expect("shop")
            .service,
        "checkout"
    );
}

#[test]
fn a_missing_proc_root_is_an_empty_table_not_a_failure() {
    let cfg = DiscoveryConfig {
        proc_root: "/nonexistent/proc".into(),
        ..DiscoveryConfig::default()
    };
    let (table, stats) = scan_once(&cfg, settings());
    assert!(table.is_empty());
    assert_eq!(stats.unreadable, 1);
}

#[test]
fn the_api_names_pods_when_it_knows_them() {
    struct Api;
    impl PodSource for Api {
        fn pod(&self, uid: &str) -> Option<PodMeta> {
            (uid == BLOG_UID).then(|| PodMeta {
                namespace: "blog".into(),
                name: "web-0".into(),
                workload: agent_core::server::Workload {
                    kind: Some(agent_core::server::WorkloadKind::StatefulSet),
                    name: "web".into(),
                },
            })
        }
    }
    let f = node();
    let (table, _) = scan_once(
        &f.config(),
        Settings {
            api: Some(Arc::new(Api)),
            ..settings()
        },
    );
    let a = table.resolve(addr("192.0.2.12:8080")).expect("blog");
    assert_eq!(
        a.attribution
            .as_deref()
            .and_then(|a| a.workload.as_ref())
            .and_then(|w| w.kind),
        Some(agent_core::server::WorkloadKind::StatefulSet)
    );
    assert_eq!(table.sources.api, 1);
    assert_eq!(table.sources.pod_name, 1);
}

#[test]
fn services_retire_only_after_being_gone_for_the_grace_period() {
    let f = node();
    let (table, _) = scan_once(&f.config(), settings());
    let (tx, rx) = watch::channel(Arc::new(table));
    let mut r = Retirement::new(rx, Duration::from_secs(10));
    let t0 = Instant::now();
    assert!(r.due(t0).is_empty());
    std::fs::remove_dir_all(f.proc().join("210")).expect("rm");
    std::fs::remove_dir_all(f.proc().join("211")).expect("rm");
    tx.send_replace(Arc::new(scan_once(&f.config(), settings()).0));
    assert!(
        r.due(t0 + Duration::from_secs(1)).is_empty(),
        "grace period"
    );
    assert_eq!(
        r.due(t0 + Duration::from_secs(12)),
        vec![("blog".to_string(), "web".to_string())]
    );
    assert!(r.due(t0 + Duration::from_secs(30)).is_empty(), "once");
}
