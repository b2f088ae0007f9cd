//! Increments not yet written, merged per key and bounded: while the store is unreachable the
//! map keeps absorbing increments of known keys, and new keys beyond the bound are dropped and
//! counted (never silently).

use std::collections::HashMap;

use super::key::UsageKey;

/// A batch of merged increments.
pub type Batch = HashMap<UsageKey, u64>;

#[derive(Debug)]
pub struct Pending {
    counts: Batch,
    max_keys: usize,
    dropped: u64,
}

impl Pending {
    pub fn new(max_keys: usize) -> Pending {
        Pending {
            counts: HashMap::new(),
            max_keys: max_keys.max(1),
            dropped: 0,
        }
    }

    /// Adds `n` to `key`; returns false (and counts `n` as dropped) when the key is new and the
    /// bound is reached.
    pub fn add(&mut self, key: UsageKey, n: u64) -> bool {
        if let Some(count) = self.counts.get_mut(&key) {
            *count = count.saturating_add(n);
            return true;
        }
        if self.counts.len() >= self.max_keys {
            self.dropped = self.dropped.saturating_add(n);
            return false;
        }
        self.counts.insert(key, n);
        true
    }

    /// Everything pending, leaving the map empty.
    pub fn take(&mut self) -> Batch {
        std::mem::take(&mut self.counts)
    }

    /// Puts a batch that could not be written back, merged with what arrived meanwhile.
    pub fn restore(&mut self, batch: Batch) {
        for (key, n) in batch {
            self.add(key, n);
        }
    }

    /// Distinct keys pending.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// Increments dropped since start because the bound was reached.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Pending counts of the daily family `kind` on `date`, by field.
    pub fn daily(&self, kind: super::UsageKind) -> impl Iterator<Item = (&str, &str, u64)> {
        self.counts
            .iter()
            .filter_map(move |(key, n)| match (kind, key) {
                (super::UsageKind::Endpoints, UsageKey::Daily { date, field })
                | (
                    super::UsageKind::Clients,
                    UsageKey::DailyClient {
                        date,
                        client: field,
                    },
                ) => Some((date.as_str(), field.as_str(), *n)),
                _ => None,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(field: &str) -> UsageKey {
        UsageKey::Daily {
            date: "2026-11-25".into(),
            field: field.into(),
        }
    }

    #[test]
    fn merges_increments_of_one_key() {
        let mut p = Pending::new(10);
        p.add(key("/a:GET"), 2);
        p.add(key("/a:GET"), 3);
        assert_eq!(p.take().get(&key("/a:GET")), Some(&5));
        assert_eq!(p.len(), 0);
    }

    #[test]
    fn drops_and_counts_new_keys_beyond_the_bound() {
        let mut p = Pending::new(2);
        assert!(p.add(key("/a:GET"), 1));
        assert!(p.add(key("/b:GET"), 1));
        assert!(!p.add(key("/c:GET"), 4));
        assert!(
            p.add(key("/a:GET"), 1),
            "known keys still merge at the bound"
        );
        assert_eq!((p.len(), p.dropped()), (2, 4));
    }

    #[test]
    fn restore_merges_a_failed_batch_with_new_increments() {
        let mut p = Pending::new(10);
        p.add(key("/a:GET"), 2);
        let batch = p.take();
        p.add(key("/a:GET"), 1);
        p.restore(batch);
        assert_eq!(p.take().get(&key("/a:GET")), Some(&3));
    }
}
