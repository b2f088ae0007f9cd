//! Drives the synthetic loopback traffic of the benches through the engine or the whole
//! pipeline `REPS` times, for counting with `perf stat` (instructions and cycles are far less
//! disturbed by a busy machine than wall time):
//!
//! ```text
//! cargo build --release -p agent-core --example per_tx
//! perf stat -e instructions:u,cycles:u target/release/examples/per_tx pipeline keep_alive 20
//! perf stat -e instructions:u,cycles:u target/release/examples/per_tx pipeline keep_alive 0
//! ```
//! (the difference over the transactions it prints is the cost per transaction).

use agent_core::synthetic as common;

use agent_core::engine::{Engine, EngineConfig};
use agent_core::pipeline::{Pipeline, PipelineConfig};
use std::hint::black_box;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (stage, shape, reps) = match args.as_slice() {
        [_, stage, shape, reps] => (stage.as_str(), shape.as_str(), reps.parse().unwrap_or(1)),
        _ => {
            eprintln!(
                "usage: per_tx engine|pipeline keep_alive|one_path|bearer|api_key|traced|h2|h2_mux10|conn_per_request|churn REPS"
            );
            std::process::exit(2);
        }
    };
    // `one_path`: every request the same, as from wrk or a health check (the bench's worst
    // case); the others spread requests over `common::PATHS` paths.
    let segs = match shape {
        "conn_per_request" => common::traffic(2_000, 1),
        // One exchange per connection, 16 connections open at a time, as from wrk with
        // `Connection: close` (the bench's worst case with that header).
        "churn" => common::churn(2_000, 16, 1),
        "one_path" => common::traffic_over(8, 1_250, 1),
        "bearer" => common::traffic_of(8, 1_250, 1, common::bearer_request),
        "api_key" => common::traffic_of(8, 1_250, 1, common::keyed_request),
        "traced" => common::traffic_of(8, 1_250, 1, common::traced_request),
        "h2" => common::h2::traffic(8, 1_250, 1),
        "h2_mux10" => common::h2::traffic(8, 1_250, 10),
        _ => common::traffic(8, 1_250),
    };
    let started = Instant::now();
    let mut txs = 0u64;
    for _ in 0..reps {
        match stage {
            "engine" => {
                let mut engine = Engine::new(EngineConfig::default());
                let mut out = Vec::with_capacity(64);
                for o in &segs {
                    engine.ingest(&o.segment(), &mut out);
                    engine.advance(o.ts, &mut out);
                    txs += out.len() as u64;
                    black_box(&out);
                    out.clear();
                }
            }
            _ => {
                let mut p = Pipeline::new(PipelineConfig::default()).unwrap_or_else(|e| {
                    eprintln!("{e}");
                    std::process::exit(1)
                });
                for o in &segs {
                    p.ingest(&o.segment(), &mut |t| {
                        txs += 1;
                        black_box(t);
                    });
                    p.advance(o.ts, &mut |_| txs += 1);
                }
            }
        }
    }
    let ns = started.elapsed().as_nanos() as f64;
    println!(
        "{stage} {shape}: {txs} transactions, {:.0} ns per transaction (wall)",
        if txs > 0 { ns / txs as f64 } else { 0.0 }
    );
}
