//! The local addresses of a network namespace, from /proc/<pid>/net/fib_trie (IPv4: the
//! `/32 host LOCAL` leaves) and /proc/<pid>/net/if_inet6 (IPv6). Both are readable for any
//! process without entering its namespace.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IPv4 addresses the fib_trie text marks `host LOCAL`.
pub fn parse_fib_trie(text: &str) -> BTreeSet<IpAddr> {
    let mut out = BTreeSet::new();
    let mut last: Option<Ipv4Addr> = None;
    for line in text.lines() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("|-- ") {
            last = rest.trim().parse().ok();
        } else if t.starts_with("/32 host LOCAL")
            && let Some(a) = last
        {
            out.insert(IpAddr::V4(a));
        }
    }
    out
}

/// IPv6 addresses of if_inet6 (`<32 hex digits> <ifindex> <prefix> <scope> <flags> <name>`).
pub fn parse_if_inet6(text: &str) -> BTreeSet<IpAddr> {
    text.lines()
        .filter_map(|line| {
            let hex = line.split_whitespace().next()?;
            if hex.len() != 32 {
                return None;
            }
            let n = u128::from_str_radix(hex, 16).ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(n)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIB_TRIE: &str = "Main:
  +-- 0.0.0.0/0 3 0 5
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 127.255.255.255
           /32 link BROADCAST
     +-- 192.0.2.0/24 2 0 2
        |-- 192.0.2.0
           /24 link UNICAST
        |-- 192.0.2.11
           /32 host LOCAL
Local:
  +-- 0.0.0.0/0 3 0 5
           |-- 192.0.2.11
              /32 host LOCAL
";

    #[test]
    fn fib_trie_host_local_leaves_are_the_addresses() {
        let got: Vec<String> = parse_fib_trie(FIB_TRIE)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, ["127.0.0.1", "192.0.2.11"]);
    }

    #[test]
    fn if_inet6_lists_every_address_and_skips_garbage() {
        let text = "00000000000000000000000000000001 01 80 10 80       lo\n\
                    20010db8000000000000000000000011 05 40 00 80     eth0\n\
                    short 01 02\n";
        let got: Vec<String> = parse_if_inet6(text)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, ["::1", "2001:db8::11"]);
    }
}
