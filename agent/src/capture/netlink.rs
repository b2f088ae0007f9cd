//! The rtnetlink requests aya does not offer: listing the TC filters of a clsact hook (with
//! the BPF program behind each), deleting one filter by priority and handle, and deleting the
//! clsact qdisc.
//!
//! One request per socket, answered by an ACK or a dump that ends with NLMSG_DONE; every
//! message is bounds-checked, a malformed reply is an error, never a panic.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const RTM_DELQDISC: u16 = 37;
const RTM_NEWTFILTER: u16 = 44;
const RTM_DELTFILTER: u16 = 45;
const RTM_GETTFILTER: u16 = 46;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_HDR: usize = 16;
const TCMSG: usize = 20;
const TCA_KIND: u16 = 1;
const TCA_OPTIONS: u16 = 2;
const TCA_BPF_NAME: u16 = 7;
const TCA_BPF_ID: u16 = 11;
const NLA_TYPE_MASK: u16 = 0x3fff;
const TC_H_CLSACT: u32 = 0xFFFF_FFF1;
const CLSACT_HANDLE: u32 = 0xFFFF_0000;
/// Parents of the clsact hooks (TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS / _EGRESS)).
pub const PARENT_INGRESS: u32 = 0xFFFF_FFF2;
pub const PARENT_EGRESS: u32 = 0xFFFF_FFF3;

/// One entry of a filter dump. Classifiers such as u32 dump several entries (the classifier
/// itself with handle 0, its hash tables, its keys); each counts as present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub parent: u32,
    pub priority: u16,
    /// Protocol in network byte order, as the kernel reports it.
    pub protocol: u16,
    pub handle: u32,
    /// Classifier kind: "bpf", "u32", ...
    pub kind: String,
    /// For "bpf": the program's name as given at attach time, and its kernel id.
    pub bpf_name: Option<String>,
    pub bpf_id: Option<u32>,
}

/// Every filter on one clsact hook (`parent` is [`PARENT_INGRESS`] or [`PARENT_EGRESS`]).
/// An interface without a clsact qdisc has none (EINVAL from the kernel is read as empty).
pub fn filters(ifindex: u32, parent: u32) -> io::Result<Vec<Filter>> {
    let msg = request(
        RTM_GETTFILTER,
        NLM_F_REQUEST | NLM_F_DUMP,
        &tcmsg(ifindex, 0, parent, 0),
        &[],
    );
    let mut out = Vec::new();
    match transact(&msg, |ty, payload| {
        if ty == RTM_NEWTFILTER {
            out.push(parse_filter(payload)?);
        }
        Ok(())
    }) {
        Ok(()) => Ok(out),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Deletes one filter (all of it: for a "bpf" filter, the one handle).
pub fn delete_filter(ifindex: u32, f: &Filter) -> io::Result<()> {
    let info = (u32::from(f.priority) << 16) | u32::from(f.protocol);
    let msg = request(
        RTM_DELTFILTER,
        NLM_F_REQUEST | NLM_F_ACK,
        &tcmsg(ifindex, f.handle, f.parent, info),
        &[],
    );
    transact(&msg, |_, _| Ok(()))
}

/// Deletes the clsact qdisc (and with it every filter on its hooks) of `ifindex`. Callers
/// check first that it holds no filter but their own (see `attach`).
pub fn delete_clsact(ifindex: u32) -> io::Result<()> {
    let msg = request(
        RTM_DELQDISC,
        NLM_F_REQUEST | NLM_F_ACK,
        &tcmsg(ifindex, CLSACT_HANDLE, TC_H_CLSACT, 0),
        &attr(TCA_KIND, b"clsact\0"),
    );
    transact(&msg, |_, _| Ok(()))
}

fn tcmsg(ifindex: u32, handle: u32, parent: u32, info: u32) -> [u8; TCMSG] {
    let mut m = [0u8; TCMSG];
    m[0] = libc::AF_UNSPEC as u8;
    m[4..8].copy_from_slice(&(ifindex as i32).to_ne_bytes());
    m[8..12].copy_from_slice(&handle.to_ne_bytes());
    m[12..16].copy_from_slice(&parent.to_ne_bytes());
    m[16..20].copy_from_slice(&info.to_ne_bytes());
    m
}

fn attr(ty: u16, payload: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(4 + payload.len() + 3);
    a.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
    a.extend_from_slice(&ty.to_ne_bytes());
    a.extend_from_slice(payload);
    while a.len() % 4 != 0 {
        a.push(0);
    }
    a
}

fn request(ty: u16, flags: u16, body: &[u8], attrs: &[u8]) -> Vec<u8> {
    let len = NLMSG_HDR + body.len() + attrs.len();
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&ty.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&1u32.to_ne_bytes()); // seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel fills it in
    m.extend_from_slice(body);
    m.extend_from_slice(attrs);
    m
}

/// Sends `msg` and feeds every reply message to `each` until the ACK (or NLMSG_DONE of a
/// dump); an NLMSG_ERROR with a non-zero code becomes that errno.
fn transact(msg: &[u8], mut each: impl FnMut(u16, &[u8]) -> io::Result<()>) -> io::Result<()> {
    // SAFETY: plain socket(2); the descriptor is owned by OwnedFd right below.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: raw is a freshly opened descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
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
    let mut buf = vec![0u8; 64 * 1024];
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
fn walk(
    mut data: &[u8],
    each: &mut impl FnMut(u16, &[u8]) -> io::Result<()>,
) -> io::Result<Option<io::Result<()>>> {
    while data.len() >= NLMSG_HDR {
        let len = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]) as usize;
        let ty = u16::from_ne_bytes([data[4], data[5]]);
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
            _ => each(ty, payload)?,
        }
        data = &data[align4(len).min(data.len())..];
    }
    Ok(None)
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn malformed(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("malformed {what}"))
}

/// Attributes `(type without flags, payload)` of a buffer.
fn attrs(mut data: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
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

fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn parse_filter(payload: &[u8]) -> io::Result<Filter> {
    let tc = payload
        .get(..TCMSG)
        .ok_or_else(|| malformed("short tcmsg"))?;
    let word = |at: usize| u32::from_ne_bytes([tc[at], tc[at + 1], tc[at + 2], tc[at + 3]]);
    let info = word(16);
    let mut f = Filter {
        parent: word(12),
        priority: (info >> 16) as u16,
        protocol: (info & 0xffff) as u16,
        handle: word(8),
        kind: String::new(),
        bpf_name: None,
        bpf_id: None,
    };
    for (ty, value) in attrs(&payload[TCMSG..]) {
        match ty {
            TCA_KIND => f.kind = c_string(value),
            TCA_OPTIONS => {
                for (inner, v) in attrs(value) {
                    match inner {
                        TCA_BPF_NAME => f.bpf_name = Some(c_string(v)),
                        TCA_BPF_ID if v.len() >= 4 => {
                            f.bpf_id = Some(u32::from_ne_bytes([v[0], v[1], v[2], v[3]]));
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    // TCA_OPTIONS is parsed as bpf's only when the kind says so.
    if f.kind != "bpf" {
        f.bpf_name = None;
        f.bpf_id = None;
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter_message(kind: &str, name: &str, id: u32) -> Vec<u8> {
        let mut body = tcmsg(7, 1, PARENT_INGRESS, (49152 << 16) | 0x0300).to_vec();
        let mut kind_z = kind.as_bytes().to_vec();
        kind_z.push(0);
        body.extend(attr(TCA_KIND, &kind_z));
        let mut name_z = name.as_bytes().to_vec();
        name_z.push(0);
        let mut opts = attr(TCA_BPF_NAME, &name_z);
        opts.extend(attr(TCA_BPF_ID, &id.to_ne_bytes()));
        body.extend(attr(TCA_OPTIONS | 0x8000, &opts));
        request(RTM_NEWTFILTER, 0, &body, &[])
    }

    #[test]
    fn a_dump_entry_yields_the_program_behind_a_bpf_filter() {
        let msg = filter_message("bpf", "tc_ingress", 42);
        let mut seen = Vec::new();
        let end = walk(&msg, &mut |ty, p| {
            assert_eq!(ty, RTM_NEWTFILTER);
            seen.push(parse_filter(p)?);
            Ok(())
        })
        .expect("well formed");
        assert!(end.is_none(), "a dump goes on until NLMSG_DONE");
        assert_eq!(
            seen,
            vec![Filter {
                parent: PARENT_INGRESS,
                priority: 49152,
                protocol: 0x0300,
                handle: 1,
                kind: "bpf".into(),
                bpf_name: Some("tc_ingress".into()),
                bpf_id: Some(42),
            }]
        );
    }

    #[test]
    fn options_of_other_classifiers_are_not_read_as_bpf() {
        let msg = filter_message("u32", "x", 9);
        let f = parse_filter(&msg[NLMSG_HDR..]).expect("parse");
        assert_eq!(f.kind, "u32");
        assert_eq!((f.bpf_name, f.bpf_id), (None, None));
    }

    #[test]
    fn done_and_error_end_the_exchange() {
        let done = request(NLMSG_DONE, 0, &0i32.to_ne_bytes(), &[]);
        let r = walk(&done, &mut |_, _| Ok(())).expect("parse");
        assert!(matches!(r, Some(Ok(()))));
        let err = request(NLMSG_ERROR, 0, &(-libc::ENOENT).to_ne_bytes(), &[0; 16]);
        let r = walk(&err, &mut |_, _| Ok(())).expect("parse");
        let e = r.expect("over").expect_err("ENOENT");
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
        let ack = request(NLMSG_ERROR, 0, &0i32.to_ne_bytes(), &[0; 16]);
        assert!(matches!(walk(&ack, &mut |_, _| Ok(())), Ok(Some(Ok(())))));
    }

    #[test]
    fn truncated_or_lying_lengths_are_errors_not_panics() {
        let mut msg = filter_message("bpf", "tc_ingress", 1);
        msg[0..4].copy_from_slice(&10_000u32.to_ne_bytes());
        assert!(walk(&msg, &mut |_, _| Ok(())).is_err());
        assert!(parse_filter(&[0u8; 7]).is_err());
        // An attribute claiming more than is there ends the attribute walk.
        let mut body = tcmsg(1, 1, PARENT_EGRESS, 0).to_vec();
        body.extend_from_slice(&[200, 0, 1, 0, b'b']);
        let f = parse_filter(&body).expect("tcmsg is whole");
        assert_eq!(f.kind, "");
    }

    #[test]
    fn qdisc_delete_request_is_aligned_and_names_clsact() {
        let m = request(
            RTM_DELQDISC,
            NLM_F_REQUEST | NLM_F_ACK,
            &tcmsg(7, CLSACT_HANDLE, TC_H_CLSACT, 0),
            &attr(TCA_KIND, b"clsact\0"),
        );
        assert_eq!(m.len() % 4, 0);
        assert_eq!(
            u32::from_ne_bytes([m[0], m[1], m[2], m[3]]) as usize,
            m.len()
        );
        assert_eq!(i32::from_ne_bytes([m[20], m[21], m[22], m[23]]), 7);
        assert!(m.windows(7).any(|w| w == b"clsact\0"));
    }
}
