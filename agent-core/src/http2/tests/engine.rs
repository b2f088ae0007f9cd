//! HTTP/2 through the whole engine: detection at the flow seam, reassembly, records, stats.

use super::*;
use crate::engine::{Engine, EngineConfig};
use crate::{ErrorType, Records, Segment, TcpFlags};
use std::net::SocketAddr;

/// Feeds both directions of one connection as TCP segments of at most `mss` bytes.
struct Wire {
    client: SocketAddr,
    server: SocketAddr,
    seq: [u32; 2],
    ts: u64,
    out: Records,
}

impl Wire {
    fn new(port: u16) -> Wire {
        Wire {
            client: SocketAddr::from(([192, 0, 2, 1], port)),
            server: SocketAddr::from(([192, 0, 2, 2], 50051)),
            seq: [1000, 900_000],
            ts: T0,
            out: Vec::new(),
        }
    }

    fn seg(&mut self, e: &mut Engine, dir: Direction, flags: u8, data: &[u8], len: u32) {
        self.ts += 1_000;
        let i = usize::from(dir == S);
        let seg = Segment {
            ts_ns: self.ts,
            client: self.client,
            server: self.server,
            direction: dir,
            seq: self.seq[i],
            ack: self.seq[1 - i],
            flags: TcpFlags(flags),
            payload_len: len,
            payload: data,
            ifindex: 0,
        };
        e.ingest(&seg, &mut self.out);
        e.advance(self.ts, &mut self.out);
        let syn_fin = u32::from(flags & (TcpFlags::SYN | TcpFlags::FIN) != 0);
        self.seq[i] = self.seq[i].wrapping_add(len + syn_fin);
    }

    fn open(&mut self, e: &mut Engine) {
        self.seg(e, C, TcpFlags::SYN, &[], 0);
        self.seg(e, S, TcpFlags::SYN | TcpFlags::ACK, &[], 0);
    }

    fn send(&mut self, e: &mut Engine, dir: Direction, data: &[u8], mss: usize) {
        for chunk in data.chunks(mss) {
            self.seg(
                e,
                dir,
                TcpFlags::ACK | TcpFlags::PSH,
                chunk,
                chunk.len() as u32,
            );
        }
    }

    fn fin(&mut self, e: &mut Engine, dir: Direction) {
        self.seg(e, dir, TcpFlags::FIN | TcpFlags::ACK, &[], 0);
    }
}

#[test]
fn an_h2c_connection_from_its_syn_is_read_as_http2() {
    let sess = build::session(30, 8);
    let mut e = Engine::new(EngineConfig::default());
    let mut w = Wire::new(41000);
    w.open(&mut e);
    w.send(&mut e, C, &sess.client, 1400);
    w.send(&mut e, S, &sess.server, 1400);
    w.fin(&mut e, C);
    w.fin(&mut e, S);
    let got: Vec<_> = w
        .out
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
    let st = e.stats();
    assert_eq!(
        (st.h2.connections, st.h2.streams, st.transactions()),
        (1, 30, 30)
    );
    assert_eq!(st.http.transactions, 0);
    assert_eq!(st.flows.tracked, 0);
    assert!(
        w.out
            .iter()
            .all(|t| &*t.service == "port-50051" && t.version == Some("2"))
    );
}

#[test]
fn a_server_that_speaks_first_is_recognised_by_its_settings() {
    let sess = build::session(3, 3);
    let mut e = Engine::new(EngineConfig::default());
    let mut w = Wire::new(41001);
    w.open(&mut e);
    let mut settings = Vec::new();
    build::settings(&mut settings, &[(3, 128)]);
    w.send(&mut e, S, &settings, 1400);
    w.send(&mut e, C, &sess.client, 1400);
    // The session's server bytes start with the same SETTINGS frame: skip it.
    w.send(&mut e, S, &sess.server[settings.len()..], 1400);
    assert_eq!(w.out.len(), 3);
    assert_eq!(e.stats().h2.connections, 1);
}

#[test]
fn a_connection_joined_mid_stream_is_found_by_frame_shape() {
    let sess = build::session(40, 4);
    let mut e = Engine::new(EngineConfig::default());
    let mut w = Wire::new(41002);
    // No SYN: the agent starts after the preface, the SETTINGS and the first batch of
    // requests, at a segment that starts in the middle of a frame.
    let client_cut = sess.client.len() / 2 + 3;
    let server_cut = sess.server.len() / 2 + 5;
    w.seq[0] += client_cut as u32;
    w.seq[1] += server_cut as u32;
    w.send(&mut e, C, &sess.client[client_cut..], 1400);
    w.send(&mut e, S, &sess.server[server_cut..], 1400);
    w.fin(&mut e, C);
    w.fin(&mut e, S);
    let st = e.stats();
    assert_eq!(st.h2.joined_connections, 1);
    // Every path reported is the one its stream really used (body size and, when known,
    // status match that stream's; sizes differ from stream to stream).
    for t in &w.out {
        if let Some(p) = &t.path {
            let size = t.response_body_size.unwrap_or(0);
            let found = sess.expected.iter().any(|(ep, status, sz)| {
                **ep == **p && *sz == size && t.status.is_none_or(|s| s == *status)
            });
            assert!(found, "{t:?}");
        }
        assert_eq!(t.error, None);
    }
    let known = w.out.iter().filter(|t| t.path.is_some()).count();
    assert!(known >= 10, "{known} of {}", w.out.len());
    let unknown_paths = w.out.iter().filter(|t| t.path.is_none()).count() as u64;
    assert!(st.h2.unknown_fields >= unknown_paths);
}

#[test]
fn http1_flows_are_unchanged_next_to_http2() {
    let mut e = Engine::new(EngineConfig::default());
    let mut w = Wire::new(41003);
    w.open(&mut e);
    w.send(&mut e, C, b"GET /h1 HTTP/1.1\r\nHost: x\r\n\r\n", 1400);
    w.send(
        &mut e,
        S,
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        1400,
    );
    assert_eq!(w.out.len(), 1);
    assert_eq!(w.out[0].version, Some("1.1"));
    assert_eq!(e.stats().h2.connections, 0);
}

#[test]
fn a_reset_connection_records_open_streams_as_reset() {
    let mut e = Engine::new(EngineConfig::default());
    let mut w = Wire::new(41004);
    w.open(&mut e);
    let mut c = Vec::new();
    build::preface(&mut c);
    build::settings(&mut c, &[]);
    c.extend(get(1, "/a"));
    c.extend(get(3, "/b"));
    w.send(&mut e, C, &c, 1400);
    w.seg(&mut e, S, TcpFlags::RST, &[], 0);
    let errs: Vec<_> = w.out.iter().map(|t| t.error).collect();
    assert_eq!(errs, vec![Some(ErrorType::ConnectionReset); 2]);
}
