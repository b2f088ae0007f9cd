//! Arbitrary bytes as a capture file (pcap or pcapng) through the reader, the decoder and the
//! engine: errors are fine, panics and unbounded memory are not.
#![no_main]

mod common;

use agent_core::engine::Engine;
use agent_core::pcap::{CaptureReader, Decoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
        common::check(&engine, &out, 0);
    }
    engine.finish(&mut out);
    common::check(&engine, &out, 0);
});
