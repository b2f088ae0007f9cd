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
    by_id: HashMap<String, Vec<u64>>,
}

impl RecentRequests {
    pub fn new(capacity: usize) -> RecentRequests {
        RecentRequests {
            capacity: capacity.max(1),
            inner: Mutex::new(Ring::default()),
        }
    }

    /// Keeps a copy of `t` if it has a request id, evicting the oldest beyond capacity.
    pub fn insert(&self, t: &Transaction) {
        let Some(id) = t.request_id.as_deref() else {
            return;
        };
        let mut ring = self.lock();
        let seq = ring.first_seq + ring.items.len() as u64;
        ring.items.push_back(t.clone());
        ring.by_id.entry(id.to_owned()).or_default().push(seq);
        while ring.items.len() > self.capacity {
            ring.evict_oldest();
        }
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
    fn evict_oldest(&mut self) {
        let Some(old) = self.items.pop_front() else {
            return;
        };
        let seq = self.first_seq;
        self.first_seq += 1;
        let Some(id) = old.request_id else { return };
        if let Some(seqs) = self.by_id.get_mut(&id) {
            seqs.retain(|s| *s != seq);
            if seqs.is_empty() {
                self.by_id.remove(&id);
            }
        }
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
