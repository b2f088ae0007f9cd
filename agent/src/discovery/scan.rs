//! One pass over /proc: the network namespace of every process, the LISTEN sockets of each
//! namespace (by sock_diag where it can enter the namespace, see `diag`, else from the
//! /proc text of one of its processes), their owners (the process holding the socket,
//! found once per socket through /proc/<pid>/fd), the owners' executables and cgroups, and
//! the namespace's local addresses.
//!
//! Costs are kept to what changes: a namespace costs one readlink per process plus two small
//! dumps (or two /proc reads, which walk the host's TCP hash, at most once per schedule
//! slot); the fd walk runs only for sockets not seen before, and addresses are re-read when a
//! namespace is new or every [`ADDR_REFRESH_SCANS`] scans. Everything that fails is counted
//! in [`DiscoveryStats`] and skipped.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use tracing::warn;

use super::addrs::{parse_fib_trie, parse_if_inet6};
use super::cgroup::{self, CgroupInfo, Parsed};
use super::diag::{Diag, Unusable};
use super::procfs::{Failure, Proc};
use super::schedule::Schedule;
use super::sockets::{Listener, parse_listeners};
use super::stats::DiscoveryStats;

/// Addresses of a namespace are re-read this often (in scans) even when nothing changed.
pub const ADDR_REFRESH_SCANS: u32 = 15;

/// The process behind a listening socket, as far as /proc could tell.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Owner {
    pub pid: Option<u32>,
    pub executable: Option<String>,
    pub cgroup: CgroupInfo,
}

/// One listening socket of one namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub netns: u64,
    pub listener: Listener,
    pub owner: Arc<Owner>,
}

/// What one scan saw.
#[derive(Clone, Debug, Default)]
pub struct Scan {
    pub servers: Vec<Found>,
    /// Local addresses of every namespace that has a listener.
    pub addrs: HashMap<u64, BTreeSet<IpAddr>>,
    pub namespaces: usize,
}

/// Scans a /proc tree, keeping what it learned about sockets between scans.
pub struct Scanner {
    proc: Proc,
    stats: Arc<DiscoveryStats>,
    /// (netns, socket inode) -> owner.
    owners: HashMap<(u64, u64), Arc<Owner>>,
    /// netns -> (addresses, scans since read).
    addrs: HashMap<u64, (BTreeSet<IpAddr>, u32)>,
    /// Which namespaces' socket tables a scan reads.
    schedule: Schedule,
    /// netns -> its listeners when last read.
    listening: HashMap<u64, Vec<Listener>>,
    /// sock_diag sockets; `None` reads only the /proc text.
    diag: Option<Diag>,
    /// A fallback to the /proc text was logged.
    fell_back: bool,
}

impl Scanner {
    pub fn new(
        proc: Proc,
        stats: Arc<DiscoveryStats>,
        schedule: Schedule,
        diag: Option<Diag>,
    ) -> Scanner {
        Scanner {
            proc,
            stats,
            owners: HashMap::new(),
            addrs: HashMap::new(),
            schedule,
            listening: HashMap::new(),
            diag,
            fell_back: false,
        }
    }

    /// Reads the /proc text only from now on.
    pub fn without_diag(&mut self) {
        self.diag = None;
    }

    fn count(&self, f: Failure) {
        let c: &AtomicU64 = match f {
            Failure::Exited => &self.stats.exited,
            Failure::Denied | Failure::Other => &self.stats.unreadable,
        };
        DiscoveryStats::add(c, 1);
    }

    pub fn scan(&mut self) -> Scan {
        let pids = match self.proc.pids() {
            Ok(p) => p,
            Err(_) => {
                DiscoveryStats::add(&self.stats.unreadable, 1);
                return Scan::default();
            }
        };
        let mut by_ns: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
        for pid in pids {
            match self.proc.netns(pid) {
                Ok(ns) => by_ns.entry(ns).or_default().push(pid),
                Err(f) => self.count(f),
            }
        }
        let mut scan = Scan {
            namespaces: by_ns.len(),
            ..Scan::default()
        };
        let due = self.schedule.plan(Instant::now(), &by_ns);
        self.listening.retain(|ns, _| by_ns.contains_key(ns));
        if let Some(d) = &mut self.diag {
            d.retain(|ns| by_ns.contains_key(&ns));
        }
        let mut seen_sockets = HashSet::new();
        for (&ns, pids) in &by_ns {
            // A dump is cheap: namespaces sock_diag holds a socket for are read at every scan,
            // and the schedule spaces out the rest (the /proc reads, and namespaces past
            // `diag::MAX_SOCKETS`).
            let cheap = self.diag.as_ref().is_some_and(|d| d.has(ns));
            let listeners = if cheap || due.contains(&ns) {
                DiscoveryStats::add(&self.stats.table_reads, 1);
                let read = self.listeners(ns, pids);
                self.listening.insert(ns, read.clone());
                read
            } else {
                self.listening.get(&ns).cloned().unwrap_or_default()
            };
            if listeners.is_empty() {
                continue;
            }
            scan.addrs.insert(ns, self.addresses(ns, pids));
            let wanted: HashSet<u64> = listeners
                .iter()
                .map(|l| l.inode)
                .filter(|i| !self.owners.contains_key(&(ns, *i)))
                .collect();
            if !wanted.is_empty() {
                self.find_owners(ns, pids, wanted);
            }
            for l in listeners {
                seen_sockets.insert((ns, l.inode));
                let owner = self.owners.get(&(ns, l.inode)).cloned().unwrap_or_default();
                scan.servers.push(Found {
                    netns: ns,
                    listener: l,
                    owner,
                });
            }
        }
        self.owners.retain(|k, _| seen_sockets.contains(k));
        self.addrs.retain(|ns, _| scan.addrs.contains_key(ns));
        scan
    }

    /// The LISTEN sockets of a namespace: by sock_diag when it can enter the namespace, else
    /// from the /proc text of the first of its processes that can be read (any process of a
    /// namespace shows the same tables).
    fn listeners(&mut self, ns: u64, pids: &[u32]) -> Vec<Listener> {
        let mut refused = None;
        if let Some(diag) = &mut self.diag
            && diag.can_read(ns)
        {
            for &pid in pids {
                match diag.listeners(ns, &self.proc.ns_path(pid)) {
                    Ok(found) => return found,
                    Err(Unusable::Gone) => continue,
                    Err(Unusable::Denied(e)) => {
                        refused =
                            Some(("entering another network namespace needs CAP_SYS_ADMIN", e));
                        break;
                    }
                    Err(Unusable::Failed(e)) => {
                        refused = Some(("the sock_diag dump failed", e));
                        break;
                    }
                }
            }
        }
        if let Some((hint, e)) = refused
            && !std::mem::replace(&mut self.fell_back, true)
        {
            warn!(
                netns = ns,
                error = %e,
                "discovery: {hint}; reading this namespace's /proc/<pid>/net/tcp{{,6}} instead, which walks the host's whole TCP hash (counted in apitap_discovery_proc_table_reads_total; logged once)"
            );
        }
        DiscoveryStats::add(&self.stats.proc_table_reads, 1);
        self.listeners_from_proc(pids)
    }

    fn listeners_from_proc(&self, pids: &[u32]) -> Vec<Listener> {
        for &pid in pids {
            let v4 = self.proc.read_listening(pid, "net/tcp");
            let v6 = self.proc.read_listening(pid, "net/tcp6");
            match (v4, v6) {
                (Err(f), _) => self.count(f),
                (Ok(v4), v6) => {
                    let (mut all, bad4) = parse_listeners(&v4);
                    // tcp6 is absent when IPv6 is disabled.
                    let (v6, bad6) = v6.map(|t| parse_listeners(&t)).unwrap_or_default();
                    all.extend(v6);
                    all.sort_unstable();
                    all.dedup();
                    DiscoveryStats::add(&self.stats.malformed_lines, bad4 + bad6);
                    return all;
                }
            }
        }
        Vec::new()
    }

    fn addresses(&mut self, ns: u64, pids: &[u32]) -> BTreeSet<IpAddr> {
        if let Some((addrs, age)) = self.addrs.get_mut(&ns)
            && *age < ADDR_REFRESH_SCANS
        {
            *age += 1;
            return addrs.clone();
        }
        for &pid in pids {
            match self.proc.read(pid, "net/fib_trie") {
                Ok(text) => {
                    let mut addrs = parse_fib_trie(&text);
                    if let Ok(v6) = self.proc.read(pid, "net/if_inet6") {
                        addrs.extend(parse_if_inet6(&v6));
                    }
                    self.addrs.insert(ns, (addrs.clone(), 0));
                    return addrs;
                }
                Err(f) => self.count(f),
            }
        }
        BTreeSet::new()
    }

    /// Walks the fds of the namespace's processes (lowest pid first, so a forking server's
    /// parent wins) until every wanted socket has an owner. Sockets left without one get an
    /// owner known only by the namespace's cgroup (the pod), and are counted as unowned.
    fn find_owners(&mut self, ns: u64, pids: &[u32], mut wanted: HashSet<u64>) {
        for &pid in pids {
            if wanted.is_empty() {
                break;
            }
            let inodes = match self.proc.socket_inodes(pid) {
                Ok(i) => i,
                Err(f) => {
                    self.count(f);
                    continue;
                }
            };
            let mut owner: Option<Arc<Owner>> = None;
            for inode in inodes {
                if wanted.remove(&inode) {
                    let o = owner
                        .get_or_insert_with(|| Arc::new(self.owner(pid)))
                        .clone();
                    self.owners.insert((ns, inode), o);
                }
            }
        }
        if wanted.is_empty() {
            return;
        }
        DiscoveryStats::add(&self.stats.unowned, wanted.len() as u64);
        // Every process of a pod shares its pod UID; the last one started is the likeliest
        // to be the server (the first is the pod's sandbox).
        let cgroup = pids
            .iter()
            .rev()
            .find_map(|&pid| self.cgroup(pid))
            .map(|c| CgroupInfo {
                container_id: None,
                pod_uid: c.pod_uid,
            })
            .unwrap_or_default();
        let unknown = Arc::new(Owner {
            pid: None,
            executable: None,
            cgroup,
        });
        for inode in wanted {
            self.owners.insert((ns, inode), unknown.clone());
        }
    }

    fn owner(&self, pid: u32) -> Owner {
        let executable = match self.proc.executable(pid) {
            Ok(e) if !e.is_empty() => Some(e),
            Ok(_) => None,
            Err(f) => {
                self.count(f);
                None
            }
        };
        Owner {
            pid: Some(pid),
            executable,
            cgroup: self.cgroup(pid).unwrap_or_default(),
        }
    }

    fn cgroup(&self, pid: u32) -> Option<CgroupInfo> {
        match self.proc.read(pid, "cgroup") {
            Ok(text) => match cgroup::parse(&text) {
                Parsed::Info(i) => Some(i),
                Parsed::Odd(i) => {
                    DiscoveryStats::add(&self.stats.odd_cgroups, 1);
                    Some(i)
                }
            },
            Err(f) => {
                self.count(f);
                None
            }
        }
    }
}
