//! Discovery's cost on a busy node, as figures (run by `cargo xtask bench` as root, or
//! `flock /tmp/apitap-root.lock cargo bench -p apitap --bench discovery [N]`): creates N
//! network namespaces (default 200), each with an address (on a veth pair inside it) and one
//! listening process, as N pods would, then times the scans the agent runs every 2 s. Prints
//! the first scan (every socket's owner found), a scan while every namespace is settling (all
//! read), and the settled steady state, wall and CPU time per scan, and the share of one core
//! that scanning every 2 s costs; once with the listening sockets read by sock_diag (the
//! default: every namespace at every scan) and once from the /proc text (each namespace
//! re-read once per `refresh_secs`). Everything it creates is removed at the end.

use apitap::discovery::{Discoverer, DiscoveryConfig, Settings, own_netns};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SCANS: u32 = 50;
const INTERVAL: Duration = Duration::from_secs(2);

/// N namespaces with a listener each, removed on drop.
struct Pods {
    names: Vec<String>,
    listeners: Vec<Child>,
}

impl Pods {
    fn create(n: usize) -> Pods {
        let mut pods = Pods {
            names: Vec::new(),
            listeners: Vec::new(),
        };
        for i in 0..n {
            let name = format!("at-bench-{}-{i}", std::process::id());
            let ok = Command::new("ip")
                .args(["netns", "add", &name])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "ip netns add {name} failed (root needed)");
            pods.names.push(name.clone());
            let ip = format!("192.0.2.{}/32", 1 + i % 250);
            let sh = format!(
                "ip link set lo up && ip link add eth0 type veth peer name peer0 && ip addr add {ip} dev eth0 && ip link set peer0 up && ip link set eth0 up"
            );
            let ok = Command::new("ip")
                .args(["netns", "exec", &name, "sh", "-c", &sh])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "cannot set up {name}");
            let child = Command::new("ip")
                .args(["netns", "exec", &name, "nc", "-lk", "8080"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("nc is installed (netcat-openbsd)");
            pods.listeners.push(child);
        }
        // Every listener bound before measuring.
        std::thread::sleep(Duration::from_secs(2));
        pods
    }
}

impl Drop for Pods {
    fn drop(&mut self) {
        for c in &mut self.listeners {
            let _ = c.kill();
            let _ = c.wait();
        }
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

/// CPU time (user + system) of this process.
fn cpu() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("discovery bench NOT RUN: it needs root (network namespaces)");
        return;
    }
    let pods = Pods::create(n);
    let settings = || Settings {
        rules: Vec::new(),
        own_port: None,
        local_netns: own_netns(),
        api: None,
    };
    for proc_text in [false, true] {
        let how = if proc_text {
            "/proc/<pid>/net/tcp{,6} text"
        } else {
            "sock_diag (the default)"
        };
        let make = |cfg: &DiscoveryConfig| {
            let d = Discoverer::new(cfg, settings());
            if proc_text { d.proc_text_only() } else { d }
        };
        println!("discovery, listening sockets read by {how}:");
        measure(n, &make);
    }
    drop(pods);
}

fn measure(n: usize, make: &dyn Fn(&DiscoveryConfig) -> Discoverer) {
    let cfg = DiscoveryConfig::default();
    let mut d = make(&cfg);
    let (w0, c0) = (Instant::now(), cpu());
    let table = d.run();
    let (first_wall, first_cpu) = (w0.elapsed(), cpu() - c0);
    let namespaces = d.stats().snapshot().namespaces;
    // While namespaces settle (new pods, restarted containers), every one of them is read at
    // every scan: the cost per settling namespace.
    let settling = SCANS / 5;
    let (w0, c0) = (Instant::now(), cpu());
    for _ in 0..settling {
        std::hint::black_box(d.run());
    }
    let (settling_wall, settling_cpu) = (w0.elapsed() / settling, (cpu() - c0) / settling);
    let s = d.stats().snapshot();
    println!(
        "  {n} pod namespaces ({namespaces} namespaces on the host), {} servers in the table, {} processes exited mid-scan, {} unreadable, {} of {} table reads from /proc text",
        table.len(),
        s.exited,
        s.unreadable,
        s.proc_table_reads,
        s.table_reads
    );
    println!(
        "  first scan {:.1} ms wall, {:.1} ms CPU; a scan while all {n} settle {:.1} ms wall, {:.1} ms CPU ({:.1} % of one core at one scan every {} s)",
        first_wall.as_secs_f64() * 1e3,
        first_cpu.as_secs_f64() * 1e3,
        settling_wall.as_secs_f64() * 1e3,
        settling_cpu.as_secs_f64() * 1e3,
        100.0 * settling_cpu.as_secs_f64() / INTERVAL.as_secs_f64(),
        INTERVAL.as_secs()
    );
    // Settled (the steady state of a node): settle_secs = 0 makes every namespace settled
    // after its first read; the /proc text is then re-read once per refresh_secs, a
    // namespace with a sock_diag socket at every scan.
    let settled_cfg = DiscoveryConfig {
        settle_secs: 0,
        ..DiscoveryConfig::default()
    };
    let mut d = make(&settled_cfg);
    d.run();
    let reads0 = d.stats().snapshot().table_reads;
    let (w0, c0) = (Instant::now(), cpu());
    for _ in 0..SCANS {
        std::hint::black_box(d.run());
    }
    let (wall, cpu_time) = (w0.elapsed() / SCANS, (cpu() - c0) / SCANS);
    let reads = d.stats().snapshot().table_reads - reads0;
    println!(
        "  settled scan {:.2} ms wall, {:.2} ms CPU, {:.1} namespaces read per scan (refresh_secs {}; {SCANS} scans)",
        wall.as_secs_f64() * 1e3,
        cpu_time.as_secs_f64() * 1e3,
        reads as f64 / f64::from(SCANS),
        settled_cfg.refresh_secs
    );
    println!(
        "  settled, at one scan every {} s: {:.3} % of one core",
        INTERVAL.as_secs(),
        100.0 * cpu_time.as_secs_f64() / INTERVAL.as_secs_f64()
    );
}
