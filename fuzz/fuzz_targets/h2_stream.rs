//! A real two-direction HTTP/2 session (GETs, POSTs, gRPC calls, interleaved responses) cut
//! into pieces, with pieces lost, left uncopied, corrupted or fed out of turn. Nothing may
//! panic and the bounds hold after every piece. When the fuzzer only re-cuts the bytes (client
//! side first, nothing lost or changed), the records must equal the session's streams exactly.
#![no_main]

use agent_core::http2::reader::SCAN_LIMIT;
use agent_core::http2::{H2Config, H2Conn, H2Ctx, H2Stats, build};
use agent_core::identity::IdentityConfig;
use agent_core::spares::Spares;
use agent_core::stream::Piece;
use agent_core::{ConnMeta, Direction, Records};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const CFG: H2Config = H2Config {
    max_streams: 32,
    max_header_block_bytes: 4096,
    max_table_bytes: 4096,
};

fn session() -> &'static build::Session {
    static S: OnceLock<build::Session> = OnceLock::new();
    S.get_or_init(|| build::session(24, 6))
}

fuzz_target!(|data: &[u8]| {
    let sess = session();
    let Some((&mode, ops)) = data.split_first() else {
        return;
    };
    let exact = mode & 1 == 0;
    let mut stats = H2Stats::default();
    let mut conn = H2Conn::new(mode & 2 == 0, &CFG, &mut stats);
    let identity = IdentityConfig::default();
    let meta = ConnMeta::new(
        "192.0.2.1:40000".parse().expect("addr"),
        "192.0.2.2:8080".parse().expect("addr"),
        "port-8080".into(),
        "192.0.2.1".into(),
    );
    let mut out: Records = Vec::new();
    let mut spares = Spares::default();
    let streams = [&sess.client[..], &sess.server[..]];
    let mut pos = [0usize; 2];
    let mut ts = 1_000_000u64;
    let mut scratch = Vec::new();
    let mut ops = ops.chunks_exact(2);
    loop {
        // In exact mode the client side is fed whole before the server side.
        let (side, size, how) = match ops.next() {
            Some(&[a, b]) => {
                let side = if exact {
                    usize::from(pos[0] >= streams[0].len())
                } else {
                    usize::from(a & 1)
                };
                (side, usize::from(b) + 1, if exact { 0 } else { a >> 5 })
            }
            _ => (usize::from(pos[0] >= streams[0].len()), usize::MAX, 0),
        };
        if pos[side] >= streams[side].len() {
            if pos[1 - side] >= streams[1 - side].len() {
                break;
            }
            continue;
        }
        let end = pos[side].saturating_add(size).min(streams[side].len());
        let bytes = &streams[side][pos[side]..end];
        pos[side] = end;
        let dir = if side == 0 {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        let len = bytes.len() as u32;
        let piece = match how {
            1 => Piece::Missing { len, lost: true },
            2 => Piece::Missing { len, lost: false },
            3 => {
                scratch.clear();
                scratch.extend_from_slice(bytes);
                let i = usize::from(size as u8) % scratch.len();
                scratch[i] ^= 0x5a;
                Piece::Data(&scratch)
            }
            _ => Piece::Data(bytes),
        };
        ts += 1_000;
        let mut cx = H2Ctx {
            cfg: &CFG,
            identity: &identity,
            meta: &meta,
            out: &mut out,
            spares: &mut spares,
        };
        conn.feed(dir, piece, ts, &mut cx, &mut stats);
        if how == 4 {
            conn.expire(ts, 3_000, &mut cx, &mut stats);
        }
        let bound = 2 * (SCAN_LIMIT + CFG.max_header_block_bytes + 9)
            + 2 * CFG.max_header_block_bytes
            + 2 * (CFG.max_table_bytes + 2 * 1024);
        assert!(conn.buffered() <= bound);
        assert!(conn.tracked_streams() <= CFG.max_streams);
        assert_eq!(stats.streams as usize, out.len());
    }
    let mut cx = H2Ctx {
        cfg: &CFG,
        identity: &identity,
        meta: &meta,
        out: &mut out,
        spares: &mut spares,
    };
    conn.close(
        agent_core::ErrorType::ConnectionClosed,
        ts,
        &mut cx,
        &mut stats,
    );
    assert_eq!(conn.tracked_streams(), 0);
    assert_eq!(stats.streams as usize, out.len());
    if exact && mode & 2 == 0 {
        let got: Vec<(String, u16, u64)> = out
            .iter()
            .map(|t| {
                (
                    t.path.as_deref().unwrap_or_default().to_string(),
                    t.status.unwrap_or(0),
                    t.response_body_size.unwrap_or(0),
                )
            })
            .collect();
        assert_eq!(got, sess.expected);
        assert!(out.iter().all(|t| t.error.is_none()));
    }
});
