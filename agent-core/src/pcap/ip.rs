//! IPv4 (options, fragments), IPv6 (extension headers) and TCP (options, data offset).
//! Lengths come from the IP headers, so a capture cut by its snap length still yields the true
//! payload length, and Ethernet padding is never mistaken for payload.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::endian::{be16, be32};

const PROTO_TCP: u8 = 6;

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

/// What an IP packet carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport<'a> {
    Tcp(TcpPacket<'a>),
    /// Another protocol (UDP, ICMP ...).
    NotTcp,
    /// A fragment: counted and skipped, never reassembled.
    Fragment,
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
    let frag = be16(p, 6);
    if frag & 0x2000 != 0 || frag & 0x1fff != 0 {
        return Transport::Fragment;
    }
    if p[9] != PROTO_TCP {
        return Transport::NotTcp;
    }
    let src = IpAddr::V4(Ipv4Addr::new(p[12], p[13], p[14], p[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(p[16], p[17], p[18], p[19]));
    tcp(src, dst, &p[ihl..total.min(p.len())], total - ihl)
}

/// Decodes an IPv6 packet, skipping extension headers.
pub fn ipv6(p: &[u8]) -> Transport<'_> {
    if p.len() < 40 || p[0] >> 4 != 6 {
        return Transport::Malformed("ipv6 header");
    }
    let payload = usize::from(be16(p, 4));
    // Jumbograms (and offloaded super-packets) carry a zero payload length.
    let end = if payload == 0 { p.len() } else { 40 + payload };
    let addr = |at: usize| {
        let mut a = [0u8; 16];
        a.copy_from_slice(&p[at..at + 16]);
        IpAddr::V6(Ipv6Addr::from(a))
    };
    let (src, dst) = (addr(8), addr(24));
    let (mut next, mut at) = (p[6], 40);
    loop {
        match next {
            PROTO_TCP => {
                if end < at {
                    return Transport::Malformed("ipv6 payload length");
                }
                let captured = p.get(at..end.min(p.len())).unwrap_or_default();
                return tcp(src, dst, captured, end - at);
            }
            // Hop-by-hop, routing, destination options, mobility, HIP, shim6.
            0 | 43 | 60 | 135 | 139 | 140 | 51 | 44 => {
                let Some(h) = p.get(at..at + 8) else {
                    return Transport::Malformed("ipv6 extension");
                };
                let len = match next {
                    51 => (usize::from(h[1]) + 2) * 4,
                    44 => {
                        let frag = be16(h, 2);
                        if frag >> 3 != 0 || frag & 1 != 0 {
                            return Transport::Fragment;
                        }
                        8
                    }
                    _ => (usize::from(h[1]) + 1) * 8,
                };
                next = h[0];
                at += len;
            }
            _ => return Transport::NotTcp,
        }
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
