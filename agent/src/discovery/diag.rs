//! Listening sockets by sock_diag: one `NETLINK_SOCK_DIAG` dump per address family with only
//! `TCP_LISTEN` in the state mask. The kernel then walks only its listening hash (16,384
//! buckets on the build machine) and skips the established hash, which every read of
//! `/proc/<pid>/net/tcp` walks whole even when it is stopped at the first non-listening line:
//! the table is shared by every namespace (262,144 buckets here, about 2 ms per file), and on
//! an idle host that walk was 70 % of the agent's CPU (`perf record`, 2026-12-01).
//!
//! A netlink socket answers for the network namespace it was created in. The agent's own
//! namespace needs nothing. Another one is entered by a short-lived thread that opens the
//! namespace (`/proc/<pid>/ns/net`), `setns`es into it, creates the socket and exits; `setns`
//! needs CAP_SYS_ADMIN, and without it the caller falls back to the /proc text (counted).
//! Sockets are kept per namespace while it lives, at most [`MAX_SOCKETS`] of them; past that,
//! a read opens a socket and closes it. The scan reads a namespace with a kept socket at every
//! scan, and leaves the others to its schedule.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::sockets::Listener;
use crate::netlink::{self, Message, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST};

/// Namespaces whose sockets are kept open between scans (one descriptor each).
pub const MAX_SOCKETS: usize = 256;
/// A dump the kernel marks as interrupted (its tables changed under it) is tried this often.
const ATTEMPTS: usize = 3;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const TCP_LISTEN: u8 = 10;
/// `struct inet_diag_req_v2`: family, protocol, ext, pad, states, then a 48-byte socket id.
const REQ_BYTES: usize = 56;
/// `struct inet_diag_msg`: family, state, timer, retrans, the socket id (source port at 4,
/// source address at 8), expires, rqueue, wqueue, uid, then the inode at 68.
const MSG_BYTES: usize = 72;

/// Why sock_diag could not read a namespace through one process.
#[derive(Debug)]
pub enum Unusable {
    /// The process is gone, or its namespace file is not the namespace asked for (the pid was
    /// reused, or /proc is a fixture): another process of the namespace may do.
    Gone,
    /// This namespace cannot be entered (no CAP_SYS_ADMIN for setns, no access to its file).
    Denied(io::Error),
    /// The dump failed.
    Failed(io::Error),
}

/// sock_diag sockets by namespace.
pub struct Diag {
    /// The agent's own network namespace.
    own: Option<u64>,
    sockets: HashMap<u64, OwnedFd>,
    /// Entering another namespace was refused once; it is not tried again.
    denied: bool,
    /// The receive buffer every dump reuses.
    buf: Vec<u8>,
}

impl Default for Diag {
    fn default() -> Self {
        Diag::new()
    }
}

impl Diag {
    pub fn new() -> Diag {
        Diag {
            own: std::fs::metadata("/proc/self/ns/net").ok().map(|m| m.ino()),
            sockets: HashMap::new(),
            denied: false,
            buf: Vec::new(),
        }
    }

    /// Whether `ns` can be read this way (its own namespace always; others until a `setns`
    /// was refused).
    pub fn can_read(&self, ns: u64) -> bool {
        self.own == Some(ns) || !self.denied
    }

    /// Whether a socket is kept for `ns` (it was read before, and is read cheaply again).
    pub fn has(&self, ns: u64) -> bool {
        self.sockets.contains_key(&ns)
    }

    /// Forgets the sockets of namespaces for which `keep` is false.
    pub fn retain(&mut self, keep: impl Fn(u64) -> bool) {
        self.sockets.retain(|ns, _| keep(*ns));
    }

    /// The listening TCP sockets of namespace `ns`, entered through `ns_file` (a process's
    /// `ns/net`) when the socket is not open yet.
    pub fn listeners(&mut self, ns: u64, ns_file: &Path) -> Result<Vec<Listener>, Unusable> {
        let fd = match self.sockets.remove(&ns) {
            Some(fd) => fd,
            None => self.open(ns, ns_file)?,
        };
        let found = dump_listeners(&fd, &mut self.buf).map_err(Unusable::Failed)?;
        // A socket whose exchange failed may hold a half-read reply: it is dropped above.
        if self.sockets.len() < MAX_SOCKETS {
            self.sockets.insert(ns, fd);
        }
        Ok(found)
    }

    fn open(&mut self, ns: u64, ns_file: &Path) -> Result<OwnedFd, Unusable> {
        if !self.can_read(ns) {
            return Err(Unusable::Denied(io::Error::from_raw_os_error(libc::EPERM)));
        }
        let file = match File::open(ns_file) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Unusable::Gone),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Err(Unusable::Gone),
            Err(e) => return Err(Unusable::Denied(e)),
        };
        match file.metadata() {
            Ok(m) if m.ino() == ns => {}
            _ => return Err(Unusable::Gone),
        }
        if self.own == Some(ns) {
            return netlink::open(libc::NETLINK_SOCK_DIAG).map_err(Unusable::Failed);
        }
        let entered = std::thread::Builder::new()
            .name("apitap-netns".into())
            .spawn(move || socket_in(&file))
            .map_err(Unusable::Failed)?
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the namespace thread panicked")));
        match entered {
            Ok(fd) => Ok(fd),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES)) => {
                self.denied = true;
                Err(Unusable::Denied(e))
            }
            Err(e) => Err(Unusable::Failed(e)),
        }
    }
}

/// Runs on a thread of its own, which ends right after: the process's other threads keep
/// their namespace.
fn socket_in(ns: &File) -> io::Result<OwnedFd> {
    // SAFETY: setns(2) on a namespace descriptor we own; it changes only this thread.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    netlink::open(libc::NETLINK_SOCK_DIAG)
}

/// Both families' listeners; a family the kernel does not know (IPv6 disabled) has none.
fn dump_listeners(fd: &OwnedFd, buf: &mut Vec<u8>) -> io::Result<Vec<Listener>> {
    let mut all = dump_family(fd, libc::AF_INET as u8, buf)?;
    match dump_family(fd, libc::AF_INET6 as u8, buf) {
        Ok(v6) => all.extend(v6),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EAFNOSUPPORT)) => {}
        Err(e) => return Err(e),
    }
    all.sort_unstable();
    all.dedup();
    Ok(all)
}

fn dump_family(fd: &OwnedFd, family: u8, buf: &mut Vec<u8>) -> io::Result<Vec<Listener>> {
    let msg = netlink::request(
        SOCK_DIAG_BY_FAMILY,
        NLM_F_REQUEST | NLM_F_DUMP,
        &listen_request(family),
        &[],
    );
    let mut out = Vec::new();
    for _ in 0..ATTEMPTS {
        out.clear();
        let mut interrupted = false;
        netlink::exchange_into(fd, &msg, buf, |m: Message<'_>| {
            interrupted |= m.flags & NLM_F_DUMP_INTR != 0;
            if m.ty == SOCK_DIAG_BY_FAMILY
                && let Some(l) = parse_listener(m.payload)?
            {
                out.push(l);
            }
            Ok(())
        })?;
        if !interrupted {
            break;
        }
    }
    Ok(out)
}

fn listen_request(family: u8) -> [u8; REQ_BYTES] {
    let mut r = [0u8; REQ_BYTES];
    r[0] = family;
    r[1] = libc::IPPROTO_TCP as u8;
    r[4..8].copy_from_slice(&(1u32 << TCP_LISTEN).to_ne_bytes());
    r
}

/// One `inet_diag_msg`: a listener, `None` for another state or port 0, an error when short.
fn parse_listener(p: &[u8]) -> io::Result<Option<Listener>> {
    if p.len() < MSG_BYTES {
        return Err(netlink::malformed("short inet_diag_msg"));
    }
    let port = u16::from_be_bytes([p[4], p[5]]);
    let inode = u64::from(u32::from_ne_bytes([p[68], p[69], p[70], p[71]]));
    let addr = match i32::from(p[0]) {
        libc::AF_INET => IpAddr::V4(Ipv4Addr::new(p[8], p[9], p[10], p[11])),
        libc::AF_INET6 => {
            let mut b = [0u8; 16];
            b.copy_from_slice(&p[8..24]);
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return Err(netlink::malformed("inet_diag_msg family")),
    };
    if p[1] != TCP_LISTEN || port == 0 {
        return Ok(None);
    }
    Ok(Some(Listener { addr, port, inode }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::os::fd::AsFd;
    use std::path::PathBuf;

    fn inode_of(l: &TcpListener) -> u64 {
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat on a descriptor the listener owns into a zeroed stat.
        assert_eq!(
            unsafe { libc::fstat(l.as_fd().as_raw_fd(), &mut st) },
            0,
            "fstat"
        );
        st.st_ino
    }

    fn own_ns() -> u64 {
        std::fs::metadata("/proc/self/ns/net")
            .expect("own ns")
            .ino()
    }

    #[test]
    fn finds_this_namespaces_listeners_with_their_inodes() {
        let v4 = TcpListener::bind("127.0.0.1:0").expect("bind v4");
        let v6 = TcpListener::bind("[::1]:0").ok();
        let mut d = Diag::new();
        let ns = own_ns();
        assert!(d.can_read(ns));
        let found = d
            .listeners(ns, Path::new("/proc/self/ns/net"))
            .unwrap_or_else(|e| panic!("sock_diag in our own namespace: {e:?}"));
        let want = Listener {
            addr: "127.0.0.1".parse().expect("literal"),
            port: v4.local_addr().expect("addr").port(),
            inode: inode_of(&v4),
        };
        assert!(found.contains(&want), "{want:?} not in {found:?}");
        if let Some(v6) = v6 {
            let want = Listener {
                addr: "::1".parse().expect("literal"),
                port: v6.local_addr().expect("addr").port(),
                inode: inode_of(&v6),
            };
            assert!(found.contains(&want), "{want:?} not in {found:?}");
        }
        // A closed listener is gone at the next read, through the kept socket.
        let port = want.port;
        drop(v4);
        let again = d
            .listeners(ns, Path::new("/nonexistent"))
            .expect("kept socket");
        assert!(!again.iter().any(|l| l.port == port && l.addr.is_ipv4()));
    }

    #[test]
    fn a_namespace_file_that_is_not_the_namespace_is_gone_not_an_error() {
        let mut d = Diag::new();
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("net"), "").expect("write");
        assert!(matches!(
            d.listeners(own_ns(), &dir.path().join("net")),
            Err(Unusable::Gone)
        ));
        assert!(matches!(
            d.listeners(own_ns(), &dir.path().join("missing")),
            Err(Unusable::Gone)
        ));
        assert!(d.sockets.is_empty());
    }

    /// A network namespace of the test's own making, held by an open file (the thread that
    /// made it ends at once).
    fn fresh_namespace() -> File {
        std::thread::spawn(|| {
            // SAFETY: unshare(2) of this short-lived thread's network namespace only.
            assert_eq!(
                unsafe { libc::unshare(libc::CLONE_NEWNET) },
                0,
                "unshare: {}",
                io::Error::last_os_error()
            );
            File::open("/proc/thread-self/ns/net").expect("own ns file")
        })
        .join()
        .expect("unshare thread")
    }

    #[test]
    fn another_namespace_is_entered_with_cap_sys_admin_and_refused_once_without() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!(
                "NOT RUN: entering another network namespace needs root (cargo xtask test runs it as root)"
            );
            return;
        }
        let other = fresh_namespace();
        let ns = other.metadata().expect("ns").ino();
        let path = PathBuf::from(format!("/proc/self/fd/{}", other.as_raw_fd()));
        // With CAP_SYS_ADMIN: entered, an empty namespace has no listeners, the socket is kept.
        let mut d = Diag::new();
        assert_ne!(d.own, Some(ns));
        assert_eq!(d.listeners(ns, &path).expect("entered"), Vec::new());
        assert!(d.has(ns));
        // Without it (on a thread of its own): refused, and not tried again for any other
        // namespace; the agent's own stays readable.
        std::thread::spawn(move || {
            // As in a container that was not granted CAP_SYS_ADMIN.
            crate::capture::caps::drop_effective(crate::capture::caps::CAP_SYS_ADMIN);
            let mut d = Diag::new();
            match d.listeners(ns, &path) {
                Err(Unusable::Denied(e)) => assert_eq!(e.raw_os_error(), Some(libc::EPERM)),
                other => panic!("expected EPERM, got {other:?}"),
            }
            assert!(!d.has(ns) && !d.can_read(ns));
            assert!(d.can_read(own_ns()));
            d.listeners(own_ns(), Path::new("/proc/self/ns/net"))
                .expect("own namespace without CAP_SYS_ADMIN");
            drop(other);
        })
        .join()
        .expect("the thread without CAP_SYS_ADMIN");
    }

    fn message(family: u8, state: u8, port: u16, addr: &[u8], inode: u32) -> Vec<u8> {
        let mut m = vec![0u8; MSG_BYTES];
        m[0] = family;
        m[1] = state;
        m[4..6].copy_from_slice(&port.to_be_bytes());
        m[8..8 + addr.len()].copy_from_slice(addr);
        m[68..72].copy_from_slice(&inode.to_ne_bytes());
        m
    }

    #[test]
    fn messages_become_listeners_and_short_ones_errors() {
        let v4 = message(libc::AF_INET as u8, TCP_LISTEN, 8080, &[10, 0, 0, 7], 99);
        assert_eq!(
            parse_listener(&v4).expect("whole"),
            Some(Listener {
                addr: "10.0.0.7".parse().expect("literal"),
                port: 8080,
                inode: 99
            })
        );
        let mut any6 = [0u8; 16];
        any6[15] = 1;
        let v6 = message(libc::AF_INET6 as u8, TCP_LISTEN, 443, &any6, 5);
        assert_eq!(
            parse_listener(&v6).expect("whole").map(|l| l.addr),
            Some("::1".parse().expect("literal"))
        );
        let established = message(libc::AF_INET as u8, 1, 8080, &[10, 0, 0, 7], 1);
        assert_eq!(parse_listener(&established).expect("whole"), None);
        let port0 = message(libc::AF_INET as u8, TCP_LISTEN, 0, &[0; 4], 1);
        assert_eq!(parse_listener(&port0).expect("whole"), None);
        assert!(parse_listener(&v4[..40]).is_err());
        assert!(parse_listener(&message(99, TCP_LISTEN, 1, &[0; 4], 1)).is_err());
    }

    #[test]
    fn the_request_asks_for_tcp_listeners_only() {
        let r = listen_request(libc::AF_INET6 as u8);
        assert_eq!(
            (r[0], r[1]),
            (libc::AF_INET6 as u8, libc::IPPROTO_TCP as u8)
        );
        assert_eq!(u32::from_ne_bytes([r[4], r[5], r[6], r[7]]), 1 << 10);
        assert!(r[8..].iter().all(|b| *b == 0), "no socket id filter");
    }
}
