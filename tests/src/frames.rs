//! Synthetic Ethernet frames for BPF_PROG_TEST_RUN.

pub const ACK: u8 = 0x10;
pub const PSH: u8 = 0x08;
pub const SYN: u8 = 0x02;
pub const FIN: u8 = 0x01;

pub struct Tcp<'a> {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub payload: &'a [u8],
}

fn eth(ethertype: u16) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

fn tcp_header(t: &Tcp<'_>) -> Vec<u8> {
    let mut h = Vec::with_capacity(20);
    h.extend_from_slice(&t.sport.to_be_bytes());
    h.extend_from_slice(&t.dport.to_be_bytes());
    h.extend_from_slice(&t.seq.to_be_bytes());
    h.extend_from_slice(&t.ack.to_be_bytes());
    h.push(5 << 4);
    h.push(t.flags);
    h.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
    h
}

fn ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], l4_len: usize, claimed_tot: Option<u16>) -> Vec<u8> {
    let tot = claimed_tot.unwrap_or((20 + l4_len) as u16);
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&tot.to_be_bytes());
    h.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h
}

/// IPv4 TCP; `claimed_tot` overrides the IP total length (a GSO-style frame whose IP
/// header announces more than the frame carries).
pub fn ipv4_tcp(src: [u8; 4], dst: [u8; 4], t: &Tcp<'_>, claimed_tot: Option<u16>) -> Vec<u8> {
    let mut f = eth(0x0800);
    f.extend(ipv4(6, src, dst, 20 + t.payload.len(), claimed_tot));
    f.extend(tcp_header(t));
    f.extend_from_slice(t.payload);
    f
}

pub fn ipv6_tcp(src: [u8; 16], dst: [u8; 16], t: &Tcp<'_>) -> Vec<u8> {
    let mut f = eth(0x86DD);
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&((20 + t.payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[6, 64]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend(tcp_header(t));
    f.extend_from_slice(t.payload);
    f
}

pub fn ipv4_udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = eth(0x0800);
    f.extend(ipv4(17, src, dst, 8 + payload.len(), None));
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

/// An IPv6 extension header: its type (next-header value announcing it) and its bytes after
/// the next-header byte (the chain's next-header values are filled in).
pub struct Ext {
    pub kind: u8,
    pub body: Vec<u8>,
}

impl Ext {
    /// Hop-by-Hop, Routing or Destination Options of `units` 8-byte units (padding options).
    pub fn options(kind: u8, units: u8) -> Ext {
        let mut body = vec![units - 1];
        body.resize(usize::from(units) * 8 - 1, 0);
        Ext { kind, body }
    }

    /// A Fragment header (8 bytes).
    pub fn fragment(offset_and_more: u16) -> Ext {
        let mut body = vec![0];
        body.extend_from_slice(&offset_and_more.to_be_bytes());
        body.extend_from_slice(&[0, 0, 0, 1]);
        Ext { kind: 44, body }
    }
}

/// IPv6 TCP behind the extension headers `ext` (in order).
pub fn ipv6_tcp_ext(src: [u8; 16], dst: [u8; 16], t: &Tcp<'_>, ext: &[Ext]) -> Vec<u8> {
    let mut chain = Vec::new();
    for (i, e) in ext.iter().enumerate() {
        chain.push(ext.get(i + 1).map_or(6, |n| n.kind));
        chain.extend_from_slice(&e.body);
    }
    let mut f = eth(0x86DD);
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&((chain.len() + 20 + t.payload.len()) as u16).to_be_bytes());
    f.push(ext.first().map_or(6, |e| e.kind));
    f.push(64);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend(chain);
    f.extend(tcp_header(t));
    f.extend_from_slice(t.payload);
    f
}

/// IPv4 TCP with the flags/fragment-offset field set to `frag` (0x2000: more fragments).
pub fn ipv4_tcp_fragment(src: [u8; 4], dst: [u8; 4], t: &Tcp<'_>, frag: u16) -> Vec<u8> {
    let mut f = ipv4_tcp(src, dst, t, None);
    f[20..22].copy_from_slice(&frag.to_be_bytes());
    f
}

/// An Ethernet frame around an IPv4 or IPv6 packet.
pub fn ethernet(ip: &[u8]) -> Vec<u8> {
    let mut f = eth(if ip.first().is_some_and(|b| b >> 4 == 6) {
        0x86DD
    } else {
        0x0800
    });
    f.extend_from_slice(ip);
    f
}
