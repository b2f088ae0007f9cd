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
//! HTTP/2 ([`Protocol::Http2`]) is picked by its first bytes: the client preface
//! (`PRI * HTTP/2.0…`), or the server's SETTINGS frame when the server speaks first, on a flow
//! seen from its SYN. A flow joined after its start is HTTP/2 when its first bytes are a chain
//! of well-formed frames ([`crate::http2::reader::find_frames`]) and HTTP/1.x when they start a
//! request or status line; a piece that shows neither (the middle of a body) leaves the flow
//! undecided for up to [`MAX_UNDECIDED_PIECES`] pieces, then HTTP/1.x takes it as before.
//!
//! Adding a protocol takes:
//! - a variant holding its per-flow state, and a branch in [`detect`] for its first bytes;
//! - a field in [`Ctx`] for its counters (the engine keeps them next to `HttpStats` and sums
//!   them for export) and for its limits;
//! - its arms in `feed`, `expire`, `close` and `buffered` below.
//!
//! Not done: an in-band switch (HTTP/1.1 `Upgrade: h2c` answered by `101`) would be a
//! transition out of `Http1` made in `feed`, once the HTTP/1.x connection reports the upgrade;
//! today such a flow stops being parsed at the `101` (prior-knowledge h2c, as gRPC, nginx and
//! h2load use it, is read).

use crate::http::startline::{plausible_request_start, plausible_status_start};
use crate::http::{self, HeadLimits, HttpConn, HttpStats, SpareConns};
use crate::http2::{self, H2Config, H2Conn, H2Stats, frame, reader};
use crate::identity::IdentityConfig;
use crate::spares::Spares;
use crate::stream::Piece;
use crate::transaction::ConnMeta;
use crate::{Direction, ErrorType, Records};

/// The application protocol state of one flow.
#[derive(Debug)]
pub enum Protocol {
    /// No piece read yet (or, on a joined flow, none that showed the protocol; `tries` counts
    /// them). `fresh`: the flow's SYN was seen, so its first bytes start a message.
    Undecided {
        fresh: bool,
        tries: u8,
    },
    /// Boxed: a flow slot stays small while it is undecided or opaque, and growing the flow
    /// table's slab does not move parser state.
    Http1(Box<HttpConn>),
    Http2(Box<H2Conn>),
    /// Not a protocol apitap reads: its bytes are still reassembled and counted, nothing more.
    Opaque,
}

/// What the protocols need besides the bytes: settings, counters and the output.
pub struct Ctx<'a> {
    pub head: &'a HeadLimits,
    pub h2: &'a H2Config,
    pub identity: &'a IdentityConfig,
    pub http: &'a mut HttpStats,
    pub h2_stats: &'a mut H2Stats,
    pub out: &'a mut Records,
    /// Finished records for new requests to start from.
    pub spares: &'a mut Spares,
    /// States of finished HTTP/1.x connections for new ones to start from.
    pub conns: &'a mut SpareConns,
}

/// Pieces of a joined flow that may show neither protocol before HTTP/1.x takes it.
pub const MAX_UNDECIDED_PIECES: u8 = 8;

/// What the first bytes of a flow say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Detected {
    Http1,
    Http2,
    /// A joined flow's piece that shows neither (wait for the next one).
    Unsure,
}

/// Picks the protocol of a flow from a piece of either direction (see the module doc).
/// HTTP/1.x's own checks of the first bytes (TLS, a server speaking first, no request line on
/// a fresh flow) may still find the flow opaque.
fn detect(dir: Direction, piece: &Piece<'_>, fresh: bool, tries: u8) -> Detected {
    let Piece::Data(data) = piece else {
        return if fresh || tries >= MAX_UNDECIDED_PIECES {
            Detected::Http1
        } else {
            Detected::Unsure
        };
    };
    let from_client = dir == Direction::ToServer;
    if fresh {
        // "PRI " is no HTTP/1.x method in use (RFC 9113 reserves it); a first piece shorter
        // than that is left to HTTP/1.x.
        let n = data.len().min(frame::PREFACE.len());
        let h2 = if from_client {
            n >= 4 && data[..n] == frame::PREFACE[..n]
        } else {
            // The server's connection preface is a SETTINGS frame.
            data.get(..frame::HEADER_LEN).is_some_and(|h| {
                let h = frame::Header::parse(h.try_into().expect("HEADER_LEN bytes"));
                h.kind == frame::Kind::Settings
                    && h.flags == 0
                    && h.plausible(frame::DEFAULT_MAX_FRAME, false)
            })
        };
        return if h2 { Detected::Http2 } else { Detected::Http1 };
    }
    let http1 = if from_client {
        plausible_request_start(data) && data.first().is_some_and(u8::is_ascii_uppercase)
    } else {
        data.len() >= 5 && plausible_status_start(data)
    };
    if http1 {
        Detected::Http1
    } else if reader::find_frames(data, from_client, true).is_ok() {
        Detected::Http2
    } else if tries >= MAX_UNDECIDED_PIECES {
        Detected::Http1
    } else {
        Detected::Unsure
    }
}

impl Protocol {
    /// A flow's protocol before any byte.
    pub fn new(fresh: bool) -> Protocol {
        Protocol::Undecided { fresh, tries: 0 }
    }

    /// False once the flow was found not to speak a protocol apitap reads (it is then left out
    /// of the open connections).
    pub fn is_opaque(&self) -> bool {
        matches!(self, Protocol::Opaque)
    }

    /// An idle flow gives back the capacity a burst left (HTTP/1.x: its request queue and
    /// head buffers).
    pub fn release(&mut self) {
        if let Protocol::Http1(conn) = self {
            conn.release();
        }
    }

    /// Heap bytes of the protocol state (estimated from capacities; HTTP/2 counts its state
    /// and what it buffers).
    pub fn heap_bytes(&self) -> usize {
        match self {
            Protocol::Http1(conn) => conn.heap_bytes(),
            Protocol::Http2(conn) => std::mem::size_of_val(&**conn) + conn.buffered(),
            Protocol::Undecided { .. } | Protocol::Opaque => 0,
        }
    }

    /// Bytes the protocol buffers (partial heads, resync windows).
    pub fn buffered(&self) -> usize {
        match self {
            Protocol::Http1(conn) => conn.buffered(),
            Protocol::Http2(conn) => conn.buffered(),
            Protocol::Undecided { .. } | Protocol::Opaque => 0,
        }
    }

    /// One reassembled piece of `dir`, carried by a segment of time `ts` that acknowledged the
    /// peer's stream up to `peer_ack` (an offset from its start, modulo 2^32: what the sender
    /// had received when it sent it; HTTP/1.x pairs responses across gaps with it).
    #[allow(clippy::too_many_arguments)]
    pub fn feed(
        &mut self,
        dir: Direction,
        piece: Piece<'_>,
        ts: u64,
        peer_ack: Option<u32>,
        meta: &ConnMeta,
        cx: &mut Ctx<'_>,
    ) {
        if let Protocol::Undecided { fresh, tries } = *self {
            *self = match detect(dir, &piece, fresh, tries) {
                Detected::Http1 => Protocol::Http1(cx.conns.take(fresh, cx.head)),
                Detected::Http2 => {
                    Protocol::Http2(Box::new(H2Conn::new(fresh, cx.h2, cx.h2_stats)))
                }
                Detected::Unsure => {
                    // Like HTTP/1.x's search for a start line, once per flow.
                    cx.http.resyncs += u64::from(tries == 0);
                    Protocol::Undecided {
                        fresh,
                        tries: tries + 1,
                    }
                }
            };
        }
        match self {
            Protocol::Http1(conn) => {
                let mut hx = http::Ctx {
                    limits: cx.head,
                    identity: cx.identity,
                    meta,
                    out: cx.out,
                    spares: cx.spares,
                };
                if let Some(offset) = peer_ack {
                    conn.peer_ack(dir, offset);
                }
                conn.feed(dir, piece, ts, &mut hx, cx.http);
                if !conn.is_http() {
                    // Not HTTP: nothing is pending (it is found before any request is queued).
                    *self = Protocol::Opaque;
                }
            }
            Protocol::Http2(conn) => {
                let mut hx = http2::H2Ctx {
                    cfg: cx.h2,
                    identity: cx.identity,
                    meta,
                    out: cx.out,
                    spares: cx.spares,
                };
                conn.feed(dir, piece, ts, &mut hx, cx.h2_stats);
            }
            Protocol::Undecided { .. } | Protocol::Opaque => {}
        }
    }

    fn h2_ctx<'c>(meta: &'c ConnMeta, cx: &'c mut Ctx<'_>) -> (http2::H2Ctx<'c>, &'c mut H2Stats) {
        (
            http2::H2Ctx {
                cfg: cx.h2,
                identity: cx.identity,
                meta,
                out: cx.out,
                spares: cx.spares,
            },
            cx.h2_stats,
        )
    }

    /// Requests waiting longer than `timeout_ns` for a response become `timeout` records.
    pub fn expire(&mut self, now: u64, timeout_ns: u64, meta: &ConnMeta, cx: &mut Ctx<'_>) {
        if let Protocol::Http2(conn) = self {
            let (mut hx, stats) = Self::h2_ctx(meta, cx);
            conn.expire(now, timeout_ns, &mut hx, stats);
        }
        if let Protocol::Http1(conn) = self {
            let mut hx = http::Ctx {
                limits: cx.head,
                identity: cx.identity,
                meta,
                out: cx.out,
                spares: cx.spares,
            };
            conn.expire(now, timeout_ns, &mut hx, cx.http);
        }
    }

    /// The connection ended: whatever is pending is recorded with `error`.
    pub fn close(&mut self, error: ErrorType, ts: u64, meta: &ConnMeta, cx: &mut Ctx<'_>) {
        if let Protocol::Http2(conn) = self {
            let (mut hx, stats) = Self::h2_ctx(meta, cx);
            conn.close(error, ts, &mut hx, stats);
        }
        if let Protocol::Http1(conn) = self {
            let mut hx = http::Ctx {
                limits: cx.head,
                identity: cx.identity,
                meta,
                out: cx.out,
                spares: cx.spares,
            };
            conn.close(error, ts, &mut hx, cx.http);
        }
    }
}
