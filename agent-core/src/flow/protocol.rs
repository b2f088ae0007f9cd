//! The seam between a flow and the application protocol it carries.
//!
//! A [`Flow`](super::Flow) owns two reassemblers and one [`Protocol`]. The protocol starts
//! [`Protocol::Undecided`]; the first piece of either direction picks one ([`detect`]), and the
//! protocol may give up later (HTTP/1.x finding that the bytes are not HTTP turns the flow
//! [`Protocol::Opaque`], which frees its parser state). Every protocol reads the same
//! reassembled [`Piece`]s, keeps its state per flow and its counters in its own stats type,
//! and pushes finished [`Transaction`]s; the fields every record of the connection shares come
//! from the flow's [`ConnMeta`].
//!
//! Adding a protocol (HTTP/2 is next) takes:
//! - a variant holding its per-flow state, and a branch in [`detect`] for its first bytes (the
//!   HTTP/2 client preface starts `PRI * HTTP/2.0`);
//! - a field in [`Ctx`] for its counters (the engine keeps them next to `HttpStats` and sums
//!   them for export) and for its limits;
//! - its arms in `feed`, `expire`, `close` and `buffered` below.
//!
//! An in-band switch (HTTP/1.1 `Upgrade: h2c` answered by `101`) is a transition out of
//! `Http1` made in `feed`, once the HTTP/1.x connection reports the upgrade.

use crate::http::{self, HeadLimits, HttpConn, HttpStats};
use crate::identity::IdentityConfig;
use crate::stream::Piece;
use crate::transaction::ConnMeta;
use crate::{Direction, ErrorType, Transaction};

/// The application protocol state of one flow.
#[derive(Debug)]
pub enum Protocol {
    /// No piece read yet. `fresh`: the flow's SYN was seen, so its first bytes start a message.
    Undecided { fresh: bool },
    /// Boxed: a flow slot stays small while it is undecided or opaque, and growing the flow
    /// table's slab does not move parser state.
    Http1(Box<HttpConn>),
    /// Not a protocol apitap reads: its bytes are still reassembled and counted, nothing more.
    Opaque,
}

/// What the protocols need besides the bytes: settings, counters and the output.
pub struct Ctx<'a> {
    pub head: &'a HeadLimits,
    pub identity: &'a IdentityConfig,
    pub http: &'a mut HttpStats,
    pub out: &'a mut Vec<Transaction>,
}

/// Picks the protocol of a flow from its first piece (either direction). Today every flow goes
/// to HTTP/1.x, whose own checks of the first bytes (TLS, a server speaking first, no request
/// line on a fresh flow) may still find it opaque.
fn detect(_dir: Direction, _first: &Piece<'_>, fresh: bool, head: &HeadLimits) -> Protocol {
    Protocol::Http1(Box::new(HttpConn::new(fresh, head)))
}

impl Protocol {
    /// A flow's protocol before any byte.
    pub fn new(fresh: bool) -> Protocol {
        Protocol::Undecided { fresh }
    }

    /// False once the flow was found not to speak a protocol apitap reads (it is then left out
    /// of the open connections).
    pub fn is_opaque(&self) -> bool {
        matches!(self, Protocol::Opaque)
    }

    /// Bytes the protocol buffers (partial heads, resync windows).
    pub fn buffered(&self) -> usize {
        match self {
            Protocol::Http1(conn) => conn.buffered(),
            Protocol::Undecided { .. } | Protocol::Opaque => 0,
        }
    }

    /// One reassembled piece of `dir`, carried by a segment of time `ts`.
    pub fn feed(
        &mut self,
        dir: Direction,
        piece: Piece<'_>,
        ts: u64,
        meta: &ConnMeta,
        cx: &mut Ctx<'_>,
    ) {
        if let Protocol::Undecided { fresh } = *self {
            *self = detect(dir, &piece, fresh, cx.head);
        }
        match self {
            Protocol::Http1(conn) => {
                let mut hx = http::Ctx {
                    limits: cx.head,
                    identity: cx.identity,
                    meta,
                    out: cx.out,
                };
                conn.feed(dir, piece, ts, &mut hx, cx.http);
                if !conn.is_http() {
                    // Not HTTP: nothing is pending (it is found before any request is queued).
                    *self = Protocol::Opaque;
                }
            }
            Protocol::Undecided { .. } | Protocol::Opaque => {}
        }
    }

    /// Requests waiting longer than `timeout_ns` for a response become `timeout` records.
    pub fn expire(&mut self, now: u64, timeout_ns: u64, meta: &ConnMeta, cx: &mut Ctx<'_>) {
        if let Protocol::Http1(conn) = self {
            let mut hx = http::Ctx {
                limits: cx.head,
                identity: cx.identity,
                meta,
                out: cx.out,
            };
            conn.expire(now, timeout_ns, &mut hx, cx.http);
        }
    }

    /// The connection ended: whatever is pending is recorded with `error`.
    pub fn close(&mut self, error: ErrorType, ts: u64, meta: &ConnMeta, cx: &mut Ctx<'_>) {
        if let Protocol::Http1(conn) = self {
            let mut hx = http::Ctx {
                limits: cx.head,
                identity: cx.identity,
                meta,
                out: cx.out,
            };
            conn.close(error, ts, &mut hx, cx.http);
        }
    }
}
