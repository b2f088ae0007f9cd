//! Server port discovery: TCP sockets in LISTEN state from /proc/net/tcp and /proc/net/tcp6.

use std::collections::BTreeSet;

/// The kernel's TCP_LISTEN state as printed in the `st` column.
const LISTEN: &str = "0A";

/// Local ports of LISTEN sockets in the text of /proc/net/tcp or /proc/net/tcp6. Malformed
/// lines are ignored.
pub fn parse_listen_ports(text: &str) -> BTreeSet<u16> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut cols = line.split_whitespace();
            let local = cols.nth(1)?;
            let state = cols.nth(1)?;
            if state != LISTEN {
                return None;
            }
            let port = local.rsplit_once(':')?.1;
            u16::from_str_radix(port, 16).ok().filter(|p| *p != 0)
        })
        .collect()
}

/// Listening TCP ports of this network namespace (IPv4 and IPv6), minus `exclude`.
pub fn listening_ports(exclude: &[u16]) -> BTreeSet<u16> {
    let mut ports = BTreeSet::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(file) {
            ports.extend(parse_listen_ports(&text));
        }
    }
    ports.retain(|p| !exclude.contains(p));
    ports
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
   2: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 20 4 30 10 -1
";
    const TCP6: &str =
        "  sl  local_address                         remote_address                        st
   0: 00000000000000000000000000000000:1F91 00000000000000000000000000000000:0000 0A 0
";

    #[rstest]
    #[case::ipv4_listeners_only(TCP, &[80, 8080])]
    #[case::ipv6_listener(TCP6, &[8081])]
    #[case::garbage_is_ignored("header\nnot a socket line\n 0: zz:zz 0:0 0A\n", &[])]
    #[case::empty("", &[])]
    fn finds_listening_ports(#[case] text: &str, #[case] want: &[u16]) {
        let got: Vec<u16> = parse_listen_ports(text).into_iter().collect();
        assert_eq!(got, want);
    }
}
