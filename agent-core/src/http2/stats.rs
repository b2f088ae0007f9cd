//! HTTP/2 layer counters (cumulative), exported as `apitap_h2_*` self-metrics.

/// Why parsing of an HTTP/2 connection ended (the `reason` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(usize)]
pub enum Malformed {
    /// The client's first bytes were not the connection preface.
    Preface,
    /// A frame longer than SETTINGS_MAX_FRAME_SIZE.
    FrameSize,
    /// A frame on the wrong stream or with a length its type forbids.
    FrameShape,
    /// Padding longer than its frame.
    Padding,
    /// A header block HPACK cannot decode (COMPRESSION_ERROR).
    Hpack,
    /// A frame out of order: no CONTINUATION after an unfinished header block, CONTINUATION
    /// without one, a client stream id that is even.
    Protocol,
}

impl Malformed {
    pub const ALL: [Malformed; 6] = [
        Malformed::Preface,
        Malformed::FrameSize,
        Malformed::FrameShape,
        Malformed::Padding,
        Malformed::Hpack,
        Malformed::Protocol,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Malformed::Preface => "h2_preface",
            Malformed::FrameSize => "h2_frame_size",
            Malformed::FrameShape => "h2_frame_shape",
            Malformed::Padding => "h2_padding",
            Malformed::Hpack => "h2_hpack",
            Malformed::Protocol => "h2_protocol",
        }
    }
}

/// HTTP/2 counters. All are cumulative.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct H2Stats {
    /// Connections parsed as HTTP/2.
    pub connections: u64,
    /// Of those, joined after their start (no preface seen).
    pub joined_connections: u64,
    /// Streams recorded as transactions.
    pub streams: u64,
    /// gRPC calls among them.
    pub grpc_calls: u64,
    /// Frames parsed.
    pub frames: u64,
    /// Header fields that could not be decoded (a dynamic-table entry we never saw).
    pub unknown_fields: u64,
    /// Header blocks that could not be decoded: lost or uncopied bytes, or larger than
    /// `max_header_block_bytes` (the dynamic table is unknown afterwards).
    pub header_blocks_lost: u64,
    /// Of those, blocks over the size cap.
    pub header_blocks_too_large: u64,
    /// Dynamic table size updates above `max_table_bytes` (the table was kept at the cap).
    pub table_size_capped: u64,
    /// Streams not tracked because `max_streams` were open.
    pub streams_over_limit: u64,
    /// Responses on streams whose request was never seen (joined mid-stream): not recorded.
    pub orphan_streams: u64,
    /// Responses that came after their stream was recorded as a timeout.
    pub late_streams: u64,
    /// Times a direction lost frame alignment and searched for the next frame by shape.
    pub resyncs: u64,
    /// Bytes skipped while searching for a frame boundary.
    pub resync_skipped_bytes: u64,
    pub rst_streams: u64,
    pub goaways: u64,
    /// Connections whose parsing ended on a malformed frame, by reason.
    pub malformed: [u64; Malformed::ALL.len()],
}

impl H2Stats {
    pub fn malformed(&mut self, reason: Malformed) {
        self.malformed[reason as usize] += 1;
    }

    pub fn malformed_for(&self, reason: Malformed) -> u64 {
        self.malformed[reason as usize]
    }

    /// Adds `other` to `self` (the engine sums per-flow or per-shard counters).
    pub fn add(&mut self, other: &H2Stats) {
        let H2Stats {
            connections,
            joined_connections,
            streams,
            grpc_calls,
            frames,
            unknown_fields,
            header_blocks_lost,
            header_blocks_too_large,
            table_size_capped,
            streams_over_limit,
            orphan_streams,
            late_streams,
            resyncs,
            resync_skipped_bytes,
            rst_streams,
            goaways,
            malformed,
        } = other;
        self.connections += connections;
        self.joined_connections += joined_connections;
        self.streams += streams;
        self.grpc_calls += grpc_calls;
        self.frames += frames;
        self.unknown_fields += unknown_fields;
        self.header_blocks_lost += header_blocks_lost;
        self.header_blocks_too_large += header_blocks_too_large;
        self.table_size_capped += table_size_capped;
        self.streams_over_limit += streams_over_limit;
        self.orphan_streams += orphan_streams;
        self.late_streams += late_streams;
        self.resyncs += resyncs;
        self.resync_skipped_bytes += resync_skipped_bytes;
        self.rst_streams += rst_streams;
        self.goaways += goaways;
        for (a, b) in self.malformed.iter_mut().zip(malformed) {
            *a += b;
        }
    }
}
