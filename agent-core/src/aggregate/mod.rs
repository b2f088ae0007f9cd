//! Aggregation: turns routed transactions into counters, histograms, sketches, availability
//! windows and top-K usage, and builds immutable [`Snapshot`]s for the exporters and the API.
//!
//! ```text
//! Transaction (route set) ─▶ Aggregator::record ─▶ Aggregator::snapshot(now) ─▶ Arc<Snapshot>
//! ```
//! The aggregator is owned by one task; nothing in it is shared or locked.
//!
//! ```
//! use agent_core::Transaction;
//! use agent_core::aggregate::{AggregateConfig, Aggregator};
//! use agent_core::export::{Format, prometheus::render};
//! use agent_core::route::{RouteConfig, Router};
//!
//! let mut router = Router::new(&RouteConfig::default()).expect("default config is valid");
//! let mut aggregator = Aggregator::new(AggregateConfig::default());
//! let mut tx = Transaction {
//!     start_ns: 1_795_585_921_000_000_000,
//!     method: Some("GET".into()),
//!     path: Some("/api/users/42".into()),
//!     status: Some(200),
//!     duration_ns: Some(412_000),
//!     service: "port-18080".into(),
//!     ..Default::default()
//! };
//! router.route(&mut tx);
//! assert_eq!(tx.route.as_deref(), Some("/api/users/{id}"));
//! aggregator.record(&tx);
//! let snapshot = aggregator.snapshot(aggregator.latest_ns()); // wall clock when live
//! assert_eq!(snapshot.top_endpoints(1)[0].count, 1);
//! let text = render(&snapshot, &[], Format::from_accept(Some("text/plain")));
//! assert!(text.contains(r#"api_requests_total{namespace="",service="port-18080",method="GET",endpoint="/api/users/{id}",status="200"} 1"#));
//! ```

pub mod aggregator;
pub mod budget;
pub mod clients;
pub mod config;
mod families;
pub mod histogram;
pub mod sketch;
pub mod snapshot;
pub mod window;

#[cfg(test)]
mod tests;

pub use aggregator::{Aggregator, OTHER, UNKNOWN_CLIENT, UNKNOWN_ENDPOINT};
pub use budget::Budgeted;
pub use config::AggregateConfig;
pub use sketch::DdSketch;
pub use snapshot::{
    ClientStats, EndpointStats, FamilyKind, HistogramValue, MetricFamilies, MetricFamily, Sample,
    SampleValue, ServiceStats, Snapshot,
};
