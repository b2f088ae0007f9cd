//! The HTTP/2 twin of [`super::traffic`]: the same exchanges (a GET of `/api/users/N?fields=name`
//! answered by a 17-byte JSON body) as nghttp2-based clients and nginx put them on the wire.
//! Header blocks are encoded the way nghttp2 encodes them: method and scheme from the static
//! table, the path as a Huffman literal, the repeated fields (authority, user-agent, accept;
//! server, content-type) from the dynamic table after a connection's first exchange.

use super::{Owned, PATHS};
use crate::http2::build;
use crate::http2::hpack::encode;
use crate::{Direction, TcpFlags};
use std::net::SocketAddr;

const T0: u64 = 1_795_585_921_000_000_000;

fn request_block(i: usize, first: bool) -> Vec<u8> {
    let mut b = Vec::new();
    encode::indexed(&mut b, 2); // :method GET
    encode::indexed(&mut b, 6); // :scheme http
    let path = format!("/api/users/{}?fields=name", i % PATHS);
    encode::literal_plain(&mut b, Ok(4), path.as_bytes(), true);
    if first {
        encode::literal_indexed(&mut b, Ok(1), b"api.example", true);
        encode::literal_indexed(&mut b, Ok(58), b"h2load nghttp2/1.52.0", true);
        encode::literal_indexed(&mut b, Ok(19), b"*/*", true);
    } else {
        // Newest first: accept (62), user-agent (63), :authority (64).
        encode::indexed(&mut b, 64);
        encode::indexed(&mut b, 63);
        encode::indexed(&mut b, 62);
    }
    b
}

fn response_block(first: bool) -> Vec<u8> {
    let mut b = Vec::new();
    encode::indexed(&mut b, 8); // :status 200
    if first {
        encode::literal_indexed(&mut b, Ok(54), b"nginx", true);
        encode::literal_indexed(&mut b, Ok(31), b"application/json", true);
    } else {
        encode::indexed(&mut b, 63);
        encode::indexed(&mut b, 62);
    }
    encode::literal_plain(&mut b, Ok(28), b"17", true);
    b
}

const BODY: &[u8] = b"{\"name\":\"alice\"}\n";

struct Conn {
    client: SocketAddr,
    c: u32,
    s: u32,
    next_stream: u32,
}

/// `connections` HTTP/2 connections (handshake, preface and SETTINGS both ways), each carrying
/// `per_conn` exchanges, `batch` streams per request segment and per response segment
/// (1: one stream at a time, like HTTP/1 keep-alive; 10: h2load -m 10), interleaved
/// round-robin, then closed by FIN both ways.
pub fn traffic(connections: usize, per_conn: usize, batch: usize) -> Vec<Owned> {
    let batch = batch.max(1);
    let mut segs = Vec::new();
    let mut ts = T0;
    let mut conns: Vec<Conn> = (0..connections)
        .map(|i| Conn {
            client: SocketAddr::from(([192, 0, 2, 1], 10_000 + (i % 50_000) as u16)),
            c: 1_000 + i as u32 * 7_919,
            s: 5_000_000 + i as u32 * 104_729,
            next_stream: 1,
        })
        .collect();
    let data = TcpFlags::ACK | TcpFlags::PSH;
    let push = |segs: &mut Vec<Owned>, k: &mut Conn, dir, flags, bytes: Vec<u8>, ts| {
        let (seq, ack) = match dir {
            Direction::ToServer => (k.c, k.s),
            Direction::ToClient => (k.s, k.c),
        };
        let advance = bytes.len() as u32 + u32::from(flags & (TcpFlags::SYN | TcpFlags::FIN) != 0);
        match dir {
            Direction::ToServer => k.c = k.c.wrapping_add(advance),
            Direction::ToClient => k.s = k.s.wrapping_add(advance),
        }
        segs.push(Owned {
            ts,
            client: k.client,
            dir,
            seq,
            ack,
            flags,
            data: bytes,
        });
    };
    for k in &mut conns {
        ts += 1_000;
        push(
            &mut segs,
            k,
            Direction::ToServer,
            TcpFlags::SYN,
            Vec::new(),
            ts,
        );
        push(
            &mut segs,
            k,
            Direction::ToClient,
            TcpFlags::SYN | TcpFlags::ACK,
            Vec::new(),
            ts,
        );
        let mut hello = Vec::new();
        build::preface(&mut hello);
        build::settings(&mut hello, &[(3, 100), (4, 65_535)]);
        push(&mut segs, k, Direction::ToServer, data, hello, ts);
        let mut hello = Vec::new();
        build::settings(&mut hello, &[(3, 128)]);
        build::settings_ack(&mut hello);
        push(&mut segs, k, Direction::ToClient, data, hello, ts);
    }
    let mut n = 0;
    for round in 0..per_conn.div_ceil(batch) {
        for k in &mut conns {
            let streams = batch.min(per_conn - round * batch);
            let mut req = Vec::new();
            let mut resp = Vec::new();
            for j in 0..streams {
                let id = k.next_stream;
                k.next_stream += 2;
                let first = round == 0 && j == 0;
                build::headers(&mut req, id, &request_block(n, first), true);
                n += 1;
                build::headers(&mut resp, id, &response_block(first), false);
                build::data(&mut resp, id, BODY, true);
            }
            ts += 20_000;
            push(&mut segs, k, Direction::ToServer, data, req, ts);
            ts += 80_000;
            push(&mut segs, k, Direction::ToClient, data, resp, ts);
        }
    }
    for k in &mut conns {
        ts += 1_000;
        let fin = TcpFlags::FIN | TcpFlags::ACK;
        push(&mut segs, k, Direction::ToServer, fin, Vec::new(), ts);
        push(&mut segs, k, Direction::ToClient, fin, Vec::new(), ts);
    }
    segs
}
