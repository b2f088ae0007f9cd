//! Which namespaces a scan reads the socket tables of, when it reads them from the /proc text
//! (a namespace that sock_diag holds a socket for is read at every scan, see `diag`).
//!
//! Reading `/proc/<pid>/net/tcp` and `tcp6` makes the kernel walk the host's whole TCP hash
//! table, which every namespace shares (262,144 buckets on the build machine: about 13 ms of
//! system time per namespace for both files). Reading every namespace at every scan therefore
//! costs namespaces × table size: 133 % of one core with 200 pods at the 2 s interval. So a scan
//! reads only the namespaces where a listener can have appeared, and keeps the rest:
//!
//! - a namespace seen for the first time is read at once (a new pod is watched within one
//!   interval, a deleted one forgotten as soon as its last process is gone);
//! - a namespace is **settling** for `settle` after it appeared or after a new long-lived process
//!   joined it (one seen by two scans in a row: a container (re)started; exec probes that live
//!   less than an interval do not count). Settling namespaces are read at every scan, so a server
//!   that takes a while to open its port (a JVM) is found within one interval of doing so;
//! - every other namespace is re-read in turn, the stalest first, so that each is read at least
//!   once per `refresh` (a process that opens a new port long after it started is found within
//!   `refresh`). The per-scan quota is `ceil(settled × interval / refresh)`.
//!
//! Cost with N settled namespaces: `ceil(N × interval / refresh)` table reads per scan instead
//! of N (200 pods, 2 s, the default 600 s: one read, 16 ms of CPU per scan, 0.8 % of one core;
//! measured by `cargo bench -p apitap --bench discovery`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// When each namespace is read.
pub struct Schedule {
    settle: Duration,
    refresh: Duration,
    interval: Duration,
    spaces: HashMap<u64, Space>,
}

struct Space {
    /// Processes seen by the previous scan.
    last: BTreeSet<u32>,
    /// Processes known to have lived across two scans.
    stable: BTreeSet<u32>,
    /// When it appeared or last got a new long-lived process.
    changed: Instant,
    /// When its tables were last read.
    read: Instant,
}

impl Schedule {
    pub fn new(settle: Duration, refresh: Duration, interval: Duration) -> Schedule {
        Schedule {
            settle,
            refresh,
            interval,
            spaces: HashMap::new(),
        }
    }

    /// The namespaces to read at `now`, given every namespace's processes; namespaces that are
    /// gone are forgotten. The caller reads the returned ones and keeps what it read before for
    /// the others.
    pub fn plan(&mut self, now: Instant, by_ns: &BTreeMap<u64, Vec<u32>>) -> BTreeSet<u64> {
        self.spaces.retain(|ns, _| by_ns.contains_key(ns));
        let mut read = BTreeSet::new();
        let mut settled: Vec<(Instant, u64)> = Vec::new();
        for (&ns, pids) in by_ns {
            let pids: BTreeSet<u32> = pids.iter().copied().collect();
            let Some(space) = self.spaces.get_mut(&ns) else {
                self.spaces.insert(
                    ns,
                    Space {
                        stable: pids.clone(),
                        last: pids,
                        changed: now,
                        read: now,
                    },
                );
                read.insert(ns);
                continue;
            };
            let joined = pids
                .iter()
                .any(|p| space.last.contains(p) && !space.stable.contains(p));
            if joined {
                space.changed = now;
            }
            space.stable = space
                .stable
                .iter()
                .chain(space.last.intersection(&pids))
                .filter(|p| pids.contains(p))
                .copied()
                .collect();
            space.last = pids;
            if now.duration_since(space.changed) < self.settle {
                space.read = now;
                read.insert(ns);
            } else {
                settled.push((space.read, ns));
            }
        }
        settled.sort_unstable();
        let quota = self.quota(settled.len());
        for &(_, ns) in settled.iter().take(quota) {
            if let Some(space) = self.spaces.get_mut(&ns) {
                space.read = now;
            }
            read.insert(ns);
        }
        read
    }

    /// Settled namespaces read per scan so that each is read once per `refresh`.
    fn quota(&self, settled: usize) -> usize {
        if settled == 0 {
            return 0;
        }
        let per_refresh = self.refresh.as_secs_f64() / self.interval.as_secs_f64().max(1e-3);
        ((settled as f64 / per_refresh.max(1.0)).ceil() as usize).clamp(1, settled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn spaces(list: &[(u64, &[u32])]) -> BTreeMap<u64, Vec<u32>> {
        list.iter().map(|(ns, p)| (*ns, p.to_vec())).collect()
    }

    fn set(ns: &[u64]) -> BTreeSet<u64> {
        ns.iter().copied().collect()
    }

    #[test]
    fn new_namespaces_are_read_at_once_and_settling_ones_at_every_scan() {
        let mut s = Schedule::new(10 * S, 100 * S, 2 * S);
        let t0 = Instant::now();
        let all = spaces(&[(1, &[10]), (2, &[20])]);
        assert_eq!(s.plan(t0, &all), set(&[1, 2]));
        assert_eq!(s.plan(t0 + 2 * S, &all), set(&[1, 2]));
        // Settled: one of two per scan (quota ceil(2 × 2 / 100) = 1), the stalest first.
        let a = s.plan(t0 + 12 * S, &all);
        let b = s.plan(t0 + 14 * S, &all);
        assert_eq!((a.len(), b.len()), (1, 1));
        assert_ne!(a, b, "each settled namespace gets its turn");
        // A third namespace appears: read at once, alongside the quota.
        let three = spaces(&[(1, &[10]), (2, &[20]), (3, &[30])]);
        assert!(s.plan(t0 + 16 * S, &three).contains(&3));
    }

    #[test]
    fn a_process_that_lives_across_two_scans_makes_its_namespace_settle_again() {
        let mut s = Schedule::new(10 * S, 1000 * S, 2 * S);
        let t0 = Instant::now();
        let quiet = spaces(&[(1, &[10]), (2, &[20]), (3, &[30])]);
        s.plan(t0, &quiet);
        let mut t = t0 + 20 * S;
        s.plan(t, &quiet);
        // An exec probe in namespace 2, gone by the next scan: no change.
        t += 2 * S;
        s.plan(t, &spaces(&[(1, &[10]), (2, &[20, 21]), (3, &[30])]));
        t += 2 * S;
        let after_probe = s.plan(t, &quiet);
        assert!(after_probe.len() <= 1, "{after_probe:?}");
        // A restarted container in namespace 3: seen twice, so namespace 3 settles again.
        let restarted = spaces(&[(1, &[10]), (2, &[20]), (3, &[30, 31])]);
        t += 2 * S;
        s.plan(t, &restarted);
        t += 2 * S;
        assert!(s.plan(t, &restarted).contains(&3));
        t += 2 * S;
        assert!(s.plan(t, &restarted).contains(&3), "still settling");
        t += 12 * S;
        let settled = s.plan(t, &restarted);
        assert!(settled.len() <= 1, "{settled:?}");
    }

    #[test]
    fn every_settled_namespace_is_read_within_the_refresh_period() {
        let (interval, refresh) = (2 * S, 60 * S);
        let mut s = Schedule::new(Duration::ZERO, refresh, interval);
        let all: BTreeMap<u64, Vec<u32>> = (0..200u64).map(|ns| (ns, vec![ns as u32])).collect();
        let t0 = Instant::now();
        s.plan(t0, &all);
        let mut last_read: HashMap<u64, Instant> = HashMap::new();
        let mut reads = 0;
        for i in 1..=90u32 {
            let t = t0 + interval * i;
            let read = s.plan(t, &all);
            reads += read.len();
            for ns in read {
                if let Some(prev) = last_read.insert(ns, t) {
                    assert!(t.duration_since(prev) <= refresh + interval, "{ns}");
                }
            }
        }
        assert_eq!(last_read.len(), 200, "every namespace was read");
        // ceil(200 × 2 / 60) = 7 per scan, not 200.
        assert_eq!(reads, 90 * 7);
    }

    #[test]
    fn gone_namespaces_are_forgotten() {
        let mut s = Schedule::new(S, S, S);
        let t0 = Instant::now();
        s.plan(t0, &spaces(&[(1, &[10]), (2, &[20])]));
        s.plan(t0 + S, &spaces(&[(1, &[10])]));
        assert_eq!(s.spaces.len(), 1);
        // The same inode later is a new namespace: read at once.
        assert!(s.plan(t0 + 5 * S, &spaces(&[(2, &[40])])).contains(&2));
    }
}
