//! HTTP/1.x over one TCP connection: framing per direction ([`framer`]), heads ([`head`]),
//! chunked bodies ([`chunked`]) and FIFO pairing of requests with responses (here and in
//! `pairing`).
//!
//! It reads the reassembled [`Piece`]s of both directions, knows nothing of flows or segments,
//! and counts what it sees in its own [`HttpStats`].

pub mod chunked;
pub mod framer;
mod gaps;
pub mod head;
mod pairing;
mod spare;
pub mod startline;
pub mod stats;

use std::collections::VecDeque;

use crate::identity::IdentityConfig;
use crate::recent::RecentFields;
use crate::spares::Spares;
use crate::stream::Piece;
use crate::transaction::ConnMeta;
use crate::{Direction, ErrorType, Records, Transaction};
use framer::Framer;
pub use head::HeadLimits;
use pairing::{ReqSide, RespSide};
pub use spare::{MAX_SPARE_CONNS, SpareConns};
pub use stats::{HttpStats, ParseErrorReason};

/// What HTTP/1.x needs besides the bytes: its settings, the fields every record of the
/// connection shares, and where finished transactions go.
pub struct Ctx<'a> {
    pub limits: &'a HeadLimits,
    pub identity: &'a IdentityConfig,
    pub meta: &'a ConnMeta,
    pub out: &'a mut Records,
    /// Finished records for new requests to start from.
    pub spares: &'a mut Spares,
}

/// A request waiting for its response. `emitted` entries are tombstones of requests already
/// recorded (timeout) whose late response must still be paired away.
#[derive(Debug)]
struct Pending {
    id: u64,
    tx: Box<Transaction>,
    emitted: bool,
    head_method: bool,
    connect: bool,
    /// Where the client's ACK stood in the response stream when the request was read
    /// (offset modulo 2^32): its response cannot start before it.
    ack: Option<u32>,
    /// The client had received more of the response stream than for the request before (or
    /// this is the connection's first request): it waited for the previous response, so its
    /// own response starts where its ACK stood.
    sequential: bool,
    /// Garbage where a request line should be: a record only if the server answers it with
    /// an HTTP status line (a malformed request); dropped otherwise.
    tentative: bool,
    /// An HTTP/0.9 simple request: its response has no head and ends with the connection.
    http09: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Http,
    /// Upgraded or tunnelled: bytes are no longer HTTP/1.x.
    Tunnel,
    NotHttp,
}

/// The response being read.
#[derive(Debug, Default)]
struct Response {
    status: Option<u16>,
    interim: bool,
    /// It answers a request lost in a gap of the request stream, not the oldest pending one.
    answers_lost: bool,
    /// Responses were lost whole before it and the ACKs cannot tell which request it answers
    /// (pipelined requests): it pairs first in, first out, marked `capture_gap`.
    uncertain: bool,
}

/// State both directions share.
#[derive(Debug)]
struct Shared {
    /// The flow's start (SYN) was seen, so its first bytes are a message start.
    fresh: bool,
    request_bytes_seen: bool,
    requests: u64,
    responses: u64,
    queue: VecDeque<Pending>,
    next_id: u64,
    /// Request whose body is being read.
    cur_req: Option<u64>,
    resp: Response,
    /// Requests may have been lost whole in a gap of the request stream: responses that cannot
    /// answer a pending request answer one of those (`capture_gap`). Holds the id of the first
    /// request read after the gap; a response paired with it or a later one ends the doubt.
    request_gap: Option<u64>,
    /// Bytes of the response stream were lost since the last response head: responses may
    /// have been lost whole in it.
    response_gap: bool,
    /// The flow's first request bytes were not a request line: until the server answers with
    /// a status line, the flow may be another protocol.
    suspect: bool,
    /// The latest client ACK, as an offset into the response stream (modulo 2^32).
    client_ack: Option<u32>,
    /// The ACK the previous request was read with.
    last_request_ack: Option<u32>,
    /// Where the last bytes lost in the response stream ended (offset): a request sent before
    /// it and never answered may have had its response there.
    response_lost_until: Option<u64>,
    mode: Mode,
    recent: RecentFields,
}

/// HTTP state of one connection.
#[derive(Debug)]
pub struct HttpConn {
    req: Framer,
    resp: Framer,
    s: Shared,
}

impl HttpConn {
    /// A connection whose first bytes are a message start when `fresh` (its SYN was seen).
    pub fn new(fresh: bool, limits: &HeadLimits) -> HttpConn {
        HttpConn {
            req: Framer::new(true, limits.max_head_bytes),
            resp: Framer::new(false, limits.max_head_bytes),
            s: Shared {
                fresh,
                request_bytes_seen: false,
                requests: 0,
                responses: 0,
                queue: VecDeque::new(),
                next_id: 0,
                cur_req: None,
                resp: Response::default(),
                request_gap: None,
                response_gap: false,
                suspect: false,
                client_ack: None,
                last_request_ack: None,
                response_lost_until: None,
                mode: Mode::Http,
                recent: RecentFields::default(),
            },
        }
    }

    /// Makes a finished connection's state (given back through [`SpareConns::keep`]) a new
    /// connection's, as [`HttpConn::new`] would, keeping the request queue's room and the
    /// field memos.
    fn renew(&mut self, fresh: bool, limits: &HeadLimits) {
        let queue = std::mem::take(&mut self.s.queue);
        let recent = std::mem::take(&mut self.s.recent);
        *self = HttpConn::new(fresh, limits);
        self.s.queue = queue;
        self.s.recent = recent;
    }

    /// False once the flow was found not to speak HTTP/1.x.
    pub fn is_http(&self) -> bool {
        self.s.mode != Mode::NotHttp
    }

    /// Bytes buffered by both framers.
    pub fn buffered(&self) -> usize {
        self.req.buffered() + self.resp.buffered()
    }

    /// An idle connection gives back what a burst left allocated: the request queue's
    /// capacity beyond one request (32 B a slot; each pending record is a box of its own), the
    /// framers' buffers and the last request fields it kept.
    ///
    /// Room for one request is kept: every connection that sent a request has it, and freeing
    /// it from thousands of idle connections at once left holes between their live state that
    /// the allocator could not give back (measured when a slot held the whole record, 408 B:
    /// 10,000 idle flows held 7 MiB more heap when it was freed, `cargo xtask bench --parts
    /// memory`).
    pub fn release(&mut self) {
        if self.s.queue.is_empty() && self.s.queue.capacity() > 1 {
            self.s.queue = VecDeque::new();
        }
        self.s.recent = RecentFields::default();
        self.req.release();
        self.resp.release();
    }

    /// Heap bytes this connection holds, itself included (it lives boxed in its flow).
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of::<HttpConn>()
            + self.s.queue.capacity() * std::mem::size_of::<Pending>()
            + self.s.queue.len() * std::mem::size_of::<Transaction>()
            + self.req.heap_bytes()
            + self.resp.heap_bytes()
    }

    /// The next piece of `dir` comes from a segment that acknowledged the other direction's
    /// stream up to `offset` (bytes from its start, modulo 2^32).
    pub fn peer_ack(&mut self, dir: Direction, offset: u32) {
        if dir == Direction::ToServer {
            self.s.client_ack = Some(offset);
        }
    }

    /// Requests not yet recorded.
    pub fn pending(&self) -> usize {
        self.s.queue.iter().filter(|p| !p.emitted).count()
    }

    pub fn feed(
        &mut self,
        dir: Direction,
        piece: Piece<'_>,
        ts: u64,
        cx: &mut Ctx<'_>,
        stats: &mut HttpStats,
    ) {
        match dir {
            Direction::ToServer => {
                let mut h = ReqSide { s: &mut self.s, cx };
                self.req.feed(piece, ts, &mut h, stats);
            }
            Direction::ToClient => {
                let mut h = RespSide { s: &mut self.s, cx };
                self.resp.feed(piece, ts, &mut h, stats);
                if let Piece::Missing { lost: true, .. } = piece {
                    self.s.response_gap = true;
                    self.s.response_lost_until = Some(self.resp.pos());
                }
            }
        }
        if self.s.mode != Mode::Http {
            self.req.stop();
            self.resp.stop();
        }
    }

    /// Requests without a response head `timeout_ns` after their first byte become `timeout`
    /// records (kept as tombstones so a late response still pairs with them).
    pub fn expire(&mut self, now: u64, timeout_ns: u64, cx: &mut Ctx<'_>, stats: &mut HttpStats) {
        let responding = self.resp.in_message();
        for (i, p) in self.s.queue.iter_mut().enumerate() {
            if p.emitted
                || p.tentative
                || (i == 0 && responding)
                || now.saturating_sub(p.tx.start_ns) < timeout_ns
            {
                continue;
            }
            p.emitted = true;
            let mut tx = std::mem::take(&mut p.tx);
            tx.error.get_or_insert(ErrorType::Timeout);
            pairing::record(tx, cx, stats);
        }
    }

    /// Ends the connection: a response in progress and every pending request are recorded
    /// with `error` (a close-delimited response in progress completes normally unless
    /// `error` is a reset).
    pub fn close(&mut self, error: ErrorType, ts: u64, cx: &mut Ctx<'_>, stats: &mut HttpStats) {
        if self.resp.in_open_ended_body() && error != ErrorType::ConnectionReset {
            let meta = *self.resp.meta();
            let mut h = RespSide { s: &mut self.s, cx };
            h.pair(&meta, meta.last_ts.max(meta.start_ts), None, stats);
        } else if self.resp.in_message() {
            let meta = *self.resp.meta();
            let mut h = RespSide { s: &mut self.s, cx };
            h.pair(&meta, ts, Some(error), stats);
        }
        if std::mem::take(&mut self.s.suspect) {
            // Never answered with a status line: not shown to be HTTP.
            stats.non_http_flows += 1;
        }
        while let Some(p) = self.s.queue.pop_front() {
            if !p.emitted && !p.tentative {
                let mut tx = p.tx;
                let error = match error {
                    ErrorType::ConnectionClosed => self.s.unanswered(p.ack),
                    other => other,
                };
                tx.error.get_or_insert(error);
                pairing::record(tx, cx, stats);
            }
        }
        self.req.stop();
        self.resp.stop();
    }
}

#[cfg(test)]
mod tests;
