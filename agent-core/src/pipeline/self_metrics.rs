//! The engine's counters as `apitap_*` self-metrics: every byte or message it could not
//! account for is visible.

use crate::engine::EngineStats;
use crate::export::{MetricKind, SelfMetric};

/// Engine counters as self-metrics (names are part of the metric catalogue in the README).
pub fn engine_self_metrics(s: &EngineStats) -> Vec<SelfMetric> {
    use MetricKind::{Counter, Gauge};
    let plain = |name: &str, help: &str, kind, value: u64| SelfMetric {
        name: name.into(),
        help: help.into(),
        kind,
        labels: Vec::new(),
        value: value as f64,
    };
    let labelled = |name: &str, help: &str, key: &str, label: &str, value: u64| SelfMetric {
        name: name.into(),
        help: help.into(),
        kind: Counter,
        labels: vec![(key.into(), label.into())],
        value: value as f64,
    };
    let mut m = vec![
        plain(
            "apitap_engine_segments_total",
            "TCP segments analysed by the HTTP engine.",
            Counter,
            s.segments,
        ),
        plain(
            "apitap_engine_payload_bytes_total",
            "True payload bytes of analysed segments.",
            Counter,
            s.payload_bytes,
        ),
        plain(
            "apitap_flows_tracked",
            "TCP flows in the flow table.",
            Gauge,
            s.flows_tracked,
        ),
        plain(
            "apitap_flows_opened_total",
            "TCP flows added to the flow table.",
            Counter,
            s.flows_opened,
        ),
        plain(
            "apitap_flows_closed_total",
            "TCP flows ended by FIN or RST.",
            Counter,
            s.flows_closed,
        ),
        labelled(
            "apitap_flows_evicted_total",
            "Flows evicted before they ended.",
            "reason",
            "idle",
            s.flows_evicted_idle,
        ),
        labelled(
            "apitap_flows_evicted_total",
            "Flows evicted before they ended.",
            "reason",
            "budget",
            s.flows_evicted_budget,
        ),
        plain(
            "apitap_reassembly_gaps_total",
            "Times bytes of a stream were lost (or not copied inside a message head).",
            Counter,
            s.gaps,
        ),
        plain(
            "apitap_reassembly_gap_bytes_total",
            "Sequence-space bytes that never arrived.",
            Counter,
            s.gap_bytes,
        ),
        plain(
            "apitap_uncopied_bytes_total",
            "Payload bytes seen but not copied by the capture (skipped inside bodies).",
            Counter,
            s.uncopied_bytes,
        ),
        plain(
            "apitap_retransmit_bytes_total",
            "Payload bytes received again after their first copy.",
            Counter,
            s.retransmit_bytes,
        ),
        plain(
            "apitap_overlap_conflicts_total",
            "Overlapping bytes whose content differed from the first copy (first copy wins).",
            Counter,
            s.overlap_conflicts,
        ),
        plain(
            "apitap_out_of_order_segments_total",
            "Segments that arrived ahead of missing bytes.",
            Counter,
            s.out_of_order_segments,
        ),
        plain(
            "apitap_transactions_total",
            "HTTP transactions produced by the engine.",
            Counter,
            s.transactions,
        ),
        plain(
            "apitap_non_http_flows_total",
            "Flows on a watched port that do not speak HTTP/1.x (ignored).",
            Counter,
            s.non_http_flows,
        ),
        plain(
            "apitap_resyncs_total",
            "Times a stream searched for the next message start (mid-stream join, gap, malformed message).",
            Counter,
            s.resyncs,
        ),
        plain(
            "apitap_orphan_responses_total",
            "Responses with no request to pair with.",
            Counter,
            s.orphan_responses,
        ),
        plain(
            "apitap_late_responses_total",
            "Responses that arrived after their request was reported as a timeout.",
            Counter,
            s.late_responses,
        ),
        plain(
            "apitap_reassembly_buffered_bytes",
            "Bytes buffered for reassembly across flows.",
            Gauge,
            s.buffered_bytes,
        ),
    ];
    for (reason, &count) in EngineStats::reasons().iter().zip(s.parse_errors.iter()) {
        m.push(labelled(
            "apitap_parse_errors_total",
            "HTTP messages that could not be framed cleanly, by reason.",
            "reason",
            reason,
            count,
        ));
    }
    m
}
