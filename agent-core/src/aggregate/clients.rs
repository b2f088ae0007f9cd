//! Bounded top-K of API consumers by traffic.
//!
//! Design: `K` *tracked* clients have exact counters from the moment they are admitted, so
//! their series are monotonic. Everything else is counted exactly under `"other"` and, to find
//! rising heavy hitters, in a Space-Saving sketch (Metwally et al. 2005) of `4·K` candidates
//! whose guaranteed lower bound is `count - error`. Free slots are taken at first sight. Once
//! every slot is taken, rebalancing happens at each epoch boundary (one minute of transaction
//! time): a candidate whose guaranteed epoch count exceeds the epoch traffic of the quietest
//! tracked client replaces it. The evicted client's series disappear from the exposition
//! (Prometheus treats them as ended; `sum(rate(...))` stays right) and its later traffic counts
//! under `"other"` until it earns a slot again; the new client's counters start at zero.
//! Memory: `K` tracked + `4·K` candidates, whatever the number of distinct clients.

use foldhash::{HashMap, HashMapExt};

/// Label used for every client outside the tracked set.
pub const OTHER: &str = "other";
const EPOCH_NS: u64 = 60_000_000_000;

/// Counts kept per client (tracked or "other").
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ClientCounts {
    pub count: u64,
    pub errors: u64,
    pub rate_limited: u64,
    pub auth_failures: u64,
}

#[derive(Clone, Debug)]
pub struct Tracked {
    pub name: Box<str>,
    /// Unique for the life of the aggregator; 0 means "other".
    pub uid: u32,
    pub counts: ClientCounts,
    epoch_count: u64,
}

/// Space-Saving candidates: `(name, count, overestimation)`.
#[derive(Clone, Debug, Default)]
struct Candidates {
    cap: usize,
    index: HashMap<Box<str>, usize>,
    items: Vec<(Box<str>, u64, u64)>,
}

impl Candidates {
    fn add(&mut self, name: &str) {
        if let Some(&i) = self.index.get(name) {
            self.items[i].1 += 1;
        } else if self.items.len() < self.cap {
            self.index.insert(name.into(), self.items.len());
            self.items.push((name.into(), 1, 0));
        } else if let Some((i, min)) = self
            .items
            .iter()
            .enumerate()
            .min_by_key(|(_, it)| it.1)
            .map(|(i, it)| (i, it.1))
        {
            let old = std::mem::replace(&mut self.items[i], (name.into(), min + 1, min));
            self.index.remove(&old.0);
            self.index.insert(name.into(), i);
        }
    }

    /// Candidates by guaranteed count, highest first.
    fn ranked(&mut self) -> Vec<(Box<str>, u64)> {
        let mut v: Vec<(Box<str>, u64)> = self
            .items
            .drain(..)
            .map(|(n, c, e)| (n, c - e))
            .filter(|(_, g)| *g > 0)
            .collect();
        self.index.clear();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    }
}

#[derive(Clone, Debug)]
pub struct ClientTable {
    k: usize,
    index: HashMap<Box<str>, usize>,
    slots: Vec<Tracked>,
    pub other: ClientCounts,
    candidates: Candidates,
    epoch: u64,
    next_uid: u32,
    evicted: Vec<u32>,
    pub evictions: u64,
}

impl ClientTable {
    pub fn new(k: usize) -> ClientTable {
        ClientTable {
            k,
            index: HashMap::new(),
            slots: Vec::new(),
            other: ClientCounts::default(),
            candidates: Candidates {
                cap: (4 * k).max(16),
                ..Default::default()
            },
            epoch: 0,
            next_uid: 1,
            evicted: Vec::new(),
            evictions: 0,
        }
    }

    /// Accounts one request from `name` at `ts_ns`; returns the tracked slot, or `None` when
    /// the request counts under "other".
    pub fn observe(&mut self, name: &str, ts_ns: u64) -> Option<usize> {
        let epoch = ts_ns / EPOCH_NS;
        if epoch > self.epoch {
            self.rebalance();
            self.epoch = epoch;
        }
        if let Some(&slot) = self.index.get(name) {
            self.slots[slot].epoch_count += 1;
            return Some(slot);
        }
        if self.slots.len() < self.k {
            let slot = self.admit(name.into());
            self.slots[slot].epoch_count = 1;
            return Some(slot);
        }
        self.candidates.add(name);
        None
    }

    fn admit(&mut self, name: Box<str>) -> usize {
        let uid = self.next_uid;
        self.next_uid = self.next_uid.wrapping_add(1).max(1);
        self.index.insert(name.clone(), self.slots.len());
        self.slots.push(Tracked {
            name,
            uid,
            counts: ClientCounts::default(),
            epoch_count: 0,
        });
        self.slots.len() - 1
    }

    fn rebalance(&mut self) {
        for (name, guaranteed) in self.candidates.ranked() {
            let Some((slot, quietest)) = self
                .slots
                .iter()
                .enumerate()
                .min_by_key(|(_, t)| t.epoch_count)
                .map(|(i, t)| (i, t.epoch_count))
            else {
                break;
            };
            if guaranteed <= quietest {
                break;
            }
            let gone = self.slots.swap_remove(slot);
            self.index.remove(&gone.name);
            if let Some(moved) = self.slots.get(slot) {
                self.index.insert(moved.name.clone(), slot);
            }
            self.evicted.push(gone.uid);
            self.evictions += 1;
            let new = self.admit(name);
            self.slots[new].epoch_count = guaranteed;
        }
        for t in &mut self.slots {
            t.epoch_count = 0;
        }
    }

    /// Counters of the client in `slot` (or of "other").
    pub fn counts_mut(&mut self, slot: Option<usize>) -> &mut ClientCounts {
        match slot.and_then(|s| self.slots.get_mut(s)) {
            Some(t) => &mut t.counts,
            None => &mut self.other,
        }
    }

    /// Uid of `slot` (0 for "other").
    pub fn uid(&self, slot: Option<usize>) -> u32 {
        slot.and_then(|s| self.slots.get(s)).map_or(0, |t| t.uid)
    }

    /// Uids evicted since the last call; the aggregator drops their series.
    pub fn take_evicted(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.evicted)
    }

    pub fn tracked(&self) -> &[Tracked] {
        &self.slots
    }

    /// Label for a uid (`"other"` for 0 or an unknown uid).
    pub fn name_of(&self, uid: u32) -> &str {
        self.slots
            .iter()
            .find(|t| t.uid == uid)
            .map_or(OTHER, |t| &t.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const T0: u64 = 1_795_000_000_000_000_000;

    #[rstest]
    fn free_slots_are_taken_at_first_sight() {
        let mut t = ClientTable::new(2);
        assert_eq!(t.observe("a", T0), Some(0));
        assert_eq!(t.observe("b", T0), Some(1));
        assert_eq!(t.observe("c", T0), None);
        assert_eq!(t.observe("a", T0), Some(0));
    }

    #[rstest]
    fn heavy_newcomer_replaces_quietest_client_at_epoch_end() {
        let mut t = ClientTable::new(2);
        t.observe("a", T0);
        t.observe("b", T0);
        for _ in 0..10 {
            t.observe("a", T0);
            t.observe("heavy", T0);
        }
        // Next epoch: rebalance before this request is counted.
        t.observe("a", T0 + EPOCH_NS);
        let names: Vec<&str> = t.tracked().iter().map(|c| &*c.name).collect();
        assert!(
            names.contains(&"a") && names.contains(&"heavy"),
            "{names:?}"
        );
        assert_eq!(t.take_evicted(), vec![2]);
        assert_eq!(t.evictions, 1);
    }

    #[rstest]
    fn scattered_clients_never_displace_steady_ones() {
        let mut t = ClientTable::new(1);
        for i in 0..1000 {
            t.observe("steady", T0);
            t.observe(&format!("scan-{i}"), T0);
        }
        t.observe("steady", T0 + EPOCH_NS);
        assert_eq!(&*t.tracked()[0].name, "steady");
        assert!(t.candidates.items.len() <= 16);
    }
}
