//! The netlink transport shared by the rtnetlink requests of `capture` (TC filters) and the
//! sock_diag dumps of `discovery` (listening sockets): building a request, and one exchange
//! on a socket that ends with an ACK or the NLMSG_DONE of a dump. Every message is
//! bounds-checked; a malformed reply is an error, never a panic.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_DUMP: u16 = 0x300;
/// Set on the messages of a dump that the kernel's tables changed under (the dump may have
/// missed or repeated entries).
pub const NLM_F_DUMP_INTR: u16 = 0x10;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLMSG_HDR: usize = 16;
const NLA_TYPE_MASK: u16 = 0x3fff;

/// One reply message: its type, flags and payload (after the 16-byte header).
#[derive(Clone, Copy, Debug)]
pub struct Message<'a> {
    pub ty: u16,
    pub flags: u16,
    pub payload: &'a [u8],
}

/// A netlink socket of `protocol` (`libc::NETLINK_ROUTE`, `libc::NETLINK_SOCK_DIAG`) in the
/// calling thread's network namespace, which it keeps for life.
pub fn open(protocol: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the descriptor is owned by OwnedFd right below.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            protocol,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: raw is a freshly opened descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// A request: header (sequence 1, port id 0: the kernel fills it in), body, attributes.
pub fn request(ty: u16, flags: u16, body: &[u8], attrs: &[u8]) -> Vec<u8> {
    let len = NLMSG_HDR + body.len() + attrs.len();
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&ty.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&1u32.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(body);
    m.extend_from_slice(attrs);
    m
}

/// One attribute, padded to 4 bytes.
pub fn attr(ty: u16, payload: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(4 + payload.len() + 3);
    a.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
    a.extend_from_slice(&ty.to_ne_bytes());
    a.extend_from_slice(payload);
    while a.len() % 4 != 0 {
        a.push(0);
    }
    a
}

/// Attributes `(type without flags, payload)` of a buffer; a length that lies ends the walk.
pub fn attrs(mut data: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if data.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([data[0], data[1]]) as usize;
        let ty = u16::from_ne_bytes([data[2], data[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > data.len() {
            data = &[];
            return None;
        }
        let payload = &data[4..len];
        data = &data[align4(len).min(data.len())..];
        Some((ty, payload))
    })
}

/// Bytes of a receive buffer: more than one datagram of a dump (the kernel fills at most
/// about 32 KiB per datagram).
pub const RECV_BYTES: usize = 64 * 1024;

/// Sends `msg` on `fd` and feeds every reply message to `each` until the ACK (or NLMSG_DONE
/// of a dump); an NLMSG_ERROR with a non-zero code becomes that errno.
pub fn exchange(
    fd: &OwnedFd,
    msg: &[u8],
    each: impl FnMut(Message<'_>) -> io::Result<()>,
) -> io::Result<()> {
    exchange_into(fd, msg, &mut vec![0u8; RECV_BYTES], each)
}

/// [`exchange`] with a receive buffer the caller keeps across exchanges (grown to
/// [`RECV_BYTES`] if smaller).
pub fn exchange_into(
    fd: &OwnedFd,
    msg: &[u8],
    buf: &mut Vec<u8>,
    mut each: impl FnMut(Message<'_>) -> io::Result<()>,
) -> io::Result<()> {
    if buf.len() < RECV_BYTES {
        buf.resize(RECV_BYTES, 0);
    }
    // SAFETY: a zeroed sockaddr_nl with the family set addresses the kernel; msg is valid for
    // its length.
    let sent = unsafe {
        let mut sa: libc::sockaddr_nl = std::mem::zeroed();
        sa.nl_family = libc::AF_NETLINK as u16;
        libc::sendto(
            fd.as_raw_fd(),
            msg.as_ptr().cast(),
            msg.len(),
            0,
            (&sa as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    loop {
        // SAFETY: buf is valid for writes of its length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if let Some(done) = walk(&buf[..n as usize], &mut each)? {
            return done;
        }
    }
}

/// Walks the messages of one datagram. Some(result) once the exchange is over.
pub fn walk(
    mut data: &[u8],
    each: &mut impl FnMut(Message<'_>) -> io::Result<()>,
) -> io::Result<Option<io::Result<()>>> {
    while data.len() >= NLMSG_HDR {
        let len = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]) as usize;
        let ty = u16::from_ne_bytes([data[4], data[5]]);
        let flags = u16::from_ne_bytes([data[6], data[7]]);
        if len < NLMSG_HDR || len > data.len() {
            return Err(malformed("netlink message length"));
        }
        let payload = &data[NLMSG_HDR..len];
        match ty {
            NLMSG_DONE => return Ok(Some(Ok(()))),
            NLMSG_ERROR => {
                let code = payload
                    .get(..4)
                    .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                    .ok_or_else(|| malformed("short NLMSG_ERROR"))?;
                return Ok(Some(if code == 0 {
                    Ok(())
                } else {
                    Err(io::Error::from_raw_os_error(-code))
                }));
            }
            _ => each(Message { ty, flags, payload })?,
        }
        data = &data[align4(len).min(data.len())..];
    }
    Ok(None)
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The error for a reply that does not parse.
pub fn malformed(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("malformed {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn done_and_error_end_the_exchange() {
        let done = request(NLMSG_DONE, 0, &0i32.to_ne_bytes(), &[]);
        let r = walk(&done, &mut |_| Ok(())).expect("parse");
        assert!(matches!(r, Some(Ok(()))));
        let err = request(NLMSG_ERROR, 0, &(-libc::ENOENT).to_ne_bytes(), &[0; 16]);
        let r = walk(&err, &mut |_| Ok(())).expect("parse");
        let e = r.expect("over").expect_err("ENOENT");
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
        let ack = request(NLMSG_ERROR, 0, &0i32.to_ne_bytes(), &[0; 16]);
        assert!(matches!(walk(&ack, &mut |_| Ok(())), Ok(Some(Ok(())))));
    }

    #[test]
    fn messages_carry_type_flags_and_payload() {
        let mut two = request(20, NLM_F_DUMP_INTR, &[1, 2, 3, 4], &[]);
        two.extend(request(20, 0, &[5, 6, 7, 8], &[]));
        let mut seen = Vec::new();
        let end = walk(&two, &mut |m| {
            seen.push((m.ty, m.flags, m.payload.to_vec()));
            Ok(())
        })
        .expect("well formed");
        assert!(end.is_none(), "a dump goes on until NLMSG_DONE");
        assert_eq!(
            seen,
            vec![
                (20, NLM_F_DUMP_INTR, vec![1, 2, 3, 4]),
                (20, 0, vec![5, 6, 7, 8])
            ]
        );
    }

    #[test]
    fn lying_lengths_are_errors_not_panics() {
        let mut msg = request(20, 0, &[0; 8], &[]);
        msg[0..4].copy_from_slice(&10_000u32.to_ne_bytes());
        assert!(walk(&msg, &mut |_| Ok(())).is_err());
        msg[0..4].copy_from_slice(&3u32.to_ne_bytes());
        assert!(walk(&msg, &mut |_| Ok(())).is_err());
        // An attribute claiming more than is there ends the attribute walk.
        assert_eq!(attrs(&[200, 0, 1, 0, b'b']).count(), 0);
        assert_eq!(
            attrs(&attr(1, b"ab")).collect::<Vec<_>>(),
            vec![(1, &b"ab"[..])]
        );
    }
}
