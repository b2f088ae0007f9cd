//! Cost per transaction of the analysis path on synthetic loopback traffic (see
//! `common::traffic`): the engine alone, and the whole pipeline (engine, router, aggregator),
//! for wrk's steady state (keep-alive on a few connections) and for ab without -k (a new
//! connection per request); and the same keep-alive exchanges over HTTP/2 (`common::h2`), one
//! stream at a time and 10 streams per segment (h2load -m 10).
//!
//! `cargo bench -p agent-core --bench engine`

use agent_core::synthetic as common;

use agent_core::engine::{Engine, EngineConfig};
use agent_core::pipeline::{Pipeline, PipelineConfig};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

/// (name, connections, exchanges per connection)
const SHAPES: [(&str, usize, usize); 2] =
    [("keep_alive", 8, 1_250), ("conn_per_request", 2_000, 1)];

/// HTTP/2 shapes: (name, connections, exchanges per connection, streams per segment)
const H2_SHAPES: [(&str, usize, usize, usize); 2] =
    [("h2_keep_alive", 8, 1_250, 1), ("h2_mux10", 8, 1_250, 10)];

fn per_transaction(cr: &mut Criterion) {
    let mut group = cr.benchmark_group("per_tx");
    let shapes = SHAPES
        .iter()
        .map(|&(shape, conns, per_conn)| {
            (shape, conns * per_conn, common::traffic(conns, per_conn))
        })
        .chain(H2_SHAPES.iter().map(|&(shape, conns, per_conn, batch)| {
            (
                shape,
                conns * per_conn,
                common::h2::traffic(conns, per_conn, batch),
            )
        }));
    for (shape, txs, segs) in shapes {
        let txs = txs as u64;
        group.throughput(Throughput::Elements(txs));
        group.bench_function(BenchmarkId::new("engine", shape), |b| {
            let mut out = Vec::with_capacity(txs as usize);
            b.iter(|| {
                let mut engine = Engine::new(EngineConfig::default());
                out.clear();
                for o in &segs {
                    engine.ingest(&o.segment(), &mut out);
                    engine.advance(o.ts, &mut out);
                }
                assert_eq!(out.len() as u64, txs, "every exchange is recorded");
                black_box(&out);
            });
        });
        group.bench_function(BenchmarkId::new("pipeline", shape), |b| {
            b.iter(|| {
                let mut p = Pipeline::new(PipelineConfig::default()).expect("default config");
                let mut n = 0u64;
                let mut sink = |t: &agent_core::Transaction| {
                    n += 1;
                    black_box(t);
                };
                for o in &segs {
                    p.ingest(&o.segment(), &mut sink);
                    p.advance(o.ts, &mut sink);
                }
                assert_eq!(n, txs, "every exchange is recorded");
            });
        });
    }
    group.finish();
}

criterion_group!(benches, per_transaction);
criterion_main!(benches);
