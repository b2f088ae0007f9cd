//! What discovery counts: scans and their cost, namespaces and servers found, and every /proc
//! entry it could not use (exported as `apitap_discovery_*`, summarised in /health).

use agent_core::export::{MetricKind, SelfMetric};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

/// Shared counters (written by the scan, read by /metrics and /health).
#[derive(Debug, Default)]
pub struct DiscoveryStats {
    pub scans: AtomicU64,
    /// Cumulative scan time, microseconds.
    pub scan_micros: AtomicU64,
    /// Gauge: duration of the last scan, microseconds.
    pub last_scan_micros: AtomicU64,
    /// Namespaces whose socket tables were read (see `schedule`).
    pub table_reads: AtomicU64,
    /// Of those, the reads from /proc/<pid>/net/tcp{,6} text (sock_diag could not enter the
    /// namespace): each walks the host's whole TCP hash.
    pub proc_table_reads: AtomicU64,
    /// Gauge: network namespaces seen by the last scan.
    pub namespaces: AtomicU64,
    /// Gauge: servers (listening sockets) in the table.
    pub servers: AtomicU64,
    /// Gauge: watched ports.
    pub ports: AtomicU64,
    /// Processes that exited between being listed and being read.
    pub exited: AtomicU64,
    /// /proc entries that could not be read (permission denied or unexpected content).
    pub unreadable: AtomicU64,
    /// Cgroup files whose path could not be understood.
    pub odd_cgroups: AtomicU64,
    /// Listening sockets whose owning process was not found (its fds were not readable).
    pub unowned: AtomicU64,
    /// Malformed lines in /proc/<pid>/net/tcp{,6}.
    pub malformed_lines: AtomicU64,
    /// Addresses claimed by more than one network namespace (left unattributed).
    pub address_conflicts: AtomicU64,
    /// Listeners beyond the table's budget (left out, counted).
    pub over_budget: AtomicU64,
}

/// A plain copy for /health.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DiscoverySnapshot {
    pub scans: u64,
    pub last_scan_micros: u64,
    pub table_reads: u64,
    pub proc_table_reads: u64,
    pub namespaces: u64,
    pub servers: u64,
    pub ports: u64,
    pub exited: u64,
    pub unreadable: u64,
    pub odd_cgroups: u64,
    pub unowned: u64,
    pub malformed_lines: u64,
    pub address_conflicts: u64,
    pub over_budget: u64,
}

impl DiscoveryStats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub fn snapshot(&self) -> DiscoverySnapshot {
        let g = |c: &AtomicU64| c.load(Relaxed);
        DiscoverySnapshot {
            scans: g(&self.scans),
            last_scan_micros: g(&self.last_scan_micros),
            table_reads: g(&self.table_reads),
            proc_table_reads: g(&self.proc_table_reads),
            namespaces: g(&self.namespaces),
            servers: g(&self.servers),
            ports: g(&self.ports),
            exited: g(&self.exited),
            unreadable: g(&self.unreadable),
            odd_cgroups: g(&self.odd_cgroups),
            unowned: g(&self.unowned),
            malformed_lines: g(&self.malformed_lines),
            address_conflicts: g(&self.address_conflicts),
            over_budget: g(&self.over_budget),
        }
    }

    /// `apitap_discovery_*` self-metrics.
    pub fn self_metrics(&self) -> Vec<SelfMetric> {
        let s = self.snapshot();
        let metric =
            |name: &str, help: &str, kind, labels: Vec<(String, String)>, v: u64| SelfMetric {
                name: name.into(),
                help: help.into(),
                kind,
                labels,
                value: v as f64,
            };
        let skipped = |reason: &str, v| {
            metric(
                "apitap_discovery_skipped_total",
                "Things discovery could not use, by reason (process exited mid-scan, /proc entry unreadable, odd cgroup path, socket owner not found, malformed socket line, address claimed by two namespaces, over the server budget).",
                MetricKind::Counter,
                vec![("reason".into(), reason.into())],
                v,
            )
        };
        vec![
            metric(
                "apitap_discovery_scans_total",
                "Scans of every network namespace's listening sockets.",
                MetricKind::Counter,
                vec![],
                s.scans,
            ),
            SelfMetric {
                value: self.scan_micros.load(Relaxed) as f64 / 1e6,
                ..metric(
                    "apitap_discovery_scan_seconds_total",
                    "Time spent scanning.",
                    MetricKind::Counter,
                    vec![],
                    0,
                )
            },
            metric(
                "apitap_discovery_table_reads_total",
                "Namespaces whose listening sockets a scan read (by sock_diag: every namespace at every scan; from /proc text: new and settling ones at every scan, the rest in turn once per refresh_secs).",
                MetricKind::Counter,
                vec![],
                s.table_reads,
            ),
            metric(
                "apitap_discovery_proc_table_reads_total",
                "Of the table reads, those from /proc/<pid>/net/tcp{,6} text because sock_diag could not enter the namespace (setns needs CAP_SYS_ADMIN); each walks the host's whole TCP hash.",
                MetricKind::Counter,
                vec![],
                s.proc_table_reads,
            ),
            metric(
                "apitap_discovery_namespaces",
                "Network namespaces seen by the last scan.",
                MetricKind::Gauge,
                vec![],
                s.namespaces,
            ),
            metric(
                "apitap_discovery_servers",
                "Listening sockets attributed to a server.",
                MetricKind::Gauge,
                vec![],
                s.servers,
            ),
            metric(
                "apitap_discovery_ports",
                "Ports the kernel filter watches.",
                MetricKind::Gauge,
                vec![],
                s.ports,
            ),
            skipped("exited", s.exited),
            skipped("unreadable", s.unreadable),
            skipped("odd_cgroup", s.odd_cgroups),
            skipped("unowned", s.unowned),
            skipped("malformed", s.malformed_lines),
            skipped("address_conflict", s.address_conflicts),
            skipped("over_budget", s.over_budget),
        ]
    }
}
