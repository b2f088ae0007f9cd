//! `cargo xtask test`: everything CI checks, in order, stopping at the first failure.

use anyhow::{Result, bail};
use std::process::Command;

use crate::build;
use crate::cmd::{self, step};
use crate::{prereqs, toolchain};

/// Fuzz targets in fuzz/ (each runs for a bounded time in `xtask test` and `xtask fuzz`).
const FUZZ_TARGETS: &[&str] = &[
    "request_framing",
    "response_framing",
    "head_differential",
    "reassembly",
    "pcap_decode",
    "h2_frames",
    "h2_stream",
];

pub fn all(fuzz_seconds: u64) -> Result<()> {
    prereqs::ensure()?;

    step("rustfmt");
    cmd::run(cmd::cargo().args(["fmt", "--all", "--check"]))?;
    for manifest in ["agent-ebpf/Cargo.toml", "fuzz/Cargo.toml"] {
        cmd::run(cmd::cargo().args(["fmt", "--check", "--manifest-path", manifest]))?;
    }

    step("clippy, warnings denied");
    cmd::run(cmd::cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;

    step("unit, golden and store tests (no root needed)");
    cmd::run(cmd::cargo().args(["test", "--workspace", "--exclude", "apitap-e2e"]))?;

    step("deployment files: manifests, chart, unit, promtool rules and tests, dashboard");
    cmd::run(Command::new("bash").arg("deploy/check.sh"))?;

    if fuzz_seconds == 0 {
        eprintln!("    FUZZ SMOKE RUN SKIPPED (--fuzz-seconds 0)");
    } else {
        fuzz(fuzz_seconds)?;
    }

    integration(None)?;
    step("all checks passed");
    Ok(())
}

/// The root end-to-end tests, against the release agent.
pub fn integration(filter: Option<&str>) -> Result<()> {
    if !cmd::is_root() {
        bail!(
            "the end-to-end tests need root (network namespaces, tc, BPF): run `sudo -E cargo xtask integration-test`"
        );
    }
    let bin = build::build(true)?;
    step("end-to-end tests as root (network namespaces, real nginx, redis, curl, ab)");
    cmd::run(cmd::cargo().args(["test", "--package", "apitap-e2e", "--no-run"]))?;
    // On a machine shared by several developers, APITAP_ROOT_LOCK=FILE runs the tests under
    // `flock FILE` (built first, so the lock is held only while they run).
    let mut c = match std::env::var_os("APITAP_ROOT_LOCK") {
        Some(lock) => {
            let mut c = Command::new("flock");
            c.arg(lock)
                .arg(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .current_dir(cmd::root());
            c
        }
        None => cmd::cargo(),
    };
    c.env("APITAP_BIN", &bin)
        .args(["test", "--package", "apitap-e2e", "--"]);
    if let Some(f) = filter {
        c.arg(f);
    }
    // Each test owns real servers and namespaces; one at a time keeps counts exact and the
    // 2-core machine responsive.
    c.arg("--test-threads=1");
    cmd::run(&mut c)
}

/// Builds and runs every fuzz target for `seconds` each; any crash fails.
pub fn fuzz(seconds: u64) -> Result<()> {
    toolchain::ensure_cargo_fuzz()?;
    for target in FUZZ_TARGETS {
        step(&format!("fuzzing {target} for {seconds} s"));
        let corpus = cmd::root().join("fuzz/corpus").join(target);
        std::fs::create_dir_all(&corpus)?;
        let mut c = Command::new("cargo");
        c.current_dir(cmd::root().join("fuzz"))
            .env("RUSTC_BOOTSTRAP", "1")
            .env_remove("CARGO_TARGET_DIR")
            .args(["fuzz", "run", target])
            .arg(&corpus);
        if *target == "pcap_decode" {
            // Real captures reach deep decoder paths an empty corpus takes minutes to find.
            c.arg(cmd::root().join("tests/fixtures"));
        }
        cmd::run(
            c.arg("--")
                .arg(format!("-max_total_time={seconds}"))
                .arg("-rss_limit_mb=1024"),
        )?;
    }
    Ok(())
}
