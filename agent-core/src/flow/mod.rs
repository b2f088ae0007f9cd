//! One tracked connection: per-direction TCP reassembly feeding the application protocol
//! ([`protocol`]), and the flow table ([`table`]) the engine keeps them in.
//!
//! ```text
//! Segment ─▶ Flow ─┬─ to_server: (parked) ─▶ Reassembler ─┐
//!                  └─ to_client: (parked) ─▶ Reassembler ─┴─▶ Piece ─▶ Protocol ─▶ Transaction
//! ```
//! A segment whose ACK runs ahead of what the other direction delivered is parked until those
//! bytes come or the reorder window declares them lost ([`order`]); late copies of a closed
//! connection are absorbed ([`closed`]).

pub mod closed;
pub mod names;
pub mod order;
pub mod protocol;
pub mod reassembly;
mod settle;
pub mod spare_meta;
pub mod stats;
pub mod table;

use crate::transaction::ConnMeta;
use crate::{Direction, ErrorType, Segment};
use order::{Evidence, Parking, ReorderWindow};
use protocol::Protocol;
use reassembly::{Bounds, Payload, Piece, PieceSink, Reassembler, ReassemblyStats};
use settle::Settle;

/// The flow's limits, from the engine configuration.
#[derive(Clone, Copy, Debug)]
pub struct FlowLimits {
    /// How far ahead of the next expected byte a segment may be held, per direction.
    pub reorder_window_bytes: u32,
    /// Bytes held per flow (both directions, parked segments and the protocol's partial heads).
    pub flow_budget_bytes: usize,
    /// How long acknowledged but unseen bytes are waited for ([`order`]).
    pub reorder: ReorderWindow,
}

/// What a flow needs from the engine for one call besides the segment.
pub struct Ctx<'a> {
    pub limits: FlowLimits,
    pub reassembly: &'a mut ReassemblyStats,
    pub protocol: protocol::Ctx<'a>,
}

/// One direction: its reassembler and, only while it waits on reordering, its [`Waiting`]
/// state (boxed: most flows never need it, and a flow slot stays small).
#[derive(Debug, Default)]
struct Side {
    reasm: Reassembler,
    waiting: Option<Box<Waiting>>,
}

/// A direction's reordering state: its segments parked until the peer's bytes they acknowledge
/// are delivered, and the evidence that the peer acknowledged bytes of it not seen yet.
#[derive(Debug, Default)]
struct Waiting {
    parked: Parking,
    evidence: Option<Evidence>,
    /// Bytes this direction had declared lost when the evidence was noted (a later loss by
    /// another bound is not a recovery).
    lost_then: u32,
}

/// What a side without [`Waiting`] state reads as.
static NOTHING_PARKED: Parking = Parking::new();

impl Side {
    fn parked(&self) -> &Parking {
        self.waiting.as_ref().map_or(&NOTHING_PARKED, |w| &w.parked)
    }

    fn evidence(&self) -> Option<Evidence> {
        self.waiting.as_ref().and_then(|w| w.evidence)
    }

    fn evidence_mut(&mut self) -> Option<&mut Evidence> {
        self.waiting.as_mut().and_then(|w| w.evidence.as_mut())
    }

    fn set_evidence(&mut self, e: Option<Evidence>) {
        if e.is_some() || self.waiting.is_some() {
            self.wait().evidence = e;
        }
    }

    /// The waiting state, made when first needed.
    fn wait(&mut self) -> &mut Waiting {
        self.waiting.get_or_insert_with(Box::default)
    }

    /// Drops the waiting state once nothing waits.
    fn tidy(&mut self) {
        if self
            .waiting
            .as_ref()
            .is_some_and(|w| w.evidence.is_none() && w.parked.is_empty())
        {
            self.waiting = None;
        }
    }
}

/// One tracked connection.
#[derive(Debug)]
pub struct Flow {
    /// Indexed by [`side`]: client to server, then server to client.
    sides: [Side; 2],
    /// What every record of this connection shares. Always there while the flow is in the
    /// table: it is taken only as the flow is removed ([`Flow::take_meta`]).
    meta: Option<ConnMeta>,
    pub protocol: Protocol,
    pub last_seen_ns: u64,
    /// Bytes buffered at the last accounting (for the engine-wide gauge).
    pub buffered: usize,
    /// The interface the flow is read from (the first it was seen on).
    pub ifindex: u32,
    closed: bool,
}

const DIRECTIONS: [Direction; 2] = [Direction::ToServer, Direction::ToClient];

/// The index of a direction in [`Flow::sides`].
fn side(d: Direction) -> usize {
    match d {
        Direction::ToServer => 0,
        Direction::ToClient => 1,
    }
}

/// Hands the reassembled pieces of one direction to the protocol, each data piece preceded
/// by where its segment's ACK stands in the peer's stream.
struct Deliver<'a, 'b> {
    protocol: &'a mut Protocol,
    meta: &'a ConnMeta,
    dir: Direction,
    /// Where the peer's stream starts (ACKs become offsets into it).
    peer_start: Option<u32>,
    cx: &'a mut protocol::Ctx<'b>,
}

impl PieceSink for Deliver<'_, '_> {
    fn piece(&mut self, piece: Piece<'_>, ts_ns: u64, ack: Option<u32>) {
        let peer_ack = match (piece, ack, self.peer_start) {
            (Piece::Data(_), Some(ack), Some(start)) => Some(ack.wrapping_sub(start)),
            _ => None,
        };
        self.protocol
            .feed(self.dir, piece, ts_ns, peer_ack, self.meta, self.cx);
    }
}

/// A flow's meta, borrowed on its own (next to a mutable borrow of the flow's protocol).
fn meta_of(meta: &Option<ConnMeta>) -> &ConnMeta {
    meta.as_ref()
        .expect("a flow keeps its meta until it is removed from the table")
}

impl Flow {
    /// A flow opened at `now` on interface `ifindex`; `fresh` when its SYN was seen.
    pub fn new(meta: ConnMeta, fresh: bool, now: u64, ifindex: u32) -> Flow {
        Flow {
            sides: [Side::default(), Side::default()],
            meta: Some(meta),
            protocol: Protocol::new(fresh),
            last_seen_ns: now,
            buffered: 0,
            ifindex,
            closed: false,
        }
    }

    /// What every record of this connection shares.
    pub fn meta(&self) -> &ConnMeta {
        meta_of(&self.meta)
    }

    /// Takes the connection's meta as the flow is removed from the table (for a later flow
    /// to renew, see `spare_meta`). Nothing may be done with the flow after.
    pub fn take_meta(&mut self) -> Option<ConnMeta> {
        self.meta.take()
    }

    /// Both directions ended, or a reset.
    pub fn is_closed(&self) -> bool {
        self.closed || self.sides.iter().all(|s| s.reasm.ended())
    }

    /// A client SYN with a different initial sequence number: the 4-tuple was reused by a
    /// new connection.
    pub fn is_new_connection(&self, seg: &Segment<'_>) -> bool {
        seg.direction == Direction::ToServer
            && seg.flags.syn()
            && !seg.flags.ack()
            && self.sides[0]
                .reasm
                .next_seq()
                .is_some_and(|n| n != seg.seq.wrapping_add(1))
    }

    /// Where each direction's stream stands (client to server, then server to client).
    pub fn stream_ends(&self) -> [Option<u32>; 2] {
        [
            self.sides[0].reasm.next_seq(),
            self.sides[1].reasm.next_seq(),
        ]
    }

    /// Bytes this flow holds (out-of-order and parked segments, partial heads).
    pub fn buffered_now(&self) -> usize {
        self.sides
            .iter()
            .map(|s| s.reasm.held_bytes() + s.parked().bytes())
            .sum::<usize>()
            + self.protocol.buffered()
    }

    pub fn ingest(&mut self, seg: &Segment<'_>, cx: &mut Ctx<'_>) {
        self.last_seen_ns = self.last_seen_ns.max(seg.ts_ns);
        for s in &mut self.sides {
            if let Some(e) = s.evidence_mut() {
                e.count_packet();
            }
        }
        if seg.flags.rst() {
            self.settle(seg.ts_ns, Settle::Now, cx);
            self.reset(seg.ts_ns, cx);
            return;
        }
        let (d, p) = (side(seg.direction), 1 - side(seg.direction));
        let mut seq = seg.seq;
        if seg.flags.syn() {
            self.sides[d].reasm.syn(seg.seq);
            seq = seq.wrapping_add(1);
        }
        // The ACK runs ahead of what the peer delivered: evidence of loss, and this segment's
        // bytes come after those, so it waits with them.
        let window = cx.limits.reorder_window_bytes;
        let waits_for = (seg.flags.ack()
            && !seg.flags.syn()
            && self.sides[p].reasm.unseen_below(seg.ack, window))
        .then_some(seg.ack);
        if let Some(ack) = waits_for {
            let peer = &mut self.sides[p];
            match peer.evidence_mut() {
                Some(e) => e.raise(ack),
                None => {
                    let (next, lost) = (peer.reasm.next_seq(), peer.reasm.lost_bytes());
                    let w = peer.wait();
                    w.evidence = Some(Evidence::new(ack, seg.ts_ns, next));
                    w.lost_then = lost;
                    cx.reassembly.reorder_evidence += 1;
                }
            }
        }
        let payload = Payload {
            seq,
            len: seg.payload_len,
            copied: seg.payload,
            fin: seg.flags.fin(),
            ts_ns: seg.ts_ns,
            ack: seg.flags.ack().then_some(seg.ack),
        };
        let carries = seg.payload_len > 0 || seg.flags.fin();
        match waits_for {
            Some(ack) if carries => self.sides[d].wait().parked.park(&payload, seg.flags, ack),
            _ => self.push(d, payload, cx),
        }
        self.settle(seg.ts_ns, Settle::Window, cx);
    }

    /// Pushes a segment's payload into its direction's reassembler.
    fn push(&mut self, d: usize, payload: Payload<'_>, cx: &mut Ctx<'_>) {
        let elsewhere = self.buffered_now() - self.sides[d].reasm.held_bytes();
        let bounds = Bounds {
            window: cx.limits.reorder_window_bytes,
            held_max: cx.limits.flow_budget_bytes.saturating_sub(elsewhere),
            segments_max: cx.limits.reorder.max_segments,
        };
        let mut sink = Deliver {
            protocol: &mut self.protocol,
            meta: meta_of(&self.meta),
            dir: DIRECTIONS[d],
            peer_start: self.sides[1 - d].reasm.start_seq(),
            cx: &mut cx.protocol,
        };
        let new = self.sides[d]
            .reasm
            .push(payload, bounds, cx.reassembly, &mut sink);
        match DIRECTIONS[d] {
            Direction::ToServer => cx.reassembly.first_seen_request_bytes += new,
            Direction::ToClient => cx.reassembly.first_seen_response_bytes += new,
        }
    }

    /// Held data older than `gap_timeout_ns` is given up on, and so is acknowledged data whose
    /// reorder window passed.
    pub fn expire_gaps(&mut self, now: u64, gap_timeout_ns: u64, cx: &mut Ctx<'_>) {
        for (d, &dir) in DIRECTIONS.iter().enumerate() {
            let peer_start = self.sides[1 - d].reasm.start_seq();
            let r = &mut self.sides[d].reasm;
            if r.oldest_held_ns()
                .is_some_and(|t| now.saturating_sub(t) >= gap_timeout_ns)
            {
                let mut sink = Deliver {
                    protocol: &mut self.protocol,
                    meta: meta_of(&self.meta),
                    dir,
                    peer_start,
                    cx: &mut cx.protocol,
                };
                r.flush(None, cx.reassembly, &mut sink);
            }
        }
        self.settle(now, Settle::Window, cx);
    }

    /// Requests without a response `timeout_ns` after their first byte become `timeout`.
    pub fn expire_requests(&mut self, now: u64, timeout_ns: u64, cx: &mut Ctx<'_>) {
        self.protocol
            .expire(now, timeout_ns, meta_of(&self.meta), &mut cx.protocol);
    }

    /// Gives back what an idle flow no longer needs (see `Protocol::release`).
    pub fn release(&mut self) {
        for s in &mut self.sides {
            s.reasm.release();
            s.tidy();
        }
        self.protocol.release();
    }

    /// Heap bytes this flow holds besides its table slot.
    pub fn heap_bytes(&self) -> usize {
        self.sides
            .iter()
            .map(|s| {
                let waiting = s.waiting.as_ref().map_or(0, |w| {
                    std::mem::size_of::<Waiting>() + w.parked.heap_bytes()
                });
                s.reasm.heap_bytes() + waiting
            })
            .sum::<usize>()
            + self.protocol.heap_bytes()
    }

    /// RST: held bytes are lost, every open request is `connection_reset`.
    fn reset(&mut self, ts: u64, cx: &mut Ctx<'_>) {
        for s in &mut self.sides {
            s.reasm.discard(cx.reassembly);
        }
        self.protocol.close(
            ErrorType::ConnectionReset,
            ts,
            meta_of(&self.meta),
            &mut cx.protocol,
        );
        self.closed = true;
    }

    /// Ends the flow for the engine (finish, eviction): parked and held data is forced
    /// through first.
    pub fn terminate(&mut self, error: ErrorType, cx: &mut Ctx<'_>) {
        self.settle(self.last_seen_ns, Settle::Now, cx);
        for (d, &dir) in DIRECTIONS.iter().enumerate() {
            let mut sink = Deliver {
                protocol: &mut self.protocol,
                meta: meta_of(&self.meta),
                dir,
                peer_start: self.sides[1 - d].reasm.start_seq(),
                cx: &mut cx.protocol,
            };
            self.sides[d].reasm.close(cx.reassembly, &mut sink);
        }
        self.protocol.close(
            error,
            self.last_seen_ns,
            meta_of(&self.meta),
            &mut cx.protocol,
        );
        self.closed = true;
    }
}
