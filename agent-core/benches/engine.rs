//! Engine throughput on a synthetic keep-alive stream of small GET exchanges (one connection,
//! one request segment and one response segment per exchange, as a loopback capture sees them).
//!
//! `cargo bench -p agent-core --bench engine`

use agent_core::engine::{Engine, EngineConfig};
use agent_core::{Direction, Segment, TcpFlags};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::net::SocketAddr;

const EXCHANGES: usize = 10_000;

struct Owned {
    ts: u64,
    dir: Direction,
    seq: u32,
    ack: u32,
    flags: u8,
    data: Vec<u8>,
}

fn stream(n: usize) -> Vec<Owned> {
    let mut segs = Vec::with_capacity(2 * n + 2);
    let (mut c, mut s) = (1_000u32, 5_000_000u32);
    let mut ts = 1_795_585_921_000_000_000u64;
    segs.push(Owned {
        ts,
        dir: Direction::ToServer,
        seq: c,
        ack: 0,
        flags: TcpFlags::SYN,
        data: Vec::new(),
    });
    segs.push(Owned {
        ts,
        dir: Direction::ToClient,
        seq: s,
        ack: c + 1,
        flags: TcpFlags::SYN | TcpFlags::ACK,
        data: Vec::new(),
    });
    c += 1;
    s += 1;
    for i in 0..n {
        let req = format!(
            "GET /api/users/{i}?fields=name HTTP/1.1\r\nHost: api.example\r\nUser-Agent: wrk/4\r\nAccept: */*\r\n\r\n"
        );
        let resp = "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{\"name\":\"alice\"}\n";
        ts += 20_000;
        let flags = TcpFlags::ACK | TcpFlags::PSH;
        segs.push(Owned {
            ts,
            dir: Direction::ToServer,
            seq: c,
            ack: s,
            flags,
            data: req.into_bytes(),
        });
        c = c.wrapping_add(segs.last().map_or(0, |o| o.data.len() as u32));
        ts += 80_000;
        segs.push(Owned {
            ts,
            dir: Direction::ToClient,
            seq: s,
            ack: c,
            flags,
            data: resp.as_bytes().to_vec(),
        });
        s = s.wrapping_add(resp.len() as u32);
    }
    segs
}

fn keep_alive(cr: &mut Criterion) {
    let segs = stream(EXCHANGES);
    let bytes: u64 = segs.iter().map(|o| o.data.len() as u64).sum();
    let client = SocketAddr::from(([192, 0, 2, 1], 40000));
    let server = SocketAddr::from(([192, 0, 2, 2], 8080));
    let mut group = cr.benchmark_group("engine");
    for (name, throughput) in [
        ("keep_alive_tx", Throughput::Elements(EXCHANGES as u64)),
        ("keep_alive_bytes", Throughput::Bytes(bytes)),
    ] {
        group.throughput(throughput);
        group.bench_function(name, |b| {
            let mut out = Vec::with_capacity(EXCHANGES);
            b.iter(|| {
                let mut engine = Engine::new(EngineConfig::default());
                out.clear();
                for o in &segs {
                    let seg = Segment {
                        ts_ns: o.ts,
                        client,
                        server,
                        direction: o.dir,
                        seq: o.seq,
                        ack: o.ack,
                        flags: TcpFlags(o.flags),
                        payload_len: o.data.len() as u32,
                        payload: &o.data,
                    };
                    engine.ingest(&seg, &mut out);
                    engine.advance(o.ts, &mut out);
                }
                assert_eq!(out.len(), EXCHANGES, "every exchange is recorded");
                black_box(&out);
            });
        });
    }
    group.finish();
}

criterion_group!(benches, keep_alive);
criterion_main!(benches);
