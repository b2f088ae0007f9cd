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
//! Every connection's SYN and end pass through here (a look-up, then a removal and an
//! insertion), so the map hashes with foldhash (randomly seeded per process), as the flow
//! table does: SipHash over the 36-byte key was a few hundred instructions per connection.

use foldhash::HashMap;
use std::collections::VecDeque;
use std::collections::hash_map::Entry;

use super::table::FlowKey;
use crate::{Direction, Segment};

/// Connections remembered at once; the oldest is forgotten first.
pub const MAX_REMEMBERED: usize = 4096;

#[derive(Clone, Copy, Debug)]
struct Ends {
    /// Where each direction's stream ended (client to server, then server to client).
    ends: [Option<u32>; 2],
    at_ns: u64,
    /// The interface the connection was read from.
    ifindex: u32,
}

/// Recently closed connections and where their streams ended.
#[derive(Debug, Default)]
pub struct RecentlyClosed {
    map: HashMap<FlowKey, Ends>,
    order: VecDeque<(FlowKey, u64)>,
}

impl RecentlyClosed {
    /// Remembers a connection, read from interface `ifindex`, that ended at `now_ns` with its
    /// streams' ends.
    pub fn remember(&mut self, key: FlowKey, ends: [Option<u32>; 2], now_ns: u64, ifindex: u32) {
        if ends.iter().all(Option::is_none) {
            return;
        }
        while self.order.len() >= MAX_REMEMBERED {
            if let Some((old, at)) = self.order.pop_front()
                && let Entry::Occupied(e) = self.map.entry(old)
                && e.get().at_ns == at
            {
                e.remove();
            }
        }
        self.map.insert(
            key,
            Ends {
                ends,
                at_ns: now_ns,
                ifindex,
            },
        );
        self.order.push_back((key, now_ns));
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
        let e = self.map.get(key).copied()?;
        if seg.flags.syn() || seg.ts_ns.saturating_sub(e.at_ns) >= linger_ns {
            self.map.remove(key);
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
