//! Connections that just ended. A late copy of one of their segments (a mirror port's
//! duplicate, a retransmission reordered past the FINs) is a retransmission, not the start of
//! a new flow joined mid-stream: without this memory it would open one, pair nothing and end
//! as a spurious record.
//!
//! Bounded: at most [`MAX_REMEMBERED`] connections, each for `linger_ns` of packet time (the
//! engine passes its gap timeout). A SYN on the same 4-tuple is a new connection and forgets
//! the old one.
//!
//! A late copy that arrives on another interface than the one the connection was read from (the
//! second veth of a bridge) is the same segment seen twice, not a retransmission: the engine
//! counts it as a duplicate.
//!
//! Every connection's SYN and end pass through here, so the memory is a fixed set-associative
//! table rather than a map with an eviction queue: a key's hash (foldhash, randomly seeded per
//! process) picks one of [`SETS`] sets of [`WAYS`] entries, and a set that is full forgets its
//! oldest entry. Each set keeps a 32-bit tag per entry in a separate 16 KiB array, so the
//! look-up of a key that is not there (every new connection's SYN) reads only that array, which
//! stays in cache, and forgetting an entry touches nothing. The map it replaces looked up the
//! oldest connection to evict it at every end, a cache miss on an entry 4,096 connections old:
//! 5 % of the analysis thread with one request per connection (`bench --header 'Connection:
//! close'`). A set forgets its oldest entry when a fifth connection that hashes to it ends, so
//! an entry may be forgotten before 4,096 others ended (the memory was never meant to be
//! exact: at 26,000 connections a second, even 4,096 is 160 ms of them).

use std::hash::BuildHasher;

use super::table::FlowKey;
use crate::{Direction, Segment};

/// Connections remembered at once, at most.
pub const MAX_REMEMBERED: usize = SETS * WAYS;
/// Entries per set.
pub const WAYS: usize = 4;
/// Sets, a power of two.
pub const SETS: usize = 1024;

#[derive(Clone, Copy, Debug, Default)]
struct Ends {
    /// Where each direction's stream ended (client to server, then server to client).
    ends: [Option<u32>; 2],
    at_ns: u64,
    /// The interface the connection was read from.
    ifindex: u32,
}

#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    key: FlowKey,
    ends: Ends,
}

/// The table, allocated at the first connection that ends.
#[derive(Debug)]
struct Table {
    /// Per set, a tag per way: 0 for an empty way, else bits of the key's hash (never 0).
    tags: Vec<[u32; WAYS]>,
    /// Per set, the way its next entry replaces when none is empty (its oldest).
    next: Vec<u8>,
    /// `SETS * WAYS` entries, set by set; an entry counts only under a non-zero tag.
    entries: Vec<Entry>,
}

/// Recently closed connections and where their streams ended.
#[derive(Debug, Default)]
pub struct RecentlyClosed {
    hasher: foldhash::fast::RandomState,
    table: Option<Table>,
}

impl RecentlyClosed {
    /// The set and the tag of `key`.
    fn place(&self, key: &FlowKey) -> (usize, u32) {
        let h = self.hasher.hash_one(key);
        ((h as usize) & (SETS - 1), ((h >> 32) as u32) | 1)
    }

    /// The way of `key` in `set` when it is remembered.
    fn find(t: &Table, set: usize, tag: u32, key: &FlowKey) -> Option<usize> {
        (0..WAYS).find(|&w| t.tags[set][w] == tag && t.entries[set * WAYS + w].key == *key)
    }

    /// Remembers a connection, read from interface `ifindex`, that ended at `now_ns` with its
    /// streams' ends.
    pub fn remember(&mut self, key: FlowKey, ends: [Option<u32>; 2], now_ns: u64, ifindex: u32) {
        if ends.iter().all(Option::is_none) {
            return;
        }
        let (set, tag) = self.place(&key);
        let t = self.table.get_or_insert_with(|| Table {
            tags: vec![[0; WAYS]; SETS],
            next: vec![0; SETS],
            entries: vec![Entry::default(); SETS * WAYS],
        });
        let way = match Self::find(t, set, tag, &key) {
            Some(w) => w,
            None => match t.tags[set].iter().position(|&g| g == 0) {
                Some(w) => w,
                None => {
                    let w = usize::from(t.next[set]);
                    t.next[set] = ((w + 1) % WAYS) as u8;
                    w
                }
            },
        };
        t.tags[set][way] = tag;
        t.entries[set * WAYS + way] = Entry {
            key,
            ends: Ends {
                ends,
                at_ns: now_ns,
                ifindex,
            },
        };
    }

    /// Heap bytes of the table (fixed once allocated).
    pub fn heap_bytes(&self) -> usize {
        self.table.as_ref().map_or(0, |t| {
            t.tags.capacity() * std::mem::size_of::<[u32; WAYS]>()
                + t.next.capacity()
                + t.entries.capacity() * std::mem::size_of::<Entry>()
        })
    }

    /// When `seg` is a late copy of bytes (or the FIN) of a connection that ended less than
    /// `linger_ns` ago, at most `window` bytes back from its end: the interface the connection
    /// was read from.
    pub fn absorbs(
        &mut self,
        key: &FlowKey,
        seg: &Segment<'_>,
        linger_ns: u64,
        window: u32,
    ) -> Option<u32> {
        self.table.as_ref()?;
        let (set, tag) = self.place(key);
        let t = self.table.as_mut()?;
        let way = Self::find(t, set, tag, key)?;
        let e = t.entries[set * WAYS + way].ends;
        if seg.flags.syn() || seg.ts_ns.saturating_sub(e.at_ns) >= linger_ns {
            t.tags[set][way] = 0;
            return None;
        }
        let side = match seg.direction {
            Direction::ToServer => 0,
            Direction::ToClient => 1,
        };
        let end = e.ends[side]?;
        // The segment's last byte (its FIN counts as one) is at or before the stream's end.
        let last = seg
            .seq
            .wrapping_add(seg.payload_len)
            .wrapping_add(u32::from(seg.flags.fin()));
        let behind = end.wrapping_add(1).wrapping_sub(last) as i32;
        (behind >= 0 && (behind as u32) <= window).then_some(e.ifindex)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TcpFlags;
    use std::net::SocketAddr;

    /// Connections remembered now.
    fn remembered(c: &RecentlyClosed) -> usize {
        c.table
            .as_ref()
            .map_or(0, |t| t.tags.iter().flatten().filter(|&&g| g != 0).count())
    }

    const SERVER: &str = "10.0.0.1:80";
    const S: u64 = 1_000_000_000;

    fn client(i: usize) -> SocketAddr {
        SocketAddr::from((
            [10, 1, (i >> 8) as u8, i as u8],
            40_000 + (i % 20_000) as u16,
        ))
    }

    fn key(i: usize) -> FlowKey {
        FlowKey::new(client(i), SERVER.parse().expect("address"))
    }

    /// A segment of connection `i` to the server: `len` bytes ending just before `end`.
    fn late(i: usize, end: u32, len: u32, flags: u8, ts_ns: u64) -> Segment<'static> {
        Segment {
            ts_ns,
            client: client(i),
            server: SERVER.parse().expect("address"),
            direction: Direction::ToServer,
            seq: end - len,
            ack: 0,
            flags: TcpFlags(flags),
            payload_len: len,
            payload: &[],
            ifindex: 7,
        }
    }

    #[test]
    fn a_late_copy_is_absorbed_until_a_syn_or_the_linger_time() {
        let mut c = RecentlyClosed::default();
        c.remember(key(1), [Some(1_000), Some(5_000)], S, 7);
        let absorbs = |c: &mut RecentlyClosed, seg| c.absorbs(&key(1), &seg, S, 65_536);
        assert_eq!(
            absorbs(&mut c, late(1, 1_000, 100, TcpFlags::ACK, S + 1)),
            Some(7)
        );
        // Past the end of its stream: new bytes, not a copy.
        assert_eq!(
            absorbs(&mut c, late(1, 1_200, 100, TcpFlags::ACK, S + 2)),
            None
        );
        assert_eq!(remembered(&c), 1);
        assert_eq!(
            absorbs(&mut c, late(1, 1_000, 0, TcpFlags::SYN, S + 3)),
            None
        );
        assert_eq!(remembered(&c), 0, "a SYN forgets the old connection");
        c.remember(key(1), [Some(1_000), None], S, 7);
        assert_eq!(
            absorbs(&mut c, late(1, 1_000, 100, TcpFlags::ACK, 2 * S)),
            None
        );
        assert_eq!(remembered(&c), 0, "forgotten once the linger time passed");
    }

    #[test]
    fn at_most_max_remembered_and_the_latest_are_kept() {
        let mut c = RecentlyClosed::default();
        let n = 3 * MAX_REMEMBERED;
        for i in 0..n {
            c.remember(key(i), [Some(1_000), None], S, 7);
            // The same connection again takes no second entry.
            c.remember(key(i), [Some(1_000), None], S, 7);
        }
        assert!(remembered(&c) <= MAX_REMEMBERED, "{}", remembered(&c));
        // Most of the table is in use: hashing spreads the keys over the sets.
        assert!(
            remembered(&c) > MAX_REMEMBERED * 9 / 10,
            "{}",
            remembered(&c)
        );
        let seg = |i| late(i, 1_000, 100, TcpFlags::ACK, S + 1);
        assert_eq!(c.absorbs(&key(n - 1), &seg(n - 1), S, 65_536), Some(7));
        // The oldest third is nearly all forgotten: a key stays only while fewer than four
        // later ones hashed to its set (about 4 % of them, by the Poisson odds of 8,192 later
        // keys over 1,024 sets).
        let old = (0..MAX_REMEMBERED)
            .filter(|&i| c.absorbs(&key(i), &seg(i), S, 65_536).is_some())
            .count();
        assert!(old < MAX_REMEMBERED / 10, "{old}");
    }

    #[test]
    fn nothing_is_allocated_before_a_connection_ends() {
        let mut c = RecentlyClosed::default();
        c.remember(key(1), [None, None], S, 7);
        assert!(c.table.is_none());
        assert_eq!(
            c.absorbs(&key(1), &late(1, 1_000, 100, 0, S), S, 65_536),
            None
        );
    }
}
