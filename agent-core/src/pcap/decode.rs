//! [`Decoder`]: raw captured packets to oriented [`Segment`]s, counting everything it skips.
//!
//! Layers are opened in a loop: link ▸ IP ▸ (fragment reassembly) ▸ tunnel ▸ link ▸ IP ... ▸
//! TCP. Each tunnel layer is counted by kind and the inner packet analysed; more than
//! [`MAX_ENCAPSULATION`] layers is counted and skipped. A reassembled datagram lives in the
//! decoder's own buffer, so a segment borrows either the packet or that buffer.

use std::ops::Range;

use super::RawPacket;
use super::frag::{FragmentLimits, FragmentStats, Fragments};
use super::ip::{self, TcpPacket, Transport};
use super::link::{self, Network};
use super::orient::Orienter;
use super::tunnel::{self, Tunnel};
use crate::{Segment, TcpFlags};

/// Tunnel layers opened in one packet before it is skipped (`too_deep`).
pub const MAX_ENCAPSULATION: usize = 4;

/// What the decoder saw and skipped. Every packet lands in exactly one of `segments`,
/// `pure_acks`, `fragments_held` and the skip counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeStats {
    pub packets: u64,
    /// TCP segments handed on.
    pub segments: u64,
    /// Segments with no payload and no SYN/FIN/RST: skipped, as the kernel program does.
    pub pure_acks: u64,
    /// Packets on a link type the decoder does not know.
    pub unsupported_link: u64,
    /// Not IP (ARP ...).
    pub non_ip: u64,
    /// IP but not TCP (nor a known tunnel).
    pub non_tcp: u64,
    /// IP fragments held for reassembly (a fragment that completes its datagram is counted as
    /// the datagram's outcome instead); the table's own counters are in `fragment_table`.
    pub fragments_held: u64,
    /// Frames whose headers are cut or inconsistent.
    pub malformed: u64,
    /// More than [`MAX_ENCAPSULATION`] tunnel layers.
    pub too_deep: u64,
    /// TCP between ports that are not watched (only with explicit ports).
    pub other_ports: u64,
    /// Times the orientation table was full and forgotten (not a per-packet count).
    pub orientation_resets: u64,
    /// Tunnel layers opened, by [`Tunnel`] (index: position in [`Tunnel::ALL`]).
    pub decapsulated: [u64; Tunnel::ALL.len()],
    /// The fragment reassembly table.
    pub fragment_table: FragmentStats,
}

impl DecodeStats {
    /// Tunnel layers opened of one kind.
    pub fn decapsulated(&self, kind: Tunnel) -> u64 {
        self.decapsulated[kind as usize]
    }

    /// The sum of the per-packet outcomes; always equals `packets`.
    pub fn outcomes(&self) -> u64 {
        self.segments
            + self.pure_acks
            + self.unsupported_link
            + self.non_ip
            + self.non_tcp
            + self.fragments_held
            + self.malformed
            + self.too_deep
            + self.other_ports
    }
}

/// Packet decoder with per-connection orientation and IP fragment reassembly.
#[derive(Debug)]
pub struct Decoder {
    orienter: Orienter,
    fragments: Fragments,
    /// The last reassembled datagram (segments of it borrow from here).
    datagram: Vec<u8>,
    stats: DecodeStats,
}

/// The TCP segment a packet carried, with its payload as a range of the packet data or of the
/// reassembled datagram.
struct Found {
    tcp: TcpPacket<'static>,
    payload: Range<usize>,
    in_datagram: bool,
}

impl Decoder {
    /// `ports` empty: infer the server of each connection.
    pub fn new(ports: &[u16]) -> Decoder {
        Decoder::with_fragment_limits(ports, FragmentLimits::default())
    }

    /// A decoder whose fragment table has the given bounds.
    pub fn with_fragment_limits(ports: &[u16], limits: FragmentLimits) -> Decoder {
        Decoder {
            orienter: Orienter::new(ports),
            fragments: Fragments::new(limits),
            datagram: Vec::new(),
            stats: DecodeStats::default(),
        }
    }

    /// Decodes one packet; `None` when it carries nothing for the engine (counted).
    pub fn decode<'a>(&'a mut self, pkt: &RawPacket<'a>) -> Option<Segment<'a>> {
        self.stats.packets += 1;
        let found = self.walk(pkt);
        self.stats.fragment_table = *self.fragments.stats();
        let found = found?;
        let base: &'a [u8] = if found.in_datagram {
            &self.datagram
        } else {
            pkt.data
        };
        let tcp = TcpPacket {
            payload: &base[found.payload],
            ..found.tcp
        };
        let s = &mut self.stats;
        let flags = TcpFlags(tcp.flags);
        if tcp.payload_len == 0 && tcp.flags & (TcpFlags::SYN | TcpFlags::FIN | TcpFlags::RST) == 0
        {
            s.pure_acks += 1;
            return None;
        }
        let oriented = self.orienter.orient(&tcp);
        s.orientation_resets = self.orienter.resets;
        let Some((client, server, direction)) = oriented else {
            s.other_ports += 1;
            return None;
        };
        s.segments += 1;
        Some(Segment {
            ts_ns: pkt.ts_ns,
            client,
            server,
            direction,
            seq: tcp.seq,
            ack: tcp.ack,
            flags,
            payload_len: tcp.payload_len,
            payload: tcp.payload,
            ifindex: 0,
        })
    }

    /// Opens the layers of a packet down to TCP; `None` when there is none (counted).
    fn walk(&mut self, pkt: &RawPacket<'_>) -> Option<Found> {
        let Decoder {
            fragments,
            datagram,
            stats: s,
            ..
        } = self;
        let mut net = link::network(pkt.linktype, pkt.data);
        let mut in_datagram = false;
        let mut depth = 0;
        loop {
            let transport = match net {
                Network::Ipv4(p) => ip::ipv4(p),
                Network::Ipv6(p) => ip::ipv6(p),
                Network::Other => {
                    s.non_ip += 1;
                    return None;
                }
                Network::Truncated => {
                    s.malformed += 1;
                    return None;
                }
                Network::UnsupportedLink => {
                    s.unsupported_link += 1;
                    return None;
                }
            };
            let (kind, inner) = match transport {
                Transport::Tcp(tcp) => {
                    let base: &[u8] = if in_datagram { datagram } else { pkt.data };
                    return Some(Found {
                        payload: range_in(base, tcp.payload),
                        tcp: TcpPacket {
                            payload: &[],
                            ..tcp
                        },
                        in_datagram,
                    });
                }
                Transport::Fragment(f) => {
                    let Some(whole) = fragments.insert(&f, pkt.ts_ns) else {
                        s.fragments_held += 1;
                        return None;
                    };
                    *datagram = whole;
                    in_datagram = true;
                    net = link::by_version(datagram);
                    continue;
                }
                Transport::Udp(u) => match tunnel::udp(u.dst_port, u.payload) {
                    Some(found) => found,
                    None => {
                        s.non_tcp += 1;
                        return None;
                    }
                },
                Transport::Gre(g) => tunnel::gre(g),
                Transport::Ipv4InIp(p) => (Tunnel::IpInIp, Network::Ipv4(p)),
                Transport::Ipv6InIp(p) => (Tunnel::IpInIp, Network::Ipv6(p)),
                Transport::NotTcp => {
                    s.non_tcp += 1;
                    return None;
                }
                Transport::Malformed(_) => {
                    s.malformed += 1;
                    return None;
                }
            };
            depth += 1;
            if depth > MAX_ENCAPSULATION {
                s.too_deep += 1;
                return None;
            }
            s.decapsulated[kind as usize] += 1;
            net = inner;
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> &DecodeStats {
        &self.stats
    }

    /// The orientation table (for its counters).
    pub fn orienter(&self) -> &Orienter {
        &self.orienter
    }
}

/// Where `sub` (a subslice of `base`) lies in `base`.
fn range_in(base: &[u8], sub: &[u8]) -> Range<usize> {
    let start = (sub.as_ptr() as usize).wrapping_sub(base.as_ptr() as usize);
    debug_assert!(
        start + sub.len() <= base.len(),
        "payload outside its packet"
    );
    let start = start.min(base.len());
    start..(start + sub.len()).min(base.len())
}
