//! Link layers: from a captured frame to its network-layer bytes.

use super::endian::be16;

pub const LINKTYPE_NULL: u32 = 0;
pub const LINKTYPE_ETHERNET: u32 = 1;
/// DLT_RAW as most systems number it.
pub const LINKTYPE_RAW_12: u32 = 12;
/// DLT_RAW as OpenBSD numbers it.
pub const LINKTYPE_RAW_14: u32 = 14;
pub const LINKTYPE_RAW: u32 = 101;
pub const LINKTYPE_LOOP: u32 = 108;
pub const LINKTYPE_LINUX_SLL: u32 = 113;
/// Raw IPv4 (no link header).
pub const LINKTYPE_IPV4: u32 = 228;
/// Raw IPv6 (no link header).
pub const LINKTYPE_IPV6: u32 = 229;
pub const LINKTYPE_LINUX_SLL2: u32 = 276;

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// 802.1Q customer tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// 802.1ad service tag (QinQ outer tag).
pub const ETHERTYPE_QINQ: u16 = 0x88a8;
/// Pre-standard QinQ outer tag.
pub const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
/// VLAN tags followed before a frame is given up on (counted as not IP).
pub const MAX_VLAN_TAGS: usize = 4;

/// The network layer of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Network<'a> {
    Ipv4(&'a [u8]),
    Ipv6(&'a [u8]),
    /// Not IP (ARP, LLDP ...).
    Other,
    /// The frame is shorter than its link header.
    Truncated,
    /// A link type this decoder does not know.
    UnsupportedLink,
}

/// Strips the link header of `frame` captured on `linktype`.
pub fn network(linktype: u32, frame: &[u8]) -> Network<'_> {
    match linktype {
        LINKTYPE_ETHERNET => ethernet(frame),
        LINKTYPE_LINUX_SLL => by_ethertype(frame, 14, 16),
        LINKTYPE_LINUX_SLL2 => by_ethertype(frame, 0, 20),
        LINKTYPE_RAW | LINKTYPE_RAW_12 | LINKTYPE_RAW_14 => by_version(frame),
        LINKTYPE_IPV4 => Network::Ipv4(frame),
        LINKTYPE_IPV6 => Network::Ipv6(frame),
        LINKTYPE_NULL | LINKTYPE_LOOP => loopback(frame),
        _ => Network::UnsupportedLink,
    }
}

/// An Ethernet II frame (also the inner frame of VXLAN, Geneve, GRE bridging and ERSPAN), with
/// up to [`MAX_VLAN_TAGS`] 802.1Q / 802.1ad tags.
pub fn ethernet(frame: &[u8]) -> Network<'_> {
    by_ethertype(frame, 12, 14)
}

/// The EtherType at `type_at` and the network layer at `header_len`, following VLAN tags (each
/// moves both by 4 bytes).
fn by_ethertype(frame: &[u8], mut type_at: usize, mut header_len: usize) -> Network<'_> {
    for _ in 0..=MAX_VLAN_TAGS {
        if frame.len() < type_at + 2 {
            return Network::Truncated;
        }
        let ethertype = be16(frame, type_at);
        if matches!(
            ethertype,
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD
        ) {
            // The tag's TCI follows the TPID; the next EtherType follows the tag.
            type_at = header_len + 2;
            header_len += 4;
            continue;
        }
        let Some(rest) = frame.get(header_len..) else {
            return Network::Truncated;
        };
        return match ethertype {
            ETHERTYPE_IPV4 => Network::Ipv4(rest),
            ETHERTYPE_IPV6 => Network::Ipv6(rest),
            _ => Network::Other,
        };
    }
    Network::Other
}

/// A packet with no link header: the IP version nibble decides.
pub fn by_version(packet: &[u8]) -> Network<'_> {
    match packet.first().map(|b| b >> 4) {
        Some(4) => Network::Ipv4(packet),
        Some(6) => Network::Ipv6(packet),
        Some(_) => Network::Other,
        None => Network::Truncated,
    }
}

/// BSD loopback: a 4-byte address family, in the capturing host's byte order for NULL and in
/// network order for LOOP. Both orders are tried; AF_INET6 differs between systems.
fn loopback(frame: &[u8]) -> Network<'_> {
    let Some(head) = frame.get(..4) else {
        return Network::Truncated;
    };
    let rest = &frame[4..];
    let arr = [head[0], head[1], head[2], head[3]];
    for family in [u32::from_le_bytes(arr), u32::from_be_bytes(arr)] {
        match family {
            2 => return Network::Ipv4(rest),
            10 | 24 | 28 | 30 => return Network::Ipv6(rest),
            _ => {}
        }
    }
    Network::Other
}
