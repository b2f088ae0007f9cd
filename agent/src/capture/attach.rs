//! Attaching the classifiers to interfaces and removing exactly what we added.
//!
//! Two mechanisms:
//! - **TCX links** (Linux 6.6+): each program is a BPF link owned by this process's file
//!   descriptor. It goes away with the process, also on SIGKILL or an OOM kill, and it never
//!   touches the clsact qdisc or another program's filters. Attached first in the chain, so a
//!   CNI program that redirects or drops later does not hide packets from us; the classifiers
//!   return TC_ACT_UNSPEC (TCX_NEXT), so every program after them, and the qdisc's filters,
//!   still run (any other value, TC_ACT_PIPE included, would end the TCX chain at us).
//! - **netlink filters** (the fallback, or forced with `attach_mode = "netlink"`): a `bpf`
//!   filter on the clsact qdisc's hooks, added (with the qdisc if there is none) and deleted by
//!   us. They outlive a killed process, so at every attach apitap's stale ones are removed
//!   first (see `stale`). The qdisc is deleted at the end only when we added it AND it holds no
//!   filter left by anyone else (a CNI may have added its own since).
//!
//! `auto` (the default) uses TCX when the kernel has it and says which in the log, in
//! `apitap check` and in `apitap_attach_mode{mode}`.

use agent_common::programs;
use anyhow::{Context, Result};
use aya::Ebpf;
use aya::programs::tc::{
    self, NlOptions, SchedClassifierLinkId, TcAttachOptions, TcAttachType, TcError,
};
use aya::programs::{LinkOrder, ProgramError, SchedClassifier};
use std::collections::BTreeMap;
use tracing::{debug, info, warn};

use super::ifaces::{self, Framing};
use super::netlink::{self, PARENT_EGRESS, PARENT_INGRESS};
use super::stale;

/// How to attach (`attach_mode` in the config file, `--attach-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AttachPolicy {
    /// TCX links where the kernel has them, netlink filters otherwise.
    #[default]
    Auto,
    /// TCX links only (fails on kernels before 6.6).
    Tcx,
    /// netlink filters on the clsact qdisc only.
    Netlink,
}

/// The mechanism in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachMode {
    Tcx,
    Netlink,
}

impl AttachMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AttachMode::Tcx => "tcx",
            AttachMode::Netlink => "netlink",
        }
    }
}

struct Attached {
    ifindex: u32,
    mode: AttachMode,
    links: Vec<(&'static str, SchedClassifierLinkId)>,
    added_qdisc: bool,
}

/// Owns the loaded programs and every attachment made with them.
pub struct Attacher {
    ebpf: Ebpf,
    ifaces: BTreeMap<String, Attached>,
    policy: AttachPolicy,
    /// Decided at the first attach (auto tries TCX once).
    mode: Option<AttachMode>,
    /// Whether stale apitap filters are removed before attaching (`apitap check` only looks).
    clean_stale: bool,
    stale_removed: u64,
}

/// Hooks used on an interface: lo only at ingress (each segment crosses lo twice).
fn hooks(framing: Framing) -> &'static [(&'static str, TcAttachType)] {
    match framing {
        Framing::Loopback => &[(programs::TC_INGRESS, TcAttachType::Ingress)],
        _ => &[
            (programs::TC_INGRESS, TcAttachType::Ingress),
            (programs::TC_EGRESS, TcAttachType::Egress),
        ],
    }
}

/// Whether a TCX attach failed because the kernel has no TCX (before 6.6: the attach type is
/// unknown to BPF_LINK_CREATE).
fn tcx_unsupported(e: &ProgramError) -> bool {
    match e {
        ProgramError::SyscallError(s) => matches!(
            s.io_error.raw_os_error(),
            Some(libc::EINVAL | libc::EOPNOTSUPP | 524 /* ENOTSUPP */)
        ),
        _ => false,
    }
}

impl Attacher {
    pub fn new(ebpf: Ebpf, policy: AttachPolicy) -> Self {
        let mode = match policy {
            AttachPolicy::Auto => None,
            AttachPolicy::Tcx => Some(AttachMode::Tcx),
            AttachPolicy::Netlink => Some(AttachMode::Netlink),
        };
        Attacher {
            ebpf,
            ifaces: BTreeMap::new(),
            policy,
            mode,
            clean_stale: true,
            stale_removed: 0,
        }
    }

    /// Leaves stale apitap filters alone (for `apitap check`, which reports them).
    pub fn keep_stale(mut self) -> Self {
        self.clean_stale = false;
        self
    }

    pub fn is_attached(&self, name: &str) -> bool {
        self.ifaces.contains_key(name)
    }

    pub fn interfaces(&self) -> usize {
        self.ifaces.len()
    }

    /// Names of the attached interfaces, sorted.
    pub fn interface_names(&self) -> Vec<String> {
        self.ifaces.keys().cloned().collect()
    }

    pub fn programs(&self) -> usize {
        self.ifaces.values().map(|a| a.links.len()).sum()
    }

    /// The mechanism in use, once the first interface is attached.
    pub fn mode(&self) -> Option<AttachMode> {
        self.mode
    }

    /// Stale apitap filters removed so far.
    pub fn stale_removed(&self) -> u64 {
        self.stale_removed
    }

    /// Attaches to `name`; returns the number of programs attached (0 when its framing is
    /// not one the classifiers parse).
    pub fn attach(&mut self, name: &str) -> Result<usize> {
        if self.is_attached(name) {
            return Ok(0);
        }
        let framing = ifaces::framing(name).with_context(|| format!("unknown interface {name}"))?;
        if let Framing::Other(ty) = framing {
            info!(
                interface = name,
                link_type = ty,
                "skipping interface without Ethernet framing"
            );
            return Ok(0);
        }
        let ifindex = ifaces::index(name).with_context(|| format!("unknown interface {name}"))?;
        if self.clean_stale {
            self.remove_stale(name, ifindex);
        }
        let state = match self.mode {
            Some(AttachMode::Tcx) => self.attach_tcx(name, ifindex, framing)?,
            Some(AttachMode::Netlink) => self.attach_netlink(name, ifindex, framing)?,
            None => match self.attach_tcx(name, ifindex, framing) {
                Ok(state) => {
                    info!("attach mode: tcx (BPF links owned by this process)");
                    state
                }
                Err(e)
                    if e.downcast_ref::<ProgramError>()
                        .is_some_and(tcx_unsupported) =>
                {
                    warn!(
                        "attach mode: netlink (TCX links are not supported by this kernel: \
                         {e:#}); filters are removed at exit, stale ones at the next start"
                    );
                    self.mode = Some(AttachMode::Netlink);
                    self.attach_netlink(name, ifindex, framing)?
                }
                Err(e) => return Err(e),
            },
        };
        if self.mode.is_none() {
            self.mode = Some(AttachMode::Tcx);
        } else if self.ifaces.is_empty() && self.policy != AttachPolicy::Auto {
            info!(
                "attach mode: {} (forced by attach_mode)",
                state.mode.as_str()
            );
        }
        let n = state.links.len();
        info!(
            interface = name,
            programs = n,
            mode = state.mode.as_str(),
            added_qdisc = state.added_qdisc,
            "attached"
        );
        self.ifaces.insert(name.to_string(), state);
        Ok(n)
    }

    /// Removes apitap's stale netlink filters from the interface (in either mode: a killed
    /// apitap may have used netlink filters). The scan of every process's descriptors runs
    /// only when the interface has a filter that could be apitap's.
    fn remove_stale(&mut self, name: &str, ifindex: u32) {
        let candidates = [PARENT_INGRESS, PARENT_EGRESS].iter().any(|p| {
            netlink::filters(ifindex, *p).is_ok_and(|fs| {
                fs.iter().any(|f| {
                    f.bpf_name
                        .as_deref()
                        .is_some_and(|n| n == programs::TC_INGRESS || n == programs::TC_EGRESS)
                })
            })
        });
        if candidates {
            let census = stale::Census::take();
            self.stale_removed += stale::remove(&census, name, ifindex) as u64;
        }
    }

    fn program(&mut self, prog_name: &str) -> Result<&mut SchedClassifier> {
        let prog = self
            .ebpf
            .program_mut(prog_name)
            .context("program missing")?;
        prog.try_into().context("not a TC classifier")
    }

    fn attach_tcx(&mut self, name: &str, ifindex: u32, framing: Framing) -> Result<Attached> {
        let mut state = Attached {
            ifindex,
            mode: AttachMode::Tcx,
            links: Vec::new(),
            added_qdisc: false,
        };
        for (prog_name, hook) in hooks(framing) {
            let attached = self.program(prog_name).and_then(|p| {
                p.attach_with_options(name, *hook, TcAttachOptions::TcxOrder(LinkOrder::first()))
                    .map_err(anyhow::Error::from)
            });
            match attached {
                Ok(id) => state.links.push((prog_name, id)),
                Err(e) => {
                    self.undo(name, state);
                    return Err(e.context(format!(
                        "cannot attach {prog_name} to {name} ({hook:?}) with a TCX link"
                    )));
                }
            }
        }
        Ok(state)
    }

    fn attach_netlink(&mut self, name: &str, ifindex: u32, framing: Framing) -> Result<Attached> {
        let added_qdisc = match tc::qdisc_add_clsact(name) {
            Ok(()) => true,
            Err(TcError::NetlinkError(e)) if e.raw_os_error() == Some(libc::EEXIST) => false,
            Err(e) => {
                return Err(e).with_context(|| format!("cannot add the clsact qdisc on {name}"));
            }
        };
        let mut state = Attached {
            ifindex,
            mode: AttachMode::Netlink,
            links: Vec::new(),
            added_qdisc,
        };
        for (prog_name, hook) in hooks(framing) {
            let attached = self.program(prog_name).and_then(|p| {
                p.attach_with_options(name, *hook, TcAttachOptions::Netlink(NlOptions::default()))
                    .map_err(anyhow::Error::from)
            });
            match attached {
                Ok(id) => state.links.push((prog_name, id)),
                Err(e) => {
                    self.undo(name, state);
                    return Err(e.context(format!(
                        "cannot attach {prog_name} to {name} ({hook:?}) with a netlink filter"
                    )));
                }
            }
        }
        Ok(state)
    }

    fn undo(&mut self, name: &str, state: Attached) {
        for (prog_name, id) in state.links {
            match self.program(prog_name).and_then(|p| Ok(p.detach(id)?)) {
                Ok(()) => debug!(interface = name, program = prog_name, "detached"),
                // The interface may be gone already, taking its filters with it.
                Err(e) => debug!(interface = name, program = prog_name, "detach: {e:#}"),
            }
        }
        if state.added_qdisc {
            remove_qdisc_if_unused(name, state.ifindex);
        }
    }

    /// Forgets interfaces that disappeared (their filters and links went with them).
    pub fn forget_missing(&mut self) {
        let gone: Vec<String> = self
            .ifaces
            .keys()
            .filter(|n| !ifaces::exists(n))
            .cloned()
            .collect();
        for name in gone {
            info!(interface = name.as_str(), "interface disappeared");
            self.ifaces.remove(&name);
        }
    }

    /// Detaches every program and deletes the qdiscs we added that nobody else uses.
    pub fn detach_all(&mut self) {
        let all = std::mem::take(&mut self.ifaces);
        for (name, state) in all {
            self.undo(&name, state);
        }
    }
}

impl Drop for Attacher {
    fn drop(&mut self) {
        self.detach_all();
    }
}

/// Deletes the clsact qdisc we added on `ifindex` unless a filter is still on one of its hooks
/// (someone else's: ours are detached by now). A filter added between the check and the delete
/// would go with the qdisc; the window is one netlink round trip.
fn remove_qdisc_if_unused(name: &str, ifindex: u32) {
    let mut others = 0;
    for parent in [PARENT_INGRESS, PARENT_EGRESS] {
        match netlink::filters(ifindex, parent) {
            Ok(fs) => others += fs.len(),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => return,
            Err(e) => {
                warn!(
                    interface = name,
                    "kept the clsact qdisc: cannot list its filters: {e}"
                );
                return;
            }
        }
    }
    if others > 0 {
        info!(
            interface = name,
            filters = others,
            "kept the clsact qdisc apitap added: other programs' filters are on it now"
        );
        return;
    }
    match netlink::delete_clsact(ifindex) {
        Ok(()) => debug!(interface = name, "deleted the clsact qdisc we added"),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENODEV | libc::ENOENT | libc::EINVAL)
            ) => {}
        Err(e) => warn!(interface = name, "cannot delete the clsact qdisc: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unknown_attach_type_means_no_tcx() {
        let err = |code| {
            ProgramError::SyscallError(aya::sys::SyscallError {
                call: "bpf_mprog_attach",
                io_error: std::io::Error::from_raw_os_error(code),
            })
        };
        assert!(tcx_unsupported(&err(libc::EINVAL)));
        assert!(tcx_unsupported(&err(libc::EOPNOTSUPP)));
        assert!(
            !tcx_unsupported(&err(libc::EPERM)),
            "a privilege problem is not a fallback"
        );
        assert!(!tcx_unsupported(&err(libc::ENODEV)));
    }

    #[test]
    fn policy_names_in_the_config_file() {
        #[derive(serde::Deserialize)]
        struct T {
            m: AttachPolicy,
        }
        let t: T = toml::from_str("m = \"netlink\"").expect("netlink");
        assert_eq!(t.m, AttachPolicy::Netlink);
        assert!(toml::from_str::<T>("m = \"tc\"").is_err());
        assert_eq!(AttachMode::Tcx.as_str(), "tcx");
    }
}
