//! Replay throughput over the committed ab -k fixture (20 keep-alive requests from a real
//! nginx): capture decode alone, and decode + engine, per capture pass.
//!
//! `cargo bench -p agent-core --bench replay`

use std::io::Cursor;
use std::path::Path;

use agent_core::engine::{Engine, EngineConfig};
use agent_core::pcap::{self, CaptureReader, Decoder};
use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};

fn fixture() -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/ab-k.pcap");
    std::fs::read(&path).expect("the ab-k fixture is committed")
}

fn decode_only(bytes: &[u8]) -> u64 {
    let mut reader = CaptureReader::new(Cursor::new(bytes)).expect("capture header");
    let mut decoder = Decoder::new(&[]);
    while let Ok(Some(pkt)) = reader.next_packet() {
        black_box(decoder.decode(&pkt));
    }
    decoder.stats().segments
}

fn decode_and_engine(bytes: &[u8]) -> u64 {
    let mut reader = CaptureReader::new(Cursor::new(bytes)).expect("capture header");
    let mut decoder = Decoder::new(&[]);
    let mut engine = Engine::new(EngineConfig::default());
    let mut transactions = 0u64;
    let done = pcap::replay(&mut reader, &mut decoder, &mut engine, |t| {
        black_box(t);
        transactions += 1;
        Ok::<(), ()>(())
    });
    assert!(matches!(done, Ok(None)), "the fixture replays cleanly");
    transactions
}

fn bench(c: &mut Criterion) {
    let bytes = fixture();
    let packets = {
        let mut reader = CaptureReader::new(Cursor::new(&bytes[..])).expect("capture header");
        let mut n = 0u64;
        while let Ok(Some(_)) = reader.next_packet() {
            n += 1;
        }
        n
    };
    assert_eq!(
        decode_and_engine(&bytes),
        20,
        "ab -k -n 20 is 20 transactions"
    );
    let mut group = c.benchmark_group("replay_ab_k");
    group.throughput(Throughput::Elements(packets));
    group.bench_function("decode", |b| b.iter(|| decode_only(black_box(&bytes))));
    group.bench_function("decode_engine", |b| {
        b.iter(|| decode_and_engine(black_box(&bytes)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
