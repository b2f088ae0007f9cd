//! The ABI shared by the kernel programs (agent-ebpf) and user space (agent).
//!
//! Wire types use fixed-width integers and arrays only, carry no hidden padding and are
//! checked for size at compile time. A ring record is a [`SegmentEvent`] header immediately
//! followed by `copied_len` payload bytes, padded to 8 bytes; each CPU writes its own ring
//! (see [`ring`]).
//!
//! What the kernel copies (the head-only policy, see agent-ebpf's `copy` module): the payload
//! prefix of a segment that starts a *burst* (the first data of a flow direction, or data after
//! the peer sent something, or a segment that does not continue the previous one) and of every
//! segment of at most `SMALL_COPY_LEN` bytes, and every segment of a port user space asked to
//! have copied in full; every other segment is a length-only record (`copied_len` 0, true
//! `payload_len`), which user space accounts for by sequence number.
#![no_std]

mod counters;
mod event;
mod flow;
mod ports;
pub mod ring;

pub use counters::{COUNTER_SLOTS, Counter, CpuState};
pub use event::{EVENT_VERSION, KIND_SEGMENT, SEGMENT_EVENT_BYTES, SegmentEvent, copy_reason};
pub use flow::{FlowKey, FlowState, H2_PREFACE_HEAD};
pub use ports::{PortBitmap, Ports};
pub use ring::{RingChunk, RingPos};

/// Largest payload prefix the kernel copies per segment.
pub const MAX_SNAP_LEN: u32 = 8192;
/// Default payload prefix copied at the start of a burst.
pub const DEFAULT_SNAP_LEN: u32 = 4096;
/// Segments with at most this many payload bytes are always copied (chunk terminators,
/// small pipelined messages): they cost little ring and may hold a head.
pub const DEFAULT_SMALL_COPY_LEN: u32 = 512;
/// Default ring budget in bytes, split into one ring per CPU (each a power of two).
pub const DEFAULT_RING_BYTES: u32 = 8 * 1024 * 1024;
/// Smallest ring per CPU: one chunk.
pub const MIN_RING_BYTES_PER_CPU: u32 = ring::RING_CHUNK_BYTES;
/// Flow directions whose burst state the kernel remembers (least recently used evicted; an
/// evicted direction's next segment is treated as a burst start and copied).
pub const FLOW_STATE_ENTRIES: u32 = 65_536;

/// How far past its CPU's latest clock reading a response's departure time may lie and still
/// be used as the record's time (1 ms). Later ones (pacing, a stale reading) read the clock.
pub const STACK_STAMP_SLACK_NS: u64 = 1_000_000;

/// Map names, shared so the loader never spells them twice.
pub mod maps {
    /// Mmap-able `Array<RingChunk>`: every CPU's ring, `RING_CHUNKS` elements each.
    pub const RING_DATA: &str = "RING_DATA";
    /// Mmap-able `Array<RingPos>` indexed by CPU id: each ring's positions.
    pub const RING_POS: &str = "RING_POS";
    /// A small `BPF_MAP_TYPE_RINGBUF` that only wakes the reader when a ring is filling up.
    pub const WAKE: &str = "WAKE";
    /// `Array<Ports>` with one entry: the watched server ports, and those copied in full.
    pub const PORTS: &str = "PORTS";
    /// `PerCpuArray<CpuState>` with one entry: counters and wake-up accounting.
    pub const CPU_STATE: &str = "CPU_STATE";
    /// `LruHashMap<FlowKey, FlowState>`: burst state per flow direction.
    pub const FLOWS: &str = "FLOWS";
}

/// Loader globals (patched with `EbpfLoader::override_global`).
pub mod globals {
    /// `u32`: payload bytes to copy at the start of a burst, clamped to `MAX_SNAP_LEN`.
    pub const SNAP_LEN: &str = "SNAP_LEN";
    /// `u32`: segments with at most this many payload bytes are always copied.
    pub const SMALL_COPY_LEN: &str = "SMALL_COPY_LEN";
    /// `u32`: a CPU checks its ring's fill level after writing this many bytes.
    pub const WAKE_CHECK_BYTES: &str = "WAKE_CHECK_BYTES";
    /// `u32`: the reader is woken when this many bytes are pending in a ring (else it drains
    /// on its own timer).
    pub const WAKE_AT_BYTES: &str = "WAKE_AT_BYTES";
    /// `u32`: non-zero when the kernel gives TC programs `__sk_buff.tstamp_type` (5.18+):
    /// responses may then be timed with their departure time (see the classifier's `stamp`).
    pub const STACK_STAMPS: &str = "STACK_STAMPS";
    /// `u32`: chunks per CPU ring (a power of two; see [`crate::ring`]).
    pub const RING_CHUNKS: &str = "RING_CHUNKS";
}

/// Program names in the object.
pub mod programs {
    pub const TC_INGRESS: &str = "tc_ingress";
    pub const TC_EGRESS: &str = "tc_egress";
}

/// Direction of a segment relative to the watched server.
pub mod direction {
    /// Client -> server (destination port is watched).
    pub const TO_SERVER: u8 = 0;
    /// Server -> client (source port is watched).
    pub const TO_CLIENT: u8 = 1;
}

/// TCP flag bits as carried in [`SegmentEvent::tcp_flags`] (the TCP header's low byte).
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

/// Hook the event was taken at.
pub mod hook {
    pub const INGRESS: u8 = 0;
    pub const EGRESS: u8 = 1;
}
