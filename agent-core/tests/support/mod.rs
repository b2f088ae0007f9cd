//! Shared by the capture tests: where the fixtures are, and replay of capture bytes through
//! the decoder and the engine.
#![allow(dead_code)] // each test binary uses a different part

pub mod nginx;

use std::fs;
use std::path::{Path, PathBuf};

use agent_core::Transaction;
use agent_core::engine::{Engine, EngineConfig};
use agent_core::pcap::synth::Capture;
use agent_core::pcap::{self, CaptureReader, DecodeStats, Decoder};

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

/// Generated fixtures (mutated and re-encapsulated captures).
pub fn wire_dir() -> PathBuf {
    fixtures_dir().join("wire")
}

/// The real captures (tests/fixtures/*.pcap and *.pcapng), sorted.
pub fn captures() -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = fs::read_dir(fixtures_dir())
        .expect("tests/fixtures exists")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("pcap" | "pcapng")
            )
        })
        .collect();
    all.sort();
    assert!(
        all.len() >= 12,
        "the fixtures of make-fixtures.sh are missing"
    );
    all
}

pub fn stem(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .expect("fixture name")
        .to_string()
}

pub fn fixture_capture(path: &Path) -> Capture {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Capture::read(&bytes[..]).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Replays capture bytes with the default engine; panics on a capture error.
pub fn replay_bytes(bytes: &[u8]) -> (Vec<Transaction>, DecodeStats) {
    replay_with(bytes, EngineConfig::default())
}

pub fn replay_with(bytes: &[u8], cfg: EngineConfig) -> (Vec<Transaction>, DecodeStats) {
    let mut reader = CaptureReader::new(bytes).expect("capture header");
    let mut decoder = Decoder::new(&[]);
    let mut engine = Engine::new(cfg);
    let mut out = Vec::new();
    let err = pcap::replay(&mut reader, &mut decoder, &mut engine, |t| {
        out.push(t.clone());
        Ok::<(), ()>(())
    })
    .expect("collecting cannot fail");
    assert!(err.is_none(), "capture error: {err:?}");
    (out, *decoder.stats())
}

/// (source, destination, seq, ack, payload length, flags) of a TCP packet.
pub type TcpFacts = (
    std::net::SocketAddr,
    std::net::SocketAddr,
    u32,
    u32,
    u32,
    u8,
);

/// The TCP facts of every packet of a capture (None for non-TCP).
pub fn tcp_facts(c: &Capture) -> Vec<Option<TcpFacts>> {
    use agent_core::pcap::ip::{self, Transport};
    use agent_core::pcap::link::{self, Network};
    c.packets
        .iter()
        .map(|p| {
            let t = match link::network(c.linktype, &p.data) {
                Network::Ipv4(b) => ip::ipv4(b),
                Network::Ipv6(b) => ip::ipv6(b),
                _ => return None,
            };
            match t {
                Transport::Tcp(t) => Some((t.src, t.dst, t.seq, t.ack, t.payload_len, t.flags)),
                _ => None,
            }
        })
        .collect()
}

/// Payload segments whose bytes the peer acknowledged earlier in the file: what a mirror
/// port's reordering does, and what must not be taken as proof of loss.
pub fn acks_ahead_of_data(c: &Capture) -> usize {
    let facts = tcp_facts(c);
    let mut count = 0;
    for (i, f) in facts.iter().enumerate() {
        let Some((src, dst, seq, _, len, _)) = *f else {
            continue;
        };
        if len == 0 {
            continue;
        }
        let acked_before = facts[..i]
            .iter()
            .flatten()
            .any(|&(s, d, _, ack, _, flags)| {
                s == dst && d == src && flags & 0x10 != 0 && (ack.wrapping_sub(seq) as i32) > 0
            });
        if acked_before {
            count += 1;
        }
    }
    count
}

/// One direction of a connection: (source, destination).
pub type Way = (std::net::SocketAddr, std::net::SocketAddr);

/// Each direction's stream start (the sequence number after the SYN) and bytes (uncopied
/// bytes as zeros), rebuilt from a capture with every segment present.
pub fn streams(c: &Capture) -> std::collections::HashMap<Way, (u32, Vec<u8>)> {
    use agent_core::pcap::ip::{self, Transport};
    use agent_core::pcap::link::{self, Network};
    let mut out: std::collections::HashMap<Way, (u32, Vec<u8>)> = Default::default();
    for p in &c.packets {
        let t = match link::network(c.linktype, &p.data) {
            Network::Ipv4(b) => ip::ipv4(b),
            Network::Ipv6(b) => ip::ipv6(b),
            _ => continue,
        };
        let Transport::Tcp(t) = t else { continue };
        if t.flags & 0x02 != 0 {
            out.entry((t.src, t.dst))
                .or_insert((t.seq.wrapping_add(1), Vec::new()));
            continue;
        }
        let Some((start, bytes)) = out.get_mut(&(t.src, t.dst)) else {
            continue;
        };
        let at = t.seq.wrapping_sub(*start) as usize;
        let end = at + t.payload_len as usize;
        if bytes.len() < end {
            bytes.resize(end, 0);
        }
        bytes[at..at + t.payload.len()].copy_from_slice(t.payload);
    }
    out
}

/// Where each transaction's request and response lie in their streams (byte ranges from the
/// stream start), in the order of `txs`. Requests follow each other in their connection's
/// stream by `request_wire_bytes`; responses by `response_wire_bytes`, plus any interim 1xx
/// response before them (part of the exchange, not counted in the record).
pub fn extents(c: &Capture, txs: &[Transaction]) -> Vec<Extent> {
    let streams = streams(c);
    let facts = tcp_facts(c);
    let mut order: Vec<usize> = (0..txs.len()).collect();
    order.sort_by_key(|&i| (txs[i].client, txs[i].start_ns));
    let mut out = vec![
        Extent {
            request: 0..0,
            response: 0..0,
            request_head: 0..0,
            response_head: 0..0,
            ack: None
        };
        txs.len()
    ];
    let mut cursor: std::collections::HashMap<Way, usize> = Default::default();
    for i in order {
        let t = &txs[i];
        let (cl, sv) = (t.client.expect("client"), t.server.expect("server"));
        let rq = cursor.entry((cl, sv)).or_default();
        let req = *rq..*rq + t.request_wire_bytes as usize;
        *rq = req.end;
        let empty = (0, Vec::new());
        let server = &streams.get(&(sv, cl)).unwrap_or(&empty).1;
        let rs = cursor.entry((sv, cl)).or_default();
        let resp_start = *rs;
        while server
            .get(*rs..)
            .is_some_and(|b| b.starts_with(b"HTTP/1.1 1"))
        {
            let head_end = server[*rs..]
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .expect("interim head ends");
            *rs += head_end + 4;
        }
        let resp = resp_start..*rs + t.response_wire_bytes as usize;
        *rs = resp.end;
        // The ACK of the client segment that carried the request's first byte.
        let start = streams.get(&(cl, sv)).map_or(0, |s| s.0);
        let first = start.wrapping_add(req.start as u32);
        let ack = facts
            .iter()
            .flatten()
            .find_map(|&(s, d, seq, ack, len, _)| {
                let into = first.wrapping_sub(seq);
                (s == cl && d == sv && len > 0 && into < len).then_some(ack)
            });
        let head = |bytes: &[u8], at: usize| {
            let len = bytes
                .get(at..)
                .and_then(|b| b.windows(4).position(|w| w == b"\r\n\r\n"))
                .map_or(0, |p| p + 4);
            at..at + len
        };
        let client = &streams.get(&(cl, sv)).unwrap_or(&empty).1;
        out[i] = Extent {
            request_head: head(client, req.start),
            response_head: head(server, *rs - t.response_wire_bytes as usize),
            request: req,
            response: resp,
            ack,
        };
    }
    out
}

/// Where a transaction lies in its connection's streams.
#[derive(Clone, Debug)]
pub struct Extent {
    pub request: std::ops::Range<usize>,
    pub response: std::ops::Range<usize>,
    /// The request's head, and the (final) response's head.
    pub request_head: std::ops::Range<usize>,
    pub response_head: std::ops::Range<usize>,
    /// The client's ACK when it sent the request (pipelined requests share one).
    pub ack: Option<u32>,
}

/// Replays capture bytes and returns the engine's counters too.
pub fn replay_engine(
    bytes: &[u8],
    cfg: EngineConfig,
) -> (Vec<Transaction>, agent_core::engine::EngineStats) {
    let mut reader = CaptureReader::new(bytes).expect("capture header");
    let mut decoder = Decoder::new(&[]);
    let mut engine = Engine::new(cfg);
    let mut out = Vec::new();
    let err = pcap::replay(&mut reader, &mut decoder, &mut engine, |t| {
        out.push(t.clone());
        Ok::<(), ()>(())
    })
    .expect("collecting cannot fail");
    assert!(err.is_none(), "capture error: {err:?}");
    (out, engine.stats().clone())
}
