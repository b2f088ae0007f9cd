//! Exposition of snapshots as Prometheus text 0.0.4 and OpenMetrics 1.0.
//!
//! The render entry point is `prometheus::render`; contributors outside the aggregator
//! (capture, engine, store) hand their `apitap_*` figures over as plain [`SelfMetric`] values.

pub mod format;

pub use format::Format;

/// Counter or gauge, for self-metrics that are plain values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
}

/// One `apitap_*` self-metric sample. Counters are named with their `_total` suffix
/// (`apitap_events_lost_total`); samples sharing a name form one family and must share
/// `help` and `kind` (the first one wins).
#[derive(Clone, Debug, PartialEq)]
pub struct SelfMetric {
    pub name: String,
    pub help: String,
    pub kind: MetricKind,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}
