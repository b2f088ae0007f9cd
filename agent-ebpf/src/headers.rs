//! L2-L4 headers by direct packet access. Headers are almost always in the skb's linear part
//! (the payload often is not: TCP sends it in page fragments), so they are parsed where they
//! lie, and only a packet whose headers run past the linear part is pulled
//! (`bpf_skb_pull_data`, which moves data, never changes it) and parsed again; that is
//! counted in `Counter::HeadersPulled`. Pulling is never done up front: on a cloned skb (every
//! TCP segment on lo, whose original stays in the retransmit queue) it copies the whole head,
//! which cost more than the rest of the classifier together (issue 10's profile).
//!
//! IPv6 extension headers (Hop-by-Hop, Routing, Destination Options, Authentication) are
//! walked, at most [`MAX_EXT_HEADERS`] of them within the first [`MAX_EXT_OFFSET`] bytes;
//! a longer chain is counted as an error. IPv4 fragments (MF set or a fragment offset) and
//! IPv6 packets with a Fragment header are not captured: TCP headers and payload split over
//! fragments cannot be read at TC, where reassembly has not happened yet. They are counted
//! in `Counter::Fragments`; user space sees the missing bytes as a reassembly gap.

use agent_common::{Counter, CpuState};
use aya_ebpf::programs::TcContext;

/// Ethernet header length; the loader attaches only to Ethernet-framed interfaces (and `lo`,
/// which carries a zeroed Ethernet header at TC).
const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86DD;
const IPPROTO_TCP: u8 = 6;
const IPV6_HLEN: usize = 40;
const TCP_HLEN: usize = 20;
/// IPv6 extension headers walked before giving up (counted as an error).
pub const MAX_EXT_HEADERS: usize = 4;
/// The TCP header must start within this many bytes of the frame.
pub const MAX_EXT_OFFSET: usize = 512;
/// Bytes pulled into the linear part when the headers are not all there: enough for the
/// longest header chain parsed (extension headers up to `MAX_EXT_OFFSET`, a TCP header).
const PULL_BYTES: u32 = (MAX_EXT_OFFSET + TCP_HLEN) as u32;

/// IPv6 next-header values of the extension headers walked.
const NH_HOP_BY_HOP: u8 = 0;
const NH_ROUTING: u8 = 43;
const NH_FRAGMENT: u8 = 44;
const NH_AUTH: u8 = 51;
const NH_DEST_OPTS: u8 = 60;

/// Why a packet was not turned into a record.
pub enum Skip {
    /// Not IPv4/IPv6 TCP: ignored.
    NotTcp,
    /// An IP fragment: counted in `Counter::Fragments`.
    Fragment,
    /// Headers that cannot be read or lengths that do not add up: counted as an error.
    Malformed,
    /// A header runs past the skb's linear part: pulled and parsed again (never returned by
    /// [`read_segment`]).
    Short,
}

/// The facts of one TCP segment the classifier needs.
pub struct Segment {
    pub family: u8,
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    /// Offset of the first payload byte from the start of the frame.
    pub payload_off: u32,
    /// True payload length (from the IP header; GSO packets may be larger than the MTU).
    pub payload_len: u32,
}

#[inline(always)]
fn ptr_at<T>(ctx: &TcContext, off: usize) -> Result<*const T, Skip> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + off + core::mem::size_of::<T>() > end {
        return Err(Skip::Short);
    }
    Ok((start + off) as *const T)
}

/// Reads a `T` at `off` (bounds checked against the linear part).
#[inline(always)]
fn read<T: Copy>(ctx: &TcContext, off: usize) -> Result<T, Skip> {
    let p = ptr_at::<T>(ctx, off)?;
    // SAFETY: `p` points inside the packet's linear data (checked above); packet data has no
    // alignment guarantee, hence the unaligned read.
    Ok(unsafe { core::ptr::read_unaligned(p) })
}

/// The segment's headers, pulling them into the linear part first only when they are not
/// all there (counted).
#[inline(always)]
pub fn read_segment(ctx: &TcContext, st: &mut CpuState) -> Result<Segment, Skip> {
    match parse(ctx) {
        Err(Skip::Short) => {
            st.add(Counter::HeadersPulled, 1);
            // A failure leaves the skb as it was; the second parse then fails as malformed.
            let _ = ctx.pull_data(PULL_BYTES.min(ctx.len()));
            match parse(ctx) {
                Err(Skip::Short) => Err(Skip::Malformed),
                other => other,
            }
        }
        other => other,
    }
}

#[inline(always)]
fn parse(ctx: &TcContext) -> Result<Segment, Skip> {
    let proto = u16::from_be(read::<u16>(ctx, 12)?);
    let (family, saddr, daddr, l4_off, l4_len) = if proto == ETH_P_IP {
        ipv4(ctx)?
    } else if proto == ETH_P_IPV6 {
        ipv6(ctx)?
    } else {
        return Err(Skip::NotTcp);
    };
    let tcp = read::<[u8; TCP_HLEN]>(ctx, l4_off)?;
    let hdr_len = ((tcp[12] >> 4) as u32) * 4;
    if hdr_len < TCP_HLEN as u32 || l4_len < hdr_len {
        return Err(Skip::Malformed);
    }
    Ok(Segment {
        family,
        saddr,
        daddr,
        sport: u16::from_be_bytes([tcp[0], tcp[1]]),
        dport: u16::from_be_bytes([tcp[2], tcp[3]]),
        seq: u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
        ack: u32::from_be_bytes([tcp[8], tcp[9], tcp[10], tcp[11]]),
        flags: tcp[13],
        payload_off: l4_off as u32 + hdr_len,
        payload_len: l4_len - hdr_len,
    })
}

type L3 = (u8, [u8; 16], [u8; 16], usize, u32);

#[inline(always)]
fn ipv4(ctx: &TcContext) -> Result<L3, Skip> {
    let h = read::<[u8; 20]>(ctx, ETH_HLEN)?;
    let ihl = ((h[0] & 0x0f) as usize) * 4;
    if h[0] >> 4 != 4 || ihl < 20 {
        return Err(Skip::Malformed);
    }
    if h[9] != IPPROTO_TCP {
        return Err(Skip::NotTcp);
    }
    // MF set, or a non-zero fragment offset.
    if u16::from_be_bytes([h[6], h[7]]) & 0x3fff != 0 {
        return Err(Skip::Fragment);
    }
    let tot_len = u16::from_be_bytes([h[2], h[3]]) as u32;
    // BIG TCP GSO packets carry tot_len 0: take the length from the skb.
    let total = if tot_len == 0 {
        ctx.len().saturating_sub(ETH_HLEN as u32)
    } else {
        tot_len
    };
    if total < ihl as u32 {
        return Err(Skip::Malformed);
    }
    // IPv4 addresses in the first four bytes, the rest zero (built whole: a partial fill
    // would make the compiler call a memset subprogram).
    let saddr = v4_mapped(u32::from_ne_bytes([h[12], h[13], h[14], h[15]]));
    let daddr = v4_mapped(u32::from_ne_bytes([h[16], h[17], h[18], h[19]]));
    Ok((4, saddr, daddr, ETH_HLEN + ihl, total - ihl as u32))
}

/// An IPv4 address (as it lies in memory) in the first four bytes of sixteen.
#[inline(always)]
fn v4_mapped(addr: u32) -> [u8; 16] {
    // SAFETY: [u32; 4] and [u8; 16] have the same size and every bit pattern is valid.
    unsafe { core::mem::transmute::<[u32; 4], [u8; 16]>([addr, 0, 0, 0]) }
}

#[inline(always)]
fn ipv6(ctx: &TcContext) -> Result<L3, Skip> {
    let h = read::<[u8; 8]>(ctx, ETH_HLEN)?;
    if h[0] >> 4 != 6 {
        return Err(Skip::Malformed);
    }
    let plen = u16::from_be_bytes([h[4], h[5]]) as u32;
    let saddr = read::<[u8; 16]>(ctx, ETH_HLEN + 8)?;
    let daddr = read::<[u8; 16]>(ctx, ETH_HLEN + 24)?;
    let mut next = h[6];
    let mut off = ETH_HLEN + IPV6_HLEN;
    if next != IPPROTO_TCP {
        (next, off) = walk_extensions(ctx, next, off)?;
    }
    if next != IPPROTO_TCP {
        return Err(Skip::NotTcp);
    }
    let ext_len = (off - ETH_HLEN - IPV6_HLEN) as u32;
    // Jumbograms and BIG TCP GSO packets carry payload length 0: take it from the skb.
    let payload = if plen == 0 {
        ctx.len().saturating_sub((ETH_HLEN + IPV6_HLEN) as u32)
    } else {
        plen
    };
    if payload < ext_len {
        return Err(Skip::Malformed);
    }
    Ok((6, saddr, daddr, off, payload - ext_len))
}

/// Follows extension headers from `next` at `off`; returns the first next-header value that
/// is not one of them, and its offset.
#[inline(always)]
fn walk_extensions(ctx: &TcContext, mut next: u8, mut off: usize) -> Result<(u8, usize), Skip> {
    for _ in 0..MAX_EXT_HEADERS {
        let len = match next {
            NH_FRAGMENT => return Err(Skip::Fragment),
            NH_HOP_BY_HOP | NH_ROUTING | NH_DEST_OPTS => {
                let e = read::<[u8; 2]>(ctx, off)?;
                next = e[0];
                (e[1] as usize + 1) * 8
            }
            NH_AUTH => {
                let e = read::<[u8; 2]>(ctx, off)?;
                next = e[0];
                (e[1] as usize + 2) * 4
            }
            _ => return Ok((next, off)),
        };
        off += len;
        if off > MAX_EXT_OFFSET {
            return Err(Skip::Malformed);
        }
    }
    match next {
        NH_FRAGMENT => Err(Skip::Fragment),
        NH_HOP_BY_HOP | NH_ROUTING | NH_DEST_OPTS | NH_AUTH => Err(Skip::Malformed),
        _ => Ok((next, off)),
    }
}
