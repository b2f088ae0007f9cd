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

/// One capture self-metric: its name, help, type, fixed labels and where its value comes from.
struct CaptureMetric {
    name: &'static str,
    help: &'static str,
    kind: MetricKind,
    labels: &'static [(&'static str, &'static str)],
    value: fn(&StatsSnapshot) -> u64,
}

const fn counter(
    name: &'static str,
    help: &'static str,
    value: fn(&StatsSnapshot) -> u64,
) -> CaptureMetric {
    CaptureMetric {
        name,
        help,
        kind: MetricKind::Counter,
        labels: &[],
        value,
    }
}

const fn gauge(
    name: &'static str,
    help: &'static str,
    value: fn(&StatsSnapshot) -> u64,
) -> CaptureMetric {
    CaptureMetric {
        kind: MetricKind::Gauge,
        ..counter(name, help, value)
    }
}

const fn copied(
    labels: &'static [(&'static str, &'static str)],
    value: fn(&StatsSnapshot) -> u64,
) -> CaptureMetric {
    CaptureMetric {
        labels,
        ..counter(
            "apitap_copied_segments_total",
            "Segments whose payload prefix the kernel copied, by why: the first data of a flow direction (new_flow), the start of a burst (burst), small (small), a port copied in full (port), or an HTTP/2 connection (h2).",
            value,
        )
    }
}

const CAPTURE_ERRORS_HELP: &str = "Packets whose headers could not be read (kernel) and records that could not be decoded (decode).";

/// Capture counters: the kernel's per-CPU counters summed, plus the reader's own.
const CAPTURE: &[CaptureMetric] = &[
    counter(
        "apitap_packets_seen_total",
        "Packets the classifiers ran on.",
        |s| s.packets_seen,
    ),
    counter(
        "apitap_segments_total",
        "TCP segments of watched ports recorded in the rings (pure ACKs excluded).",
        |s| s.segments,
    ),
    counter(
        "apitap_events_lost_total",
        "Segment records that did not fit in a ring buffer.",
        |s| s.events_lost,
    ),
    counter(
        "apitap_payload_bytes_total",
        "True TCP payload bytes of matched segments.",
        |s| s.payload_bytes,
    ),
    counter(
        "apitap_bytes_captured_total",
        "Payload bytes copied into records.",
        |s| s.copied_bytes,
    ),
    counter(
        "apitap_length_only_segments_total",
        "Segments inside a burst recorded with their length only (the kernel copies heads, not bodies).",
        |s| s.length_only,
    ),
    copied(&[("reason", "new_flow")], |s| s.copied_new_flow),
    copied(&[("reason", "burst")], |s| s.copied_burst),
    copied(&[("reason", "small")], |s| s.copied_small),
    copied(&[("reason", "port")], |s| s.copied_port),
    copied(&[("reason", "h2")], |s| s.copied_h2),
    counter(
        "apitap_empty_segments_skipped_total",
        "Pure ACKs of watched ports skipped in the kernel.",
        |s| s.empty_skipped,
    ),
    counter(
        "apitap_ip_fragments_skipped_total",
        "IPv4 fragments and IPv6 packets with a Fragment header, not captured (seen as reassembly gaps).",
        |s| s.fragments,
    ),
    counter(
        "apitap_headers_pulled_total",
        "Packets whose headers were not in the linear part of the socket buffer and were pulled into it before parsing (a copy of the buffer's head when it is shared; rare on real interfaces and lo).",
        |s| s.headers_pulled,
    ),
    counter(
        "apitap_stack_stamps_total",
        "Response segments timed with the departure time their sender's TCP stack put on them instead of a clock read in the classifier (Linux 5.18+; the rest read the clock).",
        |s| s.stack_stamps,
    ),
    CaptureMetric {
        labels: &[("source", "kernel")],
        ..counter("apitap_capture_errors_total", CAPTURE_ERRORS_HELP, |s| {
            s.kernel_errors
        })
    },
    CaptureMetric {
        labels: &[("source", "decode")],
        ..counter("apitap_capture_errors_total", CAPTURE_ERRORS_HELP, |s| {
            s.decode_errors
        })
    },
    CaptureMetric {
        labels: &[("stage", "capture")],
        // Kept at 0 for dashboards and alert rules: the analysis thread reads the rings in
        // place, so no stage between them can drop; a full ring is `apitap_events_lost_total`.
        ..counter(
            "apitap_events_dropped_total",
            "Events dropped because a pipeline stage was full (none since the rings are read in place; a full ring counts in apitap_events_lost_total).",
            |_| 0,
        )
    },
    counter(
        "apitap_events_read_total",
        "Segment records read from the rings.",
        |s| s.events_read,
    ),
    counter(
        "apitap_ring_bytes_total",
        "Ring buffer bytes consumed by records (headers, copied payload, alignment).",
        |s| s.ring_bytes,
    ),
    counter(
        "apitap_ring_wakeups_total",
        "Times a classifier woke the reader early because its ring was half full.",
        |s| s.kernel_wakeups,
    ),
    gauge(
        "apitap_ring_held_bytes",
        "Bytes waiting in the rings at the last tick.",
        |s| s.ring_held_bytes,
    ),
    gauge(
        "apitap_ring_peak_bytes",
        "The most bytes one ring held when a drain began, since the start: a ring's size (capacity / rings) minus this is the headroom the busiest moment left. Up to half a ring is expected when traffic starts after a quiet spell (the reader is woken at half); more means the reader was slow.",
        |s| s.ring_peak_bytes,
    ),
    gauge(
        "apitap_ring_capacity_bytes",
        "Total size of the ring buffers, all apitap_rings of them.",
        |s| s.ring_capacity_bytes,
    ),
    gauge(
        "apitap_rings",
        "Ring buffers the classifiers write to: one per CPU, or fewer, shared by several CPUs, when --ring-bytes is too small for one per CPU. One ring holds apitap_ring_capacity_bytes / apitap_rings.",
        |s| s.rings,
    ),
    gauge(
        "apitap_ports_copied_in_full",
        "Watched server ports whose segments are all copied, because their messages could not be framed from heads alone (chunked bodies, HTTP/2).",
        |s| s.ports_copied_in_full,
    ),
    gauge(
        "apitap_attached_programs",
        "Classifier programs attached.",
        |s| s.programs_attached,
    ),
    gauge(
        "apitap_attached_interfaces",
        "Interfaces with classifiers attached.",
        |s| s.interfaces_attached,
    ),
    counter(
        "apitap_stale_filters_removed_total",
        "TC filters left by a killed apitap and removed at attach time.",
        |s| s.stale_filters_removed,
    ),
];

/// Capture self-metrics from one snapshot of the counters.
pub fn capture(s: &StatsSnapshot) -> Vec<SelfMetric> {
    let mut m: Vec<SelfMetric> = CAPTURE
        .iter()
        .map(|m| metric(m.name, m.help, m.kind, m.labels, (m.value)(s) as f64))
        .collect();
    if let Some(mode) = s.attach_mode {
        m.push(metric(
            "apitap_attach_mode",
            "How the classifiers are attached: tcx (BPF links owned by the process) or netlink (filters on the clsact qdisc).",
            MetricKind::Gauge,
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
    if let Some(pss) = pss_bytes() {
        m.push(metric(
            "apitap_process_pss_bytes",
            "Proportional set size: resident memory with shared pages divided among their mappings (the ring buffers are mapped twice and count once here).",
            MetricKind::Gauge,
            &[],
            pss as f64,
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

/// `Pss:` of /proc/self/smaps_rollup, in bytes.
pub fn pss_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/smaps_rollup").ok()?;
    let kb = text
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))?
        .split_whitespace()
        .next()?
        .parse::<u64>()
        .ok()?;
    Some(kb * 1024)
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
        let pss = m
            .iter()
            .find(|m| m.name == "apitap_process_pss_bytes")
            .expect("pss");
        assert!(pss.value > 0.0 && pss.value <= rss.value * 1.01);
    }

    #[test]
    fn capture_metrics_carry_losses_and_labels() {
        let s = StatsSnapshot {
            events_lost: 3,
            decode_errors: 2,
            ..Default::default()
        };
        let m = capture(&s);
        let lost = m
            .iter()
            .find(|m| m.name == "apitap_events_lost_total")
            .expect("lost");
        assert_eq!(lost.value, 3.0);
        let decode = m
            .iter()
            .find(|m| m.labels == vec![("source".into(), "decode".into())])
            .expect("decode errors");
        assert_eq!(decode.value, 2.0);
    }

    #[test]
    fn capture_metrics_render_as_prometheus_text() {
        use agent_core::aggregate::Aggregator;
        use agent_core::export::{Format, prometheus};
        let s = StatsSnapshot {
            events_lost: 3,
            fragments: 2,
            programs_attached: 4,
            ring_capacity_bytes: 8 << 20,
            rings: 2,
            ring_peak_bytes: 1 << 20,
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
            "apitap_ip_fragments_skipped_total 2",
            "apitap_ring_capacity_bytes 8388608",
            "apitap_rings 2",
            "apitap_ring_peak_bytes 1048576",
            "apitap_length_only_segments_total 0",
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
