//! The floor of a live classifier measurement: an empty TC program (`r0 = -1; exit`, which is
//! TCX_NEXT) attached by TCX on the same hook as the agent's, so it runs on the same packets
//! at the same moment. What `kernel.bpf_stats_enabled` charges it per run is what the
//! accounting itself costs on this machine (a clock read on each side of the call, the
//! indirect call), and so the least any program, the agent's included, can be measured at.

use anyhow::{Context, Result, bail};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::netns::Netns;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_PROG_TYPE_SCHED_CLS: u32 = 3;
const BPF_TCX_INGRESS: u32 = 46;

/// An empty program attached to one interface's TCX ingress; detached on drop (the link's fd
/// is this process's).
pub struct EmptyProgram {
    prog: OwnedFd,
    _link: OwnedFd,
}

impl EmptyProgram {
    /// Loads it and attaches it after the programs already on `ifname`'s TCX ingress in `ns`.
    pub fn attach(ns: &Netns, ifname: &str) -> Result<EmptyProgram> {
        let prog = load()?;
        let path = format!("/var/run/netns/{}", ns.name);
        let ifname = CString::new(ifname)?;
        let raw = prog.as_raw_fd();
        // The link resolves the interface index in the calling thread's namespace: attach
        // from a thread that joined `ns` (and ends with it).
        let link = std::thread::spawn(move || -> Result<OwnedFd> {
            let ns_file = std::fs::File::open(&path).with_context(|| path.clone())?;
            // SAFETY: a valid namespace fd; only this thread changes namespace.
            if unsafe { libc::setns(ns_file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                bail!("setns {path}: {}", std::io::Error::last_os_error());
            }
            // SAFETY: a NUL-terminated name.
            let ifindex = unsafe { libc::if_nametoindex(ifname.as_ptr()) };
            if ifindex == 0 {
                bail!("no interface {ifname:?} in {path}");
            }
            link_create(raw, ifindex)
        })
        .join()
        .map_err(|_| anyhow::anyhow!("attach thread panicked"))??;
        Ok(EmptyProgram { prog, _link: link })
    }

    /// (runs, ns) so far, from the program's fdinfo.
    pub fn stats(&self) -> (u64, u64) {
        let path = format!("/proc/self/fdinfo/{}", self.prog.as_raw_fd());
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        (field("run_cnt:"), field("run_time_ns:"))
    }
}

fn bpf(cmd: libc::c_long, attr: &mut [u64; 16]) -> std::io::Result<OwnedFd> {
    // SAFETY: attr is a zero-padded 128-byte bpf_attr for `cmd`; its pointers outlive the call.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), 128u32) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn load() -> Result<OwnedFd> {
    // r0 = -1 (BPF_ALU64 | BPF_MOV | BPF_K), exit.
    let insns: [u64; 2] = [0xffff_ffff_0000_00b7, 0x0000_0000_0000_0095];
    let license = c"GPL";
    let mut attr = [0u64; 16];
    // prog_type, insn_cnt | insns | license | (the rest zero: no log, no name).
    attr[0] = u64::from(BPF_PROG_TYPE_SCHED_CLS) | (insns.len() as u64) << 32;
    attr[1] = insns.as_ptr() as u64;
    attr[2] = license.as_ptr() as u64;
    bpf(BPF_PROG_LOAD, &mut attr).context("BPF_PROG_LOAD of the empty program")
}

fn link_create(prog_fd: i32, ifindex: u32) -> Result<OwnedFd> {
    let mut attr = [0u64; 16];
    // prog_fd, target_ifindex | attach_type, flags (0: after the programs already there).
    attr[0] = prog_fd as u32 as u64 | u64::from(ifindex) << 32;
    attr[1] = u64::from(BPF_TCX_INGRESS);
    bpf(BPF_LINK_CREATE, &mut attr).context("BPF_LINK_CREATE (TCX ingress) of the empty program")
}
