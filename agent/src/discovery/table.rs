//! The server table: every discovered listening socket, attributed and named, keyed the way
//! flows see servers on the wire — (namespace of the address, address or wildcard, port).
//! Built after each scan, published as an immutable `Arc`, read once per new flow: with
//! foldhash (randomly seeded per process), as a connection's first segment can take three
//! look-ups here (the address, its wildcard, the dual-stack wildcard).

use foldhash::{HashMap, HashMapExt};
use std::collections::{BTreeSet, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use agent_core::server::{Attribution, Server, Skip, Workload};

use super::naming::{ServiceRule, Subject, service_name, workload_from_pod_name};
use super::pods::PodIndex;
use super::scan::{Found, Scan};
use super::stats::DiscoveryStats;

/// What the Kubernetes API knows about a pod of this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodMeta {
    pub namespace: String,
    pub name: String,
    /// The owning workload (ReplicaSet resolved to its Deployment, Job to its CronJob).
    pub workload: Workload,
}

/// Pods by UID, from the Kubernetes API when the agent can reach it.
pub trait PodSource: Send + Sync {
    fn pod(&self, uid: &str) -> Option<PodMeta>;
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Entry {
    Serve(Server),
    Exclude,
}

/// How workloads were named in the last build (for /health).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct WorkloadSources {
    /// Pods named by the Kubernetes API.
    pub api: u64,
    /// Pods named from /var/log/pods and the pod name alone.
    pub pod_name: u64,
    /// Pods whose UID was in no source (named by process or port).
    pub unknown_pod: u64,
}

/// The immutable table flows are resolved against.
#[derive(Debug, Default)]
pub struct ServerTable {
    /// The namespace the agent captures in: loopback addresses belong to it.
    local_netns: Option<u64>,
    ip_netns: HashMap<IpAddr, u64>,
    entries: HashMap<(u64, IpAddr, u16), Entry>,
    /// Ports of every server that is not excluded: the kernel filter.
    pub ports: BTreeSet<u16>,
    /// (namespace, service) of every server: services not in it any more are retired.
    pub services: BTreeSet<(String, String)>,
    pub sources: WorkloadSources,
}

fn unspecified(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

/// An IPv4-mapped IPv6 address as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Addresses that say nothing about which namespace they belong to.
fn shared(ip: IpAddr) -> bool {
    ip.is_loopback()
        || ip.is_unspecified()
        || matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80)
}

impl ServerTable {
    /// The server behind a flow's server address.
    pub fn resolve(&self, addr: SocketAddr) -> Result<Server, Skip> {
        self.lookup(addr).cloned()
    }

    /// [`resolve`](Self::resolve) without the copy.
    pub fn lookup(&self, addr: SocketAddr) -> Result<&Server, Skip> {
        let ip = canonical(addr.ip());
        let ns = if ip.is_loopback() {
            self.local_netns
        } else {
            self.ip_netns.get(&ip).copied()
        };
        let ns = ns.ok_or(Skip::NotLocal)?;
        let port = addr.port();
        let entry = self
            .entries
            .get(&(ns, ip, port))
            .or_else(|| self.entries.get(&(ns, unspecified(ip), port)))
            // A dual-stack `[::]` listener also accepts IPv4.
            .or_else(|| {
                ip.is_ipv4()
                    .then(|| {
                        self.entries
                            .get(&(ns, IpAddr::V6(Ipv6Addr::UNSPECIFIED), port))
                    })
                    .flatten()
            });
        match entry {
            Some(Entry::Serve(s)) => Ok(s),
            Some(Entry::Exclude) => Err(Skip::Excluded),
            None => Err(Skip::NotLocal),
        }
    }

    /// Number of servers (excluded ones included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Builds tables, reusing the previous table's `Arc`s where nothing changed (so flows of one
/// server keep sharing one attribution).
pub struct TableBuilder {
    pub rules: Vec<ServiceRule>,
    pub local_netns: Option<u64>,
    /// The agent's own listener (its port in the local namespace) is never a server.
    pub own_port: Option<u16>,
    pub max_servers: usize,
    pub pods: PodIndex,
    pub api: Option<Arc<dyn PodSource>>,
    prev: HashMap<(u64, IpAddr, u16), Entry>,
}

impl TableBuilder {
    pub fn new(
        rules: Vec<ServiceRule>,
        local_netns: Option<u64>,
        own_port: Option<u16>,
        max_servers: usize,
        pods: PodIndex,
        api: Option<Arc<dyn PodSource>>,
    ) -> TableBuilder {
        TableBuilder {
            rules,
            local_netns,
            own_port,
            max_servers,
            pods,
            api,
            prev: HashMap::new(),
        }
    }

    pub fn build(&mut self, scan: &Scan, stats: &DiscoveryStats) -> ServerTable {
        self.pods.begin_scan();
        let mut t = ServerTable {
            local_netns: self.local_netns,
            ..ServerTable::default()
        };
        let mut conflicts: HashSet<IpAddr> = HashSet::new();
        for (&ns, addrs) in &scan.addrs {
            for &ip in addrs.iter().filter(|ip| !shared(**ip)) {
                match t.ip_netns.insert(ip, ns) {
                    Some(other) if other != ns => {
                        conflicts.insert(ip);
                    }
                    _ => {}
                }
            }
        }
        for ip in &conflicts {
            t.ip_netns.remove(ip);
        }
        stats
            .address_conflicts
            .store(conflicts.len() as u64, Relaxed);
        let mut over = 0;
        for found in &scan.servers {
            let key = (
                found.netns,
                canonical(found.listener.addr),
                found.listener.port,
            );
            if t.entries.contains_key(&key) {
                continue;
            }
            if t.entries.len() >= self.max_servers {
                over += 1;
                continue;
            }
            let entry = self.entry(found, &mut t.sources);
            let entry = match self.prev.get(&key) {
                Some(prev) if *prev == entry => prev.clone(),
                _ => entry,
            };
            if let Entry::Serve(s) = &entry {
                t.ports.insert(key.2);
                let ns = s.attribution.as_deref().map_or("", |a| &*a.namespace);
                t.services.insert((ns.to_owned(), s.service.to_string()));
            }
            t.entries.insert(key, entry);
        }
        DiscoveryStats::add(&stats.over_budget, over);
        stats.servers.store(t.entries.len() as u64, Relaxed);
        stats.ports.store(t.ports.len() as u64, Relaxed);
        stats.namespaces.store(scan.namespaces as u64, Relaxed);
        self.prev = t.entries.clone();
        t
    }

    fn entry(&mut self, found: &Found, sources: &mut WorkloadSources) -> Entry {
        let port = found.listener.port;
        if Some(found.netns) == self.local_netns && Some(port) == self.own_port {
            return Entry::Exclude;
        }
        let owner = &found.owner;
        let mut a = Attribution {
            pid: owner.pid,
            executable: owner.executable.as_deref().map(Into::into),
            container_id: owner.cgroup.container_id.as_deref().map(Into::into),
            ..Attribution::default()
        };
        if let Some(uid) = &owner.cgroup.pod_uid {
            let from_api = self.api.as_ref().and_then(|api| api.pod(uid));
            if let Some(meta) = from_api {
                sources.api += 1;
                a.namespace = meta.namespace.into();
                a.pod = Some(meta.name.into());
                a.workload = Some(meta.workload);
            } else if let Some(pod) = self.pods.get(uid) {
                sources.pod_name += 1;
                a.namespace = pod.namespace.as_str().into();
                a.workload = Some(workload_from_pod_name(&pod.name));
                a.pod = Some(pod.name.as_str().into());
            } else {
                sources.unknown_pod += 1;
            }
        }
        let subject = Subject {
            namespace: &a.namespace,
            workload: a.workload.as_ref().map(|w| &*w.name),
            process: a.executable.as_deref(),
            port,
        };
        match service_name(&self.rules, &subject) {
            None => Entry::Exclude,
            Some(name) => {
                let known = a != Attribution::default();
                Entry::Serve(Server {
                    service: name.into(),
                    attribution: known.then(|| Arc::new(a)),
                })
            }
        }
    }
}
