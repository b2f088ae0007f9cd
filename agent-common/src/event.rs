//! [`SegmentEvent`]: the header of every ring record.

#[cfg(doc)]
use crate::{direction, hook, tcp_flags};

/// Record kind of a TCP segment event.
pub const KIND_SEGMENT: u8 = 1;
/// Version of the [`SegmentEvent`] layout and meaning; bump on any change.
/// 2: `copy_reason`; segments inside a burst may be length-only records; HTTP/2 connections
/// copied in full.
pub const EVENT_VERSION: u8 = 2;

/// Why the kernel copied payload bytes into a record (or did not).
pub mod copy_reason {
    /// Length-only record: a continuation segment inside a burst (or no payload).
    pub const NONE: u8 = 0;
    /// First data seen of this flow direction (or its state was evicted).
    pub const NEW_FLOW: u8 = 1;
    /// The peer sent data since this direction's previous segment: a new message burst.
    pub const BURST: u8 = 2;
    /// At most `SMALL_COPY_LEN` payload bytes.
    pub const SMALL: u8 = 3;
    /// The server port is copied in full (`Ports::copy_all`).
    pub const PORT: u8 = 4;
    /// The connection speaks HTTP/2 (its client sent the connection preface): every segment
    /// of both directions is copied.
    pub const H2: u8 = 5;
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
    /// [`copy_reason`] value.
    pub copy_reason: u8,
    pub _pad: u8,
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
    use crate::{direction, hook, tcp_flags};
    use std::vec::Vec;

    fn sample() -> SegmentEvent {
        SegmentEvent {
            kind: KIND_SEGMENT,
            version: EVENT_VERSION,
            direction: direction::TO_SERVER,
            tcp_flags: tcp_flags::ACK | tcp_flags::PSH,
            family: 4,
            hook: hook::INGRESS,
            copy_reason: copy_reason::BURST,
            _pad: 0,
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
