//! What is attached to an interface's TC hooks, seen from the test: TCX programs (through
//! aya, inside the namespace), netlink filters (through `tc`), and apitap's rings in the kernel.

use anyhow::{Context, Result, bail};
use aya::maps::{MapInfo, MapType};
use aya::programs::{SchedClassifier, loaded_programs, tc::TcAttachType};
use std::collections::BTreeSet;
use std::os::fd::AsRawFd;

use crate::netns::Netns;

/// Names of the TCX programs on `ifname`'s `hook` ("ingress" or "egress") in `ns`.
pub fn tcx_programs(ns: &Netns, ifname: &str, hook: &str) -> Result<Vec<String>> {
    let attach = match hook {
        "ingress" => TcAttachType::Ingress,
        "egress" => TcAttachType::Egress,
        other => bail!("unknown hook {other}"),
    };
    let path = format!("/run/netns/{}", ns.name);
    let ifname = ifname.to_string();
    // setns(CLONE_NEWNET) changes only the calling thread: do it on a thread of its own.
    std::thread::spawn(move || -> Result<Vec<String>> {
        let f = std::fs::File::open(&path).with_context(|| format!("open {path}"))?;
        // SAFETY: f is an open namespace file; the thread is ours and ends right after.
        if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            bail!("setns {path}: {}", std::io::Error::last_os_error());
        }
        let (_, progs) = SchedClassifier::query_tcx(&ifname, attach)
            .with_context(|| format!("query TCX programs on {ifname}"))?;
        Ok(progs
            .iter()
            .map(|p| p.name_as_str().unwrap_or("?").to_string())
            .collect())
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the TCX query thread panicked"))?
}

/// `tc filter show dev IF HOOK` in `ns`.
pub fn netlink_filters(ns: &Netns, ifname: &str, hook: &str) -> Result<String> {
    ns.sh(&format!("tc filter show dev {ifname} {hook}"))
}

/// The rings (the map ids of the ring arrays, which hold every CPU's ring) of every loaded
/// apitap classifier in the kernel, whoever holds them: a program named tc_ingress or
/// tc_egress using maps named RING_DATA (an array), PORTS and CPU_STATE. A killed apitap's
/// netlink filters keep theirs alive.
pub fn apitap_rings() -> Result<BTreeSet<u32>> {
    use agent_common::{maps, programs};
    let mut rings = BTreeSet::new();
    for p in loaded_programs() {
        // A program can go away between listing its id and opening it (ENOENT).
        let Ok(p) = p else {
            continue;
        };
        let name = p.name_as_str().unwrap_or("");
        if name != programs::TC_INGRESS && name != programs::TC_EGRESS {
            continue;
        }
        let mut ring = None;
        let mut names = BTreeSet::new();
        for id in p.map_ids().ok().flatten().unwrap_or_default() {
            let Ok(m) = MapInfo::from_id(id) else {
                continue;
            };
            let n = m.name_as_str().unwrap_or("").to_string();
            if n == maps::RING_DATA && matches!(m.map_type(), Ok(MapType::Array)) {
                ring = Some(id);
            }
            names.insert(n);
        }
        if let Some(r) = ring
            && names.contains(maps::PORTS)
            && names.contains(maps::CPU_STATE)
        {
            rings.insert(r);
        }
    }
    Ok(rings)
}
