//! What HTTP/1.x counts: transactions, resynchronisations, unpaired responses and parse
//! errors by reason. The engine sums these with the other layers' counters for export.

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

/// HTTP/1.x framing and pairing counters, summed over every flow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpStats {
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
    /// Message starts or heads whose bytes the capture saw but did not copy (a gap to HTTP,
    /// though reassembly lost nothing; exported with the reassembly gaps).
    pub uncopied_head_gaps: u64,
    /// Parse errors by reason, indexed like [`HttpStats::reasons`].
    pub parse_errors: [u64; ParseErrorReason::ALL.len()],
}

impl HttpStats {
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
