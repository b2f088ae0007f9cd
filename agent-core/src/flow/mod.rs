//! One tracked connection: per-direction TCP reassembly feeding the application protocol
//! ([`protocol`]), and the flow table ([`table`]) the engine keeps them in.
//!
//! ```text
//! Segment ─▶ Flow ─┬─ to_server: Reassembler ─┐
//!                  └─ to_client: Reassembler ─┴─▶ Piece ─▶ Protocol (HTTP/1.x …) ─▶ Transaction
//! ```

pub mod names;
pub mod protocol;
pub mod reassembly;
pub mod stats;
pub mod table;

use crate::transaction::ConnMeta;
use crate::{Direction, ErrorType, Segment};
use protocol::Protocol;
use reassembly::{Bounds, Payload, Piece, PieceSink, Reassembler, ReassemblyStats};

/// The flow's limits, from the engine configuration.
#[derive(Clone, Copy, Debug)]
pub struct FlowLimits {
    /// How far ahead of the next expected byte a segment may be held, per direction.
    pub reorder_window_bytes: u32,
    /// Bytes held per flow (both directions and the protocol's partial heads).
    pub flow_budget_bytes: usize,
}

/// What a flow needs from the engine for one call besides the segment.
pub struct Ctx<'a> {
    pub limits: FlowLimits,
    pub reassembly: &'a mut ReassemblyStats,
    pub protocol: protocol::Ctx<'a>,
}

/// One tracked connection.
#[derive(Debug)]
pub struct Flow {
    to_server: Reassembler,
    to_client: Reassembler,
    /// What every record of this connection shares.
    pub meta: ConnMeta,
    pub protocol: Protocol,
    pub last_seen_ns: u64,
    /// Bytes buffered at the last accounting (for the engine-wide gauge).
    pub buffered: usize,
    closed: bool,
}

/// Hands the reassembled pieces of one direction to the protocol.
struct Deliver<'a, 'b> {
    protocol: &'a mut Protocol,
    meta: &'a ConnMeta,
    dir: Direction,
    cx: &'a mut protocol::Ctx<'b>,
}

impl PieceSink for Deliver<'_, '_> {
    fn piece(&mut self, piece: Piece<'_>, ts_ns: u64) {
        self.protocol
            .feed(self.dir, piece, ts_ns, self.meta, self.cx);
    }
}

impl Flow {
    /// A flow opened at `now`; `fresh` when its SYN was seen.
    pub fn new(meta: ConnMeta, fresh: bool, now: u64) -> Flow {
        Flow {
            to_server: Reassembler::default(),
            to_client: Reassembler::default(),
            meta,
            protocol: Protocol::new(fresh),
            last_seen_ns: now,
            buffered: 0,
            closed: false,
        }
    }

    /// Both directions ended, or a reset.
    pub fn is_closed(&self) -> bool {
        self.closed || (self.to_server.ended() && self.to_client.ended())
    }

    /// A client SYN with a different initial sequence number: the 4-tuple was reused by a
    /// new connection.
    pub fn is_new_connection(&self, seg: &Segment<'_>) -> bool {
        seg.direction == Direction::ToServer
            && seg.flags.syn()
            && !seg.flags.ack()
            && self
                .to_server
                .next_seq()
                .is_some_and(|n| n != seg.seq.wrapping_add(1))
    }

    /// Bytes this flow holds (out-of-order segments and partial heads).
    pub fn buffered_now(&self) -> usize {
        self.to_server.held_bytes() + self.to_client.held_bytes() + self.protocol.buffered()
    }

    pub fn ingest(&mut self, seg: &Segment<'_>, cx: &mut Ctx<'_>) {
        self.last_seen_ns = self.last_seen_ns.max(seg.ts_ns);
        if seg.flags.rst() {
            self.reset(seg.ts_ns, cx);
            return;
        }
        let window = cx.limits.reorder_window_bytes;
        let (this, other, other_dir) = match seg.direction {
            Direction::ToServer => (
                &mut self.to_server,
                &mut self.to_client,
                Direction::ToClient,
            ),
            Direction::ToClient => (
                &mut self.to_client,
                &mut self.to_server,
                Direction::ToServer,
            ),
        };
        // The peer acknowledged bytes we hold a hole before: they are not coming.
        if seg.flags.ack() && (other.has_held() || other.acked_hole(seg.ack, window)) {
            let mut sink = Deliver {
                protocol: &mut self.protocol,
                meta: &self.meta,
                dir: other_dir,
                cx: &mut cx.protocol,
            };
            other.flush(Some(seg.ack), cx.reassembly, &mut sink);
        }
        let mut seq = seg.seq;
        if seg.flags.syn() {
            this.syn(seg.seq);
            seq = seq.wrapping_add(1);
        }
        let bounds = Bounds {
            window,
            held_max: cx
                .limits
                .flow_budget_bytes
                .saturating_sub(other.held_bytes() + self.protocol.buffered()),
        };
        let payload = Payload {
            seq,
            len: seg.payload_len,
            copied: seg.payload,
            fin: seg.flags.fin(),
            ts_ns: seg.ts_ns,
        };
        let mut sink = Deliver {
            protocol: &mut self.protocol,
            meta: &self.meta,
            dir: seg.direction,
            cx: &mut cx.protocol,
        };
        let new = this.push(payload, bounds, cx.reassembly, &mut sink);
        match seg.direction {
            Direction::ToServer => cx.reassembly.first_seen_request_bytes += new,
            Direction::ToClient => cx.reassembly.first_seen_response_bytes += new,
        }
    }

    /// Held data older than `gap_timeout_ns` is given up on.
    pub fn expire_gaps(&mut self, now: u64, gap_timeout_ns: u64, cx: &mut Ctx<'_>) {
        for dir in [Direction::ToServer, Direction::ToClient] {
            let r = match dir {
                Direction::ToServer => &mut self.to_server,
                Direction::ToClient => &mut self.to_client,
            };
            if r.oldest_held_ns()
                .is_some_and(|t| now.saturating_sub(t) >= gap_timeout_ns)
            {
                let mut sink = Deliver {
                    protocol: &mut self.protocol,
                    meta: &self.meta,
                    dir,
                    cx: &mut cx.protocol,
                };
                r.flush(None, cx.reassembly, &mut sink);
            }
        }
    }

    /// Requests without a response `timeout_ns` after their first byte become `timeout`.
    pub fn expire_requests(&mut self, now: u64, timeout_ns: u64, cx: &mut Ctx<'_>) {
        self.protocol
            .expire(now, timeout_ns, &self.meta, &mut cx.protocol);
    }

    /// Gives back what an idle flow no longer needs (see `Protocol::release`).
    pub fn release(&mut self) {
        self.to_server.release();
        self.to_client.release();
        self.protocol.release();
    }

    /// Heap bytes this flow holds besides its table slot.
    pub fn heap_bytes(&self) -> usize {
        self.to_server.heap_bytes() + self.to_client.heap_bytes() + self.protocol.heap_bytes()
    }

    /// RST: held bytes are lost, every open request is `connection_reset`.
    fn reset(&mut self, ts: u64, cx: &mut Ctx<'_>) {
        self.to_server.discard(cx.reassembly);
        self.to_client.discard(cx.reassembly);
        self.protocol
            .close(ErrorType::ConnectionReset, ts, &self.meta, &mut cx.protocol);
        self.closed = true;
    }

    /// Ends the flow for the engine (finish, eviction): held data is forced through first.
    pub fn terminate(&mut self, error: ErrorType, cx: &mut Ctx<'_>) {
        for dir in [Direction::ToServer, Direction::ToClient] {
            let r = match dir {
                Direction::ToServer => &mut self.to_server,
                Direction::ToClient => &mut self.to_client,
            };
            let mut sink = Deliver {
                protocol: &mut self.protocol,
                meta: &self.meta,
                dir,
                cx: &mut cx.protocol,
            };
            r.close(cx.reassembly, &mut sink);
        }
        self.protocol
            .close(error, self.last_seen_ns, &self.meta, &mut cx.protocol);
        self.closed = true;
    }
}
