//! Capture self-metrics: the kernel's per-CPU counters (summed on demand) plus user-side
//! counters of the reader.

use agent_common::Counter;
use aya::maps::{MapData, PerCpuArray};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters kept by the reader and the attacher.
#[derive(Debug, Default)]
pub struct UserCounters {
    pub events_read: AtomicU64,
    pub batches_sent: AtomicU64,
    /// Segments in batches dropped because the pipeline channel was full.
    pub events_dropped: AtomicU64,
    pub decode_errors: AtomicU64,
    pub interfaces_attached: AtomicU64,
    pub programs_attached: AtomicU64,
}

/// A point-in-time copy of every capture counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub packets_seen: u64,
    pub segments: u64,
    pub events_lost: u64,
    pub kernel_errors: u64,
    pub payload_bytes: u64,
    pub copied_bytes: u64,
    pub empty_skipped: u64,
    pub events_read: u64,
    pub batches_sent: u64,
    pub events_dropped: u64,
    pub decode_errors: u64,
    pub interfaces_attached: u64,
    pub programs_attached: u64,
}

/// Cheap to clone; reads the kernel map on every `snapshot()`.
#[derive(Clone)]
pub struct CaptureStats {
    kernel: Arc<PerCpuArray<MapData, u64>>,
    pub(crate) user: Arc<UserCounters>,
}

impl CaptureStats {
    pub fn new(kernel: PerCpuArray<MapData, u64>) -> Self {
        CaptureStats {
            kernel: Arc::new(kernel),
            user: Arc::default(),
        }
    }

    /// Sum over CPUs of one kernel counter (0 when the map cannot be read).
    pub fn kernel(&self, counter: Counter) -> u64 {
        self.kernel
            .get(&(counter as u32), 0)
            .map(|vals| vals.iter().copied().fold(0u64, u64::wrapping_add))
            .unwrap_or(0)
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let u = &self.user;
        StatsSnapshot {
            packets_seen: self.kernel(Counter::PacketsSeen),
            segments: self.kernel(Counter::SegmentsMatched),
            events_lost: self.kernel(Counter::EventsLost),
            kernel_errors: self.kernel(Counter::Errors),
            payload_bytes: self.kernel(Counter::PayloadBytes),
            copied_bytes: self.kernel(Counter::CopiedBytes),
            empty_skipped: self.kernel(Counter::EmptySkipped),
            events_read: u.events_read.load(Relaxed),
            batches_sent: u.batches_sent.load(Relaxed),
            events_dropped: u.events_dropped.load(Relaxed),
            decode_errors: u.decode_errors.load(Relaxed),
            interfaces_attached: u.interfaces_attached.load(Relaxed),
            programs_attached: u.programs_attached.load(Relaxed),
        }
    }

    /// Prometheus text lines (HELP, TYPE, samples) of the capture self-metrics.
    pub fn exposition(&self) -> String {
        render(&self.snapshot())
    }
}

/// Renders a snapshot as Prometheus text exposition lines.
pub fn render(s: &StatsSnapshot) -> String {
    let mut out = String::with_capacity(2048);
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(out, "{name}{labels} {v}");
        }
    };
    metric(
        "apitap_packets_seen_total",
        "counter",
        "Packets the classifiers ran on.",
        &[("", s.packets_seen)],
    );
    metric(
        "apitap_segments_total",
        "counter",
        "TCP segments of watched ports sent to the ring buffer (pure ACKs excluded).",
        &[("", s.segments)],
    );
    metric(
        "apitap_events_lost_total",
        "counter",
        "Segment events that did not fit in the ring buffer.",
        &[("", s.events_lost)],
    );
    metric(
        "apitap_payload_bytes_total",
        "counter",
        "True TCP payload bytes of matched segments.",
        &[("", s.payload_bytes)],
    );
    metric(
        "apitap_bytes_captured_total",
        "counter",
        "Payload bytes copied into events.",
        &[("", s.copied_bytes)],
    );
    metric(
        "apitap_empty_segments_skipped_total",
        "counter",
        "Pure ACKs of watched ports skipped in the kernel.",
        &[("", s.empty_skipped)],
    );
    metric(
        "apitap_capture_errors_total",
        "counter",
        "Packets whose headers could not be read (kernel) and records that could not be decoded (decode).",
        &[
            ("{source=\"kernel\"}", s.kernel_errors),
            ("{source=\"decode\"}", s.decode_errors),
        ],
    );
    metric(
        "apitap_events_read_total",
        "counter",
        "Segment events read from the ring buffer.",
        &[("", s.events_read)],
    );
    metric(
        "apitap_events_dropped_total",
        "counter",
        "Events dropped because a pipeline stage was full.",
        &[("{stage=\"capture\"}", s.events_dropped)],
    );
    metric(
        "apitap_attached_programs",
        "gauge",
        "Classifier programs attached.",
        &[("", s.programs_attached)],
    );
    metric(
        "apitap_attached_interfaces",
        "gauge",
        "Interfaces with classifiers attached.",
        &[("", s.interfaces_attached)],
    );
    let _ = writeln!(out, "# HELP apitap_build_info Build of the running agent.");
    let _ = writeln!(out, "# TYPE apitap_build_info gauge");
    let _ = writeln!(
        out,
        "apitap_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_capture_metric_with_labels() {
        let s = StatsSnapshot {
            events_lost: 3,
            events_dropped: 2,
            programs_attached: 4,
            ..Default::default()
        };
        let text = render(&s);
        for line in [
            "apitap_events_lost_total 3",
            "apitap_events_dropped_total{stage=\"capture\"} 2",
            "apitap_attached_programs 4",
            "apitap_segments_total 0",
            "apitap_bytes_captured_total 0",
            "apitap_payload_bytes_total 0",
            "apitap_packets_seen_total 0",
            "apitap_capture_errors_total{source=\"kernel\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(text.contains("apitap_build_info{version=\""));
    }
}
