//! Cumulative engine counters: every byte or message the engine could not account for is
//! counted here, and the agent exports them as `apitap_*` self-metrics.

/// Why a message could not be framed cleanly (the `reason` label of the parse-error counter).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(usize)]
pub enum ParseErrorReason {
    /// httparse rejected a request head.
    RequestHead,
    /// httparse rejected a response head.
    ResponseHead,
    /// More header lines than `max_headers`.
    TooManyHeaders,
    /// No end of head within `max_head_bytes`.
    HeadTooLarge,
    /// A Content-Length that is not a decimal number.
    InvalidContentLength,
    /// Several Content-Length values that differ.
    ConflictingContentLength,
    /// Transfer-Encoding together with Content-Length (treated as chunked, still recorded).
    TransferEncodingWithContentLength,
    /// A request Transfer-Encoding whose final coding is not chunked.
    UnsupportedTransferEncoding,
    /// Bad chunk-size line, chunk terminator or trailer section.
    BadChunk,
}

impl ParseErrorReason {
    pub const ALL: [ParseErrorReason; 9] = [
        ParseErrorReason::RequestHead,
        ParseErrorReason::ResponseHead,
        ParseErrorReason::TooManyHeaders,
        ParseErrorReason::HeadTooLarge,
        ParseErrorReason::InvalidContentLength,
        ParseErrorReason::ConflictingContentLength,
        ParseErrorReason::TransferEncodingWithContentLength,
        ParseErrorReason::UnsupportedTransferEncoding,
        ParseErrorReason::BadChunk,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ParseErrorReason::RequestHead => "request_head",
            ParseErrorReason::ResponseHead => "response_head",
            ParseErrorReason::TooManyHeaders => "too_many_headers",
            ParseErrorReason::HeadTooLarge => "head_too_large",
            ParseErrorReason::InvalidContentLength => "invalid_content_length",
            ParseErrorReason::ConflictingContentLength => "conflicting_content_length",
            ParseErrorReason::TransferEncodingWithContentLength => "te_with_content_length",
            ParseErrorReason::UnsupportedTransferEncoding => "unsupported_transfer_encoding",
            ParseErrorReason::BadChunk => "bad_chunk",
        }
    }
}

const REASON_NAMES: [&str; ParseErrorReason::ALL.len()] = {
    let mut names = [""; ParseErrorReason::ALL.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = ParseErrorReason::ALL[i].as_str();
        i += 1;
    }
    names
};

/// Engine counters. All are cumulative except those marked gauge.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Segments ingested.
    pub segments: u64,
    /// True payload bytes of ingested segments (copied or not).
    pub payload_bytes: u64,
    /// Gauge: flows in the table.
    pub flows_tracked: u64,
    pub flows_opened: u64,
    /// Flows closed by FIN in both directions or RST.
    pub flows_closed: u64,
    pub flows_evicted_idle: u64,
    /// Flows evicted (least recently used first) because of `max_flows` or `total_budget_bytes`.
    pub flows_evicted_budget: u64,
    /// Sequence-space bytes that never arrived.
    pub gap_bytes: u64,
    /// Times the engine gave up waiting for missing bytes, plus uncopied bytes inside a head.
    pub gaps: u64,
    /// Payload bytes seen on the wire but not copied by the capture.
    pub uncopied_bytes: u64,
    /// Bytes received again after they were already delivered or buffered.
    pub retransmit_bytes: u64,
    /// Overlapping bytes whose content differed from the first copy (which wins).
    pub overlap_conflicts: u64,
    pub out_of_order_segments: u64,
    /// Transactions emitted.
    pub transactions: u64,
    /// Flows on a watched port that do not speak HTTP/1.x (ignored thereafter).
    pub non_http_flows: u64,
    /// Times a direction searched for the next request or status line (mid-stream join, gap,
    /// malformed message).
    pub resyncs: u64,
    /// Final responses with no request to pair with (joined mid-stream or request lost).
    pub orphan_responses: u64,
    /// Responses that arrived after their request was already emitted as a timeout.
    pub late_responses: u64,
    /// Gauge: bytes buffered across flows (out-of-order segments and partial heads).
    pub buffered_bytes: u64,
    /// Parse errors by reason, indexed like [`EngineStats::reasons`].
    pub parse_errors: [u64; ParseErrorReason::ALL.len()],
}

impl EngineStats {
    /// Names of the `parse_errors` slots, in order.
    pub fn reasons() -> &'static [&'static str] {
        &REASON_NAMES
    }

    pub fn parse_error(&mut self, reason: ParseErrorReason) {
        self.parse_errors[reason as usize] += 1;
    }

    /// The count for one reason.
    pub fn parse_errors_for(&self, reason: ParseErrorReason) -> u64 {
        self.parse_errors[reason as usize]
    }
}
