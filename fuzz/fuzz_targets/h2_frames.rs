//! HTTP/2 frames and HPACK from arbitrary bytes: header blocks straight into the decoder,
//! and frame streams (raw, or built from fuzzed frame fields) into a connection, fresh or
//! joined mid-stream. Nothing may panic; the HPACK table, the bytes a connection holds and the
//! streams it tracks stay within their bounds after every call; every record is counted.
#![no_main]

use agent_core::http2::frame::Kind;
use agent_core::http2::hpack::Decoder;
use agent_core::http2::reader::SCAN_LIMIT;
use agent_core::http2::{H2Config, H2Conn, H2Ctx, H2Stats, build};
use agent_core::identity::IdentityConfig;
use agent_core::spares::Spares;
use agent_core::stream::Piece;
use agent_core::{ConnMeta, Direction, Records};
use libfuzzer_sys::fuzz_target;

const CFG: H2Config = H2Config {
    max_streams: 8,
    max_header_block_bytes: 2048,
    max_table_bytes: 1024,
};

fn meta() -> ConnMeta {
    ConnMeta::new(
        "192.0.2.1:40000".parse().expect("addr"),
        "192.0.2.2:8080".parse().expect("addr"),
        "port-8080".into(),
        "192.0.2.1".into(),
    )
}

struct Run {
    conn: H2Conn,
    identity: IdentityConfig,
    meta: ConnMeta,
    out: Records,
    spares: Spares,
    stats: H2Stats,
    ts: u64,
}

impl Run {
    fn new(fresh: bool) -> Run {
        let mut stats = H2Stats::default();
        let conn = H2Conn::new(fresh, &CFG, &mut stats);
        Run {
            conn,
            identity: IdentityConfig::default(),
            meta: meta(),
            out: Vec::new(),
            spares: Spares::default(),
            stats,
            ts: 1_000_000,
        }
    }

    fn feed(&mut self, dir: Direction, piece: Piece<'_>) {
        self.ts += 1_000;
        let mut cx = H2Ctx {
            cfg: &CFG,
            identity: &self.identity,
            meta: &self.meta,
            out: &mut self.out,
            spares: &mut self.spares,
        };
        self.conn
            .feed(dir, piece, self.ts, &mut cx, &mut self.stats);
        if self.ts % 7 == 0 {
            self.conn.expire(self.ts, 50_000, &mut cx, &mut self.stats);
        }
        self.check();
    }

    fn check(&self) {
        // Per direction: resync buffer, one frame's kept payload and header, one header
        // block; per decoder: the table and two scratch buffers of at most one literal.
        let bound = 2 * (SCAN_LIMIT + CFG.max_header_block_bytes + 9)
            + 2 * CFG.max_header_block_bytes
            + 2 * (CFG.max_table_bytes + 2 * 1024);
        assert!(
            self.conn.buffered() <= bound,
            "held {} > {bound}",
            self.conn.buffered()
        );
        assert!(self.conn.tracked_streams() <= CFG.max_streams);
        assert_eq!(
            self.stats.streams as usize,
            self.out.len(),
            "every record counted"
        );
    }

    fn end(mut self) {
        let mut cx = H2Ctx {
            cfg: &CFG,
            identity: &self.identity,
            meta: &self.meta,
            out: &mut self.out,
            spares: &mut self.spares,
        };
        self.conn.close(
            agent_core::ErrorType::ConnectionClosed,
            self.ts,
            &mut cx,
            &mut self.stats,
        );
        assert_eq!(self.conn.tracked_streams(), 0);
        self.check();
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => {
            // HPACK alone: blocks separated at 0xff 0xfe.
            let mut d = Decoder::new(usize::from(mode) * 8, mode & 0x80 != 0);
            for block in rest.split(|b| *b == 0xfe) {
                let _ = d.decode(block, 512, &mut |_| {});
                assert!(d.table().size() <= d.table().max_size());
                assert!(d.table().max_size() <= usize::from(mode) * 8);
            }
        }
        1 | 3 => {
            // Raw bytes: client then server direction, in pieces cut at 0x00 0x00 runs.
            let fresh = mode % 4 == 1;
            let mut run = Run::new(fresh);
            if fresh {
                let mut p = Vec::new();
                build::preface(&mut p);
                run.feed(Direction::ToServer, Piece::Data(&p));
            }
            for (i, part) in rest.split(|b| *b == 0xfd).enumerate() {
                let dir = if i % 2 == 0 {
                    Direction::ToServer
                } else {
                    Direction::ToClient
                };
                if part.first() == Some(&0xfc) {
                    let len = part.get(1).copied().unwrap_or(0).into();
                    let lost = part.get(2).is_some_and(|b| b & 1 == 1);
                    run.feed(dir, Piece::Missing { len, lost });
                } else {
                    run.feed(dir, Piece::Data(part));
                }
            }
            run.end();
        }
        _ => {
            // Frames built from fuzzed fields: kind, flags, stream, length, payload.
            let mut run = Run::new(mode & 0x40 != 0);
            let mut c = Vec::new();
            build::preface(&mut c);
            run.feed(Direction::ToServer, Piece::Data(&c));
            let mut at = 0;
            while at + 4 <= rest.len() {
                let (kind, fl, sid, len) = (rest[at], rest[at + 1], rest[at + 2], rest[at + 3]);
                at += 4;
                let n = usize::from(len).min(rest.len() - at);
                let payload = &rest[at..at + n];
                at += n;
                let mut f = Vec::new();
                build::frame(
                    &mut f,
                    Kind::from_byte(kind % 11),
                    fl,
                    u32::from(sid >> 1),
                    payload,
                );
                let dir = if sid & 1 == 1 {
                    Direction::ToServer
                } else {
                    Direction::ToClient
                };
                run.feed(dir, Piece::Data(&f));
            }
            run.end();
        }
    }
});
