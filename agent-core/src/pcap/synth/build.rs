//! Header builders for synthesised frames. Checksums: IPv4 header checksums are computed (the
//! decoder ignores them; tshark shows them); UDP checksums are zero (allowed for IPv4, and for
//! IPv6 tunnels by RFC 6935); TCP checksums are never touched.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::pcap::endian::be16;
use crate::pcap::ip::{PROTO_IPV4, PROTO_IPV6};
use crate::pcap::link::{ETHERTYPE_IPV4, ETHERTYPE_IPV6};

/// Outer addresses of synthesised tunnels (documentation ranges).
pub const TUNNEL_V4: (Ipv4Addr, Ipv4Addr) =
    (Ipv4Addr::new(192, 0, 2, 250), Ipv4Addr::new(192, 0, 2, 251));
pub const TUNNEL_V6: (Ipv6Addr, Ipv6Addr) = (
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xfa),
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xfb),
);

/// An Ethernet II frame with the given VLAN tag protocol identifiers (outermost first, each
/// with VLAN id 42 + its position). Not padded to 60 bytes, so captured and wire lengths stay
/// in step with the payload's.
pub fn ethernet(tags: &[u16], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02];
    for (i, tpid) in tags.iter().enumerate() {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&(42 + i as u16).to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// The EtherType of an IP packet, by its version nibble.
pub fn ethertype_of(ip: &[u8]) -> u16 {
    if ip.first().is_some_and(|b| b >> 4 == 6) {
        ETHERTYPE_IPV6
    } else {
        ETHERTYPE_IPV4
    }
}

/// The IP-in-IP protocol number of an inner IP packet.
pub fn ip_proto_of(ip: &[u8]) -> u8 {
    if ethertype_of(ip) == ETHERTYPE_IPV6 {
        PROTO_IPV6
    } else {
        PROTO_IPV4
    }
}

/// A 20-byte IPv4 header (no options) with its checksum; `frag` is the flags + offset word.
pub fn ipv4_header(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    payload_len: usize,
    id: u16,
    frag: u16,
) -> Vec<u8> {
    let total = u16::try_from(20 + payload_len).unwrap_or(0);
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&frag.to_be_bytes());
    h.extend_from_slice(&[64, proto, 0, 0]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    set_ipv4_checksum(&mut h);
    h
}

/// Recomputes the header checksum of the IPv4 header at the start of `h`.
pub fn set_ipv4_checksum(h: &mut [u8]) {
    let ihl = usize::from(h[0] & 0x0f) * 4;
    h[10] = 0;
    h[11] = 0;
    let mut sum: u32 = (0..ihl.min(h.len()))
        .step_by(2)
        .map(|i| u32::from(be16(h, i)))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    h[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
}

/// A 40-byte IPv6 header.
pub fn ipv6_header(src: Ipv6Addr, dst: Ipv6Addr, next: u8, payload_len: usize) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&u16::try_from(payload_len).unwrap_or(0).to_be_bytes());
    h.extend_from_slice(&[next, 64]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h
}

/// An outer IP header of the given family around `payload_len` bytes of protocol `proto`.
pub fn outer_ip(v6: bool, proto: u8, payload_len: usize, id: u16) -> Vec<u8> {
    if v6 {
        ipv6_header(TUNNEL_V6.0, TUNNEL_V6.1, proto, payload_len)
    } else {
        ipv4_header(TUNNEL_V4.0, TUNNEL_V4.1, proto, payload_len, id, 0)
    }
}

/// An 8-byte UDP header (checksum zero).
pub fn udp_header(src_port: u16, dst_port: u16, payload_len: usize) -> Vec<u8> {
    let mut h = Vec::with_capacity(8);
    h.extend_from_slice(&src_port.to_be_bytes());
    h.extend_from_slice(&dst_port.to_be_bytes());
    h.extend_from_slice(&u16::try_from(8 + payload_len).unwrap_or(0).to_be_bytes());
    h.extend_from_slice(&[0, 0]);
    h
}

/// Sets the checksum of a complete UDP datagram (`udp`: header and payload) over IPv6, where a
/// zero checksum is not allowed outside tunnels.
pub fn set_udp6_checksum(src: Ipv6Addr, dst: Ipv6Addr, udp: &mut [u8]) {
    udp[6] = 0;
    udp[7] = 0;
    let mut sum: u64 = 0;
    for a in [src.octets(), dst.octets()] {
        sum += (0..16)
            .step_by(2)
            .map(|i| u64::from(be16(&a, i)))
            .sum::<u64>();
    }
    sum += udp.len() as u64 + u64::from(crate::pcap::ip::PROTO_UDP);
    sum += (0..udp.len())
        .step_by(2)
        .map(|i| u64::from(udp[i]) << 8 | u64::from(udp.get(i + 1).copied().unwrap_or(0)))
        .sum::<u64>();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let c = match !(sum as u16) {
        0 => 0xffff,
        c => c,
    };
    udp[6..8].copy_from_slice(&c.to_be_bytes());
}

/// A UDP source port derived from the inner flow, as tunnel endpoints do for ECMP entropy.
pub fn entropy_port(inner: &[u8]) -> u16 {
    let h = inner.iter().take(40).fold(0x811c_9dc5_u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    49_152 + (h % 16_384) as u16
}

/// The source and destination addresses of an IP packet (for keys and tests).
pub fn addresses(ip: &[u8]) -> Option<(IpAddr, IpAddr)> {
    match ip.first()? >> 4 {
        4 if ip.len() >= 20 => Some((
            IpAddr::from([ip[12], ip[13], ip[14], ip[15]]),
            IpAddr::from([ip[16], ip[17], ip[18], ip[19]]),
        )),
        6 if ip.len() >= 40 => {
            let mut s = [0u8; 16];
            let mut d = [0u8; 16];
            s.copy_from_slice(&ip[8..24]);
            d.copy_from_slice(&ip[24..40]);
            Some((IpAddr::from(s), IpAddr::from(d)))
        }
        _ => None,
    }
}
