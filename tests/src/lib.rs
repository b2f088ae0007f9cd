//! Helpers for the root end-to-end tests: namespaces, real servers, the agent under test.
//!
//! Every helper is a guard that cleans up on drop, also when a test fails. Names carry a
//! per-process, per-call suffix so tests can run in parallel.

pub mod agent;
pub mod bench;
pub mod bpf;
pub mod chromium;
pub mod floor;
pub mod frames;
pub mod grpc;
pub mod metrics;
pub mod netns;
pub mod nginx;
pub mod node;
pub mod redis;
pub mod resegment;
pub mod scenario;
pub mod tc;
pub mod tmux;

use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// Fails loudly (never skips) when the tests do not run as root.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the apitap end-to-end tests need root (network namespaces, tc, BPF): run `sudo -E cargo xtask integration-test`"
    );
}

/// A short name unique within this machine for this run: `{prefix}{pid%10000}x{n}`.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}x{n}", std::process::id() % 10_000)
}

/// The repository root (tests/ is one level down).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A fresh temporary directory, removed by [`TempDir`]'s drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Result<Self> {
        let dir = std::env::temp_dir().join(unique(&format!("apitap-{prefix}-")));
        std::fs::create_dir_all(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
        Ok(TempDir(dir))
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a command to completion; a non-zero exit is an error carrying its stderr.
pub fn run(cmd: &mut Command) -> Result<Output> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

/// Whether a program is on PATH (for a loud failure naming the missing package).
pub fn require_tool(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is not installed: apt-get install -y {package}"
    );
}
