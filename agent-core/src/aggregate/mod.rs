//! Aggregation: turns routed transactions into counters, histograms, sketches, availability
//! windows and top-K usage, and builds immutable [`Snapshot`]s for the exporters and the API.
//!
//! ```text
//! Transaction (route set) ─▶ Aggregator::record ─▶ Aggregator::snapshot(now) ─▶ Arc<Snapshot>
//! ```
//! The aggregator is owned by one task; nothing in it is shared or locked.

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

pub use aggregator::{Aggregator, Budgeted, OTHER, UNKNOWN_CLIENT, UNKNOWN_ENDPOINT};
pub use config::AggregateConfig;
pub use sketch::DdSketch;
pub use snapshot::{
    ClientStats, EndpointStats, FamilyKind, HistogramValue, MetricFamilies, MetricFamily, Sample,
    SampleValue, ServiceStats, Snapshot,
};
