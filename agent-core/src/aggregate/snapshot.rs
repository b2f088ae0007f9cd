//! Immutable, self-contained views of the aggregator's state.
//!
//! The aggregator task builds a [`Snapshot`] on a tick; the lead publishes it as
//! `Arc<Snapshot>` (watch channel) and every reader (the HTTP API, /health, the Prometheus
//! exposition, `apitap replay --metrics-out`) works from it without touching live state.
//! Everything here is plain owned data: cloning or sending a snapshot never locks anything.

use serde::Serialize;

/// Everything the exporters and the API read, at one instant.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Snapshot {
    /// When the snapshot was taken, nanoseconds since the UNIX epoch (the aggregator's clock,
    /// i.e. transaction time in replay, wall clock live).
    pub taken_ns: u64,
    /// One row per (service, method, endpoint), sorted by count descending then by key.
    pub endpoints: Vec<EndpointStats>,
    /// One row per tracked client (top-K by traffic) plus `"other"` when anything was folded
    /// into it; sorted by count descending then by name.
    pub clients: Vec<ClientStats>,
    /// One row per (namespace, service), sorted.
    pub services: Vec<ServiceStats>,
    /// The metric families the Prometheus/OpenMetrics exposition renders.
    #[serde(skip)]
    pub series: MetricFamilies,
}

/// Totals and latency for one (namespace, service, method, endpoint) since the agent started.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EndpointStats {
    /// Kubernetes namespace of the service; empty off Kubernetes.
    pub namespace: String,
    pub service: String,
    pub method: String,
    /// Route template (`/api/users/{id}`), or `"other"` beyond the series budget.
    pub endpoint: String,
    pub count: u64,
    /// Responses with a 5xx status plus transactions with an `error.type`.
    pub errors: u64,
    /// `errors / count` (0.0 when count is 0).
    pub error_rate: f64,
    /// Mean duration in seconds over transactions that have a duration.
    pub avg_s: f64,
    /// Quantiles from a DDSketch with 1 % relative accuracy (0.0 when no duration was seen).
    pub p50_s: f64,
    pub p95_s: f64,
    pub p99_s: f64,
    /// 4xx responses.
    pub client_errors: u64,
    /// 429 responses.
    pub rate_limited: u64,
    /// 401 and 403 responses.
    pub auth_failures: u64,
}

/// Totals for one API consumer (SPEC "client"): `key:<hash>`, `sub:<sub>`, an IP, or `"other"`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ClientStats {
    pub client: String,
    pub count: u64,
    pub errors: u64,
    pub rate_limited: u64,
    pub auth_failures: u64,
}

/// Health-oriented figures for one service of a namespace.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ServiceStats {
    /// Kubernetes namespace of the service; empty off Kubernetes.
    pub namespace: String,
    pub service: String,
    /// Requests since start.
    pub requests: u64,
    /// As last set by the engine through `Aggregator::set_active_connections`.
    pub active_connections: u64,
    /// Share of requests without a 5xx or an `error.type` over the last 5 minutes / hour /
    /// 24 hours (per-minute buckets). 1.0 when the window saw no request: no traffic is not an
    /// outage, and a ratio of 0/0 must not page anyone.
    pub availability_5m: f64,
    pub availability_1h: f64,
    pub availability_24h: f64,
    /// Failures / requests over the last 5 minutes (0.0 without traffic).
    pub error_rate_5m: f64,
    /// p95 of durations over the last 5 minutes, seconds (0.0 without traffic).
    pub p95_5m_s: f64,
    /// Requests that started in the last 60 seconds before `taken_ns` (per-second buckets,
    /// exact to the second).
    pub requests_last_minute: u64,
}

impl Snapshot {
    /// The `n` endpoints with the most requests (ties by service, method, endpoint).
    pub fn top_endpoints(&self, n: usize) -> Vec<&EndpointStats> {
        let mut v: Vec<&EndpointStats> = self.endpoints.iter().collect();
        v.sort_by(|a, b| {
            b.count.cmp(&a.count).then_with(|| {
                (&a.namespace, &a.service, &a.method, &a.endpoint).cmp(&(
                    &b.namespace,
                    &b.service,
                    &b.method,
                    &b.endpoint,
                ))
            })
        });
        v.truncate(n);
        v
    }

    /// The `n` clients with the most requests (ties by name).
    pub fn top_clients(&self, n: usize) -> Vec<&ClientStats> {
        let mut v: Vec<&ClientStats> = self.clients.iter().collect();
        v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.client.cmp(&b.client)));
        v.truncate(n);
        v
    }

    /// The row for one service of a namespace (`""` off Kubernetes), if it saw traffic or has
    /// connections.
    pub fn service(&self, namespace: &str, name: &str) -> Option<&ServiceStats> {
        self.services
            .iter()
            .find(|s| s.namespace == namespace && s.service == name)
    }
}

/// The exposition model: families in render order, each with its samples.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricFamilies {
    pub families: Vec<MetricFamily>,
}

/// Counter, gauge or histogram as the text formats understand them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FamilyKind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric family: a name (counters keep their `_total` suffix here), its help and samples.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricFamily {
    pub name: String,
    pub help: String,
    pub kind: FamilyKind,
    pub samples: Vec<Sample>,
}

/// One series: its label pairs (in render order) and value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub labels: Vec<(String, String)>,
    pub value: SampleValue,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SampleValue {
    /// Counter or gauge value.
    Scalar(f64),
    Histogram(HistogramValue),
}

/// A fixed-bucket histogram. `counts[i]` is the number of observations in
/// `(bounds[i-1], bounds[i]]` (not cumulative); `counts[bounds.len()]` holds those above the
/// last bound (the `+Inf` bucket). The exposition makes them cumulative.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramValue {
    pub bounds: &'static [f64],
    pub counts: Vec<u64>,
    pub sum: f64,
    pub count: u64,
}

impl MetricFamilies {
    /// The family with this name, if present.
    pub fn get(&self, name: &str) -> Option<&MetricFamily> {
        self.families.iter().find(|f| f.name == name)
    }
}
