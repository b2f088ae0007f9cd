//! Heap allocations on the hot path, counted by a wrapping global allocator (this test binary
//! only). The common path is a keep-alive GET answered 200 with a Content-Length body, on a
//! route and by a client already known: it must not allocate at all, in the engine or in the
//! whole pipeline (router and aggregator included). A new connection may allocate a bounded
//! few times (its parser state), never per request.
//!
//! `cargo test -p agent-core --test allocations -- --nocapture --test-threads 1` prints the
//! figures (each test counts its own thread's allocations only).

use agent_core::synthetic as common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use agent_core::engine::{Engine, EngineConfig};
use agent_core::pipeline::{Pipeline, PipelineConfig};
use agent_core::{Records, TcpFlags};

struct Counting;

thread_local! {
    /// Allocations made by this thread (only this thread's work is measured).
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    static BYTES: Cell<u64> = const { Cell::new(0) };
    /// Bytes allocated and not yet freed by this thread.
    static LIVE: Cell<i64> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        let _ = BYTES.try_with(|c| c.set(c.get() + layout.size() as u64));
        let _ = LIVE.try_with(|c| c.set(c.get() + layout.size() as i64));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = LIVE.try_with(|c| c.set(c.get() - layout.size() as i64));
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        let _ = BYTES.try_with(|c| c.set(c.get() + new_size as u64));
        let _ = LIVE.try_with(|c| c.set(c.get() + new_size as i64 - layout.size() as i64));
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

/// Allocations per transaction over the second half of `segs` (the first half warms up
/// routes, series, clients and buffers), through `feed`. Keep-alive traffic ends with its
/// connections' FINs: closing a connection is not a request, so those are left out.
fn per_tx(segs: &[common::Owned], mut feed: impl FnMut(&common::Owned) -> u64) -> f64 {
    let half = segs.len() / 2;
    let end = if segs.len() > 2 * KEEP_ALIVE_CONNS + 1 && segs[half].flags & TcpFlags::SYN == 0 {
        segs.len() - 2 * KEEP_ALIVE_CONNS
    } else {
        segs.len()
    };
    for o in &segs[..half] {
        feed(o);
    }
    let before = allocs();
    let txs: u64 = segs[half..end].iter().map(&mut feed).sum();
    assert!(txs > 0);
    let spent = allocs() - before;
    segs[end..].iter().for_each(|o| {
        feed(o);
    });
    spent as f64 / txs as f64
}

const KEEP_ALIVE_CONNS: usize = 8;

fn engine_per_tx(segs: &[common::Owned]) -> f64 {
    let mut engine = Engine::new(EngineConfig::default());
    let mut out: Records = Vec::with_capacity(64);
    per_tx(segs, |o| {
        engine.ingest(&o.segment(), &mut out);
        engine.advance(o.ts, &mut out);
        let n = out.len() as u64;
        out.clear();
        n
    })
}

fn pipeline_per_tx(segs: &[common::Owned]) -> f64 {
    pipeline_with(segs, PipelineConfig::default())
}

fn pipeline_with(segs: &[common::Owned], cfg: PipelineConfig) -> f64 {
    let mut p = Pipeline::new(cfg).expect("valid config");
    per_tx(segs, |o| {
        let mut n = 0;
        p.ingest(&o.segment(), &mut |_| n += 1);
        p.advance(o.ts, &mut |_| n += 1);
        n
    })
}

#[test]
fn a_keep_alive_request_on_a_known_path_allocates_nothing() {
    let traffic = common::traffic_over(KEEP_ALIVE_CONNS, 2_000, 1);
    let engine = engine_per_tx(&traffic);
    let pipeline = pipeline_per_tx(&traffic);
    println!(
        "allocations per request, keep-alive, one path: engine {engine:.2}, pipeline {pipeline:.2}"
    );
    // The engine alone, whose records are never handed back, allocates each record's box.
    assert_eq!(engine, 1.0);
    assert_eq!(pipeline, 0.0);
}

#[test]
fn a_request_with_an_id_and_trace_context_allocates_nothing() {
    // Request and trace ids are kept as strings: a finished record's are reused
    // (`agent_core::spares`), so only the engine alone, whose records are never handed
    // back, allocates them (and the record's box).
    let traffic = common::traffic_of(KEEP_ALIVE_CONNS, 2_000, 1, common::traced_request);
    let engine = engine_per_tx(&traffic);
    let pipeline = pipeline_per_tx(&traffic);
    println!(
        "allocations per request with X-Request-ID and traceparent: engine {engine:.2}, pipeline {pipeline:.2}"
    );
    assert_eq!(engine, 4.0);
    assert_eq!(pipeline, 0.0);
}

#[test]
fn a_request_a_trusted_proxy_forwards_for_its_last_client_allocates_nothing() {
    // The client id is the forwarded address as text: formatted once per connection and
    // client, not per request.
    let traffic = common::traffic_of(KEEP_ALIVE_CONNS, 2_000, 1, common::forwarded_request);
    let mut cfg = PipelineConfig::default();
    cfg.engine.identity.trusted_proxies = vec!["192.0.2.1".parse().expect("cidr")];
    let pipeline = pipeline_with(&traffic, cfg);
    println!("allocations per request forwarded by a trusted proxy: pipeline {pipeline:.2}");
    assert_eq!(pipeline, 0.0);
}

#[test]
fn an_http2_stream_allocates_only_its_path() {
    // h2load's exchanges over HTTP/2, one stream at a time, each on one of 1,000 paths, with
    // the connection's user agent on every request.
    let traffic = common::h2::traffic(KEEP_ALIVE_CONNS, 2_000, 1);
    let pipeline = pipeline_per_tx(&traffic);
    println!("allocations per HTTP/2 stream: pipeline {pipeline:.2}");
    assert_eq!(pipeline, 1.0);
}

#[test]
fn a_request_on_a_new_path_allocates_only_the_path() {
    let traffic = common::traffic(KEEP_ALIVE_CONNS, 2_000);
    let engine = engine_per_tx(&traffic);
    let pipeline = pipeline_per_tx(&traffic);
    println!(
        "allocations per request, keep-alive, {} paths: engine {engine:.2}, pipeline {pipeline:.2}",
        common::PATHS
    );
    // The engine alone also allocates each record's box (never handed back).
    assert!(engine <= 2.0 && pipeline <= 1.0, "{engine} {pipeline}");
}

#[test]
fn a_connection_allocates_a_bounded_few_times() {
    let traffic = common::traffic(4_000, 1);
    let engine = engine_per_tx(&traffic);
    let pipeline = pipeline_per_tx(&traffic);
    println!(
        "allocations per connection of one request: engine {engine:.2}, pipeline {pipeline:.2}"
    );
    assert!(pipeline <= 6.0, "{pipeline}");
}

#[test]
fn a_connection_after_others_ended_allocates_nothing() {
    // One request per connection, 16 open at a time (wrk with `Connection: close`): a new
    // connection starts from the HTTP/1.x state of one that ended (`http::SpareConns`), with
    // its request queue and field memos.
    let traffic = common::churn(8_000, 16, 1);
    let engine = engine_per_tx(&traffic);
    let pipeline = pipeline_per_tx(&traffic);
    println!(
        "allocations per connection of one request, 16 at a time: engine {engine:.2}, pipeline {pipeline:.2}"
    );
    assert_eq!(pipeline, 0.0);
}

/// Heap bytes per open keep-alive connection that has served a few requests, before and after
/// the sweep gives back an idle flow's buffers; the engine's own estimate
/// (`apitap_flow_table_bytes`) is compared with what the allocator saw.
///
/// A connection's request queue has room for one request from its first request on and keeps
/// it when idle: when a slot held the whole record (408 B), growing it to four (1.6 KB) and
/// freeing it in the sweep left holes between the live flows that the allocator could not give
/// back (10,000 idle flows: 7 MiB more resident, `cargo xtask bench --parts memory`).
#[test]
fn an_idle_open_flow_keeps_room_for_one_request_and_nothing_more() {
    const CONNS: usize = 10_000;
    let mut traffic = common::traffic(CONNS, 4);
    // Keep the connections open: drop the closing FINs.
    traffic.truncate(traffic.len() - 2 * CONNS);
    let last = traffic.last().map_or(0, |o| o.ts);
    let before = LIVE.with(Cell::get);
    let mut engine = Engine::new(EngineConfig::default());
    let mut out = Vec::new();
    for o in &traffic {
        engine.ingest(&o.segment(), &mut out);
        engine.advance(o.ts, &mut out);
        out.clear();
    }
    let busy = (LIVE.with(Cell::get) - before) as f64 / CONNS as f64;
    engine.advance(last + 2_000_000_000, &mut out);
    let idle = (LIVE.with(Cell::get) - before) as f64 / CONNS as f64;
    let estimate = engine.stats().flows.memory_bytes as f64 / CONNS as f64;
    println!(
        "heap bytes per open flow: {busy:.0} after its requests, {idle:.0} once idle (the engine's estimate: {estimate:.0})"
    );
    assert_eq!(engine.stats().flows.tracked, CONNS as u64);
    assert!(
        busy < 1900.0 && idle < busy && idle < 1750.0,
        "{busy} -> {idle}"
    );
    assert!(
        (estimate - idle).abs() < idle * 0.25,
        "{estimate} vs {idle}"
    );
}
