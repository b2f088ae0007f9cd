//! Synthetic loopback traffic for the benches, the per-transaction driver (`examples/per_tx`)
//! and the allocation test: what the engine sees when wrk or ab drives nginx (one request
//! segment and one response segment per exchange). Not used by the analysis itself; it lives
//! in the library so that every harness shares one generator.

pub mod h2;

use crate::{Direction, Segment, TcpFlags};
use std::net::SocketAddr;

const T0: u64 = 1_795_585_921_000_000_000;

/// One captured segment, owned.
pub struct Owned {
    pub ts: u64,
    pub client: SocketAddr,
    pub dir: Direction,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub data: Vec<u8>,
}

pub const SERVER: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2)),
    8080,
);

impl Owned {
    pub fn segment(&self) -> Segment<'_> {
        Segment {
            ts_ns: self.ts,
            client: self.client,
            server: SERVER,
            direction: self.dir,
            seq: self.seq,
            ack: self.ack,
            flags: TcpFlags(self.flags),
            payload_len: self.data.len() as u32,
            payload: &self.data,
            ifindex: 0,
        }
    }
}

/// Distinct paths of the default traffic (`/api/users/0` … `/api/users/999`).
pub const PATHS: usize = 1000;

/// A request as wrk sends it, with a path that varies like an id over `paths` values.
pub fn request(i: usize, paths: usize) -> Vec<u8> {
    format!(
        "GET /api/users/{}?fields=name HTTP/1.1\r\nHost: api.example\r\nUser-Agent: wrk/4\r\nAccept: */*\r\n\r\n",
        i % paths.max(1)
    )
    .into_bytes()
}

pub const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{\"name\":\"alice\"}\n";

/// One connection's state while generating.
struct Conn {
    client: SocketAddr,
    c: u32,
    s: u32,
}

/// `connections` connections, each opened with a handshake, carrying `per_conn` keep-alive
/// exchanges, interleaved round-robin, then closed by FIN both ways. `per_conn = 1` is ab
/// without -k; one connection with many exchanges is wrk's steady state.
pub fn traffic(connections: usize, per_conn: usize) -> Vec<Owned> {
    traffic_over(connections, per_conn, PATHS)
}

/// [`traffic`] over `paths` distinct paths.
pub fn traffic_over(connections: usize, per_conn: usize, paths: usize) -> Vec<Owned> {
    let mut segs = Vec::with_capacity(connections * (2 * per_conn + 5));
    let mut ts = T0;
    let mut conns: Vec<Conn> = (0..connections)
        .map(|i| Conn {
            client: SocketAddr::from(([192, 0, 2, 1], 10_000 + (i % 50_000) as u16)),
            c: 1_000 + i as u32 * 7_919,
            s: 5_000_000 + i as u32 * 104_729,
        })
        .collect();
    for k in &mut conns {
        ts += 1_000;
        segs.push(Owned {
            ts,
            client: k.client,
            dir: Direction::ToServer,
            seq: k.c,
            ack: 0,
            flags: TcpFlags::SYN,
            data: Vec::new(),
        });
        segs.push(Owned {
            ts,
            client: k.client,
            dir: Direction::ToClient,
            seq: k.s,
            ack: k.c + 1,
            flags: TcpFlags::SYN | TcpFlags::ACK,
            data: Vec::new(),
        });
        k.c += 1;
        k.s += 1;
    }
    let flags = TcpFlags::ACK | TcpFlags::PSH;
    let mut n = 0;
    for _ in 0..per_conn {
        for k in &mut conns {
            let req = request(n, paths);
            n += 1;
            ts += 20_000;
            let len = req.len() as u32;
            segs.push(Owned {
                ts,
                client: k.client,
                dir: Direction::ToServer,
                seq: k.c,
                ack: k.s,
                flags,
                data: req,
            });
            k.c = k.c.wrapping_add(len);
            ts += 80_000;
            segs.push(Owned {
                ts,
                client: k.client,
                dir: Direction::ToClient,
                seq: k.s,
                ack: k.c,
                flags,
                data: RESPONSE.to_vec(),
            });
            k.s = k.s.wrapping_add(RESPONSE.len() as u32);
        }
    }
    for k in &conns {
        ts += 1_000;
        let fin = TcpFlags::FIN | TcpFlags::ACK;
        segs.push(Owned {
            ts,
            client: k.client,
            dir: Direction::ToServer,
            seq: k.c,
            ack: k.s,
            flags: fin,
            data: Vec::new(),
        });
        segs.push(Owned {
            ts,
            client: k.client,
            dir: Direction::ToClient,
            seq: k.s,
            ack: k.c + 1,
            flags: fin,
            data: Vec::new(),
        });
    }
    segs
}
