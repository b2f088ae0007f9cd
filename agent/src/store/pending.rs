//! Increments not yet written, merged per (hash, field) and bounded: while the store is
//! unreachable the map keeps absorbing increments of known fields, and new fields beyond the
//! bound are dropped and counted (never silently). Looking up a known field allocates nothing;
//! keys are hashed with foldhash (this runs once per transaction on the analysis thread).
//!
//! Consecutive transactions of one endpoint, method, client and hour (a keep-alive connection's
//! usual traffic) form a [`Run`]: they cost a comparison each, and the run's three increments
//! reach the maps when a different transaction arrives or before anything reads them.

use agent_core::Transaction;
use foldhash::{HashMap, HashMapExt};
use std::net::IpAddr;

use super::key::{
    ClientPart, Family, Group, client_field, client_part, endpoint_field, endpoint_parts,
};

/// A batch of merged increments: counts by hash, then by field.
pub type Batch = HashMap<Group, HashMap<Box<str>, u64>>;

/// Distinct (hash, field) counters of a batch.
pub fn batch_keys(batch: &Batch) -> usize {
    batch.values().map(HashMap::len).sum()
}

#[derive(Debug)]
pub struct Pending {
    groups: Batch,
    keys: usize,
    max_keys: usize,
    dropped: u64,
    /// Transactions counted but not yet added to `groups` (none when its count is 0).
    run: Run,
}

/// Consecutive transactions with the same three increments: the same hour, endpoint field and
/// client field. A transaction is compared with the run's fields where they lie, so joining a
/// run writes nothing, and starting one writes the fields into the buffers of the last.
#[derive(Debug)]
pub struct Run {
    hour: Group,
    /// `{endpoint}:{METHOD}`.
    endpoint_field: String,
    client_field: String,
    /// The address `client_field` was written from, if it was.
    client_ip: Option<IpAddr>,
    count: u64,
}

impl Run {
    pub fn empty() -> Run {
        Run {
            hour: Group::hourly(0),
            endpoint_field: String::new(),
            client_field: String::new(),
            client_ip: None,
            count: 0,
        }
    }

    /// Starts a run at `t`.
    pub fn start(&mut self, t: &Transaction) {
        self.hour = Group::hourly(t.start_ns);
        endpoint_field(t, &mut self.endpoint_field);
        client_field(t, &mut self.client_field);
        self.client_ip = match client_part(t) {
            ClientPart::Ip(ip) => Some(ip),
            ClientPart::Text(_) => None,
        };
        self.count = 1;
    }

    /// Counts `t` in the run when it makes the same three increments.
    pub fn join(&mut self, t: &Transaction) -> bool {
        let same = self.is_of(t);
        self.count += u64::from(same);
        same
    }

    /// No transaction counted since the run was last added to the maps.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// `t` makes the same three increments.
    fn is_of(&self, t: &Transaction) -> bool {
        let (endpoint, method) = endpoint_parts(t);
        let f = self.endpoint_field.as_bytes();
        let same_endpoint = f.len() == endpoint.len() + 1 + method.len()
            && f.starts_with(endpoint.as_bytes())
            && f.ends_with(method.as_bytes())
            && f[endpoint.len()] == b':';
        let same_client = match client_part(t) {
            ClientPart::Text(text) => self.client_ip.is_none() && self.client_field == text,
            ClientPart::Ip(ip) => self.client_ip == Some(ip),
        };
        self.count > 0 && same_endpoint && same_client && self.hour == Group::hourly(t.start_ns)
    }
}

impl Pending {
    pub fn new(max_keys: usize) -> Pending {
        Pending {
            groups: HashMap::new(),
            keys: 0,
            max_keys: max_keys.max(1),
            dropped: 0,
            run: Run::empty(),
        }
    }

    /// The three increments of one transaction.
    pub fn record(&mut self, t: &Transaction) {
        if !self.run.join(t) {
            self.settle();
            self.run.start(t);
        }
    }

    /// Adds the run's increments to the maps; the run is empty after.
    fn settle(&mut self) {
        let mut run = std::mem::replace(&mut self.run, Run::empty());
        self.add_run(&mut run);
        // The buffers go back for the next run.
        self.run = run;
    }

    /// Adds the increments of `run` (this map's own, or a thread's [`super::Recorder`]'s) to
    /// the maps; `run` is empty after, its buffers kept.
    pub fn add_run(&mut self, run: &mut Run) {
        let n = std::mem::take(&mut run.count);
        if n == 0 {
            return;
        }
        let day = |family| Group {
            family,
            hour: 0,
            ..run.hour
        };
        self.add(run.hour, &run.endpoint_field, n);
        self.add(day(Family::Daily), &run.endpoint_field, n);
        self.add(day(Family::DailyClient), &run.client_field, n);
    }

    /// Adds `n` to `field` of `group`; returns false (and counts `n` as dropped) when the field
    /// is new and the bound is reached.
    pub fn add(&mut self, group: Group, field: &str, n: u64) -> bool {
        let fields = self.groups.entry(group).or_default();
        if let Some(count) = fields.get_mut(field) {
            *count = count.saturating_add(n);
            return true;
        }
        if self.keys >= self.max_keys {
            self.dropped = self.dropped.saturating_add(n);
            return false;
        }
        fields.insert(field.into(), n);
        self.keys += 1;
        true
    }

    /// Everything pending, leaving the map empty.
    pub fn take(&mut self) -> Batch {
        self.settle();
        self.keys = 0;
        std::mem::take(&mut self.groups)
    }

    /// Puts a batch that could not be written back, merged with what arrived meanwhile.
    pub fn restore(&mut self, batch: Batch) {
        for (group, fields) in batch {
            for (field, n) in fields {
                self.add(group, &field, n);
            }
        }
    }

    /// Distinct (hash, field) counters pending.
    pub fn len(&mut self) -> usize {
        self.settle();
        self.keys
    }

    /// Increments dropped since start because the bound was reached.
    pub fn dropped(&mut self) -> u64 {
        self.settle();
        self.dropped
    }

    /// Pending counts of one family, as (group, field, count).
    pub fn of_family(&mut self, family: Family) -> impl Iterator<Item = (Group, &str, u64)> {
        self.settle();
        self.groups
            .iter()
            .filter(move |(g, _)| g.family == family)
            .flat_map(|(g, fields)| fields.iter().map(move |(f, n)| (*g, &**f, *n)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: u64 = 1_795_585_921_000_000_000;

    fn group() -> Group {
        Group::daily(Family::Daily, TS)
    }

    fn count(batch: &Batch, group: Group, field: &str) -> Option<u64> {
        batch.get(&group)?.get(field).copied()
    }

    #[test]
    fn merges_increments_of_one_field() {
        let mut p = Pending::new(10);
        p.add(group(), "/a:GET", 2);
        p.add(group(), "/a:GET", 3);
        let batch = p.take();
        assert_eq!(count(&batch, group(), "/a:GET"), Some(5));
        assert_eq!((p.len(), batch_keys(&batch)), (0, 1));
    }

    #[test]
    fn drops_and_counts_new_fields_beyond_the_bound() {
        let mut p = Pending::new(2);
        assert!(p.add(group(), "/a:GET", 1));
        assert!(p.add(group(), "/b:GET", 1));
        assert!(!p.add(group(), "/c:GET", 4));
        assert!(
            p.add(group(), "/a:GET", 1),
            "known fields still merge at the bound"
        );
        assert_eq!((p.len(), p.dropped()), (2, 4));
    }

    #[test]
    fn restore_merges_a_failed_batch_with_new_increments() {
        let mut p = Pending::new(10);
        p.add(group(), "/a:GET", 2);
        let batch = p.take();
        p.add(group(), "/a:GET", 1);
        p.restore(batch);
        assert_eq!(p.len(), 1);
        assert_eq!(count(&p.take(), group(), "/a:GET"), Some(3));
    }

    #[test]
    fn a_transaction_makes_three_increments() {
        let mut p = Pending::new(10);
        let t = Transaction {
            start_ns: TS,
            method: Some("GET".into()),
            route: Some("/a/{id}".into()),
            client_id: Some("key:1".into()),
            ..Transaction::default()
        };
        p.record(&t);
        p.record(&t);
        let batch = p.take();
        assert_eq!(batch_keys(&batch), 3);
        assert_eq!(count(&batch, Group::hourly(TS), "/a/{id}:GET"), Some(2));
        assert_eq!(count(&batch, group(), "/a/{id}:GET"), Some(2));
        assert_eq!(
            count(&batch, Group::daily(Family::DailyClient, TS), "key:1"),
            Some(2)
        );
    }

    /// The three increments of `t`, added one by one as before runs existed.
    fn naive(p: &mut Pending, t: &Transaction) {
        let mut field = String::new();
        endpoint_field(t, &mut field);
        p.add(Group::hourly(t.start_ns), &field, 1);
        p.add(Group::daily(Family::Daily, t.start_ns), &field, 1);
        client_field(t, &mut field);
        p.add(Group::daily(Family::DailyClient, t.start_ns), &field, 1);
    }

    proptest::proptest! {
        /// Runs count what adding every increment at once counts: the same batches, pending
        /// keys and dropped increments at every read, with the bound reached or not.
        #[test]
        fn runs_count_as_single_increments_do(
            steps in proptest::collection::vec((0u8..4, 0u8..3, 0u8..5, 0u8..3, 0u8..8), 1..200),
            max_keys in 1usize..12,
        ) {
            // Fresh strings for each transaction: runs compare contents, not addresses.
            let routes = ["/a/{id}", "/b"];
            let paths = ["/raw", "/b"];
            let ids = ["key:1", "unknown"];
            let ips = ["10.0.0.1:1".parse().ok(), "10.0.0.2:2".parse().ok()];
            let mut runs = Pending::new(max_keys);
            let mut single = Pending::new(max_keys);
            for (e, m, c, h, read) in steps {
                let t = Transaction {
                    // Two hours apart, and a day later.
                    start_ns: TS + u64::from(h) * 7_200_000_000_000 + u64::from(h / 2) * 86_400_000_000_000,
                    route: (e < 2).then(|| routes[usize::from(e)].into()),
                    path: (e >= 2).then(|| paths[usize::from(e - 2)].into()),
                    method: [Some("GET".into()), Some("POST".into()), None][usize::from(m)].clone(),
                    client_id: (c < 2).then(|| ids[usize::from(c)].into()),
                    client: if c < 2 { None } else { ips.get(usize::from(c - 2)).copied().flatten() },
                    ..Transaction::default()
                };
                runs.record(&t);
                naive(&mut single, &t);
                match read {
                    0 => proptest::prop_assert_eq!(runs.take(), single.take()),
                    1 => proptest::prop_assert_eq!(runs.len(), single.len()),
                    2 => proptest::prop_assert_eq!(runs.dropped(), single.dropped()),
                    3 => {
                        let mut a: Vec<_> = runs.of_family(Family::DailyClient).map(|(g, f, n)| (g, f.to_owned(), n)).collect();
                        let mut b: Vec<_> = single.of_family(Family::DailyClient).map(|(g, f, n)| (g, f.to_owned(), n)).collect();
                        a.sort();
                        b.sort();
                        proptest::prop_assert_eq!(a, b);
                    }
                    _ => {}
                }
            }
            proptest::prop_assert_eq!(runs.dropped(), single.dropped());
            proptest::prop_assert_eq!(runs.take(), single.take());
        }
    }
}
