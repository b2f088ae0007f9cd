//! Aggregation: turns routed transactions into counters, histograms, sketches, availability
//! windows and top-K usage, and builds immutable [`Snapshot`]s for the exporters and the API.

pub mod snapshot;

pub use snapshot::{
    ClientStats, EndpointStats, FamilyKind, HistogramValue, MetricFamilies, MetricFamily, Sample,
    SampleValue, ServiceStats, Snapshot,
};
