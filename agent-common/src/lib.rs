//! The ABI shared by the kernel programs (agent-ebpf) and user space (agent).
//!
//! Wire types use fixed-width integers and arrays only, carry no hidden padding and are
//! checked for size at compile time. A record in the ring buffer is a [`SegmentEvent`]
//! header immediately followed by `copied_len` payload bytes.
#![no_std]

/// Record kind of a TCP segment event.
pub const KIND_SEGMENT: u8 = 1;
/// Version of the [`SegmentEvent`] layout; bump on any change.
pub const EVENT_VERSION: u8 = 1;

/// Largest payload prefix the kernel copies per segment (the per-CPU scratch size).
pub const MAX_SNAP_LEN: u32 = 8192;
/// Default payload prefix copied per segment.
pub const DEFAULT_SNAP_LEN: u32 = 4096;
/// Default ring buffer size in bytes (a power of two, a multiple of the page size).
pub const DEFAULT_RING_BYTES: u32 = 16 * 1024 * 1024;
/// Most server ports the kernel filter can hold.
pub const MAX_PORTS: u32 = 1024;

/// Map names, shared so the loader never spells them twice.
pub mod maps {
    /// `RingBuf` of [`super::SegmentEvent`] records.
    pub const EVENTS: &str = "EVENTS";
    /// `HashMap<u16 port, u8 1>` of watched server ports.
    pub const PORTS: &str = "PORTS";
    /// `PerCpuArray<u64>` indexed by [`super::Counter`].
    pub const COUNTERS: &str = "COUNTERS";
    /// `PerCpuArray<[u8; SCRATCH_BYTES]>` with one slot: the record being assembled.
    pub const SCRATCH: &str = "SCRATCH";
}

/// Loader globals (patched with `EbpfLoader::set_global`).
pub mod globals {
    /// `u32`: payload bytes to copy per segment, clamped to `MAX_SNAP_LEN`.
    pub const SNAP_LEN: &str = "SNAP_LEN";
    /// `u32`: wake the reader once this many bytes are pending in the ring.
    pub const WAKEUP_BYTES: &str = "WAKEUP_BYTES";
}

/// Program names in the object.
pub mod programs {
    pub const TC_INGRESS: &str = "tc_ingress";
    pub const TC_EGRESS: &str = "tc_egress";
}

/// Per-CPU counters kept by the classifiers.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Packets the classifier ran on.
    PacketsSeen = 0,
    /// TCP segments to or from a watched port (events attempted).
    SegmentsMatched = 1,
    /// Events that did not fit in the ring buffer.
    EventsLost = 2,
    /// Packets whose headers could not be read (truncated, bad lengths).
    Errors = 3,
    /// Payload bytes (true length) of matched segments.
    PayloadBytes = 4,
    /// Payload bytes copied into events.
    CopiedBytes = 5,
    /// Matched segments skipped because they carried nothing (pure ACKs).
    EmptySkipped = 6,
}

/// Number of slots in the counters map.
pub const COUNTER_SLOTS: u32 = 8;

impl Counter {
    pub const ALL: [Counter; 7] = [
        Counter::PacketsSeen,
        Counter::SegmentsMatched,
        Counter::EventsLost,
        Counter::Errors,
        Counter::PayloadBytes,
        Counter::CopiedBytes,
        Counter::EmptySkipped,
    ];
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

/// Header of one TCP segment record. Addresses are in network order (IPv4 in the first four
/// bytes, the rest zero); ports, seq, ack and lengths are in host order.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentEvent {
    pub kind: u8,
    pub version: u8,
    /// [`direction`] value.
    pub direction: u8,
    /// [`tcp_flags`] bits.
    pub tcp_flags: u8,
    /// 4 or 6.
    pub family: u8,
    /// [`hook`] value.
    pub hook: u8,
    pub _pad: [u8; 2],
    pub ifindex: u32,
    /// True TCP payload length of the segment (may exceed the MTU with GSO/TSO).
    pub payload_len: u32,
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) when the classifier ran.
    pub ts_ns: u64,
    pub seq: u32,
    pub ack: u32,
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
    pub sport: u16,
    pub dport: u16,
    /// Payload bytes that follow this header (<= payload_len, <= SNAP_LEN).
    pub copied_len: u32,
}

/// Size of the [`SegmentEvent`] header in bytes.
pub const SEGMENT_EVENT_BYTES: usize = 72;
const _: () = assert!(core::mem::size_of::<SegmentEvent>() == SEGMENT_EVENT_BYTES);
const _: () = assert!(core::mem::align_of::<SegmentEvent>() == 8);

/// Bytes of the per-CPU scratch slot: header plus the largest prefix.
pub const SCRATCH_BYTES: usize = SEGMENT_EVENT_BYTES + MAX_SNAP_LEN as usize;

impl SegmentEvent {
    /// Parse a ring-buffer record header. Returns `None` when the record is too short or is
    /// not a segment of this version; user space counts those as decode errors.
    pub fn from_bytes(buf: &[u8]) -> Option<(SegmentEvent, &[u8])> {
        if buf.len() < SEGMENT_EVENT_BYTES {
            return None;
        }
        // SAFETY: the length was checked, SegmentEvent is plain old data with every bit
        // pattern valid, and read_unaligned places no alignment demand on `buf`.
        let ev: SegmentEvent =
            unsafe { core::ptr::read_unaligned(buf.as_ptr().cast::<SegmentEvent>()) };
        if ev.kind != KIND_SEGMENT || ev.version != EVENT_VERSION {
            return None;
        }
        let payload = &buf[SEGMENT_EVENT_BYTES..];
        let copied = ev.copied_len as usize;
        if copied > payload.len() || ev.copied_len > ev.payload_len {
            return None;
        }
        Some((ev, &payload[..copied]))
    }

    /// The header as bytes (for tests and synthetic records).
    pub fn as_bytes(&self) -> &[u8; SEGMENT_EVENT_BYTES] {
        // SAFETY: repr(C), no padding (size assert above), plain integers and arrays.
        unsafe { &*(self as *const SegmentEvent).cast::<[u8; SEGMENT_EVENT_BYTES]>() }
    }
}

#[cfg(feature = "user")]
// SAFETY: repr(C) plain old data without padding.
unsafe impl aya::Pod for SegmentEvent {}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    fn sample() -> SegmentEvent {
        SegmentEvent {
            kind: KIND_SEGMENT,
            version: EVENT_VERSION,
            direction: direction::TO_SERVER,
            tcp_flags: tcp_flags::ACK | tcp_flags::PSH,
            family: 4,
            hook: hook::INGRESS,
            _pad: [0; 2],
            ifindex: 1,
            payload_len: 5,
            ts_ns: 42,
            seq: 1000,
            ack: 2000,
            saddr: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            daddr: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            sport: 51234,
            dport: 8080,
            copied_len: 5,
        }
    }

    #[test]
    fn field_offsets_are_stable() {
        assert_eq!(core::mem::offset_of!(SegmentEvent, ifindex), 8);
        assert_eq!(core::mem::offset_of!(SegmentEvent, payload_len), 12);
        assert_eq!(core::mem::offset_of!(SegmentEvent, ts_ns), 16);
        assert_eq!(core::mem::offset_of!(SegmentEvent, seq), 24);
        assert_eq!(core::mem::offset_of!(SegmentEvent, saddr), 32);
        assert_eq!(core::mem::offset_of!(SegmentEvent, daddr), 48);
        assert_eq!(core::mem::offset_of!(SegmentEvent, sport), 64);
        assert_eq!(core::mem::offset_of!(SegmentEvent, copied_len), 68);
    }

    #[test]
    fn round_trips_through_bytes() {
        let ev = sample();
        let mut rec: Vec<u8> = ev.as_bytes().to_vec();
        rec.extend_from_slice(b"GET /");
        let (back, payload) = SegmentEvent::from_bytes(&rec).expect("valid record");
        assert_eq!(back, ev);
        assert_eq!(payload, b"GET /");
    }

    #[test]
    fn rejects_short_or_inconsistent_records() {
        let ev = sample();
        assert!(SegmentEvent::from_bytes(&ev.as_bytes()[..10]).is_none());
        // copied_len says 5 but no payload follows
        assert!(SegmentEvent::from_bytes(ev.as_bytes()).is_none());
        let mut bad = ev;
        bad.version = 99;
        let mut rec = bad.as_bytes().to_vec();
        rec.extend_from_slice(b"GET /");
        assert!(SegmentEvent::from_bytes(&rec).is_none());
    }
}
