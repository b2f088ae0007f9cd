//! The per-service rings behind [`SeriesSnapshot`](super::SeriesSnapshot).

use foldhash::{HashMap, HashMapExt};
use serde::Serialize;

use super::latency::LatencyHistogram;
use super::{OPEN_SECONDS, SeriesSnapshot, ServiceSeries, WINDOW_S};
use crate::aggregate::OTHER;
use crate::shared::same;
use crate::{Attribution, Transaction};
use std::sync::Arc;

const NS_PER_S: u64 = 1_000_000_000;
/// Stamp of a slot that never held a second.
const EMPTY: u64 = u64::MAX;

/// What the bounds cost so far (each a number of transactions).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SeriesStats {
    /// Recorded under `other` because `max_services` services already had a series.
    pub folded_services: u64,
    /// Completed before the oldest second a ring still holds: not recorded.
    pub too_old: u64,
    /// Counted as requests, but their second's p95 was already closed.
    pub late_latencies: u64,
}

#[derive(Clone, Copy, Debug)]
struct Point {
    second: u64,
    requests: u32,
    errors: u32,
    /// p95 in seconds once the second is closed; NaN when open or without durations.
    p95_s: f32,
}

const EMPTY_POINT: Point = Point {
    second: EMPTY,
    requests: 0,
    errors: 0,
    p95_s: f32::NAN,
};

#[derive(Clone, Debug)]
struct OpenSecond {
    second: u64,
    latency: LatencyHistogram,
}

#[derive(Clone, Debug)]
struct Ring {
    namespace: Box<str>,
    name: Box<str>,
    points: Box<[Point]>,
    open: Box<[OpenSecond]>,
}

impl Ring {
    fn new(namespace: &str, name: &str) -> Ring {
        Ring {
            namespace: namespace.into(),
            name: name.into(),
            points: vec![EMPTY_POINT; WINDOW_S].into_boxed_slice(),
            open: (0..OPEN_SECONDS)
                .map(|_| OpenSecond {
                    second: EMPTY,
                    latency: LatencyHistogram::default(),
                })
                .collect(),
        }
    }

    /// The slot of `second`, restamped if it held an older one; `None` if it holds a newer
    /// second (then `second` is older than the ring reaches).
    fn slot(&mut self, second: u64) -> Option<&mut Point> {
        let p = &mut self.points[(second % WINDOW_S as u64) as usize];
        if p.second != second {
            if p.second != EMPTY && p.second > second {
                return None;
            }
            *p = Point {
                second,
                ..EMPTY_POINT
            };
        }
        Some(p)
    }

    /// The open histogram of `second`, opening it in place of the oldest open second (whose
    /// p95 is then written to its point); `None` when every open second is newer.
    fn open(&mut self, second: u64) -> Option<&mut LatencyHistogram> {
        if let Some(i) = self.open.iter().position(|o| o.second == second) {
            return Some(&mut self.open[i].latency);
        }
        let oldest = (0..self.open.len())
            .min_by_key(|&i| match self.open[i].second {
                EMPTY => 0,
                s => s.saturating_add(1),
            })
            .expect("OPEN_SECONDS > 0");
        let closing = self.open[oldest].second;
        if closing != EMPTY && closing > second {
            return None;
        }
        if closing != EMPTY {
            let p95 = self.open[oldest].latency.quantile(0.95);
            let p = &mut self.points[(closing % WINDOW_S as u64) as usize];
            if p.second == closing {
                p.p95_s = p95.map_or(f32::NAN, |v| v as f32);
            }
        }
        let o = &mut self.open[oldest];
        o.second = second;
        o.latency.clear();
        Some(&mut o.latency)
    }

    /// p95 of a covered second: from its open histogram if still open, else as closed.
    fn p95(&self, p: &Point) -> Option<f32> {
        match self.open.iter().find(|o| o.second == p.second) {
            Some(o) => o.latency.quantile(0.95).map(|v| v as f32),
            None => (!p.p95_s.is_nan()).then_some(p.p95_s),
        }
    }

    fn series(&self, end_s: u64) -> ServiceSeries {
        let mut out = ServiceSeries {
            namespace: self.namespace.to_string(),
            service: self.name.to_string(),
            requests: Vec::with_capacity(WINDOW_S),
            errors: Vec::with_capacity(WINDOW_S),
            p95_s: Vec::with_capacity(WINDOW_S),
        };
        let start = (end_s + 1).saturating_sub(WINDOW_S as u64);
        // Seconds before the epoch's first WINDOW_S are padded so every series has WINDOW_S
        // points.
        for _ in 0..(WINDOW_S as u64).saturating_sub(end_s + 1) {
            out.requests.push(0);
            out.errors.push(0);
            out.p95_s.push(None);
        }
        for second in start..=end_s {
            let p = &self.points[(second % WINDOW_S as u64) as usize];
            if p.second == second {
                out.requests.push(p.requests);
                out.errors.push(p.errors);
                out.p95_s.push(self.p95(p));
            } else {
                out.requests.push(0);
                out.errors.push(0);
                out.p95_s.push(None);
            }
        }
        out
    }
}

/// Per-second series of every service; owned by the analysis stage, nothing shared or locked.
#[derive(Debug)]
pub struct SeriesRing {
    max_services: usize,
    rings: Vec<Ring>,
    /// namespace -> service -> ring (looked up by `&str`, no key built per transaction).
    index: HashMap<Box<str>, HashMap<Box<str>, u32>>,
    /// The previous transaction's service and attribution, compared by address (holding them
    /// keeps the addresses from being reused), and its ring: a hit reads no string (comparing
    /// the names was 12 % of the live analysis thread, docs/PERFORMANCE.md). Only a service
    /// found under its own name is cached; emptied when rings move (a retirement).
    last_tx: Option<(Arc<str>, Option<Arc<Attribution>>, usize)>,
    stats: SeriesStats,
}

impl SeriesRing {
    /// Rings for at most `max_services` named services plus `other`.
    pub fn new(max_services: usize) -> SeriesRing {
        SeriesRing {
            max_services,
            rings: Vec::with_capacity(max_services + 1),
            index: HashMap::with_capacity(max_services + 1),
            last_tx: None,
            stats: SeriesStats::default(),
        }
    }

    /// Records one transaction in the second of its last response byte.
    pub fn record_transaction(&mut self, tx: &Transaction) {
        let end_ns = tx.start_ns.saturating_add(tx.duration_ns.unwrap_or(0));
        let ring = match &self.last_tx {
            Some((service, attribution, ring))
                if Arc::ptr_eq(service, &tx.service) && same(attribution, &tx.attribution) =>
            {
                *ring
            }
            _ => {
                let ring = self.ring(tx.namespace(), &tx.service);
                let r = &self.rings[ring];
                self.last_tx = (*r.name == *tx.service && *r.namespace == *tx.namespace())
                    .then(|| (tx.service.clone(), tx.attribution.clone(), ring));
                ring
            }
        };
        self.record_at(ring, end_ns, tx.is_failure(), tx.duration_s());
    }

    /// Records one completed exchange of a service off Kubernetes (empty namespace).
    pub fn record(&mut self, service: &str, end_ns: u64, failure: bool, duration_s: Option<f64>) {
        self.record_in("", service, end_ns, failure, duration_s);
    }

    /// Records one completed exchange of `service` in `namespace` at `end_ns` (UNIX
    /// nanoseconds). Two services of one name in different namespaces have a series each.
    pub fn record_in(
        &mut self,
        namespace: &str,
        service: &str,
        end_ns: u64,
        failure: bool,
        duration_s: Option<f64>,
    ) {
        let ring = self.ring(namespace, service);
        self.record_at(ring, end_ns, failure, duration_s);
    }

    fn record_at(&mut self, ring: usize, end_ns: u64, failure: bool, duration_s: Option<f64>) {
        let second = end_ns / NS_PER_S;
        let ring = &mut self.rings[ring];
        let Some(p) = ring.slot(second) else {
            self.stats.too_old += 1;
            return;
        };
        p.requests = p.requests.saturating_add(1);
        p.errors = p.errors.saturating_add(u32::from(failure));
        if let Some(d) = duration_s {
            match ring.open(second) {
                Some(h) => h.add(d),
                None => self.stats.late_latencies += 1,
            }
        }
    }

    fn ring(&mut self, namespace: &str, service: &str) -> usize {
        if let Some(&i) = self.find(namespace, service) {
            return i as usize;
        }
        // `other` takes no named service's place (a retired service's place is free again).
        let named = self.rings.len() - usize::from(self.find("", OTHER).is_some());
        let (namespace, name) = if named < self.max_services {
            (namespace, service)
        } else {
            self.stats.folded_services += 1;
            if let Some(&i) = self.find("", OTHER) {
                return i as usize;
            }
            ("", OTHER)
        };
        let i = self.rings.len();
        self.rings.push(Ring::new(namespace, name));
        self.index
            .entry(namespace.into())
            .or_default()
            .insert(name.into(), i as u32);
        i
    }

    fn find(&self, namespace: &str, service: &str) -> Option<&u32> {
        self.index.get(namespace)?.get(service)
    }

    /// Drops the series of a service that is gone (a deleted pod's workload), so its place
    /// goes to the next new service instead of `other`. True if it had one.
    pub fn retire(&mut self, namespace: &str, service: &str) -> bool {
        let Some(names) = self.index.get_mut(namespace) else {
            return false;
        };
        let Some(i) = names.remove(service) else {
            return false;
        };
        if names.is_empty() {
            self.index.remove(namespace);
        }
        let i = i as usize;
        self.rings.swap_remove(i);
        if let Some(moved) = self.rings.get(i)
            && let Some(slot) = self
                .index
                .get_mut(&*moved.namespace)
                .and_then(|n| n.get_mut(&*moved.name))
        {
            *slot = i as u32;
        }
        self.last_tx = None;
        true
    }

    /// Every service's last [`WINDOW_S`] seconds ending with the second of `now_ns`.
    pub fn snapshot(&self, now_ns: u64) -> SeriesSnapshot {
        let end_s = now_ns / NS_PER_S;
        let mut services: Vec<ServiceSeries> = self.rings.iter().map(|r| r.series(end_s)).collect();
        services.sort_by(|a, b| (&a.namespace, &a.service).cmp(&(&b.namespace, &b.service)));
        SeriesSnapshot {
            end_s,
            services,
            stats: self.stats,
        }
    }

    pub fn stats(&self) -> SeriesStats {
        self.stats
    }

    /// Services with a series (at most `max_services + 1`).
    pub fn len(&self) -> usize {
        self.rings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rings.is_empty()
    }

    /// Heap and inline bytes of one service's ring, name excluded.
    pub fn bytes_per_service() -> usize {
        std::mem::size_of::<Ring>()
            + WINDOW_S * std::mem::size_of::<Point>()
            + OPEN_SECONDS * std::mem::size_of::<OpenSecond>()
    }

    /// Upper bound of the rings' memory with every service present, names and the index's
    /// table excluded: `(max_services + 1) * bytes_per_service()`.
    pub fn bytes_bound(&self) -> usize {
        (self.max_services + 1) * Self::bytes_per_service()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const T0: u64 = 1_795_000_000;

    /// Requests of one service over the whole window of a snapshot.
    fn requests_in(s: &SeriesSnapshot, namespace: &str, service: &str) -> u32 {
        s.service(namespace, service)
            .unwrap_or_else(|| panic!("no series for {namespace}/{service}"))
            .requests
            .iter()
            .sum()
    }

    fn at(second: u64) -> u64 {
        second * NS_PER_S
    }

    #[rstest]
    fn counts_requests_and_errors_per_second() {
        let mut r = SeriesRing::new(8);
        r.record("api", at(T0), false, Some(0.010));
        r.record("api", at(T0) + 999_999_999, true, Some(0.020));
        r.record("api", at(T0 + 1), false, None);
        let s = r.snapshot(at(T0 + 1));
        let api = s.service("", "api").expect("series");
        assert_eq!(api.requests.len(), WINDOW_S);
        assert_eq!(api.requests[WINDOW_S - 2..], [2, 1]);
        assert_eq!(api.errors[WINDOW_S - 2..], [1, 0]);
        assert_eq!(api.p95_s[WINDOW_S - 1], None);
        let p95 = api.p95_s[WINDOW_S - 2].expect("durations");
        assert!((p95 - 0.010).abs() < 0.0003, "{p95}");
        assert_eq!(s.start_s(), T0 + 2 - WINDOW_S as u64);
    }

    #[rstest]
    fn a_transaction_counts_in_the_second_it_completed() {
        let mut r = SeriesRing::new(8);
        let tx = Transaction {
            start_ns: at(T0) + 900_000_000,
            duration_ns: Some(200_000_000),
            status: Some(200),
            service: "api".into(),
            ..Default::default()
        };
        r.record_transaction(&tx);
        let api = r.snapshot(at(T0 + 1)).services.remove(0);
        assert_eq!(api.requests[WINDOW_S - 2..], [0, 1]);
    }

    #[rstest]
    fn closed_seconds_keep_their_p95() {
        let mut r = SeriesRing::new(8);
        for s in 0..10 {
            r.record("api", at(T0 + s), false, Some(0.001 * (s + 1) as f64));
        }
        let api = r.snapshot(at(T0 + 9)).services.remove(0);
        for (i, p) in api.p95_s[WINDOW_S - 10..].iter().enumerate() {
            let want = 0.001 * (i + 1) as f32;
            let got = p.expect("closed or open p95");
            assert!((got - want).abs() / want < 0.021, "second {i}: {got}");
        }
    }

    #[rstest]
    fn a_late_duration_counts_but_not_in_a_closed_p95() {
        let mut r = SeriesRing::new(8);
        for s in 0..=OPEN_SECONDS as u64 {
            r.record("api", at(T0 + s), false, Some(0.001));
        }
        r.record("api", at(T0), false, Some(5.0));
        assert_eq!(r.stats().late_latencies, 1);
        let api = r.snapshot(at(T0 + OPEN_SECONDS as u64)).services.remove(0);
        assert_eq!(api.requests[WINDOW_S - 1 - OPEN_SECONDS], 2);
        let p95 = api.p95_s[WINDOW_S - 1 - OPEN_SECONDS].expect("p95");
        assert!(p95 < 0.0011, "{p95}");
    }

    #[rstest]
    fn old_points_leave_the_window_and_older_input_is_dropped() {
        let mut r = SeriesRing::new(8);
        r.record("api", at(T0), false, None);
        let later = T0 + WINDOW_S as u64;
        assert_eq!(r.snapshot(at(later - 1)).services[0].requests[0], 1);
        assert_eq!(
            r.snapshot(at(later)).services[0]
                .requests
                .iter()
                .sum::<u32>(),
            0
        );
        r.record("api", at(later), false, None);
        r.record("api", at(T0), false, None);
        assert_eq!(r.stats().too_old, 1);
    }

    #[rstest]
    fn services_beyond_the_cap_fold_into_other() {
        let mut r = SeriesRing::new(2);
        for name in ["a", "b", "c", "d"] {
            r.record(name, at(T0), false, None);
        }
        let s = r.snapshot(at(T0));
        let names: Vec<&str> = s.services.iter().map(|x| x.service.as_str()).collect();
        assert_eq!(names, ["a", "b", "other"]);
        assert_eq!(
            s.service("", "other").expect("other").requests[WINDOW_S - 1],
            2
        );
        assert_eq!(s.stats.folded_services, 2);
        assert_eq!(r.len(), 3);
    }

    #[rstest]
    fn since_keeps_only_newer_points() {
        let mut r = SeriesRing::new(2);
        r.record("a", at(T0), false, None);
        let s = r.snapshot(at(T0 + 2));
        let tail = s.services[0].since(T0 - 1, s.end_s);
        assert_eq!(tail.requests, [1, 0, 0]);
        assert_eq!(s.services[0].since(0, s.end_s).requests.len(), WINDOW_S);
        assert!(s.services[0].since(T0 + 2, s.end_s).requests.is_empty());
    }

    #[test]
    fn one_name_in_two_namespaces_has_two_series_and_a_retired_one_gives_its_place_back() {
        let mut r = SeriesRing::new(2);
        r.record_in("shop", "web", at(T0), false, Some(0.010));
        r.record_in("blog", "web", at(T0), true, Some(0.010));
        r.record_in("shop", "web", at(T0), false, None);
        let s = r.snapshot(at(T0));
        let count = |ns: &str| s.service(ns, "web").expect(ns).requests.iter().sum::<u32>();
        assert_eq!((count("shop"), count("blog")), (2, 1));
        assert_eq!(
            s.services[0].namespace, "blog",
            "sorted by namespace, then service"
        );
        // Full: a third service folds into other ...
        r.record_in("shop", "api", at(T0), false, None);
        assert_eq!(r.stats().folded_services, 1);
        // ... until one is retired; the survivors keep their points.
        assert!(r.retire("blog", "web"));
        assert!(!r.retire("blog", "web"));
        r.record_in("shop", "api", at(T0), false, None);
        let s = r.snapshot(at(T0));
        assert!(s.service("blog", "web").is_none());
        assert_eq!(requests_in(&s, "shop", "api"), 1);
        assert_eq!(requests_in(&s, "shop", "web"), 2);
        r.record_in("shop", "web", at(T0), false, None);
        let s = r.snapshot(at(T0));
        assert_eq!(requests_in(&s, "shop", "web"), 3);
    }

    #[test]
    fn transactions_of_one_service_hit_the_cache_and_a_retirement_empties_it() {
        let tx = |service: &Arc<str>, ns: u64| Transaction {
            service: service.clone(),
            start_ns: at(T0),
            duration_ns: Some(ns),
            ..Transaction::default()
        };
        let [a, b, c, d]: [Arc<str>; 4] = ["a".into(), "b".into(), "c".into(), "d".into()];
        let mut r = SeriesRing::new(2);
        for service in [&a, &a, &b, &b] {
            r.record_transaction(&tx(service, 1_000));
        }
        // `a` is retired and `b`, cached, moves into its place.
        assert!(r.retire("", "a"));
        r.record_transaction(&tx(&b, 1_000));
        // Past the cap, a service folds into `other` each time (never cached).
        for service in [&c, &d, &d] {
            r.record_transaction(&tx(service, 1_000));
        }
        assert_eq!(r.stats().folded_services, 2);
        let s = r.snapshot(at(T0));
        assert!(s.service("", "a").is_none());
        assert_eq!(requests_in(&s, "", "b"), 3);
        assert_eq!(requests_in(&s, "", "c"), 1);
        assert_eq!(requests_in(&s, "", "other"), 2);
    }
}
