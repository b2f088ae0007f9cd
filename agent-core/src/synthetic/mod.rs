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

/// [`request`] from a client that names each request and carries trace context: an
/// `X-Request-ID` and a W3C `traceparent`, both different for every request.
pub fn traced_request(i: usize, paths: usize) -> Vec<u8> {
    format!(
        "GET /api/users/{}?fields=name HTTP/1.1\r\nHost: api.example\r\nUser-Agent: sdk/1\r\n\
         X-Request-ID: req-{i:08}\r\ntraceparent: 00-{:032x}-{:016x}-01\r\n\r\n",
        i % paths.max(1),
        i + 1,
        i + 1,
    )
    .into_bytes()
}

/// A signed JWT (HS256) whose `sub` is `user-1234`, as an identity provider issues them.
pub const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLTEyMzQiLCJpc3MiOiJodHRwczovL2F1dGguZXhhbXBsZSIsImF1ZCI6ImFwaSIsImlhdCI6MTc2NDU0NzIwMCwiZXhwIjoxNzY0NTUwODAwLCJzY29wZSI6InJlYWQgd3JpdGUifQ.AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

/// [`request`] from a client that authenticates with a bearer token ([`JWT`]).
pub fn bearer_request(i: usize, paths: usize) -> Vec<u8> {
    format!(
        "GET /api/users/{}?fields=name HTTP/1.1\r\nHost: api.example\r\nUser-Agent: sdk/1\r\n\
         Authorization: Bearer {JWT}\r\n\r\n",
        i % paths.max(1),
    )
    .into_bytes()
}

/// [`request`] from a client that authenticates with an API key (`X-API-Key`).
pub fn keyed_request(i: usize, paths: usize) -> Vec<u8> {
    format!(
        "GET /api/users/{}?fields=name HTTP/1.1\r\nHost: api.example\r\nUser-Agent: sdk/1\r\n\
         X-API-Key: sk_live_4eC39HqLyjWDarjtT1zdp7dc\r\n\r\n",
        i % paths.max(1),
    )
    .into_bytes()
}

/// [`request`] passed on by a proxy for one client (`X-Forwarded-For`), as an ingress
/// controller sends them to a pod; the connection comes from the proxy at 192.0.2.1.
pub fn forwarded_request(i: usize, paths: usize) -> Vec<u8> {
    format!(
        "GET /api/users/{}?fields=name HTTP/1.1\r\nHost: api.example\r\nUser-Agent: sdk/1\r\n\
         X-Forwarded-For: 203.0.113.9\r\n\r\n",
        i % paths.max(1),
    )
    .into_bytes()
}

pub const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{\"name\":\"alice\"}\n";

/// One connection's sequence numbers while generating.
struct Conn {
    client: SocketAddr,
    /// The client's next sequence number, then the server's.
    c: u32,
    s: u32,
}

impl Conn {
    /// The `i`-th connection of a run: its own client port and initial sequence numbers.
    fn new(i: usize) -> Conn {
        Conn {
            client: SocketAddr::from(([192, 0, 2, 1], 10_000 + (i % 50_000) as u16)),
            c: 1_000 + i as u32 * 7_919,
            s: 5_000_000 + i as u32 * 104_729,
        }
    }

    /// Pushes a segment sent in `dir` at the connection's sequence numbers, acknowledging
    /// everything the peer sent so far (0 without the ACK flag, as a SYN carries it), then
    /// advances the sender past `data` (a SYN or FIN counts one).
    fn send(&mut self, segs: &mut Vec<Owned>, ts: u64, dir: Direction, flags: u8, data: Vec<u8>) {
        let (seq, peer) = match dir {
            Direction::ToServer => (&mut self.c, self.s),
            Direction::ToClient => (&mut self.s, self.c),
        };
        let ack = if flags & TcpFlags::ACK != 0 { peer } else { 0 };
        let control = u32::from(flags & (TcpFlags::SYN | TcpFlags::FIN) != 0);
        let advance = data.len() as u32 + control;
        segs.push(Owned {
            ts,
            client: self.client,
            dir,
            seq: *seq,
            ack,
            flags,
            data,
        });
        *seq = seq.wrapping_add(advance);
    }
}

/// `connections` connections, each opened with a handshake, carrying `per_conn` keep-alive
/// exchanges, interleaved round-robin, then closed by FIN both ways. `per_conn = 1` is ab
/// without -k; one connection with many exchanges is wrk's steady state.
pub fn traffic(connections: usize, per_conn: usize) -> Vec<Owned> {
    traffic_over(connections, per_conn, PATHS)
}

/// [`traffic`] over `paths` distinct paths.
pub fn traffic_over(connections: usize, per_conn: usize, paths: usize) -> Vec<Owned> {
    traffic_of(connections, per_conn, paths, request)
}

/// [`traffic_over`] with requests made by `request` (from the exchange's number and `paths`).
pub fn traffic_of(
    connections: usize,
    per_conn: usize,
    paths: usize,
    request: fn(usize, usize) -> Vec<u8>,
) -> Vec<Owned> {
    let mut segs = Vec::with_capacity(connections * (2 * per_conn + 5));
    let mut run = Run {
        ts: T0,
        n: 0,
        paths,
        request,
    };
    run.connections(&mut segs, 0..connections, per_conn);
    segs
}

/// `connections` connections of one exchange each, `concurrent` at a time: each group opens,
/// exchanges and closes before the next opens, as clients that do not reuse connections
/// (`Connection: close`, ab without -k) keep a handful open at any moment.
pub fn churn(connections: usize, concurrent: usize, paths: usize) -> Vec<Owned> {
    let mut segs = Vec::with_capacity(connections * 7);
    let mut run = Run {
        ts: T0,
        n: 0,
        paths,
        request,
    };
    let concurrent = concurrent.max(1);
    for first in (0..connections).step_by(concurrent) {
        run.connections(&mut segs, first..(first + concurrent).min(connections), 1);
    }
    segs
}

/// The clock and request numbering of one generated capture.
struct Run {
    ts: u64,
    /// Exchanges generated so far.
    n: usize,
    paths: usize,
    request: fn(usize, usize) -> Vec<u8>,
}

impl Run {
    /// Connections `ids` (see [`Conn::new`]), each opened with a handshake, carrying
    /// `per_conn` keep-alive exchanges, interleaved round-robin, then closed by FIN both ways.
    fn connections(&mut self, segs: &mut Vec<Owned>, ids: std::ops::Range<usize>, per_conn: usize) {
        let mut conns: Vec<Conn> = ids.map(Conn::new).collect();
        for k in &mut conns {
            self.ts += 1_000;
            k.send(
                segs,
                self.ts,
                Direction::ToServer,
                TcpFlags::SYN,
                Vec::new(),
            );
            let syn_ack = TcpFlags::SYN | TcpFlags::ACK;
            k.send(segs, self.ts, Direction::ToClient, syn_ack, Vec::new());
        }
        let flags = TcpFlags::ACK | TcpFlags::PSH;
        for _ in 0..per_conn {
            for k in &mut conns {
                let req = (self.request)(self.n, self.paths);
                self.n += 1;
                self.ts += 20_000;
                k.send(segs, self.ts, Direction::ToServer, flags, req);
                self.ts += 80_000;
                k.send(segs, self.ts, Direction::ToClient, flags, RESPONSE.to_vec());
            }
        }
        for k in &mut conns {
            self.ts += 1_000;
            let fin = TcpFlags::FIN | TcpFlags::ACK;
            k.send(segs, self.ts, Direction::ToServer, fin, Vec::new());
            k.send(segs, self.ts, Direction::ToClient, fin, Vec::new());
        }
    }
}
