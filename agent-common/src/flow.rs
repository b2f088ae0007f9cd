//! Burst state per flow direction, kept by the kernel to decide which segments start a
//! message burst (and are copied) and which continue one (length-only records).

/// One direction of a TCP connection, as seen on the wire: the packet's own source and
/// destination. Addresses as in [`crate::SegmentEvent`] (IPv4 in the first four bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
    pub sport: u16,
    pub dport: u16,
}

const _: () = assert!(core::mem::size_of::<FlowKey>() == 36);

/// What the kernel remembers of a flow direction's bursts.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowState {
    /// The acknowledgement number of the current burst: a segment acknowledging something else
    /// comes after the peer sent data, and starts a new burst. (Sequence order is not checked:
    /// a burst's first segment is told by its acknowledgement number whatever order segments
    /// arrive in, and loopback and multi-queue NICs reorder across CPUs.)
    pub ack: u32,
    /// Non-zero: every segment of this flow direction is copied, because the connection
    /// speaks HTTP/2, whose frame headers can lie anywhere in a burst (set for both
    /// directions when the client's first bytes are the HTTP/2 connection preface).
    pub copy_all: u32,
}

const _: () = assert!(core::mem::size_of::<FlowState>() == 8);

/// The first eight bytes of the HTTP/2 client connection preface (`PRI * HTTP/2.0...`), as
/// one little-endian word, the way the classifier compares them.
pub const H2_PREFACE_HEAD: u64 = u64::from_le_bytes(*b"PRI * HT");

#[cfg(feature = "user")]
// SAFETY: repr(C) plain old data without padding (sizes asserted above).
unsafe impl aya::Pod for FlowKey {}
#[cfg(feature = "user")]
// SAFETY: as above.
unsafe impl aya::Pod for FlowState {}
