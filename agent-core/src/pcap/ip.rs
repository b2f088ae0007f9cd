//! IPv4 (options, fragments), IPv6 (extension headers, fragments) and TCP (options, data
//! offset); UDP, GRE and IP-in-IP are recognised so that [`super::tunnel`] can open them.
//! Lengths come from the IP headers, so a capture cut by its snap length still yields the true
//! payload length, and Ethernet padding is never mistaken for payload.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::endian::{be16, be32};

pub const PROTO_IPV4: u8 = 4;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_IPV6: u8 = 41;
pub const PROTO_GRE: u8 = 47;
const PROTO_IPV6_FRAGMENT: u8 = 44;

/// IPv6 extension headers walked before a packet is called malformed. The kernel classifier
/// walks the same headers with the same bound (README, "IP fragments and extension headers").
pub const MAX_IPV6_EXTENSIONS: usize = 8;

/// A TCP segment as it appeared on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpPacket<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    /// True payload length (from the IP length fields).
    pub payload_len: u32,
    /// The captured part of the payload.
    pub payload: &'a [u8],
}

/// A UDP datagram (the carrier of VXLAN and Geneve).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpPacket<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    /// The captured part of the UDP payload.
    pub payload: &'a [u8],
}

/// One fragment of an IPv4 or IPv6 datagram, for [`super::frag::Fragments`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragment<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Identification (16 bits in IPv4, 32 in IPv6).
    pub id: u32,
    /// The protocol of the whole datagram (IPv6: the fragment header's next header).
    pub proto: u8,
    /// Offset of this fragment's data in the datagram, in bytes.
    pub offset: u32,
    /// More fragments follow.
    pub more: bool,
    /// True length of this fragment's data (from the IP header).
    pub len: u32,
    /// The captured part of this fragment's data.
    pub data: &'a [u8],
    /// IPv4: the IP header (options included), reused for the reassembled datagram.
    pub v4_header: &'a [u8],
}

/// What an IP packet carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport<'a> {
    Tcp(TcpPacket<'a>),
    Udp(UdpPacket<'a>),
    /// A GRE packet: the captured GRE header and what follows.
    Gre(&'a [u8]),
    /// IP in IP (IPv4 protocol 4, IPv6 protocol 41): the inner packet.
    Ipv4InIp(&'a [u8]),
    Ipv6InIp(&'a [u8]),
    /// A fragment, to be reassembled.
    Fragment(Fragment<'a>),
    /// Another protocol (ICMP, ESP ...).
    NotTcp,
    /// Headers cut or inconsistent.
    Malformed(&'static str),
}

/// Decodes an IPv4 packet.
pub fn ipv4(p: &[u8]) -> Transport<'_> {
    if p.len() < 20 || p[0] >> 4 != 4 {
        return Transport::Malformed("ipv4 header");
    }
    let ihl = usize::from(p[0] & 0x0f) * 4;
    let total = usize::from(be16(p, 2));
    if ihl < 20 || p.len() < ihl {
        return Transport::Malformed("ipv4 header length");
    }
    // A zero total length is what TCP segmentation offload leaves in captures: use what is there.
    let total = if total == 0 { p.len() } else { total };
    if total < ihl {
        return Transport::Malformed("ipv4 total length");
    }
    let src = IpAddr::V4(Ipv4Addr::new(p[12], p[13], p[14], p[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(p[16], p[17], p[18], p[19]));
    let body = &p[ihl..total.min(p.len())];
    let frag = be16(p, 6);
    if frag & 0x2000 != 0 || frag & 0x1fff != 0 {
        return Transport::Fragment(Fragment {
            src,
            dst,
            id: u32::from(be16(p, 4)),
            proto: p[9],
            offset: u32::from(frag & 0x1fff) * 8,
            more: frag & 0x2000 != 0,
            len: (total - ihl) as u32,
            data: body,
            v4_header: &p[..ihl],
        });
    }
    payload(p[9], src, dst, body, total - ihl)
}

/// Decodes an IPv6 packet, walking at most [`MAX_IPV6_EXTENSIONS`] extension headers.
pub fn ipv6(p: &[u8]) -> Transport<'_> {
    if p.len() < 40 || p[0] >> 4 != 6 {
        return Transport::Malformed("ipv6 header");
    }
    let payload_len = usize::from(be16(p, 4));
    // Jumbograms (and offloaded super-packets) carry a zero payload length.
    let end = if payload_len == 0 {
        p.len()
    } else {
        40 + payload_len
    };
    let addr = |at: usize| {
        let mut a = [0u8; 16];
        a.copy_from_slice(&p[at..at + 16]);
        IpAddr::V6(Ipv6Addr::from(a))
    };
    let (src, dst) = (addr(8), addr(24));
    let (mut next, mut at) = (p[6], 40);
    for _ in 0..=MAX_IPV6_EXTENSIONS {
        match next {
            // Hop-by-hop, routing, destination options, mobility, HIP, shim6, AH, fragment.
            0 | 43 | 60 | 135 | 139 | 140 | 51 | PROTO_IPV6_FRAGMENT => {
                let Some(h) = p.get(at..at + 8) else {
                    return Transport::Malformed("ipv6 extension");
                };
                if next == PROTO_IPV6_FRAGMENT {
                    let frag = be16(h, 2);
                    let start = at + 8;
                    if end < start {
                        return Transport::Malformed("ipv6 payload length");
                    }
                    return Transport::Fragment(Fragment {
                        src,
                        dst,
                        id: be32(h, 4),
                        proto: h[0],
                        offset: u32::from(frag >> 3) * 8,
                        more: frag & 1 != 0,
                        len: (end - start) as u32,
                        data: p.get(start..end.min(p.len())).unwrap_or_default(),
                        v4_header: &[],
                    });
                }
                let len = match next {
                    51 => (usize::from(h[1]) + 2) * 4,
                    _ => (usize::from(h[1]) + 1) * 8,
                };
                next = h[0];
                at += len;
            }
            proto => {
                if end < at {
                    return Transport::Malformed("ipv6 payload length");
                }
                let captured = p.get(at..end.min(p.len())).unwrap_or_default();
                return payload(proto, src, dst, captured, end - at);
            }
        }
    }
    Transport::Malformed("ipv6 extension chain too long")
}

/// The transport of an unfragmented IP payload: `body` is what was captured of it, `true_len`
/// its length according to the IP header.
fn payload(proto: u8, src: IpAddr, dst: IpAddr, body: &[u8], true_len: usize) -> Transport<'_> {
    match proto {
        PROTO_TCP => tcp(src, dst, body, true_len),
        PROTO_UDP => udp(body, true_len),
        PROTO_GRE => Transport::Gre(body),
        PROTO_IPV4 => Transport::Ipv4InIp(body),
        PROTO_IPV6 => Transport::Ipv6InIp(body),
        _ => Transport::NotTcp,
    }
}

/// Decodes a TCP header: `seg` is what was captured of the segment, `true_len` its length.
fn tcp(src: IpAddr, dst: IpAddr, seg: &[u8], true_len: usize) -> Transport<'_> {
    if seg.len() < 20 {
        return Transport::Malformed("tcp header");
    }
    let doff = usize::from(seg[12] >> 4) * 4;
    if doff < 20 || seg.len() < doff || true_len < doff {
        return Transport::Malformed("tcp data offset");
    }
    Transport::Tcp(TcpPacket {
        src: SocketAddr::new(src, be16(seg, 0)),
        dst: SocketAddr::new(dst, be16(seg, 2)),
        seq: be32(seg, 4),
        ack: be32(seg, 8),
        flags: seg[13],
        payload_len: u32::try_from(true_len - doff).unwrap_or(u32::MAX),
        payload: &seg[doff..],
    })
}

/// Decodes a UDP header; the payload is bounded by the UDP length when it is consistent.
fn udp(seg: &[u8], true_len: usize) -> Transport<'_> {
    if seg.len() < 8 || true_len < 8 {
        return Transport::Malformed("udp header");
    }
    let len = usize::from(be16(seg, 4));
    // Zero (IPv6 jumbograms) or a length past the IP payload: the IP length decides.
    let end = if (8..=true_len).contains(&len) {
        len
    } else {
        true_len
    };
    Transport::Udp(UdpPacket {
        src_port: be16(seg, 0),
        dst_port: be16(seg, 2),
        payload: &seg[8..end.min(seg.len())],
    })
}
