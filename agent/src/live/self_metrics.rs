//! `apitap_*` figures that do not come from the pipeline: capture counters, the process itself
//! (resident memory, CPU, open file descriptors) and build info.

use agent_core::export::{MetricKind, SelfMetric};

use crate::capture::StatsSnapshot;

fn metric(
    name: &str,
    help: &str,
    kind: MetricKind,
    labels: &[(&str, &str)],
    value: f64,
) -> SelfMetric {
    SelfMetric {
        name: name.into(),
        help: help.into(),
        kind,
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect(),
        value,
    }
}

/// Capture counters (kernel per-CPU counters summed, plus the reader's own).
pub fn capture(s: &StatsSnapshot) -> Vec<SelfMetric> {
    use MetricKind::{Counter, Gauge};
    let c = |name: &str, help: &str, v: u64| metric(name, help, Counter, &[], v as f64);
    let mut m = vec![
        c(
            "apitap_packets_seen_total",
            "Packets the classifiers ran on.",
            s.packets_seen,
        ),
        c(
            "apitap_segments_total",
            "TCP segments of watched ports sent to the ring buffer (pure ACKs excluded).",
            s.segments,
        ),
        c(
            "apitap_events_lost_total",
            "Segment events that did not fit in the ring buffer.",
            s.events_lost,
        ),
        c(
            "apitap_payload_bytes_total",
            "True TCP payload bytes of matched segments.",
            s.payload_bytes,
        ),
        c(
            "apitap_bytes_captured_total",
            "Payload bytes copied into events.",
            s.copied_bytes,
        ),
        c(
            "apitap_empty_segments_skipped_total",
            "Pure ACKs of watched ports skipped in the kernel.",
            s.empty_skipped,
        ),
        metric(
            "apitap_capture_errors_total",
            "Packets whose headers could not be read (kernel) and records that could not be decoded (decode).",
            Counter,
            &[("source", "kernel")],
            s.kernel_errors as f64,
        ),
        metric(
            "apitap_capture_errors_total",
            "Packets whose headers could not be read (kernel) and records that could not be decoded (decode).",
            Counter,
            &[("source", "decode")],
            s.decode_errors as f64,
        ),
        c(
            "apitap_events_read_total",
            "Segment events read from the ring buffer.",
            s.events_read,
        ),
        metric(
            "apitap_events_dropped_total",
            "Events dropped because a pipeline stage was full.",
            Counter,
            &[("stage", "capture")],
            s.events_dropped as f64,
        ),
        metric(
            "apitap_attached_programs",
            "Classifier programs attached.",
            Gauge,
            &[],
            s.programs_attached as f64,
        ),
        metric(
            "apitap_attached_interfaces",
            "Interfaces with classifiers attached.",
            Gauge,
            &[],
            s.interfaces_attached as f64,
        ),
        c(
            "apitap_stale_filters_removed_total",
            "TC filters left by a killed apitap and removed at attach time.",
            s.stale_filters_removed,
        ),
    ];
    if let Some(mode) = s.attach_mode {
        m.push(metric(
            "apitap_attach_mode",
            "How the classifiers are attached: tcx (BPF links owned by the process) or netlink (filters on the clsact qdisc).",
            Gauge,
            &[("mode", mode.as_str())],
            1.0,
        ));
    }
    m
}

/// `apitap_build_info{version} 1`.
pub fn build_info() -> SelfMetric {
    metric(
        "apitap_build_info",
        "Build of the running agent.",
        MetricKind::Gauge,
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    )
}

/// `process_resident_memory_bytes`, `process_cpu_seconds_total`, `process_open_fds` from /proc
/// (the names Prometheus client libraries use, so standard dashboards work).
pub fn process() -> Vec<SelfMetric> {
    let mut m = Vec::with_capacity(3);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as f64;
    // SAFETY: as above.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    if let Ok(statm) = std::fs::read_to_string("/proc/self/statm")
        && let Some(rss) = statm
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse::<f64>().ok())
    {
        m.push(metric(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            MetricKind::Gauge,
            &[],
            rss * page,
        ));
    }
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat")
        && let Some(after) = stat.rsplit_once(')').map(|(_, rest)| rest)
    {
        // Fields after the command name: state is field 3; utime and stime are 14 and 15.
        let f: Vec<&str> = after.split_whitespace().collect();
        let cpu = f
            .get(11)
            .zip(f.get(12))
            .and_then(|(u, s)| Some(u.parse::<f64>().ok()? + s.parse::<f64>().ok()?));
        if let Some(cpu) = cpu {
            m.push(metric(
                "process_cpu_seconds_total",
                "User and system CPU time spent in seconds.",
                MetricKind::Counter,
                &[],
                cpu / ticks,
            ));
        }
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        m.push(metric(
            "process_open_fds",
            "Number of open file descriptors.",
            MetricKind::Gauge,
            &[],
            dir.count() as f64,
        ));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_metrics_read_this_process() {
        let m = process();
        let rss = m
            .iter()
            .find(|m| m.name == "process_resident_memory_bytes")
            .expect("rss");
        assert!(rss.value > 1024.0 * 1024.0);
        assert!(m.iter().any(|m| m.name == "process_cpu_seconds_total"));
    }

    #[test]
    fn capture_metrics_carry_losses_and_labels() {
        let s = StatsSnapshot {
            events_lost: 3,
            events_dropped: 2,
            ..Default::default()
        };
        let m = capture(&s);
        let lost = m
            .iter()
            .find(|m| m.name == "apitap_events_lost_total")
            .expect("lost");
        assert_eq!(lost.value, 3.0);
        let dropped = m
            .iter()
            .find(|m| m.name == "apitap_events_dropped_total")
            .expect("dropped");
        assert_eq!(dropped.labels, vec![("stage".into(), "capture".into())]);
    }

    #[test]
    fn capture_metrics_render_as_prometheus_text() {
        use agent_core::aggregate::Aggregator;
        use agent_core::export::{Format, prometheus};
        let s = StatsSnapshot {
            events_lost: 3,
            events_dropped: 2,
            programs_attached: 4,
            ..Default::default()
        };
        let mut m = capture(&s);
        m.push(build_info());
        let text = prometheus::render(
            &Aggregator::default().snapshot(0),
            &m,
            Format::from_accept(Some("text/plain")),
        );
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
