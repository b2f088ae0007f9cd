//! Interfaces to attach to, from /sys/class/net (polled every second for new ones).

use std::path::Path;

const IFF_UP: u32 = 0x1;
const ARPHRD_ETHER: u32 = 1;
const ARPHRD_LOOPBACK: u32 = 772;

/// What the classifiers can parse on an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Ethernet header first: attach ingress and egress.
    Ethernet,
    /// Loopback: a segment crosses egress then ingress, so attach ingress only.
    Loopback,
    /// No Ethernet header (tun, wireguard, ...): the classifiers cannot parse it.
    Other(u32),
}

fn read_u32(dir: &Path, file: &str) -> Option<u32> {
    let text = std::fs::read_to_string(dir.join(file)).ok()?;
    let text = text.trim();
    match text.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// Whether `name` exists in this network namespace.
pub fn exists(name: &str) -> bool {
    !name.contains('/') && Path::new("/sys/class/net").join(name).exists()
}

/// The interface's index, or None when there is no such interface.
pub fn index(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: c is a valid NUL-terminated string.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (idx != 0).then_some(idx)
}

/// The interface's framing, or None when it vanished.
pub fn framing(name: &str) -> Option<Framing> {
    let ty = read_u32(&Path::new("/sys/class/net").join(name), "type")?;
    Some(match ty {
        ARPHRD_ETHER => Framing::Ethernet,
        ARPHRD_LOOPBACK => Framing::Loopback,
        other => Framing::Other(other),
    })
}

/// Names of the interfaces that are administratively up, sorted.
pub fn up_interfaces() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/sys/class/net") else {
        return Vec::new();
    };
    let mut names: Vec<String> = dir
        .filter_map(|e| e.ok())
        .filter(|e| read_u32(&e.path(), "flags").is_some_and(|f| f & IFF_UP != 0))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_up_and_framed_as_loopback() {
        assert!(exists("lo"));
        assert!(up_interfaces().iter().any(|n| n == "lo"));
        assert_eq!(framing("lo"), Some(Framing::Loopback));
    }

    #[test]
    fn unknown_or_odd_names_do_not_exist() {
        assert!(!exists("apitap-no-such-if0"));
        assert!(!exists("../lo"));
        assert_eq!(framing("apitap-no-such-if0"), None);
    }
}
