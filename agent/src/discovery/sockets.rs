//! LISTEN sockets from the text of /proc/<pid>/net/tcp and tcp6: local address, port and the
//! socket inode (which /proc/<pid>/fd links name as `socket:[inode]`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The kernel's TCP_LISTEN state as printed in the `st` column.
const LISTEN: &str = "0A";

/// One listening socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Listener {
    /// The bound address; unspecified (`0.0.0.0`, `::`) for a wildcard listener.
    pub addr: IpAddr,
    pub port: u16,
    pub inode: u64,
}

/// The LISTEN sockets of a /proc/net/tcp or tcp6 text. Malformed lines are skipped and
/// counted in the second value.
pub fn parse_listeners(text: &str) -> (Vec<Listener>, u64) {
    let mut out = Vec::new();
    let mut malformed = 0;
    for line in text.lines().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line) {
            Some(Some(l)) => out.push(l),
            Some(None) => {}
            None => malformed += 1,
        }
    }
    (out, malformed)
}

/// Whether a line of /proc/net/tcp{,6} shows a socket in a state other than LISTEN. The kernel
/// prints its listening hash (LISTEN sockets only) before its established hash (every other
/// state), so every listener lies before the first such line and reading can stop there
/// (`tcp_seq_start`/`tcp_seq_next`: listening, then established, since Linux 2.6). The
/// header and malformed lines are not past.
pub fn past_listeners(line: &str) -> bool {
    let mut cols = line.split_whitespace();
    match (cols.next(), cols.nth(2)) {
        (Some(sl), Some(st)) => sl.ends_with(':') && st.len() == 2 && st != LISTEN,
        _ => false,
    }
}

/// `None`: malformed; `Some(None)`: a socket in another state.
fn parse_line(line: &str) -> Option<Option<Listener>> {
    let cols: Vec<&str> = line.split_whitespace().collect();
    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
    if cols.len() < 10 {
        return None;
    }
    let (addr, port) = cols[1].rsplit_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let addr = parse_addr(addr)?;
    let inode: u64 = cols[9].parse().ok()?;
    if cols[3] != LISTEN || port == 0 {
        return Some(None);
    }
    Some(Some(Listener { addr, port, inode }))
}

/// The kernel prints addresses as native-endian 32-bit words in hex: 8 digits for IPv4,
/// 32 for IPv6.
fn parse_addr(hex: &str) -> Option<IpAddr> {
    let word = |i: usize| -> Option<[u8; 4]> {
        let w = u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok()?;
        Some(w.to_ne_bytes())
    };
    match hex.len() {
        8 => Some(IpAddr::V4(Ipv4Addr::from(word(0)?))),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1111 1 0 100 0 0 10 0
   1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2222 1 0 100 0 0 10 0
   2: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 3333 1 0 20 4 30 10 -1
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4444 1 0 100 0 0 10 0
   1: B80D0120000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5555 1 0 100 0 0 10 0
";

    fn l(addr: &str, port: u16, inode: u64) -> Listener {
        Listener {
            addr: addr.parse().expect("literal"),
            port,
            inode,
        }
    }

    #[rstest]
    #[case::ipv4_listeners_only(TCP, vec![l("0.0.0.0", 80, 1111), l("127.0.0.1", 8080, 2222)], 0)]
    #[case::ipv6_wildcard_and_address(TCP6, vec![l("::", 8081, 4444), l("2001:db8::1", 80, 5555)], 0)]
    #[case::garbage_is_counted("header\nnot a socket line\n 0: zz:zz 0:0 0A a b c d e f\n", vec![], 2)]
    #[case::empty("", vec![], 0)]
    fn finds_listeners(#[case] text: &str, #[case] want: Vec<Listener>, #[case] bad: u64) {
        assert_eq!(parse_listeners(text), (want, bad));
    }

    #[test]
    fn other_states_end_the_listening_part() {
        let lines: Vec<&str> = TCP.lines().collect();
        assert!(!past_listeners(lines[0]), "header");
        assert!(
            !past_listeners(lines[1]) && !past_listeners(lines[2]),
            "LISTEN"
        );
        assert!(past_listeners(lines[3]), "ESTABLISHED");
        assert!(!past_listeners("not a socket line") && !past_listeners(""));
    }
}
