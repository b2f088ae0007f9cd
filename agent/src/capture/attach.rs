//! Attaching the classifiers to interfaces (clsact qdisc + netlink filters) and removing
//! exactly what we added.

use agent_common::programs;
use anyhow::{Context, Result, bail};
use aya::Ebpf;
use aya::programs::SchedClassifier;
use aya::programs::tc::{
    self, NlOptions, SchedClassifierLinkId, TcAttachOptions, TcAttachType, TcError,
};
use std::collections::BTreeMap;
use tracing::{debug, info, warn};

use super::ifaces::{self, Framing};
use super::netlink;

struct Attached {
    ifindex: u32,
    links: Vec<(&'static str, SchedClassifierLinkId)>,
    added_qdisc: bool,
}

/// Owns the loaded programs and every attachment made with them.
pub struct Attacher {
    ebpf: Ebpf,
    ifaces: BTreeMap<String, Attached>,
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

impl Attacher {
    pub fn new(ebpf: Ebpf) -> Self {
        Attacher {
            ebpf,
            ifaces: BTreeMap::new(),
        }
    }

    pub fn is_attached(&self, name: &str) -> bool {
        self.ifaces.contains_key(name)
    }

    pub fn interfaces(&self) -> usize {
        self.ifaces.len()
    }

    pub fn programs(&self) -> usize {
        self.ifaces.values().map(|a| a.links.len()).sum()
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
        let ifindex = ifindex(name)?;
        let added_qdisc = match tc::qdisc_add_clsact(name) {
            Ok(()) => true,
            Err(TcError::NetlinkError(e)) if e.raw_os_error() == Some(libc::EEXIST) => false,
            Err(e) => {
                return Err(e).with_context(|| format!("cannot add the clsact qdisc on {name}"));
            }
        };
        let mut state = Attached {
            ifindex,
            links: Vec::new(),
            added_qdisc,
        };
        for (prog_name, hook) in hooks(framing) {
            match self.attach_one(name, prog_name, *hook) {
                Ok(id) => state.links.push((prog_name, id)),
                Err(e) => {
                    self.undo(name, state);
                    return Err(e);
                }
            }
        }
        let n = state.links.len();
        info!(interface = name, programs = n, added_qdisc, "attached");
        self.ifaces.insert(name.to_string(), state);
        Ok(n)
    }

    fn program(&mut self, prog_name: &str) -> Result<&mut SchedClassifier> {
        let prog = self
            .ebpf
            .program_mut(prog_name)
            .context("program missing")?;
        prog.try_into().context("not a TC classifier")
    }

    fn attach_one(
        &mut self,
        iface: &str,
        prog_name: &str,
        hook: TcAttachType,
    ) -> Result<SchedClassifierLinkId> {
        let prog = self.program(prog_name)?;
        let opts = TcAttachOptions::Netlink(NlOptions::default());
        prog.attach_with_options(iface, hook, opts)
            .with_context(|| format!("cannot attach {prog_name} to {iface} ({hook:?})"))
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
            match netlink::delete_clsact(state.ifindex) {
                Ok(()) => debug!(interface = name, "deleted the clsact qdisc we added"),
                Err(e) if e.raw_os_error() == Some(libc::ENODEV) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => warn!(interface = name, "cannot delete the clsact qdisc: {e}"),
            }
        }
    }

    /// Forgets interfaces that disappeared (their filters went with them).
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

    /// Detaches every filter and deletes the qdiscs we added.
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

fn ifindex(name: &str) -> Result<u32> {
    let c = std::ffi::CString::new(name).context("interface name with a NUL byte")?;
    // SAFETY: c is a valid NUL-terminated string.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        bail!("unknown interface {name}");
    }
    Ok(idx)
}
