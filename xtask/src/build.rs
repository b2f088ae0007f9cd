//! `cargo xtask build` and `cargo xtask run`.

use anyhow::{Context, Result, bail};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

use crate::cmd::{self, step};
use crate::toolchain;

/// Ensures the toolchain pieces, builds the agent (whose build script builds the eBPF object)
/// and returns the path of the `apitap` binary.
pub fn build(release: bool) -> Result<PathBuf> {
    step("checking the eBPF toolchain");
    toolchain::ensure_rust_src()?;
    toolchain::ensure_bpf_linker()?;
    step(if release {
        "building the eBPF object and the agent (release)"
    } else {
        "building the eBPF object and the agent (debug)"
    });
    let mut c = cmd::cargo();
    c.args(["build", "--package", "apitap"]);
    if release {
        c.arg("--release");
    }
    cmd::run(&mut c)?;
    let bin = target_dir()
        .join(if release { "release" } else { "debug" })
        .join("apitap");
    if !bin.exists() {
        bail!("the build finished but {} is missing", bin.display());
    }
    eprintln!("    built {}", bin.display());
    Ok(bin)
}

/// The cargo target directory in use.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| cmd::root().join("target"))
}

/// Builds, then replaces this process with `apitap run` (as root, through sudo if needed).
pub fn run(args: &[String]) -> Result<()> {
    let bin = build(true)?;
    step("starting apitap run (Ctrl-C detaches and exits)");
    let mut c = if cmd::is_root() {
        let mut c = Command::new(&bin);
        c.arg("run");
        c
    } else {
        let sudo = cmd::output(Command::new("sh").args(["-c", "command -v sudo"]))
            .context("apitap run needs root (or CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON) and sudo is not installed")?;
        eprintln!("    not root: using sudo");
        let mut c = Command::new(sudo.trim());
        c.arg(&bin).arg("run");
        c
    };
    c.args(args);
    eprintln!("    $ {c:?}");
    let err = c.exec();
    Err(err).context("cannot start apitap")
}
