//! A deterministic capture mutator: what a SPAN port, cloud packet mirroring or `tcpdump -i any`
//! on a busy multi-queue host does to a capture, applied to a real one.
//!
//! - In each connection, payload segments of one direction (chosen per connection) are moved
//!   later by 1 to `max_shift` packets of the file, so the peer's ACK for their bytes can come
//!   before them. A segment never passes a RST of its connection.
//! - Exact duplicates follow some payload segments.
//! - Older retransmits: copies of some payload segments arrive 2 to `max_shift` packets later.
//! - Loss mode: some payload segments are dropped (never copied), and reported in
//!   [`Mutated::dropped`] so a test knows which bytes are unrecoverable.
//!
//! Timestamps stay non-decreasing in file order: a packet that now follows a later one takes
//! that packet's time. Packets without payload (handshakes, ACKs, FINs) keep their order.

use std::net::SocketAddr;

use super::{Capture, Rng};
use crate::TcpFlags;
use crate::pcap::ip::{self, TcpPacket, Transport};
use crate::pcap::link::{self, Network};

/// What to do to a capture. Percentages apply to payload segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mutation {
    pub seed: u64,
    /// Largest move of a segment, in packets of the file.
    pub max_shift: usize,
    /// Segments of the moving direction moved later.
    pub shift_percent: u32,
    /// Segments followed at once by an exact duplicate.
    pub duplicate_percent: u32,
    /// Segments sent again 2 to `max_shift` packets later.
    pub retransmit_percent: u32,
    /// Segments dropped (loss mode).
    pub drop_percent: u32,
}

impl Mutation {
    /// Reordering and duplication without loss: everything stays recoverable.
    pub const fn reorder(seed: u64) -> Mutation {
        Mutation {
            seed,
            max_shift: 8,
            shift_percent: 50,
            duplicate_percent: 20,
            retransmit_percent: 20,
            drop_percent: 0,
        }
    }

    /// Loss only: `percent` of payload segments dropped.
    pub const fn loss(seed: u64, percent: u32) -> Mutation {
        Mutation {
            seed,
            max_shift: 0,
            shift_percent: 0,
            duplicate_percent: 0,
            retransmit_percent: 0,
            drop_percent: percent,
        }
    }
}

/// A dropped segment: its connection end points and its sequence range (true length).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dropped {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub len: u32,
}

/// The mutated capture and what was done.
#[derive(Clone, Debug)]
pub struct Mutated {
    pub capture: Capture,
    pub moved: usize,
    pub duplicated: usize,
    pub retransmitted: usize,
    pub dropped: Vec<Dropped>,
}

/// A packet's TCP facts, when it is TCP.
fn tcp_of(linktype: u32, data: &[u8]) -> Option<TcpPacket<'_>> {
    let transport = match link::network(linktype, data) {
        Network::Ipv4(p) => ip::ipv4(p),
        Network::Ipv6(p) => ip::ipv6(p),
        _ => return None,
    };
    match transport {
        Transport::Tcp(t) => Some(t),
        _ => None,
    }
}

fn connection(t: &TcpPacket<'_>) -> (SocketAddr, SocketAddr) {
    if t.src <= t.dst {
        (t.src, t.dst)
    } else {
        (t.dst, t.src)
    }
}

/// Applies `m` to `capture`.
pub fn mutate(capture: &Capture, m: &Mutation) -> Mutated {
    let mut rng = Rng::new(m.seed);
    let n = capture.packets.len();
    let facts: Vec<Option<TcpPacket<'_>>> = capture
        .packets
        .iter()
        .map(|p| tcp_of(capture.linktype, &p.data))
        .collect();
    // The end point whose segments move, per connection, decided at its first packet.
    let mut movers: Vec<((SocketAddr, SocketAddr), SocketAddr)> = Vec::new();
    // (sort key, packet index); a stable sort keeps copies after their original.
    let mut order: Vec<(usize, usize)> = Vec::with_capacity(n + n / 4);
    let mut out = Mutated {
        capture: Capture {
            linktype: capture.linktype,
            packets: Vec::new(),
        },
        moved: 0,
        duplicated: 0,
        retransmitted: 0,
        dropped: Vec::new(),
    };
    for (i, fact) in facts.iter().enumerate() {
        let home = i * 4;
        let Some(t) = fact else {
            order.push((home, i));
            continue;
        };
        let conn = connection(t);
        let mover = match movers.iter().find(|(c, _)| *c == conn) {
            Some(&(_, mover)) => mover,
            None => {
                let mover = if rng.chance(50) { conn.0 } else { conn.1 };
                movers.push((conn, mover));
                mover
            }
        };
        let flags = TcpFlags(t.flags);
        if t.payload_len == 0 || flags.syn() || flags.fin() || flags.rst() {
            order.push((home, i));
            continue;
        }
        if m.drop_percent > 0 && rng.chance(m.drop_percent) {
            out.dropped.push(Dropped {
                src: t.src,
                dst: t.dst,
                seq: t.seq,
                len: t.payload_len,
            });
            continue;
        }
        let mut key = home;
        if t.src == mover && m.max_shift > 0 && rng.chance(m.shift_percent) {
            let shift = room(&facts, i, rng.between(1, m.max_shift), conn);
            if shift > 0 {
                key = (i + shift) * 4 + 3;
                out.moved += 1;
            }
        }
        order.push((key, i));
        if rng.chance(m.duplicate_percent) {
            order.push((key, i));
            out.duplicated += 1;
        }
        if m.max_shift >= 2 && rng.chance(m.retransmit_percent) {
            let late = room(&facts, i, rng.between(2, m.max_shift), conn);
            order.push(((i + late) * 4 + 2, i));
            out.retransmitted += 1;
        }
    }
    order.sort_by_key(|&(key, _)| key);
    let mut last_ts = 0;
    for (_, i) in order {
        let mut p = capture.packets[i].clone();
        p.ts_ns = p.ts_ns.max(last_ts);
        last_ts = p.ts_ns;
        out.capture.packets.push(p);
    }
    out
}

/// How far (up to `want` packets) packet `i` may move without passing a RST of its connection
/// or the end of the file.
fn room(
    facts: &[Option<TcpPacket<'_>>],
    i: usize,
    want: usize,
    conn: (SocketAddr, SocketAddr),
) -> usize {
    let mut shift = 0;
    for (j, fact) in facts.iter().enumerate().skip(i + 1).take(want) {
        if fact
            .as_ref()
            .is_some_and(|t| TcpFlags(t.flags).rst() && connection(t) == conn)
        {
            break;
        }
        shift = j - i;
    }
    shift
}
