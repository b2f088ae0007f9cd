//! The HTTP/2 twin of [`super::traffic`]: the same exchanges (a GET of `/api/users/N?fields=name`
//! answered by a 17-byte JSON body) as nghttp2-based clients and nginx put them on the wire.
//! Header blocks are encoded the way nghttp2 encodes them: method and scheme from the static
//! table, the path as a Huffman literal, the repeated fields (authority, user-agent, accept;
//! server, content-type) from the dynamic table after a connection's first exchange.

use super::{Owned, PATHS};
use crate::http2::build;
use crate::http2::hpack::encode;
use crate::{Direction, TcpFlags};

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
    tcp: super::Conn,
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
            tcp: super::Conn::new(i),
            next_stream: 1,
        })
        .collect();
    let data = TcpFlags::ACK | TcpFlags::PSH;
    for k in &mut conns {
        ts += 1_000;
        k.tcp.send(
            &mut segs,
            ts,
            Direction::ToServer,
            TcpFlags::SYN,
            Vec::new(),
        );
        k.tcp.send(
            &mut segs,
            ts,
            Direction::ToClient,
            TcpFlags::SYN | TcpFlags::ACK,
            Vec::new(),
        );
        let mut hello = Vec::new();
        build::preface(&mut hello);
        build::settings(&mut hello, &[(3, 100), (4, 65_535)]);
        k.tcp.send(&mut segs, ts, Direction::ToServer, data, hello);
        let mut hello = Vec::new();
        build::settings(&mut hello, &[(3, 128)]);
        build::settings_ack(&mut hello);
        k.tcp.send(&mut segs, ts, Direction::ToClient, data, hello);
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
            k.tcp.send(&mut segs, ts, Direction::ToServer, data, req);
            ts += 80_000;
            k.tcp.send(&mut segs, ts, Direction::ToClient, data, resp);
        }
    }
    for k in &mut conns {
        ts += 1_000;
        let fin = TcpFlags::FIN | TcpFlags::ACK;
        k.tcp
            .send(&mut segs, ts, Direction::ToServer, fin, Vec::new());
        k.tcp
            .send(&mut segs, ts, Direction::ToClient, fin, Vec::new());
    }
    segs
}
