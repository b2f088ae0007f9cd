//! Order between the two directions of a flow, and what an acknowledgement proves.
//!
//! A segment's ACK says how much of the peer's stream its sender had received, so its bytes
//! come after those: a response after the request it acknowledges, a next request after the
//! response. When the ACK runs ahead of what the peer's reassembler has delivered, that is
//! *evidence* that bytes are missing, not proof: a SPAN port or cloud packet mirroring moves
//! one direction against the other by a few packets, `tcpdump -i any` on a multi-queue host
//! and the kernel ring's interleaving of CPUs deliver an ACK before the data it acknowledges.
//!
//! So the segment is parked (copied) and the peer's missing bytes get a reorder window: they
//! are declared lost only once both [`ReorderWindow::packets`] segments of the flow and
//! [`ReorderWindow::ns`] of packet time went by without them, or [`ReorderWindow::max_ns`] (the
//! gap timeout) passed, or the flow's reorder bounds (segments parked or held, the flow budget)
//! overflow. A parked segment is released as soon as the bytes it acknowledges were delivered
//! or declared lost; within a direction, the reassembler puts released segments back in
//! sequence order. Missing bytes that are themselves parked (waiting for the other direction)
//! are never declared lost: each parked segment waits only for bytes sent before it, so the
//! chain ends at bytes that truly did not come. Every episode, recovery, expiry and overflow
//! is counted.

use crate::TcpFlags;
use crate::flow::reassembly::Payload;

/// The reorder window and bounds (from the engine configuration).
#[derive(Clone, Copy, Debug)]
pub struct ReorderWindow {
    /// Segments of the flow (either direction) that must go by ...
    pub packets: u32,
    /// ... and packet time that must pass, before acknowledged bytes not seen count as lost.
    pub ns: u64,
    /// Longest wait, whatever the packet count (the gap timeout).
    pub max_ns: u64,
    /// Segments one direction may park, and hold out of order.
    pub max_segments: usize,
}

/// The peer acknowledged this direction's bytes up to `ack`, which were not delivered yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Evidence {
    /// The highest acknowledgement seen so far in this episode.
    pub ack: u32,
    /// Time and flow segments since the evidence was noted or the direction last advanced.
    since_ns: u64,
    packets: u32,
    /// Where the direction stood then (progress restarts the window).
    next_then: Option<u32>,
}

impl Evidence {
    pub fn new(ack: u32, now_ns: u64, next: Option<u32>) -> Evidence {
        Evidence {
            ack,
            since_ns: now_ns,
            packets: 0,
            next_then: next,
        }
    }

    /// A later acknowledgement of the same episode.
    pub fn raise(&mut self, ack: u32) {
        if (ack.wrapping_sub(self.ack) as i32) > 0 {
            self.ack = ack;
        }
    }

    /// One more segment of the flow went by.
    pub fn count_packet(&mut self) {
        self.packets = self.packets.saturating_add(1);
    }

    /// The direction delivered more (but not yet everything acknowledged): the wait restarts,
    /// since the bytes still missing may be the next ones reordered.
    pub fn progressed(&mut self, next: Option<u32>, now_ns: u64) {
        if next != self.next_then {
            self.next_then = next;
            self.since_ns = now_ns;
            self.packets = 0;
        }
    }

    /// Part of the acknowledged bytes were declared lost (up to `next`): the rest keeps the
    /// window it had.
    pub fn rebase(&mut self, next: Option<u32>) {
        self.next_then = next;
    }

    /// The window passed without the bytes.
    pub fn passed(&self, now_ns: u64, w: &ReorderWindow) -> bool {
        let waited = now_ns.saturating_sub(self.since_ns);
        (self.packets >= w.packets && waited >= w.ns) || waited >= w.max_ns
    }
}

/// A segment waiting for the peer's bytes it acknowledges.
#[derive(Debug)]
struct Parked {
    seq: u32,
    len: u32,
    data: Vec<u8>,
    flags: TcpFlags,
    ts_ns: u64,
    /// The peer's stream position this segment acknowledges.
    ack: u32,
}

/// One direction's parked segments, in arrival order.
#[derive(Debug, Default)]
pub struct Parking {
    queue: std::collections::VecDeque<Parked>,
    bytes: usize,
}

/// A released segment, as the reassembler takes it.
#[derive(Debug)]
pub struct Released {
    pub payload: Vec<u8>,
    pub ack: u32,
    pub seq: u32,
    pub len: u32,
    pub flags: TcpFlags,
    pub ts_ns: u64,
}

impl Released {
    pub fn payload(&self) -> Payload<'_> {
        Payload {
            seq: self.seq,
            len: self.len,
            copied: &self.payload,
            fin: self.flags.fin(),
            ts_ns: self.ts_ns,
            ack: Some(self.ack),
        }
    }
}

impl Parking {
    pub const fn new() -> Parking {
        Parking {
            queue: std::collections::VecDeque::new(),
            bytes: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Heap bytes held (the queue and the copies in it).
    pub fn heap_bytes(&self) -> usize {
        self.queue.capacity() * std::mem::size_of::<Parked>()
            + self.queue.iter().map(|p| p.data.capacity()).sum::<usize>()
    }

    /// Copied bytes parked (counted against the flow budget).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Parks a segment (`seq` after any SYN) until the peer delivered its bytes up to `ack`.
    pub fn park(&mut self, p: &Payload<'_>, flags: TcpFlags, ack: u32) {
        let data = p.copied[..p.copied.len().min(p.len as usize)].to_vec();
        self.bytes += data.len();
        self.queue.push_back(Parked {
            seq: p.seq,
            len: p.len,
            data,
            flags,
            ts_ns: p.ts_ns,
            ack,
        });
    }

    /// The first parked segment (in arrival order) whose acknowledged bytes `open` says
    /// were delivered; with `force`, the first one whatever it waits for.
    pub fn release(&mut self, open: impl Fn(u32) -> bool, force: bool) -> Option<Released> {
        let at = self.queue.iter().position(|p| force || open(p.ack))?;
        let p = self.queue.remove(at)?;
        self.bytes -= p.data.len();
        Some(Released {
            payload: p.data,
            ack: p.ack,
            seq: p.seq,
            len: p.len,
            flags: p.flags,
            ts_ns: p.ts_ns,
        })
    }

    /// The first parked stream position at or after `from`, if any: acknowledged bytes past
    /// it are parked here, not lost.
    pub fn first_at_or_after(&self, from: u32) -> Option<u32> {
        self.queue
            .iter()
            .filter(|p| (p.seq.wrapping_sub(from) as i32) >= 0)
            .min_by_key(|p| p.seq.wrapping_sub(from))
            .map(|p| p.seq)
    }

    /// The lowest acknowledgement past `from` that a parked segment waits for: the peer's bytes
    /// up to it must be settled before the bytes after it, so that this segment is released in
    /// between.
    pub fn lowest_gate_after(&self, from: u32) -> Option<u32> {
        self.queue
            .iter()
            .filter(|p| (p.ack.wrapping_sub(from) as i32) > 0)
            .min_by_key(|p| p.ack.wrapping_sub(from))
            .map(|p| p.ack)
    }

    /// Whether a parked segment carries the stream byte `seq` (or the FIN at `seq`): the
    /// direction's missing bytes are here, waiting for the peer, not lost.
    pub fn covers(&self, seq: u32) -> bool {
        self.queue.iter().any(|p| {
            let into = seq.wrapping_sub(p.seq) as i32;
            into >= 0 && (into as u32) < p.len.max(u32::from(p.flags.fin()))
        })
    }
}
