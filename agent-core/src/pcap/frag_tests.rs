//! The fragment table: completion in any order, overlaps, bounds, timeouts, cut captures.

use std::net::{IpAddr, Ipv4Addr};

use super::frag::{FragmentLimits, Fragments};
use super::ip::{self, Fragment, Transport};

const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
const DST: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const HEADER: [u8; 20] = [
    0x45, 0, 0, 0, 0, 7, 0x20, 0, 64, 6, 0, 0, 192, 0, 2, 10, 192, 0, 2, 1,
];

fn piece(id: u32, offset: u32, more: bool, data: &[u8]) -> Fragment<'_> {
    Fragment {
        src: SRC,
        dst: DST,
        id,
        proto: 6,
        offset,
        more,
        len: data.len() as u32,
        data,
        v4_header: if offset == 0 { &HEADER } else { &[] },
    }
}

/// 30 bytes of datagram: a 20-byte TCP header and "GET /index" as payload.
fn body() -> Vec<u8> {
    let mut b = vec![
        0x9c, 0x40, 0x1f, 0x90, 0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x18, 0xff, 0xff,
    ];
    b.extend_from_slice(&[0, 0, 0, 0]);
    b.extend_from_slice(b"GET /index");
    b
}

fn tcp_payload(packet: &[u8]) -> (Vec<u8>, u32) {
    match ip::ipv4(packet) {
        Transport::Tcp(t) => (t.payload.to_vec(), t.payload_len),
        other => panic!("not TCP: {other:?}"),
    }
}

#[test]
fn fragments_in_reverse_order_rebuild_the_datagram() {
    let b = body();
    let mut t = Fragments::default();
    assert_eq!(t.insert(&piece(1, 16, false, &b[16..]), 0), None);
    assert_eq!(t.insert(&piece(1, 8, true, &b[8..16]), 1), None);
    let whole = t.insert(&piece(1, 0, true, &b[..8]), 2).expect("complete");
    assert_eq!(tcp_payload(&whole), (b"GET /index".to_vec(), 10));
    let s = t.stats();
    assert_eq!((s.fragments, s.reassembled, s.pending), (3, 1, 0));
}

#[test]
fn duplicates_are_harmless_and_differing_overlaps_keep_the_first_copy() {
    let b = body();
    let mut t = Fragments::default();
    t.insert(&piece(1, 0, true, &b[..16]), 0);
    t.insert(&piece(1, 0, true, &b[..16]), 0);
    let mut other = b[8..].to_vec();
    other[0] ^= 0xff; // overlaps bytes 8..16 with a different first byte
    let whole = t.insert(&piece(1, 8, false, &other), 0).expect("complete");
    assert_eq!(tcp_payload(&whole).0, b"GET /index".to_vec());
    assert_eq!(t.stats().conflicts, 1);
}

#[test]
fn a_cut_fragment_gives_the_captured_prefix_and_the_true_length() {
    let b = body();
    let mut t = Fragments::default();
    t.insert(&piece(1, 0, true, &b[..24]), 0);
    let mut last = piece(1, 24, false, &b[24..26]); // 4 of 6 bytes not captured
    last.len = 6;
    let whole = t.insert(&last, 0).expect("complete");
    assert_eq!(tcp_payload(&whole), (b"GET /i".to_vec(), 10));
}

#[test]
fn the_oldest_datagram_is_evicted_when_the_table_is_full() {
    let b = body();
    let limits = FragmentLimits {
        max_datagrams: 2,
        ..FragmentLimits::default()
    };
    let mut t = Fragments::new(limits);
    for id in 1..=3 {
        t.insert(&piece(id, 0, true, &b[..8]), 0);
    }
    assert_eq!((t.stats().overflow, t.stats().pending), (1, 2));
    // Datagram 1 is gone: its last fragment cannot complete it.
    assert_eq!(t.insert(&piece(1, 8, false, &b[8..]), 0), None);
    assert!(t.insert(&piece(3, 8, false, &b[8..]), 0).is_some());
}

#[test]
fn the_byte_bound_holds() {
    let b = vec![0u8; 1024];
    let limits = FragmentLimits {
        max_bytes: 2048,
        ..FragmentLimits::default()
    };
    let mut t = Fragments::new(limits);
    for id in 1..=3 {
        t.insert(&piece(id, 0, true, &b), 0);
    }
    assert_eq!((t.stats().overflow, t.stats().pending), (1, 2));
    // A fragment that alone is larger than the table is refused.
    let big = vec![0u8; 4096];
    assert_eq!(t.insert(&piece(9, 0, true, &big), 0), None);
    assert_eq!(t.stats().overflow, 4);
}

#[test]
fn an_incomplete_datagram_times_out_in_packet_time() {
    let b = body();
    let mut t = Fragments::default();
    t.insert(&piece(1, 0, true, &b[..8]), 1_000);
    t.insert(&piece(2, 0, true, &b[..8]), 1_000 + 30_000_000_000);
    assert_eq!((t.stats().timed_out, t.stats().pending), (1, 1));
}

#[test]
fn impossible_fragments_are_invalid() {
    let b = body();
    let mut t = Fragments::default();
    // Not a multiple of 8 before the end.
    assert_eq!(t.insert(&piece(1, 0, true, &b[..7]), 0), None);
    // Past 65,535 bytes.
    assert_eq!(t.insert(&piece(2, 65_528, false, &b[..16]), 0), None);
    // Two different ends.
    t.insert(&piece(3, 16, false, &b[16..]), 0);
    assert_eq!(t.insert(&piece(3, 8, false, &b[8..16]), 0), None);
    assert_eq!(t.stats().invalid, 4);
    assert_eq!(t.stats().pending, 0);
}
