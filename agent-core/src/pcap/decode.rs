//! [`Decoder`]: raw captured packets to oriented [`Segment`]s, counting everything it skips.

use super::RawPacket;
use super::ip::{self, Transport};
use super::link::{self, Network};
use super::orient::Orienter;
use crate::{Segment, TcpFlags};

/// What the decoder saw and skipped. Every packet lands in exactly one of `segments`,
/// `pure_acks` and the skip counters.
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
    /// IP but not TCP.
    pub non_tcp: u64,
    /// IP fragments (not reassembled).
    pub fragments: u64,
    /// Frames whose headers are cut or inconsistent.
    pub malformed: u64,
    /// TCP between ports that are not watched (only with explicit ports).
    pub other_ports: u64,
    /// Times the orientation table was full and forgotten (not a per-packet count).
    pub orientation_resets: u64,
}

/// Packet decoder with per-connection orientation.
#[derive(Debug)]
pub struct Decoder {
    orienter: Orienter,
    stats: DecodeStats,
}

impl Decoder {
    /// `ports` empty: infer the server of each connection.
    pub fn new(ports: &[u16]) -> Decoder {
        Decoder {
            orienter: Orienter::new(ports),
            stats: DecodeStats::default(),
        }
    }

    /// Decodes one packet; `None` when it carries nothing for the engine (counted).
    pub fn decode<'a>(&mut self, pkt: &RawPacket<'a>) -> Option<Segment<'a>> {
        let s = &mut self.stats;
        s.packets += 1;
        let transport = match link::network(pkt.linktype, pkt.data) {
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
        let tcp = match transport {
            Transport::Tcp(tcp) => tcp,
            Transport::NotTcp => {
                s.non_tcp += 1;
                return None;
            }
            Transport::Fragment => {
                s.fragments += 1;
                return None;
            }
            Transport::Malformed(_) => {
                s.malformed += 1;
                return None;
            }
        };
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
        })
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
