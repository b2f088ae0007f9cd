//! Shared by the capture tests: where the fixtures are, and replay of capture bytes through
//! the decoder and the engine.
#![allow(dead_code)] // each test binary uses a different part

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
