//! The pieces the eBPF build needs beyond the stable toolchain: rust-src for `-Z build-std`
//! and bpf-linker linked against the LLVM inside rustc (see shared TOOLCHAIN.md).

use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::process::Command;

use crate::cmd::{self, output, step};

/// Installs rust-src if the active toolchain lacks it. Idempotent.
pub fn ensure_rust_src() -> Result<()> {
    if rust_src_present() {
        eprintln!("    rust-src: present");
        return Ok(());
    }
    step("installing rust-src (needed for -Z build-std=core)");
    cmd::run(Command::new("rustup").args(["component", "add", "rust-src"]))
}

fn rust_src_present() -> bool {
    let Some(sysroot) = output(Command::new("rustc").args(["--print", "sysroot"])) else {
        return false;
    };
    PathBuf::from(sysroot.trim())
        .join("lib/rustlib/src/rust/library/core/Cargo.toml")
        .exists()
}

/// Where bpf-linker is, if installed.
pub fn bpf_linker() -> Option<PathBuf> {
    if let Some(p) = output(Command::new("sh").args(["-c", "command -v bpf-linker"])) {
        return Some(PathBuf::from(p.trim()));
    }
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let p = home.join("bin/bpf-linker");
    p.exists().then_some(p)
}

/// Installs bpf-linker linked to rustc's own LLVM if it is missing. Idempotent.
pub fn ensure_bpf_linker() -> Result<()> {
    if let Some(p) = bpf_linker() {
        eprintln!("    bpf-linker: {}", p.display());
        return Ok(());
    }
    step("installing bpf-linker against rustc's LLVM (about a minute)");
    let sysroot = output(Command::new("rustc").args(["--print", "sysroot"]))
        .context("cannot run rustc --print sysroot")?;
    let lib_dir = PathBuf::from(sysroot.trim()).join("lib");
    let llvm = std::fs::read_dir(&lib_dir)
        .with_context(|| format!("cannot list {}", lib_dir.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .find(|n| n.starts_with("libLLVM-") && n.ends_with(".so"))
        .context("rustc ships no libLLVM-*.so: cannot link bpf-linker to rustc's LLVM")?;
    let llvm = llvm
        .trim_start_matches("lib")
        .trim_end_matches(".so")
        .to_string();
    let verbose = output(Command::new("rustc").arg("-vV")).context("cannot run rustc -vV")?;
    let major = verbose
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .and_then(|v| v.split('.').next())
        .context("rustc -vV does not name its LLVM version")?
        .to_string();
    let rustflags = format!(
        "-L {dir} -l dylib={llvm} -C link-arg=-Wl,-rpath,{dir}",
        dir = lib_dir.display()
    );
    cmd::run(
        Command::new("cargo")
            .env("RUSTFLAGS", rustflags)
            .env_remove("CARGO_TARGET_DIR")
            .args([
                "install",
                "--locked",
                "bpf-linker",
                "--no-default-features",
                "--features",
            ])
            .arg(format!("llvm-{major},no-llvm-linking")),
    )?;
    if bpf_linker().is_none() {
        bail!("bpf-linker was installed but is not on PATH or in ~/.cargo/bin");
    }
    Ok(())
}

/// Whether `cargo fuzz` runs.
pub fn cargo_fuzz_present() -> bool {
    output(Command::new("cargo").args(["fuzz", "--version"])).is_some()
}

/// Installs cargo-fuzz if missing.
pub fn ensure_cargo_fuzz() -> Result<()> {
    if cargo_fuzz_present() {
        return Ok(());
    }
    step("installing cargo-fuzz");
    cmd::run(Command::new("cargo").env_remove("CARGO_TARGET_DIR").args([
        "install",
        "--locked",
        "cargo-fuzz",
    ]))
}
