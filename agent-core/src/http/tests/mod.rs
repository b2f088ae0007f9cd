//! Engine behaviour, driven by a small TCP conversation builder.

mod capture;
mod framing;
mod identity;
mod lifecycle;
mod malformed;
mod reorder;
mod servers;

use crate::engine::{Engine, EngineConfig, ParseErrorReason};
use crate::server::PortNames;
use crate::{Direction, ErrorType, Records, Segment, TcpFlags, Transaction};
use rstest::rstest;
use std::net::SocketAddr;

const MS: u64 = 1_000_000;
const T0: u64 = 1_795_585_921_000_000_000;

/// An owned segment.
#[derive(Clone, Debug)]
pub struct Seg {
    pub ts: u64,
    pub dir: Direction,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub data: Vec<u8>,
    pub len: u32,
}

/// Builds one client/server conversation with real sequence numbers.
pub struct Conv {
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub cseq: u32,
    pub sseq: u32,
    pub ts: u64,
    pub segs: Vec<Seg>,
}

impl Conv {
    pub fn new(client_port: u16, isn: u32) -> Conv {
        Conv {
            client: SocketAddr::from(([192, 0, 2, 1], client_port)),
            server: SocketAddr::from(([192, 0, 2, 2], 8080)),
            cseq: isn,
            sseq: isn.wrapping_add(0x1000_0000),
            ts: T0,
            segs: Vec::new(),
        }
    }

    /// Three-way handshake.
    pub fn open(mut self) -> Conv {
        let (c, s) = (self.cseq, self.sseq);
        self.raw(Direction::ToServer, c, 0, TcpFlags::SYN, &[], 0);
        self.raw(
            Direction::ToClient,
            s,
            c.wrapping_add(1),
            TcpFlags::SYN | TcpFlags::ACK,
            &[],
            0,
        );
        self.cseq = c.wrapping_add(1);
        self.sseq = s.wrapping_add(1);
        self
    }

    pub fn raw(&mut self, dir: Direction, seq: u32, ack: u32, flags: u8, data: &[u8], len: u32) {
        self.ts += MS;
        self.segs.push(Seg {
            ts: self.ts,
            dir,
            seq,
            ack,
            flags,
            data: data.to_vec(),
            len,
        });
    }

    /// One data segment in `dir`, in order.
    pub fn send(&mut self, dir: Direction, data: &[u8]) -> &mut Conv {
        self.send_copied(dir, data, data.len())
    }

    /// A data segment of which only `copied` bytes were captured.
    pub fn send_copied(&mut self, dir: Direction, data: &[u8], copied: usize) -> &mut Conv {
        let (seq, ack) = self.seq_ack(dir);
        self.raw(
            dir,
            seq,
            ack,
            TcpFlags::ACK | TcpFlags::PSH,
            &data[..copied],
            data.len() as u32,
        );
        self.bump(dir, data.len() as u32);
        self
    }

    pub fn req(&mut self, data: &[u8]) -> &mut Conv {
        self.send(Direction::ToServer, data)
    }

    pub fn resp(&mut self, data: &[u8]) -> &mut Conv {
        self.send(Direction::ToClient, data)
    }

    pub fn fin(&mut self, dir: Direction) -> &mut Conv {
        let (seq, ack) = self.seq_ack(dir);
        self.raw(dir, seq, ack, TcpFlags::FIN | TcpFlags::ACK, &[], 0);
        self.bump(dir, 1);
        self
    }

    pub fn rst(&mut self, dir: Direction) -> &mut Conv {
        let (seq, ack) = self.seq_ack(dir);
        self.raw(dir, seq, ack, TcpFlags::RST, &[], 0);
        self
    }

    fn seq_ack(&self, dir: Direction) -> (u32, u32) {
        match dir {
            Direction::ToServer => (self.cseq, self.sseq),
            Direction::ToClient => (self.sseq, self.cseq),
        }
    }

    fn bump(&mut self, dir: Direction, n: u32) {
        match dir {
            Direction::ToServer => self.cseq = self.cseq.wrapping_add(n),
            Direction::ToClient => self.sseq = self.sseq.wrapping_add(n),
        }
    }

    pub fn segment<'a>(&self, s: &'a Seg) -> Segment<'a> {
        Segment {
            ts_ns: s.ts,
            client: self.client,
            server: self.server,
            direction: s.dir,
            seq: s.seq,
            ack: s.ack,
            flags: TcpFlags(s.flags),
            payload_len: s.len,
            payload: &s.data,
            ifindex: 0,
        }
    }

    /// Feeds the segments (in the given order) and returns the records.
    pub fn run_order(&self, engine: &mut Engine, order: &[Seg]) -> Records {
        let mut out = Vec::new();
        for s in order {
            engine.ingest(&self.segment(s), &mut out);
            engine.advance(s.ts, &mut out);
        }
        out
    }

    pub fn run(&self, engine: &mut Engine) -> Records {
        self.run_order(engine, &self.segs)
    }
}

fn engine() -> Engine {
    Engine::new(EngineConfig::default())
}

const GET: &[u8] =
    b"GET /api/users/42?fields=name HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/8\r\n\r\n";
const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

fn one(out: &[Box<Transaction>]) -> &Transaction {
    assert_eq!(out.len(), 1, "{out:#?}");
    &out[0]
}
