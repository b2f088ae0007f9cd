//! The flow table: a hash map into a slab whose slots form an intrusive least-recently-used
//! list, so lookup, touch, insert and eviction are O(1) and allocation-free once warm.
//!
//! The map hashes a compact 36-byte key with foldhash (randomly seeded per process): every
//! segment does one look-up, and SipHash over two `SocketAddr`s cost about ten times more.
//! The table is bounded (`max_flows`), which caps what a crafted collision could cost.

use foldhash::{HashMap, HashMapExt};
use std::net::{IpAddr, SocketAddr};

/// The oriented 4-tuple of a connection, compact: both addresses as 128-bit numbers (IPv4
/// v4-mapped, with a family bit beside the ports so the two families never meet) and both
/// ports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    client_ip: u128,
    server_ip: u128,
    /// Client port << 16 | server port, plus bit 32 when the addresses are IPv6.
    ports: u64,
}

fn ip_bits(ip: IpAddr) -> (u128, bool) {
    match ip {
        IpAddr::V4(v4) => (u128::from(v4.to_ipv6_mapped()), false),
        IpAddr::V6(v6) => (u128::from(v6), true),
    }
}

impl FlowKey {
    pub fn new(client: SocketAddr, server: SocketAddr) -> FlowKey {
        let (client_ip, v6) = ip_bits(client.ip());
        let (server_ip, _) = ip_bits(server.ip());
        FlowKey {
            client_ip,
            server_ip,
            ports: u64::from(client.port()) << 16 | u64::from(server.port()) | u64::from(v6) << 32,
        }
    }
}

const NIL: u32 = u32::MAX;

#[derive(Debug)]
struct Slot<F> {
    key: FlowKey,
    val: Option<F>,
    /// Towards the most recently used end.
    newer: u32,
    /// Towards the least recently used end.
    older: u32,
}

/// Slab of flows with LRU order.
#[derive(Debug)]
pub struct FlowTable<F> {
    map: HashMap<FlowKey, u32>,
    slots: Vec<Slot<F>>,
    free: Vec<u32>,
    newest: u32,
    oldest: u32,
}

impl<F> Default for FlowTable<F> {
    fn default() -> Self {
        FlowTable {
            map: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            newest: NIL,
            oldest: NIL,
        }
    }
}

impl<F> FlowTable<F> {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn find(&self, key: &FlowKey) -> Option<u32> {
        self.map.get(key).copied()
    }

    pub fn get_mut(&mut self, idx: u32) -> Option<&mut F> {
        self.slots.get_mut(idx as usize)?.val.as_mut()
    }

    pub fn key(&self, idx: u32) -> Option<FlowKey> {
        let slot = self.slots.get(idx as usize)?;
        slot.val.as_ref().map(|_| slot.key)
    }

    /// The least recently used flow.
    pub fn oldest(&self) -> Option<u32> {
        (self.oldest != NIL).then_some(self.oldest)
    }

    /// Marks a flow most recently used.
    pub fn touch(&mut self, idx: u32) {
        if self.newest != idx {
            self.unlink(idx);
            self.link_newest(idx);
        }
    }

    /// Inserts a new flow (the key must not be present) as most recently used.
    pub fn insert(&mut self, key: FlowKey, val: F) -> u32 {
        let slot = Slot {
            key,
            val: Some(val),
            newer: NIL,
            older: NIL,
        };
        let idx = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        self.map.insert(key, idx);
        self.link_newest(idx);
        idx
    }

    /// Removes the entry at `idx`, handing it to `last` first; false when there is none. The
    /// entry is dropped where it lies: a flow is a few hundred bytes, and moving it out to
    /// drop it copied every one of them (4 % of the analysis thread with one request per
    /// connection).
    pub fn remove_with(&mut self, idx: u32, last: impl FnOnce(&mut F)) -> bool {
        let Some(slot) = self.slots.get_mut(idx as usize) else {
            return false;
        };
        let Some(val) = slot.val.as_mut() else {
            return false;
        };
        last(val);
        slot.val = None;
        let key = slot.key;
        self.unlink(idx);
        self.map.remove(&key);
        self.free.push(idx);
        true
    }

    /// Bytes of the table itself: the slab of slots and the index (by capacity).
    pub fn table_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot<F>>()
            + self.map.capacity() * (std::mem::size_of::<(FlowKey, u32)>() + 1)
            + self.free.capacity() * std::mem::size_of::<u32>()
    }

    /// Indices of all flows (a snapshot, so the table may be changed while walking it).
    pub fn indices(&self) -> Vec<u32> {
        let mut all = Vec::new();
        self.indices_into(&mut all);
        all
    }

    /// [`indices`](Self::indices) into a buffer the caller keeps (no allocation once warm).
    pub fn indices_into(&self, all: &mut Vec<u32>) {
        all.clear();
        all.extend(self.map.values().copied());
    }

    pub fn values(&self) -> impl Iterator<Item = &F> {
        self.slots.iter().filter_map(|s| s.val.as_ref())
    }

    fn unlink(&mut self, idx: u32) {
        let (newer, older) = {
            let s = &self.slots[idx as usize];
            (s.newer, s.older)
        };
        match newer {
            NIL => self.newest = older,
            n => self.slots[n as usize].older = older,
        }
        match older {
            NIL => self.oldest = newer,
            o => self.slots[o as usize].newer = newer,
        }
        let s = &mut self.slots[idx as usize];
        s.newer = NIL;
        s.older = NIL;
    }

    fn link_newest(&mut self, idx: u32) {
        let old_newest = self.newest;
        {
            let s = &mut self.slots[idx as usize];
            s.newer = NIL;
            s.older = old_newest;
        }
        if old_newest != NIL {
            self.slots[old_newest as usize].newer = idx;
        }
        self.newest = idx;
        if self.oldest == NIL {
            self.oldest = idx;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn key(port: u16) -> FlowKey {
        FlowKey::new(
            SocketAddr::from(([127, 0, 0, 1], port)),
            SocketAddr::from(([127, 0, 0, 1], 80)),
        )
    }

    #[rstest]
    fn keys_of_the_two_families_never_meet() {
        let v4 = SocketAddr::from(([192, 0, 2, 1], 80));
        let mapped: SocketAddr = "[::ffff:192.0.2.1]:80".parse().expect("literal");
        assert_ne!(FlowKey::new(v4, v4), FlowKey::new(mapped, mapped));
        assert_eq!(FlowKey::new(v4, v4), FlowKey::new(v4, v4));
    }

    #[rstest]
    fn least_recently_used_is_oldest_after_touches() {
        let mut t = FlowTable::default();
        let a = t.insert(key(1), 'a');
        let b = t.insert(key(2), 'b');
        let c = t.insert(key(3), 'c');
        assert_eq!(t.oldest(), Some(a));
        t.touch(a);
        assert_eq!(t.oldest(), Some(b));
        let mut last = None;
        assert!(t.remove_with(b, |v| last = Some(*v)));
        assert_eq!(last, Some('b'));
        assert!(!t.remove_with(b, |_| unreachable!()), "removed once");
        assert_eq!(t.oldest(), Some(c));
        let d = t.insert(key(4), 'd');
        assert_eq!(d, b, "slot reused");
        assert_eq!(t.len(), 3);
        assert_eq!(t.find(&key(2)), None);
        assert_eq!(t.find(&key(4)), Some(d));
    }
}
