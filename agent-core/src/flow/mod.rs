//! Flow table and per-direction TCP reassembly.

pub mod reassembly;
pub mod stats;
pub mod table;

use crate::engine::EngineStats;
use crate::http::{Ctx, HttpConn};
use crate::{Direction, ErrorType, Segment};
use reassembly::{Piece, PieceSink, Reassembler};

/// One tracked connection.
#[derive(Debug)]
pub struct Flow {
    to_server: Reassembler,
    to_client: Reassembler,
    pub http: HttpConn,
    pub last_seen_ns: u64,
    /// Bytes buffered at the last accounting (for the engine-wide gauge).
    pub buffered: usize,
    closed: bool,
}

/// Routes reassembled pieces of one direction into the HTTP layer.
struct Into<'a, 'b> {
    http: &'a mut HttpConn,
    dir: Direction,
    cx: &'a mut Ctx<'b>,
}

impl PieceSink for Into<'_, '_> {
    fn piece(&mut self, piece: Piece<'_>, ts_ns: u64, stats: &mut EngineStats) {
        self.http.feed(self.dir, piece, ts_ns, self.cx, stats);
    }
}

impl Flow {
    pub fn new(http: HttpConn, now: u64) -> Flow {
        Flow {
            to_server: Reassembler::default(),
            to_client: Reassembler::default(),
            http,
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
        self.to_server.held_bytes() + self.to_client.held_bytes() + self.http.buffered()
    }

    pub fn ingest(&mut self, seg: &Segment<'_>, cx: &mut Ctx<'_>, stats: &mut EngineStats) {
        self.last_seen_ns = self.last_seen_ns.max(seg.ts_ns);
        let cfg = cx.cfg;
        if seg.flags.rst() {
            self.reset(seg.ts_ns, cx, stats);
            return;
        }
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
        if seg.flags.ack()
            && (other.has_held() || other.acked_hole(seg.ack, cfg.reorder_window_bytes))
        {
            let mut sink = Into {
                http: &mut self.http,
                dir: other_dir,
                cx,
            };
            other.flush(Some(seg.ack), stats, &mut sink);
        }
        let mut seq = seg.seq;
        if seg.flags.syn() {
            this.syn(seg.seq);
            seq = seq.wrapping_add(1);
        }
        let limit = cfg
            .flow_budget_bytes
            .saturating_sub(other.held_bytes() + self.http.buffered());
        let mut sink = Into {
            http: &mut self.http,
            dir: seg.direction,
            cx,
        };
        this.push(
            seq,
            seg.payload_len,
            seg.payload,
            seg.flags.fin(),
            seg.ts_ns,
            cfg.reorder_window_bytes,
            limit,
            stats,
            &mut sink,
        );
    }

    /// Held data older than `gap_timeout_ns` is given up on.
    pub fn expire_gaps(
        &mut self,
        now: u64,
        gap_timeout_ns: u64,
        cx: &mut Ctx<'_>,
        stats: &mut EngineStats,
    ) {
        for dir in [Direction::ToServer, Direction::ToClient] {
            let r = match dir {
                Direction::ToServer => &mut self.to_server,
                Direction::ToClient => &mut self.to_client,
            };
            if r.oldest_held_ns()
                .is_some_and(|t| now.saturating_sub(t) >= gap_timeout_ns)
            {
                let mut sink = Into {
                    http: &mut self.http,
                    dir,
                    cx,
                };
                r.flush(None, stats, &mut sink);
            }
        }
    }

    /// RST: held bytes are lost, every open request is `connection_reset`.
    fn reset(&mut self, ts: u64, cx: &mut Ctx<'_>, stats: &mut EngineStats) {
        for r in [&mut self.to_server, &mut self.to_client] {
            let held = r.held_bytes() as u64;
            if held > 0 {
                stats.gaps += 1;
                stats.gap_bytes += held;
            }
            *r = Reassembler::default();
        }
        self.http.close(ErrorType::ConnectionReset, ts, cx, stats);
        self.closed = true;
    }

    /// Ends the flow for the engine (finish, eviction): held data is forced through first.
    pub fn terminate(&mut self, error: ErrorType, cx: &mut Ctx<'_>, stats: &mut EngineStats) {
        let mut sink = Into {
            http: &mut self.http,
            dir: Direction::ToServer,
            cx,
        };
        self.to_server.close(stats, &mut sink);
        let mut sink = Into {
            http: &mut self.http,
            dir: Direction::ToClient,
            cx,
        };
        self.to_client.close(stats, &mut sink);
        self.http.close(error, self.last_seen_ns, cx, stats);
        self.closed = true;
    }
}
