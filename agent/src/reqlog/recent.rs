//! The last N transactions that carried a `request.id`, for `GET /api/v1/requests/{id}`.
//!
//! A ring (oldest evicted first) plus an index from request id to ring positions. One id may
//! name several transactions (a retried request, or one id reused by a client); all of them are
//! returned, oldest first. Transactions without a request id cannot be looked up and are not
//! kept.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use agent_core::Transaction;

pub struct RecentRequests {
    capacity: usize,
    inner: Mutex<Ring>,
}

#[derive(Default)]
struct Ring {
    /// Sequence number of `items[0]`.
    first_seq: u64,
    items: VecDeque<Transaction>,
    /// Positions by id, oldest first: the ring evicts in order, so an evicted position is
    /// always the front of its id's queue (one id on every request costs O(1), not a scan).
    by_id: HashMap<String, VecDeque<u64>>,
    /// An index entry emptied by an eviction, whose buffers the next new id reuses.
    spare_entry: Option<(String, VecDeque<u64>)>,
}

impl RecentRequests {
    pub fn new(capacity: usize) -> RecentRequests {
        RecentRequests {
            capacity: capacity.max(1),
            inner: Mutex::new(Ring::default()),
        }
    }

    /// Keeps a copy of `t` if it has a request id, evicting the oldest beyond capacity. Once
    /// the ring is full, the evicted copy and its index entry are overwritten: no allocation
    /// per request in the steady state (`cargo bench -p apitap --bench sinks -- recent`).
    pub fn insert(&self, t: &Transaction) {
        let Some(id) = t.request_id.as_deref() else {
            return;
        };
        let mut ring = self.lock();
        let mut spare = None;
        while ring.items.len() >= self.capacity {
            spare = ring.evict_oldest();
        }
        let seq = ring.first_seq + ring.items.len() as u64;
        match spare {
            Some(mut kept) => {
                kept.assign_from(t);
                ring.items.push_back(kept);
            }
            None => ring.items.push_back(t.clone()),
        }
        ring.index(id, seq);
    }

    /// Every kept transaction with this request id, oldest first.
    pub fn get(&self, id: &str) -> Vec<Transaction> {
        let ring = self.lock();
        let Some(seqs) = ring.by_id.get(id) else {
            return Vec::new();
        };
        seqs.iter()
            .filter_map(|s| ring.items.get((s - ring.first_seq) as usize))
            .cloned()
            .collect()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        // A panic while holding this lock leaves a consistent ring (every mutation completes
        // before unlocking), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Ring {
    /// Removes the oldest copy from the ring and the index; returns it.
    fn evict_oldest(&mut self) -> Option<Transaction> {
        let old = self.items.pop_front()?;
        let seq = self.first_seq;
        self.first_seq += 1;
        let id = old.request_id.as_deref()?;
        if let Some(seqs) = self.by_id.get_mut(id) {
            if seqs.front() == Some(&seq) {
                seqs.pop_front();
            } else {
                seqs.retain(|s| *s != seq);
            }
            if seqs.is_empty() {
                self.spare_entry = self.by_id.remove_entry(id);
            }
        }
        Some(old)
    }

    /// Notes that the copy at `seq` has request id `id`.
    fn index(&mut self, id: &str, seq: u64) {
        if let Some(seqs) = self.by_id.get_mut(id) {
            seqs.push_back(seq);
            return;
        }
        let (mut key, mut seqs) = self.spare_entry.take().unwrap_or_default();
        key.clear();
        key.push_str(id);
        seqs.clear();
        seqs.push_back(seq);
        self.by_id.insert(key, seqs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(id: Option<&str>, status: u16) -> Transaction {
        Transaction {
            request_id: id.map(String::from),
            status: Some(status),
            ..Default::default()
        }
    }

    #[test]
    fn finds_a_request_by_its_id() {
        let r = RecentRequests::new(10);
        r.insert(&txn(Some("a"), 200));
        r.insert(&txn(Some("b"), 500));
        assert_eq!(r.get("b"), vec![txn(Some("b"), 500)]);
        assert!(r.get("zzz").is_empty());
    }

    #[test]
    fn returns_every_transaction_sharing_an_id_oldest_first() {
        let r = RecentRequests::new(10);
        r.insert(&txn(Some("a"), 503));
        r.insert(&txn(Some("x"), 200));
        r.insert(&txn(Some("a"), 200));
        let got: Vec<Option<u16>> = r.get("a").iter().map(|t| t.status).collect();
        assert_eq!(got, vec![Some(503), Some(200)]);
    }

    #[test]
    fn one_id_on_every_request_keeps_the_newest_copies() {
        let r = RecentRequests::new(10);
        for status in 100..125 {
            r.insert(&txn(Some("same"), status));
        }
        let got: Vec<Option<u16>> = r.get("same").iter().map(|t| t.status).collect();
        let want: Vec<Option<u16>> = (115..125).map(Some).collect();
        assert_eq!(got, want);
        assert_eq!(r.lock().by_id.len(), 1);
    }

    #[test]
    fn overwritten_copies_answer_as_fresh_ones() {
        // A ring of 7 fed ids that repeat irregularly: every look-up must find exactly the
        // copies a plain list of the last 7 would.
        let r = RecentRequests::new(7);
        let mut last: Vec<Transaction> = Vec::new();
        for i in 0..200u16 {
            let id = format!("id-{}", (i * 7 + i / 3) % 11);
            let t = Transaction {
                user_agent: (i % 2 == 0).then(|| "ua".into()),
                ..txn(Some(&id), 200 + i)
            };
            r.insert(&t);
            last.push(t);
            if last.len() > 7 {
                last.remove(0);
            }
            for k in 0..11 {
                let id = format!("id-{k}");
                let want: Vec<Transaction> = last
                    .iter()
                    .filter(|t| t.request_id.as_deref() == Some(id.as_str()))
                    .cloned()
                    .collect();
                assert_eq!(r.get(&id), want, "after {i}, {id}");
            }
        }
    }

    #[test]
    fn evicts_the_oldest_beyond_capacity_and_forgets_its_id() {
        let r = RecentRequests::new(3);
        for i in 0..5 {
            r.insert(&txn(Some(&format!("id-{i}")), 200));
        }
        assert_eq!(r.len(), 3);
        assert!(r.get("id-0").is_empty() && r.get("id-1").is_empty());
        assert_eq!(r.get("id-4").len(), 1);
        assert_eq!(
            r.lock().by_id.len(),
            3,
            "the index does not grow past the ring"
        );
    }

    #[test]
    fn transactions_without_a_request_id_are_not_kept() {
        let r = RecentRequests::new(3);
        r.insert(&txn(None, 200));
        assert!(r.is_empty());
    }
}
