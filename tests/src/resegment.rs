//! Captured IP packets cut into test frames: BPF_PROG_TEST_RUN takes at most a page per frame,
//! so TCP segments larger than [`MAX_PAYLOAD`] (loopback GSO segments reach 64 KiB) are split
//! into consecutive segments of that size, as a link with that MSS would carry them. Packets
//! the capture itself cut short (snap length) are passed whole: the classifier then sees an IP
//! length beyond the frame, as with the kernel's own truncated copies.

/// Payload bytes per split segment.
pub const MAX_PAYLOAD: usize = 1400;

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const PSH: u8 = 0x08;

/// The IP packets to run for one captured IP packet (`ip`, of which `orig_len` bytes were on
/// the wire).
pub fn split(ip: &[u8], wire_len: usize) -> Vec<Vec<u8>> {
    let Some(p) = Parsed::new(ip) else {
        return vec![ip.to_vec()];
    };
    let payload = p.total - p.l4_off - p.tcp_len;
    if p.total > ip.len() || wire_len > ip.len() || payload <= MAX_PAYLOAD {
        return vec![ip.to_vec()];
    }
    let seq = u32::from_be_bytes([
        ip[p.l4_off + 4],
        ip[p.l4_off + 5],
        ip[p.l4_off + 6],
        ip[p.l4_off + 7],
    ]);
    let flags = ip[p.l4_off + 13];
    let body = &ip[p.l4_off + p.tcp_len..p.total];
    let chunks: Vec<&[u8]> = body.chunks(MAX_PAYLOAD).collect();
    let last = chunks.len() - 1;
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let mut out = ip[..p.l4_off + p.tcp_len].to_vec();
            let len = (p.l4_off + p.tcp_len + chunk.len() - p.len_base) as u16;
            out[p.len_at..p.len_at + 2].copy_from_slice(&len.to_be_bytes());
            let off = (i * MAX_PAYLOAD) as u32;
            let s = seq
                .wrapping_add(off)
                .wrapping_add(u32::from(i > 0 && flags & SYN != 0));
            out[p.l4_off + 4..p.l4_off + 8].copy_from_slice(&s.to_be_bytes());
            let mut f = flags;
            if i > 0 {
                f &= !SYN;
            }
            if i < last {
                f &= !(FIN | PSH);
            }
            out[p.l4_off + 13] = f;
            out.extend_from_slice(chunk);
            out
        })
        .collect()
}

/// Where the lengths of an IPv4 or IPv6 (without extension headers) TCP packet are.
struct Parsed {
    l4_off: usize,
    tcp_len: usize,
    /// Bytes of the packet per its IP header.
    total: usize,
    /// Offset of the IP length field, and what it does not count (IPv6: the fixed header).
    len_at: usize,
    len_base: usize,
}

impl Parsed {
    fn new(ip: &[u8]) -> Option<Parsed> {
        let (l4_off, total, len_at, len_base) = match ip.first()? >> 4 {
            4 => {
                let ihl = usize::from(ip[0] & 0x0f) * 4;
                if *ip.get(9)? != 6 {
                    return None;
                }
                let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
                (ihl, total, 2, 0)
            }
            6 => {
                if *ip.get(6)? != 6 {
                    return None;
                }
                let plen = usize::from(u16::from_be_bytes([*ip.get(4)?, *ip.get(5)?]));
                (40, 40 + plen, 4, 40)
            }
            _ => return None,
        };
        let tcp_len = usize::from(*ip.get(l4_off + 12)? >> 4) * 4;
        (total >= l4_off + tcp_len).then_some(Parsed {
            l4_off,
            tcp_len,
            total,
            len_at,
            len_base,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4_tcp(seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x45, 0];
        p.extend_from_slice(&((40 + payload.len()) as u16).to_be_bytes());
        p.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1]);
        p.extend_from_slice(&[0x9c, 0x40, 0, 80]);
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 9, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn large_segments_become_consecutive_mss_sized_ones() {
        let payload: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let parts = split(&ipv4_tcp(100, 0x18 | FIN, &payload), 3040);
        assert_eq!(parts.len(), 3);
        let mut joined = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            let seq = u32::from_be_bytes([p[24], p[25], p[26], p[27]]);
            assert_eq!(seq, 100 + (i * MAX_PAYLOAD) as u32);
            assert_eq!(usize::from(u16::from_be_bytes([p[2], p[3]])), p.len());
            assert_eq!(p[33] & FIN != 0, i == 2, "FIN only on the last");
            joined.extend_from_slice(&p[40..]);
        }
        assert_eq!(joined, payload);
    }

    #[test]
    fn small_and_truncated_packets_pass_whole() {
        let small = ipv4_tcp(1, 0x18, b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(split(&small, small.len()), vec![small.clone()]);
        let big = ipv4_tcp(1, 0x18, &[b'x'; 3000]);
        let cut = &big[..400];
        assert_eq!(split(cut, big.len()), vec![cut.to_vec()]);
    }
}
