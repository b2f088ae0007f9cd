//! Increments not yet written, merged per (hash, field) and bounded: while the store is
//! unreachable the map keeps absorbing increments of known fields, and new fields beyond the
//! bound are dropped and counted (never silently). Looking up a known field allocates nothing;
//! keys are hashed with foldhash (this runs once per transaction on the analysis thread).

use agent_core::Transaction;
use foldhash::{HashMap, HashMapExt};

use super::key::{Family, Group, client_field, endpoint_field};

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
    /// Reused to build fields without allocating.
    scratch: String,
}

impl Pending {
    pub fn new(max_keys: usize) -> Pending {
        Pending {
            groups: HashMap::new(),
            keys: 0,
            max_keys: max_keys.max(1),
            dropped: 0,
            scratch: String::new(),
        }
    }

    /// The three increments of one transaction.
    pub fn record(&mut self, t: &Transaction) {
        let mut field = std::mem::take(&mut self.scratch);
        endpoint_field(t, &mut field);
        self.add(Group::hourly(t.start_ns), &field, 1);
        self.add(Group::daily(Family::Daily, t.start_ns), &field, 1);
        client_field(t, &mut field);
        self.add(Group::daily(Family::DailyClient, t.start_ns), &field, 1);
        self.scratch = field;
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
    pub fn len(&self) -> usize {
        self.keys
    }

    /// Increments dropped since start because the bound was reached.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Pending counts of one family, as (group, field, count).
    pub fn of_family(&self, family: Family) -> impl Iterator<Item = (Group, &str, u64)> {
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
}
