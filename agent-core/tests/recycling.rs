//! The pipeline starts requests from finished records (`agent_core::spares`): nothing of an
//! old record may reach a new one. Every record the pipeline hands on must be the record the
//! engine alone (whose records are never reused) makes of the same traffic, route aside.

use agent_core::engine::{Engine, EngineConfig};
use agent_core::pipeline::{Pipeline, PipelineConfig};
use agent_core::synthetic as common;
use agent_core::{Records, Transaction};

/// Requests alternating between a client that names them and carries trace context and one
/// that does not, so a reused record's ids, user agent and path must all be replaced or
/// cleared.
fn mixed(i: usize, paths: usize) -> Vec<u8> {
    if i.is_multiple_of(2) {
        common::traced_request(i, paths)
    } else {
        common::request(i, paths)
    }
}

#[test]
fn reused_records_equal_fresh_ones() {
    let traffic = common::traffic_of(8, 500, 7, mixed);

    let mut engine = Engine::new(EngineConfig::default());
    let mut fresh: Records = Vec::new();
    for o in &traffic {
        engine.ingest(&o.segment(), &mut fresh);
        engine.advance(o.ts, &mut fresh);
    }

    let mut p = Pipeline::new(PipelineConfig::default()).expect("default config");
    let mut reused: Vec<Transaction> = Vec::new();
    for o in &traffic {
        p.ingest(&o.segment(), &mut |t| reused.push(t.clone()));
        p.advance(o.ts, &mut |t| reused.push(t.clone()));
    }

    assert_eq!(fresh.len(), 4_000);
    assert_eq!(reused.len(), fresh.len());
    let with_ids = fresh.iter().filter(|t| t.request_id.is_some()).count();
    assert_eq!(with_ids, 2_000, "half the requests carry an id");
    for (i, (r, f)) in reused.iter().zip(&fresh).enumerate() {
        assert!(r.route.is_some(), "record {i} was routed");
        let r = Transaction {
            route: None,
            ..r.clone()
        };
        assert_eq!(&r, &**f, "record {i}");
    }
}
