//! One kernel ring record -> one [`Segment`] borrowing its payload from the ring.

use agent_common::{SegmentEvent, direction};
use agent_core::segment::{Direction, Segment, TcpFlags};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why a record could not be decoded (counted, never fatal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record too short, of another kind or version, or with inconsistent lengths")]
    Invalid,
    #[error("unknown address family {0}")]
    UnknownFamily(u8),
    #[error("unknown direction {0}")]
    UnknownDirection(u8),
}

/// The kernel timestamp (CLOCK_MONOTONIC ns) of a record, read without decoding the rest.
pub fn timestamp(record: &[u8]) -> Option<u64> {
    let b = record.get(16..24)?;
    Some(u64::from_ne_bytes(b.try_into().ok()?))
}

/// Decodes one ring record; `wall_offset_ns` turns the kernel's CLOCK_MONOTONIC stamp into
/// wall-clock nanoseconds since the epoch.
pub fn decode(record: &[u8], wall_offset_ns: i64) -> Result<Segment<'_>, DecodeError> {
    let (ev, payload) = SegmentEvent::from_bytes(record).ok_or(DecodeError::Invalid)?;
    let (src, dst) = match ev.family {
        4 => {
            let s: [u8; 4] = [ev.saddr[0], ev.saddr[1], ev.saddr[2], ev.saddr[3]];
            let d: [u8; 4] = [ev.daddr[0], ev.daddr[1], ev.daddr[2], ev.daddr[3]];
            (IpAddr::V4(Ipv4Addr::from(s)), IpAddr::V4(Ipv4Addr::from(d)))
        }
        6 => (
            IpAddr::V6(Ipv6Addr::from(ev.saddr)),
            IpAddr::V6(Ipv6Addr::from(ev.daddr)),
        ),
        other => return Err(DecodeError::UnknownFamily(other)),
    };
    let src = SocketAddr::new(src, ev.sport);
    let dst = SocketAddr::new(dst, ev.dport);
    let (client, server, dir) = match ev.direction {
        direction::TO_SERVER => (src, dst, Direction::ToServer),
        direction::TO_CLIENT => (dst, src, Direction::ToClient),
        other => return Err(DecodeError::UnknownDirection(other)),
    };
    Ok(Segment {
        ts_ns: ev.ts_ns.saturating_add_signed(wall_offset_ns),
        client,
        server,
        direction: dir,
        seq: ev.seq,
        ack: ev.ack,
        flags: TcpFlags(ev.tcp_flags),
        payload_len: ev.payload_len,
        payload,
        ifindex: ev.ifindex,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_common::{EVENT_VERSION, KIND_SEGMENT, copy_reason, hook, tcp_flags};
    use rstest::rstest;

    fn record(family: u8, dir: u8, payload: &[u8], payload_len: u32) -> Vec<u8> {
        let mut saddr = [0u8; 16];
        let mut daddr = [0u8; 16];
        if family == 4 {
            saddr[..4].copy_from_slice(&[192, 0, 2, 2]);
            daddr[..4].copy_from_slice(&[192, 0, 2, 1]);
        } else {
            saddr = "2001:db8::2".parse::<Ipv6Addr>().expect("literal").octets();
            daddr = "2001:db8::1".parse::<Ipv6Addr>().expect("literal").octets();
        }
        let ev = SegmentEvent {
            kind: KIND_SEGMENT,
            version: EVENT_VERSION,
            direction: dir,
            tcp_flags: tcp_flags::ACK | tcp_flags::PSH,
            family,
            hook: hook::INGRESS,
            copy_reason: copy_reason::BURST,
            _pad: 0,
            ifindex: 2,
            payload_len,
            ts_ns: 1_000,
            seq: 7,
            ack: 9,
            saddr,
            daddr,
            sport: 40000,
            dport: 80,
            copied_len: payload.len() as u32,
        };
        let mut rec = ev.as_bytes().to_vec();
        rec.extend_from_slice(payload);
        rec
    }

    #[rstest]
    #[case::ipv4_request(
        4,
        direction::TO_SERVER,
        "192.0.2.2:40000",
        "192.0.2.1:80",
        Direction::ToServer
    )]
    #[case::ipv4_response_swaps_ends(
        4,
        direction::TO_CLIENT,
        "192.0.2.1:80",
        "192.0.2.2:40000",
        Direction::ToClient
    )]
    #[case::ipv6_request(
        6,
        direction::TO_SERVER,
        "[2001:db8::2]:40000",
        "[2001:db8::1]:80",
        Direction::ToServer
    )]
    fn orients_addresses_by_direction(
        #[case] family: u8,
        #[case] dir: u8,
        #[case] client: &str,
        #[case] server: &str,
        #[case] want: Direction,
    ) {
        let rec = record(family, dir, b"GET /", 5);
        let seg = decode(&rec, 10).expect("valid record");
        assert_eq!(seg.client, client.parse::<SocketAddr>().expect("literal"));
        assert_eq!(seg.server, server.parse::<SocketAddr>().expect("literal"));
        assert_eq!(seg.direction, want);
        assert_eq!(seg.ts_ns, 1_010);
        assert_eq!(seg.payload, b"GET /");
        assert_eq!(timestamp(&rec), Some(1_000));
    }

    #[test]
    fn keeps_true_length_beyond_copied_prefix() {
        let rec = record(4, direction::TO_SERVER, b"abc", 3000);
        let seg = decode(&rec, 0).expect("valid");
        assert_eq!(seg.payload, b"abc");
        assert_eq!(seg.uncopied_len(), 2997);
        let rec = record(4, direction::TO_CLIENT, b"", 65_000);
        let seg = decode(&rec, 0).expect("a length-only record");
        assert!(seg.payload.is_empty());
        assert_eq!(seg.uncopied_len(), 65_000);
    }

    #[rstest]
    #[case::short_record(record(4, 0, b"", 0)[..10].to_vec(), DecodeError::Invalid)]
    #[case::bad_family(record(5, 0, b"x", 1), DecodeError::UnknownFamily(5))]
    #[case::bad_direction(record(4, 3, b"x", 1), DecodeError::UnknownDirection(3))]
    fn rejects_bad_records_without_panicking(#[case] rec: Vec<u8>, #[case] want: DecodeError) {
        assert_eq!(decode(&rec, 0).err(), Some(want));
    }
}
