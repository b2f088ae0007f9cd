//! The analysis path shared by live capture and `apitap replay`:
//!
//! ```text
//! Segment ─▶ Engine (flow, reassembly, HTTP) ─▶ Transaction ─▶ Router (sets http.route)
//!         ─▶ Aggregator (metrics, sketches, windows) ─▶ sink (logs, usage store, lookup ring)
//! ```
//! One [`Pipeline`] is owned by one task (or by the replay loop): nothing in it is locked.
//! Snapshots are taken on a tick and published immutably by the caller.

mod self_metrics;

pub use self_metrics::engine_self_metrics;

use crate::aggregate::{AggregateConfig, Aggregator, Snapshot};
use crate::engine::{Engine, EngineConfig};
use crate::export::SelfMetric;
use crate::route::{RouteConfig, RouteError, Router};
use crate::{Records, Segment, Transaction};

/// Settings of every stage of the pipeline.
#[derive(Clone, Debug, Default)]
pub struct PipelineConfig {
    pub engine: EngineConfig,
    pub routes: RouteConfig,
    /// Text of the OpenAPI document named by `routes.openapi` (read by the caller).
    pub openapi_text: Option<String>,
    pub aggregate: AggregateConfig,
}

/// Engine, router and aggregator, driven in that order for every transaction.
pub struct Pipeline {
    engine: Engine,
    router: Router,
    aggregator: Aggregator,
    scratch: Records,
}

impl Pipeline {
    pub fn new(cfg: PipelineConfig) -> Result<Pipeline, RouteError> {
        let mut router = Router::new(&cfg.routes)?;
        if let Some(text) = &cfg.openapi_text {
            router.add_openapi_str(text)?;
        }
        Ok(Pipeline {
            engine: Engine::new(cfg.engine),
            router,
            aggregator: Aggregator::new(cfg.aggregate),
            scratch: Vec::with_capacity(64),
        })
    }

    /// Feeds one segment; each completed transaction is routed, aggregated, then handed to
    /// `sink` in completion order.
    pub fn ingest(&mut self, seg: &Segment<'_>, sink: &mut impl FnMut(&Transaction)) {
        self.engine.ingest(seg, &mut self.scratch);
        self.drain(sink);
    }

    /// Moves time forward (timeouts, idle eviction) to `now_ns`.
    pub fn advance(&mut self, now_ns: u64, sink: &mut impl FnMut(&Transaction)) {
        self.engine.advance(now_ns, &mut self.scratch);
        self.drain(sink);
    }

    /// End of input: every pending request becomes a record.
    pub fn finish(&mut self, sink: &mut impl FnMut(&Transaction)) {
        self.engine.finish(&mut self.scratch);
        self.drain(sink);
    }

    /// Routes, aggregates and hands on every transaction where it lies (a transaction is a
    /// few hundred bytes: moving each out of the vector was a copy per request), then gives
    /// them back, routes to the router and records to the engine, for later requests to start
    /// from (no reference count written for what they share; see [`crate::spares`]). The
    /// vector is left empty with its capacity.
    fn drain(&mut self, sink: &mut impl FnMut(&Transaction)) {
        for tx in &mut self.scratch {
            self.router.route(tx);
            self.aggregator.record(tx);
            sink(tx);
            self.router.give_back(tx.route.take());
        }
        self.engine.recycle(&mut self.scratch);
    }

    /// An immutable view of everything aggregated so far, as of `now_ns` (wall clock when
    /// live; the latest transaction time in replay).
    pub fn snapshot(&mut self, now_ns: u64) -> Snapshot {
        // A service whose last connection closed is back to 0.
        self.aggregator.clear_active_connections();
        for (namespace, service, open) in self.engine.active_connections() {
            self.aggregator
                .set_active_connections(&namespace, &service, open);
        }
        self.aggregator.snapshot(now_ns)
    }

    /// `apitap_*` figures of the engine and the router.
    pub fn self_metrics(&self) -> Vec<SelfMetric> {
        let mut m = engine_self_metrics(self.engine.stats());
        m.extend(self.router.self_metrics());
        m
    }

    /// Who serves at an address (see [`Engine::set_resolver`]).
    pub fn set_resolver(&mut self, resolver: Box<dyn crate::server::ResolveServer>) {
        self.engine.set_resolver(resolver);
    }

    /// Drops every series of a service that is gone (a deleted pod's workload), giving its
    /// budget back; false when there was none.
    pub fn retire_service(&mut self, namespace: &str, service: &str) -> bool {
        self.aggregator.retire_service(namespace, service)
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn router(&self) -> &Router {
        &self.router
    }

    pub fn router_mut(&mut self) -> &mut Router {
        &mut self.router
    }

    pub fn aggregator(&self) -> &Aggregator {
        &self.aggregator
    }
}
