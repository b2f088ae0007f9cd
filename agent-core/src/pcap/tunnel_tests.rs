//! Decoder paths of tunnels and fragments that the re-encapsulated fixtures do not reach:
//! truncation at every layer, unknown inner protocols, the depth bound, extension chains.

use std::io::Cursor;

use super::ip::{MAX_IPV6_EXTENSIONS, PROTO_GRE, PROTO_TCP, PROTO_UDP};
use super::link::{ETHERTYPE_IPV4, LINKTYPE_ETHERNET, LINKTYPE_IPV6};
use super::synth::build::{ethernet, ipv4_header, outer_ip, udp_header};
use super::synth::{Capture, Packet};
use super::tunnel::{GENEVE_PORT, Tunnel, VXLAN_PORT};
use super::{CaptureReader, DecodeStats, Decoder, MAX_ENCAPSULATION};

/// An IPv4 TCP packet 192.0.2.10:40000 -> 192.0.2.1:8080 with `payload`.
fn tcp_packet(payload: &[u8]) -> Vec<u8> {
    let mut tcp = vec![
        0x9c, 0x40, 0x1f, 0x90, 0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x18, 0xff, 0xff,
    ];
    tcp.extend_from_slice(&[0, 0, 0, 0]);
    tcp.extend_from_slice(payload);
    let mut p = ipv4_header(
        [192, 0, 2, 10].into(),
        [192, 0, 2, 1].into(),
        PROTO_TCP,
        tcp.len(),
        1,
        0,
    );
    p.extend_from_slice(&tcp);
    p
}

fn in_vxlan(frame: &[u8]) -> Vec<u8> {
    let mut inner = vec![0x08, 0, 0, 0, 0, 0, 7, 0];
    inner.extend_from_slice(frame);
    let mut udp = udp_header(50_000, VXLAN_PORT, inner.len());
    udp.extend_from_slice(&inner);
    let mut ip = outer_ip(false, PROTO_UDP, udp.len(), 9);
    ip.extend_from_slice(&udp);
    ethernet(&[], ETHERTYPE_IPV4, &ip)
}

fn in_gre(flags_proto: [u8; 4], extra: &[u8], inner: &[u8]) -> Vec<u8> {
    let mut gre = flags_proto.to_vec();
    gre.extend_from_slice(extra);
    gre.extend_from_slice(inner);
    let mut ip = outer_ip(false, PROTO_GRE, gre.len(), 9);
    ip.extend_from_slice(&gre);
    ethernet(&[], ETHERTYPE_IPV4, &ip)
}

fn decode(linktype: u32, frames: Vec<Vec<u8>>) -> (Vec<Vec<u8>>, DecodeStats) {
    let capture = Capture {
        linktype,
        packets: frames
            .into_iter()
            .map(|data| Packet {
                ts_ns: 1,
                orig_len: data.len() as u32,
                data,
            })
            .collect(),
    };
    let mut reader = CaptureReader::new(Cursor::new(capture.to_pcap())).expect("header");
    let mut decoder = Decoder::new(&[8080]);
    let mut payloads = Vec::new();
    while let Some(pkt) = reader.next_packet().expect("readable") {
        if let Some(seg) = decoder.decode(&pkt) {
            payloads.push(seg.payload.to_vec());
        }
    }
    (payloads, *decoder.stats())
}

#[test]
fn tunnels_nest_up_to_the_bound_and_no_further() {
    let mut frame = ethernet(&[], ETHERTYPE_IPV4, &tcp_packet(b"GET /"));
    for _ in 0..MAX_ENCAPSULATION {
        frame = in_vxlan(&frame);
    }
    let (got, stats) = decode(LINKTYPE_ETHERNET, vec![frame.clone(), in_vxlan(&frame)]);
    assert_eq!(got, vec![b"GET /".to_vec()]);
    assert_eq!(
        stats.decapsulated(Tunnel::Vxlan),
        2 * MAX_ENCAPSULATION as u64
    );
    assert_eq!(stats.too_deep, 1);
}

#[test]
fn every_cut_of_a_vxlan_frame_is_counted_never_a_panic() {
    let frame = in_vxlan(&ethernet(&[], ETHERTYPE_IPV4, &tcp_packet(b"GET /")));
    for cut in 0..frame.len() {
        let (_, s) = decode(LINKTYPE_ETHERNET, vec![frame[..cut].to_vec()]);
        let skipped = s.malformed + s.non_ip + s.non_tcp + s.pure_acks + s.segments;
        assert_eq!(skipped, 1, "cut at {cut}: {s:?}");
    }
}

#[test]
fn geneve_carries_ip_directly_too() {
    let inner = tcp_packet(b"GET /");
    let mut geneve = vec![0, 0, 0x08, 0x00, 0, 0, 7, 0];
    geneve.extend_from_slice(&inner);
    let mut udp = udp_header(50_000, GENEVE_PORT, geneve.len());
    udp.extend_from_slice(&geneve);
    let mut ip = outer_ip(false, PROTO_UDP, udp.len(), 9);
    ip.extend_from_slice(&udp);
    let (got, stats) = decode(LINKTYPE_ETHERNET, vec![ethernet(&[], ETHERTYPE_IPV4, &ip)]);
    assert_eq!(got, vec![b"GET /".to_vec()]);
    assert_eq!(stats.decapsulated(Tunnel::Geneve), 1);
}

#[test]
fn gre_with_checksum_key_and_sequence_words_reaches_the_inner_packet() {
    let frame = in_gre([0xb0, 0, 0x08, 0x00], &[0; 12], &tcp_packet(b"GET /"));
    let (got, stats) = decode(LINKTYPE_ETHERNET, vec![frame]);
    assert_eq!(got, vec![b"GET /".to_vec()]);
    assert_eq!(stats.decapsulated(Tunnel::Gre), 1);
}

#[test]
fn erspan_type_1_is_ethernet_right_after_a_bare_gre_header() {
    let inner = ethernet(&[], ETHERTYPE_IPV4, &tcp_packet(b"GET /"));
    let (got, stats) = decode(
        LINKTYPE_ETHERNET,
        vec![in_gre([0, 0, 0x88, 0xbe], &[], &inner)],
    );
    assert_eq!(got, vec![b"GET /".to_vec()]);
    assert_eq!(stats.decapsulated(Tunnel::Erspan), 1);
}

#[test]
fn unknown_inner_protocols_are_not_ip_and_plain_udp_is_not_tcp() {
    let pptp = in_gre([0x30, 0x01, 0x88, 0x0b], &[0; 8], b"ppp");
    let mut udp = udp_header(5353, 53, 3);
    udp.extend_from_slice(b"dns");
    let mut ip = outer_ip(false, PROTO_UDP, udp.len(), 9);
    ip.extend_from_slice(&udp);
    let (got, stats) = decode(
        LINKTYPE_ETHERNET,
        vec![pptp, ethernet(&[], ETHERTYPE_IPV4, &ip)],
    );
    assert!(got.is_empty());
    assert_eq!((stats.non_ip, stats.non_tcp), (1, 1));
}

#[test]
fn an_ipv6_extension_chain_past_the_bound_is_malformed() {
    let (mut chain, mut next) = (Vec::new(), PROTO_TCP);
    for _ in 0..=MAX_IPV6_EXTENSIONS {
        let mut h = vec![next, 0, 1, 4, 0, 0, 0, 0]; // destination options, PadN
        h.extend_from_slice(&chain);
        chain = h;
        next = 60;
    }
    let tcp = &tcp_packet(b"GET /")[20..];
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&((chain.len() + tcp.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[next, 64]);
    p.extend_from_slice(&[
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ]);
    p.extend_from_slice(&[
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
    ]);
    p.extend_from_slice(&chain);
    p.extend_from_slice(tcp);
    let (got, stats) = decode(LINKTYPE_IPV6, vec![p.clone()]);
    assert!(got.is_empty());
    assert_eq!(stats.malformed, 1);
    // One header fewer is within the bound.
    let shorter = [
        &p[..4],
        &((chain.len() - 8 + tcp.len()) as u16).to_be_bytes(),
        &[60, 64],
        &p[8..40],
        &chain[8..],
        tcp,
    ]
    .concat();
    let (got, _) = decode(LINKTYPE_IPV6, vec![shorter]);
    assert_eq!(got, vec![b"GET /".to_vec()]);
}
