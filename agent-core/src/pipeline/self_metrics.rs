//! The engine's counters as `apitap_*` self-metrics: every byte or message it could not
//! account for is visible. Each layer counts in its own stats; this table is where they meet,
//! and where a figure two layers contribute to is summed (`apitap_reassembly_gaps_total`).

use crate::engine::{EngineStats, ParseErrorReason};
use crate::export::MetricKind::{Counter, Gauge};
use crate::export::{MetricRow, SelfMetric, table_samples};
use crate::http2::Malformed;

const EVICTED: &str = "apitap_flows_evicted_total";
const EVICTED_HELP: &str = "Flows evicted before they ended.";
const FLOW_BYTES: &str = "apitap_flow_payload_bytes_total";
const FLOW_BYTES_HELP: &str =
    "TCP payload bytes of watched flows, each sequence range counted once.";
const PARSE_ERRORS: &str = "apitap_parse_errors_total";
const PARSE_ERRORS_HELP: &str = "HTTP/1.x messages that could not be framed cleanly, and HTTP/2 connections whose parsing ended on a malformed frame (h2_*), by reason.";

/// Every engine figure but the parse errors (one row per reason, below). Names are part of the
/// metric catalogue in the README.
const SKIPPED: &str = "apitap_segments_skipped_total";
const SKIPPED_HELP: &str = "Segments the engine did not read, by reason: duplicate (the same segment on another interface), excluded (by config), not_local (no server of this host listens there).";

const ENGINE: [MetricRow<EngineStats>; 42] = [
    MetricRow::plain(
        "apitap_engine_segments_total",
        "TCP segments analysed by the HTTP engine.",
        Counter,
        |s| s.flows.segments,
    ),
    MetricRow::plain(
        "apitap_engine_payload_bytes_total",
        "True payload bytes of analysed segments.",
        Counter,
        |s| s.flows.payload_bytes,
    ),
    MetricRow {
        label: Some(("reason", "duplicate")),
        ..MetricRow::plain(SKIPPED, SKIPPED_HELP, Counter, |s| {
            s.flows.duplicate_segments
        })
    },
    MetricRow {
        label: Some(("reason", "excluded")),
        ..MetricRow::plain(SKIPPED, SKIPPED_HELP, Counter, |s| {
            s.flows.segments_excluded
        })
    },
    MetricRow {
        label: Some(("reason", "not_local")),
        ..MetricRow::plain(SKIPPED, SKIPPED_HELP, Counter, |s| {
            s.flows.segments_not_local
        })
    },
    MetricRow::plain(
        "apitap_flows_tracked",
        "TCP flows in the flow table.",
        Gauge,
        |s| s.flows.tracked,
    ),
    MetricRow::plain(
        "apitap_flows_opened_total",
        "TCP flows added to the flow table.",
        Counter,
        |s| s.flows.opened,
    ),
    MetricRow::plain(
        "apitap_flows_closed_total",
        "TCP flows ended by FIN or RST.",
        Counter,
        |s| s.flows.closed,
    ),
    MetricRow {
        label: Some(("reason", "idle")),
        ..MetricRow::plain(EVICTED, EVICTED_HELP, Counter, |s| s.flows.evicted_idle)
    },
    MetricRow {
        label: Some(("reason", "budget")),
        ..MetricRow::plain(EVICTED, EVICTED_HELP, Counter, |s| s.flows.evicted_budget)
    },
    MetricRow::plain(
        "apitap_reassembly_gaps_total",
        "Times bytes of a stream were lost (or not copied inside a message head).",
        Counter,
        EngineStats::gaps,
    ),
    MetricRow::plain(
        "apitap_reassembly_gap_bytes_total",
        "Sequence-space bytes that never arrived.",
        Counter,
        |s| s.reassembly.gap_bytes,
    ),
    MetricRow::plain(
        "apitap_uncopied_bytes_total",
        "Payload bytes seen but not copied by the capture (skipped inside bodies).",
        Counter,
        |s| s.flows.uncopied_bytes,
    ),
    MetricRow::plain(
        "apitap_retransmit_bytes_total",
        "Payload bytes received again after their first copy.",
        Counter,
        |s| s.reassembly.retransmit_bytes,
    ),
    MetricRow::plain(
        "apitap_overlap_conflicts_total",
        "Overlapping bytes whose content differed from the first copy (first copy wins).",
        Counter,
        |s| s.reassembly.overlap_conflicts,
    ),
    MetricRow::plain(
        "apitap_out_of_order_segments_total",
        "Segments that arrived ahead of missing bytes.",
        Counter,
        |s| s.reassembly.out_of_order_segments,
    ),
    MetricRow::plain(
        "apitap_reorder_evidence_total",
        "Times the peer acknowledged bytes not seen yet: evidence of loss, held for the reorder window.",
        Counter,
        |s| s.reassembly.reorder_evidence,
    ),
    MetricRow::plain(
        "apitap_reorder_recovered_total",
        "Acknowledged bytes that arrived within the reorder window (reordering, not loss).",
        Counter,
        |s| s.reassembly.reorder_recovered,
    ),
    MetricRow::plain(
        "apitap_reorder_window_expired_total",
        "Reorder windows that passed without the acknowledged bytes, which were declared lost.",
        Counter,
        |s| s.reassembly.reorder_window_expired,
    ),
    MetricRow::plain(
        "apitap_reorder_limit_total",
        "Times the reorder bounds (a segment past the reorder window, segments held or parked, flow budget) ended a wait early.",
        Counter,
        |s| s.reassembly.reorder_limit,
    ),
    MetricRow::plain(
        "apitap_transactions_total",
        "HTTP transactions produced by the engine (HTTP/1.x exchanges and HTTP/2 streams).",
        Counter,
        EngineStats::transactions,
    ),
    MetricRow::plain(
        "apitap_non_http_flows_total",
        "Flows on a watched port that do not speak HTTP/1.x (ignored).",
        Counter,
        |s| s.http.non_http_flows,
    ),
    MetricRow::plain(
        "apitap_resyncs_total",
        "Times a stream searched for the next message start or HTTP/2 frame (mid-stream join, gap, malformed message).",
        Counter,
        |s| s.http.resyncs + s.h2.resyncs,
    ),
    MetricRow::plain(
        "apitap_orphan_responses_total",
        "Responses (HTTP/2: streams) with no request to pair with.",
        Counter,
        |s| s.http.orphan_responses + s.h2.orphan_streams,
    ),
    MetricRow::plain(
        "apitap_late_responses_total",
        "Responses that arrived after their request was reported as a timeout.",
        Counter,
        |s| s.http.late_responses + s.h2.late_streams,
    ),
    MetricRow::plain(
        "apitap_h2_connections_total",
        "Connections parsed as HTTP/2.",
        Counter,
        |s| s.h2.connections,
    ),
    MetricRow::plain(
        "apitap_h2_joined_connections_total",
        "HTTP/2 connections joined after their start (found by frame shape; their HPACK tables start unknown).",
        Counter,
        |s| s.h2.joined_connections,
    ),
    MetricRow::plain(
        "apitap_h2_streams_total",
        "HTTP/2 streams recorded as transactions.",
        Counter,
        |s| s.h2.streams,
    ),
    MetricRow::plain(
        "apitap_grpc_calls_total",
        "gRPC calls among the HTTP/2 streams.",
        Counter,
        |s| s.h2.grpc_calls,
    ),
    MetricRow::plain(
        "apitap_h2_frames_total",
        "HTTP/2 frames parsed.",
        Counter,
        |s| s.h2.frames,
    ),
    MetricRow::plain(
        "apitap_h2_unknown_fields_total",
        "HTTP/2 header fields that could not be decoded (a dynamic-table entry from before the agent joined or a lost block); reported as unknown, never guessed.",
        Counter,
        |s| s.h2.unknown_fields,
    ),
    MetricRow::plain(
        "apitap_h2_header_blocks_lost_total",
        "HTTP/2 header blocks not decoded (bytes lost or not copied, or over the size cap); the HPACK table is unknown afterwards.",
        Counter,
        |s| s.h2.header_blocks_lost,
    ),
    MetricRow::plain(
        "apitap_h2_header_blocks_too_large_total",
        "HTTP/2 header blocks over the header block size cap (also counted as lost).",
        Counter,
        |s| s.h2.header_blocks_too_large,
    ),
    MetricRow::plain(
        "apitap_h2_table_size_capped_total",
        "HPACK dynamic table size updates above the agent's cap (the table is kept at the cap).",
        Counter,
        |s| s.h2.table_size_capped,
    ),
    MetricRow::plain(
        "apitap_h2_streams_over_limit_total",
        "HTTP/2 streams not recorded because the per-connection stream limit was reached.",
        Counter,
        |s| s.h2.streams_over_limit,
    ),
    MetricRow::plain(
        "apitap_h2_resync_skipped_bytes_total",
        "Bytes skipped while searching for an HTTP/2 frame boundary.",
        Counter,
        |s| s.h2.resync_skipped_bytes,
    ),
    MetricRow::plain(
        "apitap_h2_rst_streams_total",
        "HTTP/2 RST_STREAM frames.",
        Counter,
        |s| s.h2.rst_streams,
    ),
    MetricRow::plain(
        "apitap_h2_goaways_total",
        "HTTP/2 GOAWAY frames.",
        Counter,
        |s| s.h2.goaways,
    ),
    MetricRow::plain(
        "apitap_reassembly_buffered_bytes",
        "Bytes buffered for reassembly across flows.",
        Gauge,
        |s| s.flows.buffered_bytes,
    ),
    MetricRow::plain(
        "apitap_flow_table_bytes",
        "Memory the flow table holds (slots, parser state, queues, buffers, states kept from ended connections for new ones, and the memory of recently closed connections), estimated from capacities at the last sweep.",
        Gauge,
        |s| s.flows.memory_bytes,
    ),
    MetricRow {
        label: Some(("direction", "request")),
        ..MetricRow::plain(FLOW_BYTES, FLOW_BYTES_HELP, Counter, |s| {
            s.reassembly.first_seen_request_bytes
        })
    },
    MetricRow {
        label: Some(("direction", "response")),
        ..MetricRow::plain(FLOW_BYTES, FLOW_BYTES_HELP, Counter, |s| {
            s.reassembly.first_seen_response_bytes
        })
    },
];

/// Engine counters as self-metrics: the table, then one parse-error sample per reason.
pub fn engine_self_metrics(s: &EngineStats) -> Vec<SelfMetric> {
    let mut m = table_samples(&ENGINE, s);
    m.extend(ParseErrorReason::ALL.iter().map(|&reason| SelfMetric {
        name: PARSE_ERRORS.to_string(),
        help: PARSE_ERRORS_HELP.to_string(),
        kind: Counter,
        labels: vec![("reason".to_string(), reason.as_str().to_string())],
        value: s.http.parse_errors_for(reason) as f64,
    }));
    m.extend(Malformed::ALL.iter().map(|&reason| SelfMetric {
        name: PARSE_ERRORS.to_string(),
        help: PARSE_ERRORS_HELP.to_string(),
        kind: Counter,
        labels: vec![("reason".to_string(), reason.as_str().to_string())],
        value: s.h2.malformed_for(reason) as f64,
    }));
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{FlowStats, H2Stats, HttpStats};
    use crate::flow::reassembly::ReassemblyStats;

    /// Every counter of every layer reaches an exported figure. The stats are written out
    /// field by field (no `..Default::default()`), so a new counter does not compile here until
    /// it is given a value, and then fails until the table exports it.
    #[test]
    fn every_counter_of_every_layer_is_exported() {
        let stats = EngineStats {
            flows: FlowStats {
                segments: 1,
                payload_bytes: 2,
                uncopied_bytes: 3,
                tracked: 4,
                opened: 5,
                closed: 6,
                evicted_idle: 7,
                evicted_budget: 8,
                buffered_bytes: 9,
                memory_bytes: 50,
                duplicate_segments: 55,
                segments_excluded: 56,
                segments_not_local: 57,
            },
            reassembly: ReassemblyStats {
                gaps: 10,
                gap_bytes: 11,
                retransmit_bytes: 12,
                overlap_conflicts: 13,
                out_of_order_segments: 14,
                first_seen_request_bytes: 48,
                first_seen_response_bytes: 49,
                reorder_evidence: 51,
                reorder_recovered: 52,
                reorder_window_expired: 53,
                reorder_limit: 54,
            },
            http: HttpStats {
                transactions: 15,
                non_http_flows: 16,
                resyncs: 17,
                orphan_responses: 18,
                late_responses: 19,
                uncopied_head_gaps: 100,
                parse_errors: [20, 21, 22, 23, 24, 25, 26, 27, 28],
            },
            h2: H2Stats {
                connections: 29,
                joined_connections: 30,
                streams: 31,
                grpc_calls: 32,
                frames: 33,
                unknown_fields: 34,
                header_blocks_lost: 35,
                header_blocks_too_large: 36,
                table_size_capped: 37,
                streams_over_limit: 38,
                orphan_streams: 1000,
                late_streams: 2000,
                resyncs: 3000,
                resync_skipped_bytes: 39,
                rst_streams: 40,
                goaways: 41,
                malformed: [42, 43, 44, 45, 46, 47],
            },
        };
        let m = engine_self_metrics(&stats);
        let mut values: Vec<u64> = m.iter().map(|s| s.value as u64).collect();
        values.sort_unstable();
        let mut want: Vec<u64> = (1..=57)
            .filter(|v| ![10, 15, 17, 18, 19].contains(v))
            .collect();
        want.push(110); // reassembly gaps + uncopied head gaps
        want.push(15 + 31); // transactions: HTTP/1.x + HTTP/2 streams
        want.push(17 + 3000); // resyncs
        want.push(18 + 1000); // orphan responses + orphan streams
        want.push(19 + 2000); // late responses + late streams
        want.sort_unstable();
        assert_eq!(values, want);
        let families: std::collections::HashSet<&str> = m.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            families.len(),
            39,
            "35 plain figures, skipped segments, evicted, flow bytes and parse errors by labels"
        );
    }
}
