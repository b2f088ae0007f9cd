//! What the flow table counts: segments and bytes taken in, flows opened, closed and evicted,
//! and the bytes held across flows. The engine keeps these next to the other layers' counters.

/// Flow-table counters. All are cumulative except those marked gauge.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowStats {
    /// Segments ingested (every copy, whatever became of it).
    pub segments: u64,
    /// True payload bytes of segments read into a flow (copied or not; duplicates and skipped
    /// segments left out).
    pub payload_bytes: u64,
    /// Payload bytes of those segments seen on the wire but not copied by the capture.
    pub uncopied_bytes: u64,
    /// Copies of a segment seen on another interface than the one its flow is read from (a
    /// request between two pods on one bridge crosses both veths): dropped, counted here.
    pub duplicate_segments: u64,
    /// Segments of flows whose server configuration excludes.
    pub segments_excluded: u64,
    /// Segments of flows whose server is not on this host (outgoing calls), or not discovered
    /// yet.
    pub segments_not_local: u64,
    /// Gauge: flows in the table.
    pub tracked: u64,
    pub opened: u64,
    /// Flows closed by FIN in both directions or RST (or replaced by a new connection on the
    /// same 4-tuple).
    pub closed: u64,
    pub evicted_idle: u64,
    /// Flows evicted (least recently used first) because of `max_flows` or `total_budget_bytes`.
    pub evicted_budget: u64,
    /// Gauge: bytes buffered across flows (out-of-order segments and partial heads).
    pub buffered_bytes: u64,
    /// Gauge: memory the flow table holds (its slots and index, each flow's parser state,
    /// queues and buffers, and the states kept from ended connections), estimated from
    /// capacities at the last sweep.
    pub memory_bytes: u64,
}
