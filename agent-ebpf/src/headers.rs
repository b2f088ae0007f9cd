//! L2-L4 header reading with `bpf_skb_load_bytes`, which also works on non-linear skbs.

use aya_ebpf::programs::TcContext;

/// Ethernet header length; the loader attaches only to Ethernet-framed interfaces (and `lo`,
/// which carries a zeroed Ethernet header at TC).
pub const ETH_HLEN: usize = 14;
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86DD;
pub const IPPROTO_TCP: u8 = 6;
const IPV6_HLEN: usize = 40;

/// Why a packet was not turned into an event.
pub enum Skip {
    /// Not IPv4/IPv6 TCP (or a non-first fragment, or IPv6 extension headers): ignored.
    NotTcp,
    /// Headers that cannot be read or lengths that do not add up: counted as an error.
    Malformed,
}

/// The IP facts the classifier needs.
pub struct Ip {
    pub family: u8,
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
    /// Offset of the TCP header from the start of the frame.
    pub l4_off: usize,
    /// Bytes after the IP header according to the IP header (TCP header + payload).
    pub l4_len: u32,
}

#[inline(always)]
fn load<T>(ctx: &TcContext, off: usize) -> Result<T, Skip> {
    ctx.load::<T>(off).map_err(|_| Skip::Malformed)
}

/// Reads the IPv4 or IPv6 header after the Ethernet header.
#[inline(always)]
pub fn read_ip(ctx: &TcContext) -> Result<Ip, Skip> {
    let proto = u16::from_be(load::<u16>(ctx, 12)?);
    let l3 = ETH_HLEN;
    let skb_len = ctx.len();
    if proto == ETH_P_IP {
        let vihl: u8 = load(ctx, l3)?;
        let ihl = ((vihl & 0x0f) as usize) * 4;
        if vihl >> 4 != 4 || ihl < 20 {
            return Err(Skip::Malformed);
        }
        let tot_len = u16::from_be(load::<u16>(ctx, l3 + 2)?) as u32;
        let frag = u16::from_be(load::<u16>(ctx, l3 + 6)?);
        if frag & 0x1fff != 0 {
            return Err(Skip::NotTcp);
        }
        let protocol: u8 = load(ctx, l3 + 9)?;
        if protocol != IPPROTO_TCP {
            return Err(Skip::NotTcp);
        }
        let mut saddr = [0u8; 16];
        let mut daddr = [0u8; 16];
        let s: [u8; 4] = load(ctx, l3 + 12)?;
        let d: [u8; 4] = load(ctx, l3 + 16)?;
        saddr[..4].copy_from_slice(&s);
        daddr[..4].copy_from_slice(&d);
        // BIG TCP GSO packets carry tot_len 0: take the length from the skb.
        let total = if tot_len == 0 {
            skb_len.saturating_sub(l3 as u32)
        } else {
            tot_len
        };
        if total < ihl as u32 {
            return Err(Skip::Malformed);
        }
        Ok(Ip {
            family: 4,
            saddr,
            daddr,
            l4_off: l3 + ihl,
            l4_len: total - ihl as u32,
        })
    } else if proto == ETH_P_IPV6 {
        let v: u8 = load(ctx, l3)?;
        if v >> 4 != 6 {
            return Err(Skip::Malformed);
        }
        let plen = u16::from_be(load::<u16>(ctx, l3 + 4)?) as u32;
        let next: u8 = load(ctx, l3 + 6)?;
        if next != IPPROTO_TCP {
            return Err(Skip::NotTcp);
        }
        let saddr: [u8; 16] = load(ctx, l3 + 8)?;
        let daddr: [u8; 16] = load(ctx, l3 + 24)?;
        let l4_len = if plen == 0 {
            skb_len.saturating_sub((l3 + IPV6_HLEN) as u32)
        } else {
            plen
        };
        Ok(Ip {
            family: 6,
            saddr,
            daddr,
            l4_off: l3 + IPV6_HLEN,
            l4_len,
        })
    } else {
        Err(Skip::NotTcp)
    }
}

/// The TCP header fields the event carries.
pub struct Tcp {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub hdr_len: u32,
}

#[inline(always)]
pub fn read_tcp(ctx: &TcContext, off: usize) -> Result<Tcp, Skip> {
    let ports: [u8; 4] = load(ctx, off)?;
    let seq = u32::from_be(load::<u32>(ctx, off + 4)?);
    let ack = u32::from_be(load::<u32>(ctx, off + 8)?);
    let doff_flags: [u8; 2] = load(ctx, off + 12)?;
    let hdr_len = ((doff_flags[0] >> 4) as u32) * 4;
    if hdr_len < 20 {
        return Err(Skip::Malformed);
    }
    Ok(Tcp {
        sport: u16::from_be_bytes([ports[0], ports[1]]),
        dport: u16::from_be_bytes([ports[2], ports[3]]),
        seq,
        ack,
        flags: doff_flags[1],
        hdr_len,
    })
}
