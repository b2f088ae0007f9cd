//! apitap's own stale netlink filters: left behind by an apitap that was SIGKILLed or
//! OOM-killed while attached with netlink filters (TCX links die with their process, netlink
//! filters do not). Each one keeps its program and that program's maps, the rings
//! included, alive in the kernel.
//!
//! A filter is apitap's when its BPF program is one of apitap's classifiers by name AND uses
//! apitap's maps by name (the same names could be another aya program's, not both together).
//! It is stale when no process holds that program through a file descriptor: a live apitap
//! holds every program it attached (aya keeps the program fds open), a dead one holds nothing.
//! A process in another PID namespace is invisible here: an apitap in another container
//! sharing this network namespace with netlink filters would look dead (TCX mode, the default
//! where the kernel has it, has no such filters).

use agent_common::{maps, programs};
use aya::maps::MapInfo;
use aya::programs::loaded_programs;
use std::collections::{HashMap, HashSet};
use std::io;
use tracing::{debug, info, warn};

use super::netlink::{self, Filter, PARENT_EGRESS, PARENT_INGRESS};

/// Names every apitap classifier program has, and maps each of them uses.
const PROGRAM_NAMES: &[&str] = &[programs::TC_INGRESS, programs::TC_EGRESS];
const MAP_NAMES: &[&str] = &[maps::PORTS, maps::CPU_STATE];
/// The map holding the rings, one of these: `RINGS` (an array of ring buffers) in apitap
/// before the per-CPU rings of `agent_common::ring`, whose filters an upgrade may find.
const RING_MAP_NAMES: &[&str] = &[maps::RING_DATA, "RINGS"];

/// Which loaded BPF programs are apitap's classifiers (by id), computed once per scan.
pub struct Census {
    apitap: HashSet<u32>,
    held: HashSet<u32>,
}

impl Census {
    /// Reads every loaded program's name and maps, and every program id held through a file
    /// descriptor by a process visible in /proc.
    pub fn take() -> Census {
        let mut apitap = HashSet::new();
        let mut map_names: HashMap<u32, String> = HashMap::new();
        for p in loaded_programs() {
            let p = match p {
                Ok(p) => p,
                Err(e) => {
                    debug!("cannot read a loaded program: {e}");
                    continue;
                }
            };
            if !p.name_as_str().is_some_and(|n| PROGRAM_NAMES.contains(&n)) {
                continue;
            }
            let ids = p.map_ids().ok().flatten().unwrap_or_default();
            let names: HashSet<String> = ids
                .iter()
                .filter_map(|id| {
                    if let Some(n) = map_names.get(id) {
                        return Some(n.clone());
                    }
                    let n = MapInfo::from_id(*id).ok()?.name_as_str()?.to_string();
                    map_names.insert(*id, n.clone());
                    Some(n)
                })
                .collect();
            if MAP_NAMES.iter().all(|m| names.contains(*m))
                && RING_MAP_NAMES.iter().any(|m| names.contains(*m))
            {
                apitap.insert(p.id());
            }
        }
        Census {
            apitap,
            held: held_program_ids(),
        }
    }

    pub fn is_apitap(&self, prog_id: u32) -> bool {
        self.apitap.contains(&prog_id)
    }

    /// apitap's and held by no process: left by an apitap that died attached.
    pub fn is_stale(&self, prog_id: u32) -> bool {
        self.is_apitap(prog_id) && !self.held.contains(&prog_id)
    }
}

/// apitap's stale filters on both clsact hooks of `ifindex`.
pub fn find(census: &Census, ifindex: u32) -> io::Result<Vec<Filter>> {
    let mut out = Vec::new();
    for parent in [PARENT_INGRESS, PARENT_EGRESS] {
        out.extend(
            netlink::filters(ifindex, parent)?
                .into_iter()
                .filter(|f| f.bpf_id.is_some_and(|id| census.is_stale(id))),
        );
    }
    Ok(out)
}

/// Removes apitap's stale filters from `iface`; returns how many were removed.
pub fn remove(census: &Census, iface: &str, ifindex: u32) -> usize {
    let stale = match find(census, ifindex) {
        Ok(s) => s,
        Err(e) => {
            warn!(interface = iface, "cannot list TC filters: {e}");
            return 0;
        }
    };
    let mut removed = 0;
    for f in stale {
        match netlink::delete_filter(ifindex, &f) {
            Ok(()) => {
                removed += 1;
                info!(
                    interface = iface,
                    program = f.bpf_name.as_deref().unwrap_or("?"),
                    prog_id = f.bpf_id.unwrap_or(0),
                    priority = f.priority,
                    "removed a stale apitap filter (its apitap is gone)"
                );
            }
            Err(e) => warn!(
                interface = iface,
                "cannot remove a stale apitap filter: {e}"
            ),
        }
    }
    removed
}

/// Program ids held through a file descriptor (a program fd, or a link fd naming its
/// program) by any process in /proc.
fn held_program_ids() -> HashSet<u32> {
    let mut held = HashSet::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return held;
    };
    for p in procs.flatten() {
        let pid = p.file_name();
        if !pid.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let target = target.to_string_lossy();
            if target != "anon_inode:bpf-prog" && target != "anon_inode:bpf_link" {
                continue;
            }
            let info = p.path().join("fdinfo").join(fd.file_name());
            if let Some(id) = std::fs::read_to_string(info)
                .ok()
                .and_then(|t| prog_id_of(&t))
            {
                held.insert(id);
            }
        }
    }
    held
}

/// The `prog_id:` field of a bpf-prog or bpf_link fdinfo.
fn prog_id_of(fdinfo: &str) -> Option<u32> {
    fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("prog_id:"))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prog_id_is_read_from_prog_and_link_fdinfo() {
        let prog = "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t1057\nprog_type:\t3\n\
                    prog_jited:\t1\nprog_tag:\tdeadbeefdeadbeef\nmemlock:\t4096\nprog_id:\t77\n";
        assert_eq!(prog_id_of(prog), Some(77));
        let link = "link_type:\ttcx\nlink_id:\t5\nprog_tag:\tdeadbeefdeadbeef\nprog_id:\t78\n\
                    ifindex:\t1\nattach_type:\t46\n";
        assert_eq!(prog_id_of(link), Some(78));
        assert_eq!(prog_id_of("map_type:\t27\nmap_id:\t3\n"), None);
    }

    #[test]
    fn a_program_not_known_as_apitap_is_never_stale() {
        let c = Census {
            apitap: HashSet::from([1, 2]),
            held: HashSet::from([2, 3]),
        };
        assert!(c.is_stale(1), "apitap's and held by nobody");
        assert!(!c.is_stale(2), "held by a live process");
        assert!(!c.is_stale(3), "not apitap's");
        assert!(
            !c.is_stale(4),
            "not apitap's and not held: someone else's, left alone"
        );
    }
}
