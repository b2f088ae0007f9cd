//! Builds the kernel programs (agent-ebpf) for bpfel-unknown-none and leaves the object in
//! OUT_DIR for `include_bytes_aligned!`. APITAP_EBPF_OBJECT=/path uses a prebuilt object.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Variables of the outer build that must not leak into the nested BPF build: wrappers
/// (clippy-driver), host flags and target dirs would break or redirect it.
const REMOVE: &[&str] = &[
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTC_WRAPPER",
    "RUSTC",
    "RUSTDOC",
    "RUSTFLAGS",
    "RUSTDOCFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_ENCODED_RUSTDOCFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_MAKEFLAGS",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_LLVM_COV",
    "LLVM_PROFILE_FILE",
    "OUT_DIR",
    "TARGET",
    "HOST",
    "PROFILE",
    "OPT_LEVEL",
    "DEBUG",
    "NUM_JOBS",
];

fn main() -> ExitCode {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dest = out.join("apitap-ebpf.o");
    println!("cargo:rerun-if-env-changed=APITAP_EBPF_OBJECT");
    if let Some(prebuilt) = std::env::var_os("APITAP_EBPF_OBJECT") {
        println!("cargo:rerun-if-changed={}", Path::new(&prebuilt).display());
        return match std::fs::copy(&prebuilt, &dest) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => fail(&format!(
                "APITAP_EBPF_OBJECT={}: {e}",
                Path::new(&prebuilt).display()
            )),
        };
    }
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = manifest
        .parent()
        .expect("agent/ has a parent")
        .to_path_buf();
    let ebpf = root.join("agent-ebpf");
    for dir in ["agent-ebpf/src", "agent-common/src"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        ebpf.join("Cargo.toml").display()
    );

    let path = search_path();
    if !has_bpf_linker(&path) {
        return fail("bpf-linker not found: run `cargo xtask build`");
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&ebpf)
        .env("PATH", &path)
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["build", "--release", "--target", "bpfel-unknown-none"])
        .args(["-Z", "build-std=core", "--target-dir"])
        .arg(ebpf.join("target"));
    for key in REMOVE {
        cmd.env_remove(key);
    }
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_CFG_")
            || key.starts_with("CARGO_FEATURE_")
            || key.starts_with("CARGO_PKG_")
            || key.starts_with("DEP_")
        {
            cmd.env_remove(&*key);
        }
    }
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => return fail(&format!("building agent-ebpf failed ({s})")),
        Err(e) => return fail(&format!("cannot run cargo for agent-ebpf: {e}")),
    }
    let obj = ebpf.join("target/bpfel-unknown-none/release/agent-ebpf");
    match std::fs::copy(&obj, &dest) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("cannot copy {}: {e}", obj.display())),
    }
}

/// PATH plus ~/.cargo/bin, where `cargo install` puts bpf-linker.
fn search_path() -> std::ffi::OsString {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    if let Some(home) = cargo_home {
        dirs.push(home.join("bin"));
    }
    std::env::join_paths(dirs).unwrap_or_default()
}

fn has_bpf_linker(path: &std::ffi::OsStr) -> bool {
    std::env::split_paths(path).any(|d| d.join("bpf-linker").is_file())
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    println!("cargo:warning={msg}");
    ExitCode::FAILURE
}
