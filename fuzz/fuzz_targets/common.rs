//! Shared by the fuzz targets: a segment builder and budget checks.
#![allow(dead_code)] // each target uses a different part

use agent_core::engine::{Engine, EngineConfig, HeadLimits};
use agent_core::{Direction, Records, Segment, TcpFlags, Transaction};
use std::net::SocketAddr;

/// Small limits so eviction, window and budget paths are reached quickly.
pub fn small_config() -> EngineConfig {
    EngineConfig {
        flow_budget_bytes: 8 * 1024,
        total_budget_bytes: 24 * 1024,
        max_flows: 4,
        head: HeadLimits {
            max_headers: 16,
            max_head_bytes: 2 * 1024,
        },
        reorder_window_bytes: 4 * 1024,
        ..EngineConfig::default()
    }
}

/// Budgets hold after every call (partial heads may add up to two heads per flow beyond the
/// per-flow out-of-order budget; the total budget is enforced by eviction).
pub fn check(engine: &Engine, out: &[Box<Transaction>], emitted_before: usize) {
    let cfg = engine.config();
    let st = engine.stats();
    assert!(
        st.flows.buffered_bytes <= cfg.total_budget_bytes as u64,
        "total budget: {st:?}"
    );
    assert!(
        st.flows.tracked <= cfg.max_flows as u64,
        "max flows: {st:?}"
    );
    assert_eq!(
        st.transactions() as usize,
        out.len() + emitted_before,
        "every record counted"
    );
}

/// Feeds `stream` in `dir` as segments whose sizes come from `sizes` (cycled).
pub struct Feeder {
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub seq: [u32; 2],
    pub ts: u64,
}

impl Feeder {
    pub fn new(port: u16) -> Feeder {
        Feeder {
            client: SocketAddr::from(([192, 0, 2, 1], port)),
            server: SocketAddr::from(([192, 0, 2, 2], 8080)),
            seq: [0xffff_ff00, 0x7fff_fff0],
            ts: 1_795_585_921_000_000_000,
        }
    }

    pub fn open(&mut self, engine: &mut Engine, out: &mut Records) {
        let c = self.seq[0];
        self.raw(engine, out, Direction::ToServer, c, TcpFlags::SYN, &[], 0);
        let s = self.seq[1];
        self.raw(
            engine,
            out,
            Direction::ToClient,
            s,
            TcpFlags::SYN | TcpFlags::ACK,
            &[],
            0,
        );
        self.seq = [c.wrapping_add(1), s.wrapping_add(1)];
    }

    #[allow(clippy::too_many_arguments)]
    pub fn raw(
        &mut self,
        engine: &mut Engine,
        out: &mut Records,
        dir: Direction,
        seq: u32,
        flags: u8,
        data: &[u8],
        len: u32,
    ) {
        self.ts += 1_000;
        let ack = match dir {
            Direction::ToServer => self.seq[1],
            Direction::ToClient => self.seq[0],
        };
        let seg = Segment {
            ts_ns: self.ts,
            client: self.client,
            server: self.server,
            direction: dir,
            seq,
            ack,
            flags: TcpFlags(flags),
            payload_len: len,
            payload: data,
            ifindex: 1,
        };
        engine.ingest(&seg, out);
        engine.advance(self.ts, out);
    }

    /// In-order data in `dir`, split at the given sizes.
    pub fn stream(
        &mut self,
        engine: &mut Engine,
        out: &mut Records,
        dir: Direction,
        data: &[u8],
        sizes: &[u8],
    ) {
        let i = usize::from(dir == Direction::ToClient);
        let mut pos = 0;
        let mut k = 0;
        while pos < data.len() {
            let n = sizes
                .get(k % sizes.len().max(1))
                .map_or(data.len(), |s| usize::from(*s).max(1));
            k += 1;
            let chunk = &data[pos..(pos + n).min(data.len())];
            let seq = self.seq[i];
            self.raw(
                engine,
                out,
                dir,
                seq,
                TcpFlags::ACK | TcpFlags::PSH,
                chunk,
                chunk.len() as u32,
            );
            self.seq[i] = seq.wrapping_add(chunk.len() as u32);
            pos += chunk.len();
        }
    }
}
