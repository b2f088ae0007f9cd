//! The rtnetlink requests aya does not offer: listing the TC filters of a clsact hook (with
//! the BPF program behind each), deleting one filter by priority and handle, and deleting the
//! clsact qdisc.
//!
//! One request per socket, over the shared transport in [`crate::netlink`].

use std::io;

use crate::netlink::{
    Message, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, attr, attrs, exchange, malformed, open, request,
};

const RTM_DELQDISC: u16 = 37;
const RTM_NEWTFILTER: u16 = 44;
const RTM_DELTFILTER: u16 = 45;
const RTM_GETTFILTER: u16 = 46;
const TCMSG: usize = 20;
const TCA_KIND: u16 = 1;
const TCA_OPTIONS: u16 = 2;
const TCA_BPF_NAME: u16 = 7;
const TCA_BPF_ID: u16 = 11;
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
    match transact(&msg, |m| {
        if m.ty == RTM_NEWTFILTER {
            out.push(parse_filter(m.payload)?);
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
    transact(&msg, |_| Ok(()))
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
    transact(&msg, |_| Ok(()))
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

/// Sends `msg` on a fresh NETLINK_ROUTE socket (see [`exchange`]).
fn transact(msg: &[u8], each: impl FnMut(Message<'_>) -> io::Result<()>) -> io::Result<()> {
    exchange(&open(libc::NETLINK_ROUTE)?, msg, each)
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
    use crate::netlink::{NLMSG_HDR, walk};

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
        let end = walk(&msg, &mut |m| {
            assert_eq!(m.ty, RTM_NEWTFILTER);
            seen.push(parse_filter(m.payload)?);
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
    fn truncated_or_lying_lengths_are_errors_not_panics() {
        let mut msg = filter_message("bpf", "tc_ingress", 1);
        msg[0..4].copy_from_slice(&10_000u32.to_ne_bytes());
        assert!(walk(&msg, &mut |_| Ok(())).is_err());
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
