//! Cost of the aggregation stage: `Aggregator::record` per transaction (the hot path), the
//! route stage per transaction, the live views' series ring per transaction, and snapshot +
//! exposition at a realistic series count.
//!
//! Run: `cargo bench -p agent-core --bench aggregate`.

use agent_core::Transaction;
use agent_core::aggregate::Aggregator;
use agent_core::export::Format;
use agent_core::export::prometheus::render;
use agent_core::route::{RouteConfig, Router};
use agent_core::series::SeriesRing;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

const T0: u64 = 1_795_585_921_000_000_000;

/// A deterministic mix: 40 routes x 3 methods, 300 clients, mostly 200 with some 4xx/5xx,
/// durations spread over four decades.
fn workload(n: usize) -> Vec<Transaction> {
    let statuses = [200, 200, 200, 200, 200, 200, 201, 404, 429, 500];
    let methods = ["GET", "POST", "PUT"];
    (0..n)
        .map(|i| Transaction {
            start_ns: T0 + i as u64 * 1_000_000,
            method: Some(methods[i % 3].into()),
            path: Some(format!("/api/v1/resource{}/{}", i % 40, i * 7919 % 100_000).into()),
            route: Some(format!("/api/v1/resource{}/{{id}}", i % 40).into()),
            status: Some(statuses[i % statuses.len()]),
            duration_ns: Some(50_000 + (i as u64 * 2_654_435_761) % 500_000_000),
            request_body_size: Some((i % 5) as u64 * 100),
            response_body_size: Some(200 + (i % 13) as u64 * 512),
            service: "port-8080".into(),
            client_id: Some(format!("key:{:08x}", i % 300).into()),
            ..Default::default()
        })
        .collect()
}

fn record(c: &mut Criterion) {
    let txs = workload(100_000);
    let mut group = c.benchmark_group("aggregate");
    group.throughput(Throughput::Elements(1));
    group.bench_function("record_per_tx", |b| {
        let mut agg = Aggregator::default();
        let mut i = 0usize;
        b.iter(|| {
            agg.record(black_box(&txs[i % txs.len()]));
            i += 1;
        });
    });
    group.bench_function("route_per_tx", |b| {
        let mut router = Router::new(&RouteConfig::default()).expect("default config is valid");
        let mut txs = txs.clone();
        let n = txs.len();
        let mut i = 0usize;
        b.iter(|| {
            let tx = &mut txs[i % n];
            tx.route = None;
            router.route(black_box(tx));
            i += 1;
        });
    });
    group.bench_function("series_record_per_tx", |b| {
        let mut ring = SeriesRing::new(64);
        let mut i = 0usize;
        b.iter(|| {
            ring.record_transaction(black_box(&txs[i % txs.len()]));
            i += 1;
        });
    });
    group.finish();

    let mut ring = SeriesRing::new(64);
    txs.iter().for_each(|t| ring.record_transaction(t));
    c.bench_function("series_snapshot_1_service", |b| {
        b.iter(|| black_box(ring.snapshot(T0 + 100_000_000_000).services.len()));
    });

    let mut agg = Aggregator::default();
    txs.iter().for_each(|t| agg.record(t));
    c.bench_function("snapshot_and_render_120_endpoints", |b| {
        b.iter(|| {
            let snap = agg.snapshot(T0 + 100_000_000_000);
            black_box(render(&snap, &[], Format::Prometheus).len())
        });
    });
}

criterion_group!(benches, record);
criterion_main!(benches);
