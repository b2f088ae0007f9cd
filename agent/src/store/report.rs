//! What the store tells the rest of the agent about itself: counters for the `apitap_store_*`
//! self-metrics and the probe result for GET /health.

use agent_core::export::{MetricKind, SelfMetric};
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::UsageStore;

/// Counters of the store, exported as `apitap_store_*` self-metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Increments written (summed over successful flushes).
    pub writes: u64,
    /// Failed flushes.
    pub write_failures: u64,
    /// Distinct keys waiting to be written, including the batch being written.
    pub pending: u64,
    /// Increments dropped because the pending bound was reached.
    pub dropped: u64,
}

/// What /health reports about the store.
#[derive(Clone, Debug, PartialEq)]
pub struct StoreHealth {
    /// "embedded" or "redis".
    pub backend: &'static str,
    /// Round trip of the probe; None when it failed.
    pub response_time: Option<Duration>,
    /// The probe's error, else the error of the last flush if it failed.
    pub error: Option<String>,
    pub pending: u64,
    pub dropped: u64,
}

impl UsageStore {
    /// Probe plus the state of pending writes, for GET /health.
    pub async fn health(&self) -> StoreHealth {
        let probe = self.ping().await;
        let stats = self.stats();
        let last_error = self
            .inner
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let (response_time, error) = match probe {
            Ok(rtt) => (Some(rtt), last_error),
            Err(e) => (None, Some(e.to_string())),
        };
        StoreHealth {
            backend: self.backend_name(),
            response_time,
            error,
            pending: stats.pending,
            dropped: stats.dropped,
        }
    }

    pub fn stats(&self) -> StoreStats {
        let (pending, dropped) = {
            let mut p = self.pending();
            (
                p.len() as u64 + self.inner.in_flight.load(Ordering::Relaxed),
                p.dropped(),
            )
        };
        StoreStats {
            writes: self.inner.writes.load(Ordering::Relaxed),
            write_failures: self.inner.failures.load(Ordering::Relaxed),
            pending,
            dropped,
        }
    }

    /// The store's `apitap_store_*` self-metrics.
    pub fn self_metrics(&self) -> Vec<SelfMetric> {
        let s = self.stats();
        let backend = vec![("backend".to_string(), self.backend_name().to_string())];
        let metric = |name: &str, help: &str, kind, value: u64| SelfMetric {
            name: name.into(),
            help: help.into(),
            kind,
            labels: backend.clone(),
            value: value as f64,
        };
        vec![
            metric(
                "apitap_store_writes_total",
                "Usage increments written to the store.",
                MetricKind::Counter,
                s.writes,
            ),
            metric(
                "apitap_store_write_failures_total",
                "Failed usage store flushes.",
                MetricKind::Counter,
                s.write_failures,
            ),
            metric(
                "apitap_store_pending_increments",
                "Distinct usage counters waiting to be written.",
                MetricKind::Gauge,
                s.pending,
            ),
            metric(
                "apitap_store_dropped_increments_total",
                "Usage increments dropped because the pending bound was reached.",
                MetricKind::Counter,
                s.dropped,
            ),
        ]
    }
}
