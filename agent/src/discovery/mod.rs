//! Servers in every network namespace of the host.
//!
//! Every `interval_ms` (default 2 s) a scan groups the processes of the host by network
//! namespace (`/proc/<pid>/ns/net`), reads each namespace's LISTEN sockets (by sock_diag where
//! it can enter the namespace, see `diag`, else through one of its processes'
//! `/proc/<pid>/net/tcp{,6}`) and its local addresses (`fib_trie`, `if_inet6`),
//! finds each new socket's owner (`/proc/<pid>/fd`), and attributes it: pid and executable,
//! container id and pod UID from the cgroup path, namespace and pod name from the kubelet's
//! `/var/log/pods` (or the Kubernetes API, see [`crate::kube`]), workload from the API or the
//! pod name. The result is a [`ServerTable`] keyed the way flows see servers on the wire:
//! (address, port), where an address belongs to the namespace that has it (pod IPs are unique
//! on a node; loopback belongs to the agent's own namespace; a `0.0.0.0`/`::` listener matches
//! every address of its namespace).
//!
//! ```text
//! scan (blocking pool) ─▶ TableBuilder (names, rules) ─▶ watch<Arc<ServerTable>> ─┬▶ Resolver (engine, once per flow)
//!                                                      └▶ watch<ports> ─▶ kernel port filter   └▶ Retirement (series of gone services)
//! ```
//! The kernel filter stays port-based (the union of every namespace's ports); user space sorts
//! flows by (server address, port) and skips, counted, what no local server listens on.

mod addrs;
mod cgroup;
mod diag;
mod naming;
mod pods;
mod procfs;
mod scan;
mod schedule;
mod sockets;
mod stats;
mod table;

pub use cgroup::{CgroupInfo, Parsed as CgroupParsed, parse as parse_cgroup};
pub use naming::{ServiceRule, workload_from_pod_name};
pub use stats::{DiscoverySnapshot, DiscoveryStats};
pub use table::{PodMeta, PodSource, ServerTable, WorkloadSources};

use agent_core::server::{PortNames, ResolveServer, Server, Skip};
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use pods::PodIndex;
use procfs::Proc;
use scan::Scanner;
use schedule::Schedule;
use table::TableBuilder;

/// `[discovery]`: where the host's files are and how often to look.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscoveryConfig {
    /// The host's /proc (a DaemonSet with hostPID sees it at /proc).
    pub proc_root: PathBuf,
    /// The host's cgroup mount (reported in /health: v1 or v2).
    pub cgroup_root: PathBuf,
    /// The kubelet's pod log directories (`<namespace>_<pod>_<uid>`).
    pub pod_logs_root: PathBuf,
    /// Time between scans, 100-60000 ms.
    pub interval_ms: u64,
    /// A namespace read from the /proc text that appeared, or got a new long-lived process,
    /// has its sockets read at every scan for this long, 0-3600 s; afterwards in turn (see
    /// `refresh_secs`). Namespaces read by sock_diag are read at every scan.
    pub settle_secs: u64,
    /// Every settled namespace read from the /proc text has its sockets read again at least
    /// this often, 10-86400 s (each such read walks the host's whole TCP table; see
    /// `schedule`).
    pub refresh_secs: u64,
    /// A service whose servers are all gone has its series dropped after this long, 1-86400 s.
    pub retire_after_secs: u64,
    /// Listening sockets kept in the table; the rest are counted (`over_budget`).
    pub max_servers: u32,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            proc_root: "/proc".into(),
            cgroup_root: "/sys/fs/cgroup".into(),
            pod_logs_root: "/var/log/pods".into(),
            interval_ms: 2_000,
            settle_secs: 120,
            refresh_secs: 600,
            retire_after_secs: 300,
            max_servers: 65_536,
        }
    }
}

impl DiscoveryConfig {
    /// Checks the values; the error is (key below `discovery.`, why).
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(100..=60_000).contains(&self.interval_ms) {
            return Err(("interval_ms", "must be 100-60000".into()));
        }
        if self.settle_secs > 3_600 {
            return Err(("settle_secs", "must be 0-3600".into()));
        }
        if !(10..=86_400).contains(&self.refresh_secs) {
            return Err(("refresh_secs", "must be 10-86400".into()));
        }
        if !(1..=86_400).contains(&self.retire_after_secs) {
            return Err(("retire_after_secs", "must be 1-86400".into()));
        }
        if !(1..=1_048_576).contains(&self.max_servers) {
            return Err(("max_servers", "must be 1-1048576".into()));
        }
        Ok(())
    }

    /// "v2" when the cgroup root is a unified hierarchy, "v1" otherwise.
    pub fn cgroup_version(&self) -> &'static str {
        if self.cgroup_root.join("cgroup.controllers").exists() {
            "v2"
        } else {
            "v1"
        }
    }
}

/// The agent's own network namespace (its interfaces are the ones it captures on).
pub fn own_netns() -> Option<u64> {
    let link = std::fs::read_link("/proc/self/ns/net").ok()?;
    link.to_str()?
        .strip_prefix("net:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Scanner and table builder: one scan and one build per call (on a blocking thread in the
/// agent), keeping what it learned between calls.
pub struct Discoverer {
    scanner: Scanner,
    builder: TableBuilder,
    stats: Arc<DiscoveryStats>,
}

impl Discoverer {
    pub fn new(cfg: &DiscoveryConfig, settings: Settings) -> Discoverer {
        let stats = Arc::new(DiscoveryStats::default());
        Discoverer {
            scanner: Scanner::new(
                Proc::new(&cfg.proc_root),
                stats.clone(),
                Schedule::new(
                    Duration::from_secs(cfg.settle_secs),
                    Duration::from_secs(cfg.refresh_secs),
                    Duration::from_millis(cfg.interval_ms),
                ),
                Some(diag::Diag::new()),
            ),
            builder: TableBuilder::new(
                settings.rules,
                settings.local_netns,
                settings.own_port,
                cfg.max_servers as usize,
                PodIndex::new(&cfg.pod_logs_root),
                settings.api,
            ),
            stats,
        }
    }

    /// The same discoverer reading every namespace's sockets from the /proc text only, as
    /// without sock_diag (the discovery bench compares both).
    pub fn proc_text_only(mut self) -> Discoverer {
        self.scanner.without_diag();
        self
    }

    pub fn stats(&self) -> &Arc<DiscoveryStats> {
        &self.stats
    }

    /// One scan and the table built from it.
    pub fn run(&mut self) -> ServerTable {
        let start = Instant::now();
        let scan = self.scanner.scan();
        let table = self.builder.build(&scan, &self.stats);
        let micros = start.elapsed().as_micros() as u64;
        self.stats.scans.fetch_add(1, Relaxed);
        self.stats.scan_micros.fetch_add(micros, Relaxed);
        self.stats.last_scan_micros.store(micros, Relaxed);
        table
    }
}

/// What `start` needs besides the config.
pub struct Settings {
    pub rules: Vec<ServiceRule>,
    /// The port of the agent's own endpoint (never a server).
    pub own_port: Option<u16>,
    pub local_netns: Option<u64>,
    /// Pods from the Kubernetes API, when it is reachable.
    pub api: Option<Arc<dyn PodSource>>,
}

/// A running discovery: the table and port watches, and its counters.
pub struct Discovery {
    pub table: watch::Receiver<Arc<ServerTable>>,
    pub ports: watch::Receiver<BTreeSet<u16>>,
    pub stats: Arc<DiscoveryStats>,
    pub task: JoinHandle<()>,
}

/// Scans once now (so capture starts with the right ports), then every interval until
/// `cancel`.
pub fn start(cfg: &DiscoveryConfig, settings: Settings, cancel: CancellationToken) -> Discovery {
    let mut worker = Discoverer::new(cfg, settings);
    let stats = worker.stats.clone();
    let first = Arc::new(worker.run());
    info!(
        servers = first.len(),
        ports = ?first.ports,
        namespaces = stats.namespaces.load(Relaxed),
        "discovered servers"
    );
    let (ports_tx, ports) = watch::channel(first.ports.clone());
    let (table_tx, table) = watch::channel(first);
    let interval = Duration::from_millis(cfg.interval_ms);
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let Ok((w, t)) = tokio::task::spawn_blocking(move || {
                let t = worker.run();
                (worker, t)
            })
            .await
            else {
                return;
            };
            worker = w;
            ports_tx.send_if_modified(|p| {
                if *p == t.ports {
                    return false;
                }
                debug!(ports = ?t.ports, "watched ports changed");
                *p = t.ports.clone();
                true
            });
            table_tx.send_replace(Arc::new(t));
        }
    });
    Discovery {
        table,
        ports,
        stats,
        task,
    }
}

/// The engine's resolver in live capture: the latest table; with `--port`, servers the table
/// does not know are still counted, as `port-N`.
pub struct Resolver {
    table: watch::Receiver<Arc<ServerTable>>,
    fallback: Option<PortNames>,
}

impl Resolver {
    /// `permissive`: fixed ports were configured, so every flow to them counts.
    pub fn new(table: watch::Receiver<Arc<ServerTable>>, permissive: bool) -> Resolver {
        Resolver {
            table,
            fallback: permissive.then(PortNames::default),
        }
    }
}

impl ResolveServer for Resolver {
    fn resolve(&mut self, server: SocketAddr) -> Result<Server, Skip> {
        let found = self.table.borrow().resolve(server);
        match (found, &mut self.fallback) {
            (Err(Skip::NotLocal), Some(names)) => names.resolve(server),
            (r, _) => r,
        }
    }

    fn resolve_into(&mut self, server: SocketAddr, into: &mut Server) -> Result<(), Skip> {
        let table = self.table.borrow();
        match (table.lookup(server), &mut self.fallback) {
            (Ok(found), _) => {
                into.assign_from(found);
                Ok(())
            }
            (Err(Skip::NotLocal), Some(names)) => names.resolve_into(server, into),
            (Err(skip), _) => Err(skip),
        }
    }
}

/// Decides when a service's series go: once none of its servers has been in the table for
/// `after`. Only services discovery named are retired (a `port-N` of `--port` never is).
pub struct Retirement {
    table: watch::Receiver<Arc<ServerTable>>,
    after: Duration,
    /// (namespace, service) -> when it left the table (None while present).
    known: HashMap<(String, String), Option<Instant>>,
}

impl Retirement {
    pub fn new(table: watch::Receiver<Arc<ServerTable>>, after: Duration) -> Retirement {
        Retirement {
            table,
            after,
            known: HashMap::new(),
        }
    }

    /// Services to retire now.
    pub fn due(&mut self, now: Instant) -> Vec<(String, String)> {
        let table = self.table.borrow().clone();
        for s in &table.services {
            match self.known.get_mut(s) {
                Some(gone) => *gone = None,
                None => {
                    self.known.insert(s.clone(), None);
                }
            }
        }
        let mut due = Vec::new();
        self.known.retain(|s, gone| {
            if table.services.contains(s) {
                return true;
            }
            let since = *gone.get_or_insert(now);
            if now.duration_since(since) >= self.after {
                due.push(s.clone());
                return false;
            }
            true
        });
        due.sort();
        due
    }
}

/// Runs one scan over a /proc tree (tests).
pub fn scan_once(cfg: &DiscoveryConfig, settings: Settings) -> (ServerTable, DiscoverySnapshot) {
    let mut d = Discoverer::new(cfg, settings);
    let t = d.run();
    (t, d.stats.snapshot())
}

#[cfg(test)]
mod tests;
