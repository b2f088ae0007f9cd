//! A simulated Kubernetes node, built the way the kubelet and the bridge CNI build one, inside
//! a network namespace the test owns (so the real host is not disturbed):
//!
//! - the node: a network namespace with a bridge (`br0`, the node's address 192.0.2.1/24);
//! - a pod: a network namespace whose `eth0` is one end of a veth pair, the node's end enslaved
//!   to the bridge, with an address from 192.0.2.0/24 and a default route via the node;
//! - a pod's container: a cgroup v2 directory laid out as the kubelet's systemd driver and
//!   containerd lay it out (`kubepods.slice/kubepods-besteffort.slice/
//!   kubepods-besteffort-pod<uid>.slice/cri-containerd-<id>.scope`), below a directory of
//!   this test in the host's unified hierarchy;
//! - the kubelet's `/var/log/pods/<namespace>_<pod>_<uid>/` directory, in a temp dir the agent
//!   is pointed at (`[discovery] pod_logs_root`).
//!
//! Everything is removed on drop, also when a test fails.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::netns::Netns;
use crate::{TempDir, run, unique};

/// The node's address on its bridge (the pods' gateway).
pub const NODE_IP: &str = "192.0.2.1";

/// The host's cgroup v2 hierarchy: the unified mount of a hybrid host, else the root.
pub fn cgroup2_root() -> Result<PathBuf> {
    for p in ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"] {
        let p = PathBuf::from(p);
        if p.join("cgroup.procs").exists() && p.join("cgroup.subtree_control").exists() {
            return Ok(p);
        }
    }
    bail!("no cgroup v2 hierarchy (neither /sys/fs/cgroup/unified nor /sys/fs/cgroup is cgroup2)")
}

/// A cgroup directory chain, removed deepest first on drop.
pub struct Cgroup {
    dirs: Vec<PathBuf>,
}

impl Cgroup {
    /// Creates `root/rel` (every missing level).
    pub fn create(root: &Path, rel: &str) -> Result<Cgroup> {
        let mut dirs = Vec::new();
        let mut at = root.to_path_buf();
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            at = at.join(part);
            if !at.exists() {
                std::fs::create_dir(&at).with_context(|| format!("mkdir {}", at.display()))?;
                dirs.push(at.clone());
            }
        }
        Ok(Cgroup { dirs })
    }

    /// The deepest directory (the container's).
    pub fn path(&self) -> &Path {
        self.dirs.last().map_or(Path::new("/"), PathBuf::as_path)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // The deepest directory is removable once its last process has exited (workers may
        // take a moment); a parent another pod still uses is left to the node (one attempt).
        for (i, d) in self.dirs.iter().rev().enumerate() {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
            while std::fs::remove_dir(d).is_err()
                && d.exists()
                && i == 0
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
    }
}

/// Removes the cgroup directories below `dir`, deepest first (cgroup directories are removed
/// with rmdir even though they list control files).
fn remove_below(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_below(&e.path());
            let _ = std::fs::remove_dir(e.path());
        }
    }
}

/// The node: its namespace and bridge, the pod logs directory and the test's cgroup root.
pub struct Node {
    pub pod_logs: TempDir,
    /// This test's directory in the unified hierarchy (pods' cgroups go below it).
    pub cgroup: Cgroup,
    pub ns: Netns,
    tag: String,
    next_pod: u32,
}

impl Node {
    pub fn new() -> Result<Node> {
        let tag = unique("");
        let ns = Netns::new(&format!("at-node-{tag}"))?;
        run(&mut ns.cmd("ip", &["link", "add", "br0", "type", "bridge"]))?;
        run(&mut ns.cmd(
            "ip",
            &["addr", "add", &format!("{NODE_IP}/24"), "dev", "br0"],
        ))?;
        run(&mut ns.cmd("ip", &["link", "set", "br0", "up"]))?;
        let cgroup = Cgroup::create(&cgroup2_root()?, &format!("apitap-e2e-{tag}"))?;
        Ok(Node {
            pod_logs: TempDir::new("pod-logs")?,
            cgroup,
            ns,
            tag,
            next_pod: 0,
        })
    }

    /// Starts a pod: its namespace on the bridge at `ip`, its cgroup and its log directory.
    pub fn pod(&mut self, namespace: &str, name: &str, ip: &str) -> Result<Pod> {
        self.next_pod += 1;
        let n = self.next_pod;
        let uid = format!(
            "{:08x}-{n:04x}-4000-8000-{:012x}",
            std::process::id(),
            u64::from(n) << 8
        );
        let ns = Netns::new(&format!("at-pod{n}-{}", self.tag))?;
        let (host_if, pod_if) = (format!("atv{n}{}", self.tag), format!("atp{n}{}", self.tag));
        run(Command::new("ip").args([
            "link",
            "add",
            &host_if,
            "netns",
            &self.ns.name,
            "type",
            "veth",
            "peer",
            "name",
            &pod_if,
            "netns",
            &ns.name,
        ]))?;
        run(&mut self
            .ns
            .cmd("ip", &["link", "set", &host_if, "master", "br0"]))?;
        run(&mut self.ns.cmd("ip", &["link", "set", &host_if, "up"]))?;
        run(&mut ns.cmd("ip", &["link", "set", &pod_if, "name", "eth0"]))?;
        run(&mut ns.cmd("ip", &["addr", "add", &format!("{ip}/24"), "dev", "eth0"]))?;
        run(&mut ns.cmd("ip", &["link", "set", "eth0", "up"]))?;
        run(&mut ns.cmd("ip", &["route", "add", "default", "via", NODE_IP]))?;
        let container = format!(
            "{:064x}",
            (u128::from(std::process::id()) << 32) | u128::from(n)
        );
        let rel = format!(
            "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/cri-containerd-{container}.scope",
            uid.replace('-', "_")
        );
        let cgroup = Cgroup::create(self.cgroup.path(), &rel)?;
        let log_dir = self
            .pod_logs
            .path()
            .join(format!("{namespace}_{name}_{uid}"));
        std::fs::create_dir_all(log_dir.join("nginx"))?;
        Ok(Pod {
            log_dir,
            cgroup,
            ns,
            namespace: namespace.into(),
            name: name.into(),
            uid,
            container,
            ip: ip.into(),
        })
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Parents the pods shared (kubepods.slice …); the node's own directory goes with its
        // `cgroup` field.
        if let Some(own) = self.cgroup.dirs.last() {
            remove_below(own);
        }
    }
}

/// A pod of the simulated node. Dropping it deletes the pod (namespace, cgroup, log dir);
/// stop its servers first (their guards are dropped before the pod's).
pub struct Pod {
    log_dir: PathBuf,
    pub cgroup: Cgroup,
    pub ns: Netns,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub container: String,
    pub ip: String,
}

impl Drop for Pod {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.log_dir);
    }
}
