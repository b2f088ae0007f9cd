//! Counters of the request log, exported as `apitap_log_*` self-metrics.

use std::sync::atomic::{AtomicU64, Ordering};

use agent_core::export::{MetricKind, SelfMetric};

#[derive(Debug, Default)]
pub struct LogStats {
    pub written: AtomicU64,
    pub bytes: AtomicU64,
    /// Not chosen by the sample rate (not a loss: configured).
    pub sampled_out: AtomicU64,
    /// The queue was full or the writer gone: lost.
    pub dropped: AtomicU64,
    /// Serialization, write or flush failures.
    pub write_errors: AtomicU64,
    pub rotations: AtomicU64,
}

/// A copy of the counters at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStatsSnapshot {
    pub written: u64,
    pub bytes: u64,
    pub sampled_out: u64,
    pub dropped: u64,
    pub write_errors: u64,
    pub rotations: u64,
}

impl LogStats {
    pub fn snapshot(&self) -> LogStatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        LogStatsSnapshot {
            written: get(&self.written),
            bytes: get(&self.bytes),
            sampled_out: get(&self.sampled_out),
            dropped: get(&self.dropped),
            write_errors: get(&self.write_errors),
            rotations: get(&self.rotations),
        }
    }
}

impl LogStatsSnapshot {
    /// The counters as Prometheus self-metrics.
    pub fn self_metrics(&self) -> Vec<SelfMetric> {
        let counter = |name: &str, help: &str, value: u64| SelfMetric {
            name: name.into(),
            help: help.into(),
            kind: MetricKind::Counter,
            labels: Vec::new(),
            value: value as f64,
        };
        vec![
            counter(
                "apitap_log_records_written_total",
                "Request log lines written.",
                self.written,
            ),
            counter(
                "apitap_log_bytes_written_total",
                "Request log bytes written.",
                self.bytes,
            ),
            counter(
                "apitap_log_records_sampled_out_total",
                "Ordinary requests left out of the request log by the sample rate.",
                self.sampled_out,
            ),
            counter(
                "apitap_log_records_dropped_total",
                "Request log records lost because the writer queue was full.",
                self.dropped,
            ),
            counter(
                "apitap_log_write_errors_total",
                "Request log serialization, write and flush failures.",
                self.write_errors,
            ),
            counter(
                "apitap_log_rotations_total",
                "Request log file rotations.",
                self.rotations,
            ),
        ]
    }
}
