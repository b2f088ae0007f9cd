//! Exposition of snapshots as Prometheus text 0.0.4 and OpenMetrics 1.0.
//!
//! The entry point is [`prometheus::render`]; contributors outside the aggregator (capture,
//! engine, store) hand their `apitap_*` figures over as plain [`SelfMetric`] values, and
//! [`Format::from_accept`] does the content negotiation for `GET /metrics`.
//!
//! # Why the encoder is written here rather than taken from a crate
//!
//! We weighed the two established crates:
//!
//! * `prometheus` (tikv/rust-prometheus): the older, widely used client. It writes the
//!   Prometheus text and protobuf formats but no OpenMetrics, has no exemplars (requested since
//!   2021 in its issue #393 and not merged), no native histograms, a slow release cadence, and a
//!   process-wide default registry; each labelled increment is `with_label_values` = a hash of
//!   the label strings and a look-up under a `RwLock`.
//! * `prometheus-client` (prometheus/client_rust, the official Rust client): OpenMetrics text
//!   first (its text encoder *only* writes OpenMetrics), exemplars, actively maintained, and
//!   native histograms only recently (2026, protobuf exposition only). Its `Family<Labels, M>`
//!   is a `RwLock<HashMap<Labels, M>>` with atomics: every increment clones/hashes a label set
//!   and takes a read lock, and a series, once created, lives forever.
//!
//! Neither gives what this agent's contract needs: (1) per-metric series budgets where a new
//! label set past the budget is *recorded* under `endpoint="other"`/`client="other"` and counted
//! in `apitap_series_collapsed_total{metric}`, and evicted top-K clients whose series are
//! removed; (2) one owner task recording without any lock and publishing an immutable
//! [`Snapshot`](crate::aggregate::Snapshot) that the HTTP API, /health, replay and the exporter
//! all read consistently; (3) the same snapshot feeding JSON endpoints (p50/p95/p99 from a
//! DDSketch), which a metrics registry does not hold. With either crate we would keep our own
//! state anyway and copy it into the crate's types on every scrape, so the crate would only be
//! an encoder. The text formats are small and fully specified, so the encoder is ~200 lines
//! here, tested against golden files, a parser checking histogram cumulativity, and
//! `promtool check metrics`; the OpenMetrics output was also checked with the strict parser of
//! the Python client. Cost per increment on the hot path is a few hash look-ups on interned
//! integer keys, no lock and no allocation once a series exists (see `benches/aggregate.rs`).
//! What we give up: exemplars (trace ids on buckets) and native histograms; both can be added
//! to the encoder (exemplars are one optional suffix per bucket line in OpenMetrics) when the
//! engine carries trace ids through the aggregator.

pub mod format;
pub mod prometheus;

pub use format::Format;

#[cfg(test)]
mod tests;

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

/// One row of a self-metric table: how one figure of `S` is exported. Components keep their
/// counters as plain structs and describe them with a `const` table of rows, so the names, help
/// texts and what each reads sit side by side.
pub struct MetricRow<S> {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: MetricKind,
    /// A constant label, for a family spread over several rows (`reason="idle"`).
    pub label: Option<(&'static str, &'static str)>,
    pub get: fn(&S) -> u64,
}

impl<S> MetricRow<S> {
    /// A row without labels.
    pub const fn plain(
        name: &'static str,
        help: &'static str,
        kind: MetricKind,
        get: fn(&S) -> u64,
    ) -> MetricRow<S> {
        MetricRow {
            name,
            help,
            kind,
            label: None,
            get,
        }
    }

    /// The sample of this row for `stats`.
    pub fn sample(&self, stats: &S) -> SelfMetric {
        SelfMetric {
            name: self.name.to_string(),
            help: self.help.to_string(),
            kind: self.kind,
            labels: self
                .label
                .map(|(k, v)| vec![(k.to_string(), v.to_string())])
                .unwrap_or_default(),
            value: (self.get)(stats) as f64,
        }
    }
}

/// The samples of a whole table.
pub fn table_samples<S>(rows: &[MetricRow<S>], stats: &S) -> Vec<SelfMetric> {
    rows.iter().map(|r| r.sample(stats)).collect()
}
