//! Arbitrary segment order, splits, drops, duplicates, partial copies, FIN and RST over a few
//! flows carrying valid HTTP: the engine must not panic, and memory (as its stats report it)
//! stays within the budgets.
#![no_main]

mod common;

use agent_core::engine::Engine;
use agent_core::{Direction, TcpFlags};
use libfuzzer_sys::fuzz_target;

const REQS: &[u8] = b"GET /a?token=x HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloPUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
const RESPS: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n0\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";

fuzz_target!(|data: &[u8]| {
    let mut engine = Engine::new(common::small_config());
    let mut out = Vec::new();
    let mut feeders: Vec<common::Feeder> = (0..6).map(|i| common::Feeder::new(41000 + i)).collect();
    let mut cleared = 0;
    let bases: Vec<[u32; 2]> = feeders.iter().map(|f| f.seq).collect();
    for op in data.chunks(5) {
        let [a, b, c, d, e] = match op {
            [a, b, c, d, e] => [*a, *b, *c, *d, *e],
            _ => break,
        };
        let fi = usize::from(a % 6);
        let f = &mut feeders[fi];
        let dir = if a & 0x80 == 0 {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        let (stream, base) = match dir {
            Direction::ToServer => (REQS, bases[fi][0].wrapping_add(1)),
            Direction::ToClient => (RESPS, bases[fi][1].wrapping_add(1)),
        };
        match a & 0x70 {
            0x00 => f.open(&mut engine, &mut out),
            0x10 if b == 0xff => {
                let seq = base.wrapping_add(u32::from(c));
                f.raw(&mut engine, &mut out, dir, seq, TcpFlags::RST, &[], 0);
            }
            0x20 if b == 0xff => {
                let seq = base.wrapping_add(stream.len() as u32);
                f.raw(
                    &mut engine,
                    &mut out,
                    dir,
                    seq,
                    TcpFlags::FIN | TcpFlags::ACK,
                    &[],
                    0,
                );
            }
            _ => {
                // A slice of the stream: offset, length, copied prefix; sometimes far ahead.
                let off = usize::from(b) % stream.len();
                let len = (usize::from(c) % 64 + 1).min(stream.len() - off);
                let copied = if d & 0x80 != 0 {
                    usize::from(d & 0x3f).min(len)
                } else {
                    len
                };
                let jump = if e == 0xff { 1u32 << 20 } else { 0 };
                let seq = base.wrapping_add(off as u32).wrapping_add(jump);
                let flags = TcpFlags::ACK | if e & 1 == 1 { TcpFlags::PSH } else { 0 };
                let payload = &stream[off..off + copied];
                f.raw(&mut engine, &mut out, dir, seq, flags, payload, len as u32);
            }
        }
        common::check(&engine, &out, cleared);
        if out.len() > 4096 {
            cleared += out.len();
            out.clear();
        }
    }
    engine.advance(u64::MAX / 2, &mut out);
    engine.finish(&mut out);
    common::check(&engine, &out, cleared);
    assert_eq!(engine.stats().flows.tracked, 0);
    assert_eq!(engine.stats().flows.buffered_bytes, 0);
});
