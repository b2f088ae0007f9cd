//! Re-encapsulation: the IP packets of a capture behind another link type or tunnel, or cut
//! into IP fragments. The transactions of the result must equal the original's: that is what
//! the tunnel and fragment tests assert.
//!
//! Lengths follow the true (wire) lengths of the inner packets, so a capture cut by its snap
//! length stays cut the same way inside the tunnel. Packets that are not IP are left out.

use super::build::{self, ethernet, ethertype_of, outer_ip, udp_header};
use super::{Capture, Packet};
use crate::pcap::endian::be16;
use crate::pcap::ip::{PROTO_GRE, PROTO_UDP};
use crate::pcap::link::{
    self, ETHERTYPE_IPV4, ETHERTYPE_QINQ, ETHERTYPE_VLAN, LINKTYPE_ETHERNET, LINKTYPE_IPV4,
    LINKTYPE_IPV6, LINKTYPE_RAW, Network,
};
use crate::pcap::tunnel::{
    ETHERTYPE_ERSPAN_2, ETHERTYPE_ERSPAN_3, ETHERTYPE_TEB, GENEVE_PORT, VXLAN_PORT,
};

/// How to carry the IP packets of a capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encap {
    /// LINKTYPE_RAW (101): the IP packet alone.
    Raw,
    /// LINKTYPE_IPV4 (228) or LINKTYPE_IPV6 (229), by the version of the first IP packet.
    RawTyped,
    /// Ethernet with one 802.1Q tag.
    Vlan,
    /// Ethernet with an 802.1ad tag and an 802.1Q tag.
    QinQ,
    /// Ethernet in VXLAN in UDP 4789 over IPv4.
    Vxlan,
    /// Ethernet in VXLAN over IPv6.
    Vxlan6,
    /// Ethernet in Geneve (with one option) in UDP 6081 over IPv4.
    Geneve,
    /// IP in GRE with a key, over IPv4.
    Gre,
    /// Ethernet in GRE protocol 0x88BE without a sequence number (ERSPAN type I).
    ErspanI,
    /// ERSPAN type II: GRE with a sequence number, an 8-byte ERSPAN header, Ethernet.
    ErspanII,
    /// ERSPAN type III: GRE 0x22EB, a 12-byte header with the platform subheader, Ethernet.
    ErspanIII,
    /// IP in IPv4 (protocol 4 or 41).
    IpInIp,
    /// Ethernet, every IP packet longer than `mtu` bytes cut into fragments (IPv4, or an IPv6
    /// fragment header), the fragments of each datagram in reverse order.
    Fragments { mtu: usize },
    /// VXLAN whose outer IPv4 packets are fragmented at `mtu` (a mirror session past its MTU).
    VxlanFragments { mtu: usize },
}

impl Encap {
    /// Every encapsulation, with the MTUs the fixtures use.
    pub const ALL: [Encap; 14] = [
        Encap::Raw,
        Encap::RawTyped,
        Encap::Vlan,
        Encap::QinQ,
        Encap::Vxlan,
        Encap::Vxlan6,
        Encap::Geneve,
        Encap::Gre,
        Encap::ErspanI,
        Encap::ErspanII,
        Encap::ErspanIII,
        Encap::IpInIp,
        Encap::Fragments { mtu: 576 },
        Encap::VxlanFragments { mtu: 1500 },
    ];

    /// A short name for file names.
    pub fn name(self) -> &'static str {
        match self {
            Encap::Raw => "raw",
            Encap::RawTyped => "raw-typed",
            Encap::Vlan => "vlan",
            Encap::QinQ => "qinq",
            Encap::Vxlan => "vxlan",
            Encap::Vxlan6 => "vxlan6",
            Encap::Geneve => "geneve",
            Encap::Gre => "gre",
            Encap::ErspanI => "erspan1",
            Encap::ErspanII => "erspan2",
            Encap::ErspanIII => "erspan3",
            Encap::IpInIp => "ipip",
            Encap::Fragments { .. } => "fragments",
            Encap::VxlanFragments { .. } => "vxlan-fragments",
        }
    }
}

/// Captured bytes and the true length of a packet or header stack.
struct Piece {
    data: Vec<u8>,
    len: usize,
}

impl Piece {
    /// `header` in front of this piece.
    fn behind(self, header: Vec<u8>) -> Piece {
        let len = header.len() + self.len;
        let mut data = header;
        data.extend_from_slice(&self.data);
        Piece { data, len }
    }
}

/// Re-encapsulates every IP packet of `capture`.
pub fn encapsulate(capture: &Capture, how: Encap) -> Capture {
    let mut out = Vec::with_capacity(capture.packets.len());
    let mut counter: u32 = 1;
    let mut linktype = LINKTYPE_ETHERNET;
    for p in &capture.packets {
        let Some(ip) = ip_packet(capture.linktype, p) else {
            continue;
        };
        if out.is_empty() && how == Encap::RawTyped {
            linktype = if ethertype_of(&ip.data) == ETHERTYPE_IPV4 {
                LINKTYPE_IPV4
            } else {
                LINKTYPE_IPV6
            };
        }
        if how == Encap::Raw {
            linktype = LINKTYPE_RAW;
        }
        counter = counter.wrapping_add(1);
        for frame in frames(how, ip, counter) {
            out.push(Packet {
                ts_ns: p.ts_ns,
                orig_len: frame.len as u32,
                data: frame.data,
            });
        }
    }
    Capture {
        linktype,
        packets: out,
    }
}

/// The IP packet of a frame, cut to its IP length (no link padding).
fn ip_packet(linktype: u32, p: &Packet) -> Option<Piece> {
    let ip = match link::network(linktype, &p.data) {
        Network::Ipv4(ip) | Network::Ipv6(ip) => ip,
        _ => return None,
    };
    let len = match ip.first()? >> 4 {
        4 if be16(ip, 2) != 0 => usize::from(be16(ip, 2)),
        6 if be16(ip, 4) != 0 => 40 + usize::from(be16(ip, 4)),
        // Offload super-packets: what the wire length says is there.
        _ => ip.len() + (p.orig_len as usize).saturating_sub(p.data.len()),
    };
    Some(Piece {
        data: ip[..ip.len().min(len)].to_vec(),
        len,
    })
}

fn frames(how: Encap, ip: Piece, counter: u32) -> Vec<Piece> {
    let id = counter as u16;
    let eth = |tags: &[u16], inner: Piece| {
        let ethertype = ethertype_of(&inner.data);
        inner.behind(ethernet(tags, ethertype, &[]))
    };
    let single = match how {
        Encap::Raw | Encap::RawTyped => ip,
        Encap::Vlan => eth(&[ETHERTYPE_VLAN], ip),
        Encap::QinQ => eth(&[ETHERTYPE_QINQ, ETHERTYPE_VLAN], ip),
        Encap::Vxlan => eth(&[], vxlan(false, eth(&[], ip), id)),
        Encap::Vxlan6 => eth(&[], vxlan(true, eth(&[], ip), id)),
        Encap::Geneve => eth(&[], geneve(eth(&[], ip), id)),
        Encap::Gre => {
            let mut h = vec![0x20, 0];
            h.extend_from_slice(&ethertype_of(&ip.data).to_be_bytes());
            h.extend_from_slice(&0x0000_2a2a_u32.to_be_bytes());
            eth(&[], gre(ip.behind(h), id))
        }
        Encap::ErspanI => {
            let mut h = vec![0, 0];
            h.extend_from_slice(&ETHERTYPE_ERSPAN_2.to_be_bytes());
            eth(&[], gre(eth(&[], ip).behind(h), id))
        }
        Encap::ErspanII => {
            let mut h = vec![0x10, 0];
            h.extend_from_slice(&ETHERTYPE_ERSPAN_2.to_be_bytes());
            h.extend_from_slice(&counter.to_be_bytes());
            // Version 1, VLAN 0, COS 0, En 0, T 0, session 7; index 0.
            h.extend_from_slice(&[0x10, 0, 0, 7, 0, 0, 0, 0]);
            eth(&[], gre(eth(&[], ip).behind(h), id))
        }
        Encap::ErspanIII => {
            let mut h = vec![0x10, 0];
            h.extend_from_slice(&ETHERTYPE_ERSPAN_3.to_be_bytes());
            h.extend_from_slice(&counter.to_be_bytes());
            // Version 2, session 7, a timestamp, SGT 0, P=1 FT=0 (Ethernet), O=1.
            h.extend_from_slice(&[0x20, 0, 0, 7]);
            h.extend_from_slice(&counter.to_be_bytes());
            h.extend_from_slice(&[0, 0, 0x80, 0x01]);
            // Platform-specific subheader (platform id 3).
            h.extend_from_slice(&[0x0c, 0, 0, 0, 0, 0, 0, 0]);
            eth(&[], gre(eth(&[], ip).behind(h), id))
        }
        Encap::IpInIp => {
            let proto = build::ip_proto_of(&ip.data);
            let outer = outer_ip(false, proto, ip.len, id);
            eth(&[], ip.behind(outer))
        }
        Encap::Fragments { mtu } => {
            let mut pieces: Vec<Piece> = fragment(ip, mtu, counter)
                .into_iter()
                .map(|f| eth(&[], f))
                .collect();
            pieces.reverse();
            return pieces;
        }
        Encap::VxlanFragments { mtu } => {
            return fragment(vxlan(false, eth(&[], ip), id), mtu, counter)
                .into_iter()
                .map(|f| eth(&[], f))
                .collect();
        }
    };
    vec![single]
}

/// VXLAN (I flag, VNI 7) in UDP 4789 in an outer IP packet.
fn vxlan(v6: bool, frame: Piece, id: u16) -> Piece {
    let port = build::entropy_port(&frame.data);
    let inner = frame.behind(vec![0x08, 0, 0, 0, 0, 0, 7, 0]);
    let udp = udp_header(port, VXLAN_PORT, inner.len);
    let mut inner = inner.behind(udp);
    if v6 && inner.data.len() == inner.len {
        build::set_udp6_checksum(build::TUNNEL_V6.0, build::TUNNEL_V6.1, &mut inner.data);
    }
    let outer = outer_ip(v6, PROTO_UDP, inner.len, id);
    inner.behind(outer)
}

/// Geneve (VNI 7, one 4-byte option, protocol: Ethernet) in UDP 6081 over IPv4.
fn geneve(frame: Piece, id: u16) -> Piece {
    let port = build::entropy_port(&frame.data);
    let mut h = vec![0x02, 0];
    h.extend_from_slice(&ETHERTYPE_TEB.to_be_bytes());
    h.extend_from_slice(&[0, 0, 7, 0]);
    h.extend_from_slice(&[0x01, 0x02, 0x80, 0x01, 0xde, 0xad, 0xbe, 0xef]);
    let inner = frame.behind(h);
    let udp = udp_header(port, GENEVE_PORT, inner.len);
    let inner = inner.behind(udp);
    let outer = outer_ip(false, PROTO_UDP, inner.len, id);
    inner.behind(outer)
}

/// A GRE packet (header included in `gre`) in an outer IPv4 packet.
fn gre(gre: Piece, id: u16) -> Piece {
    let outer = outer_ip(false, PROTO_GRE, gre.len, id);
    gre.behind(outer)
}

/// Cuts an IP packet into fragments of at most `mtu` bytes each (IPv4 fragments, or IPv6 with
/// a fragment header after the fixed header), in order. Short packets are returned whole.
fn fragment(ip: Piece, mtu: usize, id: u32) -> Vec<Piece> {
    let v6 = ethertype_of(&ip.data) != ETHERTYPE_IPV4;
    let header_len = if v6 {
        40
    } else {
        usize::from(ip.data.first().map_or(5, |b| b & 0x0f)) * 4
    };
    if ip.len <= mtu || ip.data.len() < header_len {
        return vec![ip];
    }
    let step = (mtu - header_len - if v6 { 8 } else { 0 }) / 8 * 8;
    let body_len = ip.len - header_len;
    let body = &ip.data[header_len..];
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < body_len {
        let len = step.min(body_len - offset);
        let more = offset + len < body_len;
        let data = body
            .get(offset..(offset + len).min(body.len()))
            .unwrap_or_default()
            .to_vec();
        let mut h = ip.data[..header_len].to_vec();
        if v6 {
            let next = h[6];
            h[4..6].copy_from_slice(&((8 + len) as u16).to_be_bytes());
            h[6] = 44;
            let word = (offset as u16) | u16::from(more);
            h.extend_from_slice(&[next, 0]);
            h.extend_from_slice(&word.to_be_bytes());
            h.extend_from_slice(&id.to_be_bytes());
        } else {
            h[2..4].copy_from_slice(&((header_len + len) as u16).to_be_bytes());
            h[4..6].copy_from_slice(&(id as u16).to_be_bytes());
            let word = (offset / 8) as u16 | if more { 0x2000 } else { 0 };
            h[6..8].copy_from_slice(&word.to_be_bytes());
            build::set_ipv4_checksum(&mut h);
        }
        out.push(Piece { data, len }.behind(h));
        offset += len;
    }
    out
}
