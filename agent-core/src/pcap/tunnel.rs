//! Encapsulations that packet mirroring and overlay networks deliver: VXLAN (UDP 4789), Geneve
//! (UDP 6081), GRE (IPv4, IPv6 or Ethernet inside, RFC 2784/2890) with ERSPAN types I, II and
//! III, and IP in IP. Each function opens one layer and says what is inside; the decoder
//! counts the outer layer and analyses the inner packet, up to a bounded depth.

use super::endian::be16;
use super::link::{self, ETHERTYPE_IPV4, ETHERTYPE_IPV6, Network};

pub const VXLAN_PORT: u16 = 4789;
pub const GENEVE_PORT: u16 = 6081;
/// GRE protocol type of Transparent Ethernet Bridging (an Ethernet frame follows).
pub const ETHERTYPE_TEB: u16 = 0x6558;
/// GRE protocol type of ERSPAN types I and II.
pub const ETHERTYPE_ERSPAN_2: u16 = 0x88be;
/// GRE protocol type of ERSPAN type III.
pub const ETHERTYPE_ERSPAN_3: u16 = 0x22eb;

const GRE_CHECKSUM: u16 = 0x8000;
const GRE_ROUTING: u16 = 0x4000;
const GRE_KEY: u16 = 0x2000;
const GRE_SEQUENCE: u16 = 0x1000;
const GRE_VERSION: u16 = 0x0007;

/// The kind of an outer layer, for the decoder's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tunnel {
    Vxlan,
    Geneve,
    Gre,
    Erspan,
    IpInIp,
}

impl Tunnel {
    pub const ALL: [Tunnel; 5] = [
        Tunnel::Vxlan,
        Tunnel::Geneve,
        Tunnel::Gre,
        Tunnel::Erspan,
        Tunnel::IpInIp,
    ];

    /// Label value (`apitap_replay_decapsulated_total{tunnel}`).
    pub fn as_str(self) -> &'static str {
        match self {
            Tunnel::Vxlan => "vxlan",
            Tunnel::Geneve => "geneve",
            Tunnel::Gre => "gre",
            Tunnel::Erspan => "erspan",
            Tunnel::IpInIp => "ipip",
        }
    }
}

/// What a UDP datagram carries: a tunnel and its inner network layer, or nothing known.
pub fn udp(dst_port: u16, payload: &[u8]) -> Option<(Tunnel, Network<'_>)> {
    match dst_port {
        VXLAN_PORT => Some((Tunnel::Vxlan, vxlan(payload))),
        GENEVE_PORT => Some((Tunnel::Geneve, geneve(payload))),
        _ => None,
    }
}

/// VXLAN (RFC 7348): flags (the I bit says the VNI is valid), 24 reserved bits, VNI, 8
/// reserved bits; an Ethernet frame follows.
fn vxlan(p: &[u8]) -> Network<'_> {
    match p.get(8..) {
        None => Network::Truncated,
        Some(_) if p[0] & 0x08 == 0 => Network::Other,
        Some(frame) => link::ethernet(frame),
    }
}

/// Geneve (RFC 8926): version, options length (4-byte words), flags, protocol type, VNI,
/// then the options; the protocol type says what follows.
fn geneve(p: &[u8]) -> Network<'_> {
    if p.len() < 8 {
        return Network::Truncated;
    }
    if p[0] >> 6 != 0 {
        return Network::Other;
    }
    let start = 8 + usize::from(p[0] & 0x3f) * 4;
    let Some(inner) = p.get(start..) else {
        return Network::Truncated;
    };
    by_protocol(be16(p, 2), inner)
}

/// GRE: the flags say which optional words follow (checksum, key, sequence number); version 0
/// only (version 1 is PPTP's). The protocol type says what is inside, ERSPAN included.
pub fn gre(p: &[u8]) -> (Tunnel, Network<'_>) {
    if p.len() < 4 {
        return (Tunnel::Gre, Network::Truncated);
    }
    let flags = be16(p, 0);
    if flags & GRE_VERSION != 0 || flags & GRE_ROUTING != 0 {
        return (Tunnel::Gre, Network::Other);
    }
    let words = [GRE_CHECKSUM, GRE_KEY, GRE_SEQUENCE]
        .iter()
        .filter(|&&f| flags & f != 0)
        .count();
    let Some(inner) = p.get(4 + 4 * words..) else {
        return (Tunnel::Gre, Network::Truncated);
    };
    match be16(p, 2) {
        // Type I has no sequence number and no ERSPAN header; type II has both.
        ETHERTYPE_ERSPAN_2 if flags & GRE_SEQUENCE == 0 => (Tunnel::Erspan, link::ethernet(inner)),
        ETHERTYPE_ERSPAN_2 => (Tunnel::Erspan, erspan_2(inner)),
        ETHERTYPE_ERSPAN_3 => (Tunnel::Erspan, erspan_3(inner)),
        proto => (Tunnel::Gre, by_protocol(proto, inner)),
    }
}

/// ERSPAN type II: an 8-byte header (version 1), then the mirrored Ethernet frame.
fn erspan_2(p: &[u8]) -> Network<'_> {
    match p.get(8..) {
        None => Network::Truncated,
        Some(_) if p[0] >> 4 != 1 => Network::Other,
        Some(frame) => link::ethernet(frame),
    }
}

/// ERSPAN type III: a 12-byte header (version 2) whose O bit adds an 8-byte platform
/// subheader; the frame type (FT) is 0 for Ethernet, 2 for IP.
fn erspan_3(p: &[u8]) -> Network<'_> {
    if p.len() < 12 {
        return Network::Truncated;
    }
    if p[0] >> 4 != 2 {
        return Network::Other;
    }
    let start = if p[11] & 1 != 0 { 20 } else { 12 };
    let Some(frame) = p.get(start..) else {
        return Network::Truncated;
    };
    match (p[10] >> 2) & 0x1f {
        0 => link::ethernet(frame),
        2 => link::by_version(frame),
        _ => Network::Other,
    }
}

/// An inner packet named by an EtherType-valued protocol field (GRE, Geneve).
fn by_protocol(proto: u16, inner: &[u8]) -> Network<'_> {
    match proto {
        ETHERTYPE_IPV4 => Network::Ipv4(inner),
        ETHERTYPE_IPV6 => Network::Ipv6(inner),
        ETHERTYPE_TEB => link::ethernet(inner),
        _ => Network::Other,
    }
}
