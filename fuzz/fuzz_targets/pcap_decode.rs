//! Arbitrary bytes through the capture reader, the decoder (link types, tunnels, IP fragment
//! reassembly) and the engine: errors are fine, panics and unbounded memory are not.
//!
//! Each input is tried twice: as a capture file (pcap or pcapng; the seeds are the real and the
//! re-encapsulated fixtures), and as a stream of frames `[link selector][length: 2][frame]...`
//! through a decoder with a tiny fragment table, so tunnels, fragments and the table's bounds
//! are reached without a valid file header.
#![no_main]

mod common;

use agent_core::engine::Engine;
use agent_core::pcap::link::{
    LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2,
    LINKTYPE_NULL, LINKTYPE_RAW,
};
use agent_core::pcap::{CaptureReader, DecodeStats, Decoder, FragmentLimits, RawPacket};
use libfuzzer_sys::fuzz_target;

const LINKS: [u32; 7] = [
    LINKTYPE_ETHERNET,
    LINKTYPE_RAW,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_NULL,
];

const SMALL_TABLE: FragmentLimits = FragmentLimits {
    max_datagrams: 4,
    max_bytes: 16 * 1024,
    timeout_ns: 1_000_000,
};

fn check_decoder(stats: &DecodeStats, limits: &FragmentLimits) {
    assert_eq!(
        stats.outcomes(),
        stats.packets,
        "every packet has one outcome: {stats:?}"
    );
    let f = &stats.fragment_table;
    assert!(
        f.pending_bytes <= limits.max_bytes as u64,
        "fragment bytes: {f:?}"
    );
}

fn as_capture(data: &[u8]) {
    let Ok(mut reader) = CaptureReader::new(std::io::Cursor::new(data)) else {
        return;
    };
    let mut decoder = Decoder::new(&[80, 8080]);
    let mut engine = Engine::new(common::small_config());
    let mut out = Vec::new();
    let mut packets = 0;
    while let Ok(Some(pkt)) = reader.next_packet() {
        packets += 1;
        if packets > 10_000 {
            break;
        }
        engine.advance(pkt.ts_ns, &mut out);
        if let Some(seg) = decoder.decode(&pkt) {
            assert!(seg.payload.len() <= seg.payload_len as usize);
            engine.ingest(&seg, &mut out);
        }
        check_decoder(decoder.stats(), &FragmentLimits::default());
        common::check(&engine, &out, 0);
    }
    engine.finish(&mut out);
    common::check(&engine, &out, 0);
}

fn as_frames(mut data: &[u8]) {
    let mut decoder = Decoder::with_fragment_limits(&[], SMALL_TABLE);
    let mut engine = Engine::new(common::small_config());
    let mut out = Vec::new();
    let mut ts_ns = 0;
    while let [selector, hi, lo, rest @ ..] = data {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(rest.len());
        let (frame, tail) = rest.split_at(len);
        data = tail;
        ts_ns += u64::from(*selector >> 3) * 100_000;
        let pkt = RawPacket {
            ts_ns,
            linktype: LINKS[usize::from(*selector & 7) % LINKS.len()],
            orig_len: len as u32,
            data: frame,
        };
        engine.advance(ts_ns, &mut out);
        if let Some(seg) = decoder.decode(&pkt) {
            assert!(seg.payload.len() <= seg.payload_len as usize);
            engine.ingest(&seg, &mut out);
        }
        check_decoder(decoder.stats(), &SMALL_TABLE);
        common::check(&engine, &out, 0);
    }
    engine.finish(&mut out);
    common::check(&engine, &out, 0);
}

fuzz_target!(|data: &[u8]| {
    as_capture(data);
    as_frames(data);
});
