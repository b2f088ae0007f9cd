//! Per-second time series per service for the live views: requests, failures and p95 latency
//! over the last [`WINDOW_S`] seconds, in memory fixed once every service has been seen.
//!
//! ```text
//! Transaction ─▶ SeriesRing::record (second of its last response byte)
//!             ─▶ SeriesRing::snapshot(now) ─▶ SeriesSnapshot (owned, oldest point first)
//! ```
//! A transaction counts in the second it completed (start + duration; its start when it has no
//! duration, e.g. a timeout), as a Prometheus counter would: the points of a series add up to
//! the increase of `api_requests_total` over the same seconds.
//!
//! Bounds, each counted when hit ([`SeriesStats`]):
//! - services: at most `max_services` by name (the aggregator's cap, the same first-seen
//!   order), the rest in one `other` series;
//! - points: a ring of [`WINDOW_S`] slots per service, stamped with their second, so a stale slot
//!   is recognised and reused without a sweeper; a transaction older than the ring is dropped;
//! - p95: a fixed histogram per open second, [`OPEN_SECONDS`] per service; a duration whose
//!   second was already closed still counts as a request but not in that second's p95.
//!
//! Memory: about 30 KiB per service (see [`SeriesRing::bytes_bound`]); 2 MiB at the default cap
//! of 64 services.

mod latency;
mod ring;

pub use latency::LatencyHistogram;
pub use ring::{SeriesRing, SeriesStats};

use serde::Serialize;

/// Seconds of history kept per service (15 minutes).
pub const WINDOW_S: usize = 900;
/// Seconds per service whose p95 is still open to late durations.
pub const OPEN_SECONDS: usize = 4;

/// The series of every service at one instant, each covering the same seconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SeriesSnapshot {
    /// The last second covered (UNIX seconds; the current, partial second when live).
    pub end_s: u64,
    /// One entry per service, sorted by namespace and name.
    pub services: Vec<ServiceSeries>,
    pub stats: SeriesStats,
}

/// One service's points, oldest first, one per second from `end_s - WINDOW_S + 1` to `end_s`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ServiceSeries {
    /// Kubernetes namespace; empty off Kubernetes.
    pub namespace: String,
    pub service: String,
    pub requests: Vec<u32>,
    /// Responses with a 5xx status plus transactions with an `error.type`.
    pub errors: Vec<u32>,
    /// p95 duration of the second in seconds (2 % accuracy); `None` when nothing completed
    /// with a duration in that second.
    pub p95_s: Vec<Option<f32>>,
}

impl SeriesSnapshot {
    /// The series of one service (`namespace` empty off Kubernetes).
    pub fn service(&self, namespace: &str, name: &str) -> Option<&ServiceSeries> {
        self.services
            .iter()
            .find(|s| s.namespace == namespace && s.service == name)
    }

    /// The first second covered.
    pub fn start_s(&self) -> u64 {
        (self.end_s + 1).saturating_sub(WINDOW_S as u64)
    }
}

impl ServiceSeries {
    /// The points after second `since` (all of them when `since` is before the window), as a
    /// series of the same shape; `end_s` is the snapshot's.
    pub fn since(&self, since: u64, end_s: u64) -> ServiceSeries {
        let keep = end_s.saturating_sub(since).min(self.requests.len() as u64) as usize;
        let from = self.requests.len() - keep;
        ServiceSeries {
            namespace: self.namespace.clone(),
            service: self.service.clone(),
            requests: self.requests[from..].to_vec(),
            errors: self.errors[from..].to_vec(),
            p95_s: self.p95_s[from..].to_vec(),
        }
    }
}
