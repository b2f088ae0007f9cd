//! Everything the tests need beyond the Rust toolchain, in ONE list, and its installer.
//!
//! `cargo xtask test` (and `cargo xtask prereqs`) installs what is missing before anything
//! else runs, so that on a fresh Debian machine the README's two commands are the whole setup.
//! Each list is sorted (a unit test checks it) so that helpers adding entries merge trivially;
//! every entry says who needs it.
//!
//! What needs root: Debian packages only. Rust components and cargo tools are per user
//! (rustup's and cargo's homes), and Python packages go into the `python3` on PATH, which the
//! tests run (a pyenv or venv interpreter takes pip; Debian's own interpreter is externally
//! managed, PEP 668, so there the package's Debian twin is installed instead). As non-root,
//! everything per-user is installed and, if Debian packages are missing, the single command
//! to run is printed and the run stops.

use anyhow::{Result, bail};
use std::process::Command;

use crate::cmd::{self, output, step};
use crate::toolchain;

/// Debian packages: the real servers, clients and checkers the tests run. (package, who needs it)
pub const APT: &[(&str, &str)] = &[
    ("apache2-utils", "ab: load in the e2e tests"),
    (
        "chromium",
        "headless browser that drives the live page in the e2e tests",
    ),
    ("curl", "requests in the e2e tests"),
    ("iproute2", "ip netns, veth and tc in the e2e tests"),
    ("jq", "deploy checks"),
    ("netcat-openbsd", "nc: fixtures"),
    (
        "nghttp2-client",
        "nghttp and h2load: HTTP/2 fixtures, e2e and load",
    ),
    ("nginx", "the server watched in the e2e and golden tests"),
    ("openssl", "test CAs and certificates for the TLS tests"),
    (
        "prometheus",
        "promtool and a real scraper (deploy checks, alerts e2e)",
    ),
    (
        "prometheus-alertmanager",
        "a real Alertmanager (alerts tests)",
    ),
    ("python3-venv", "deploy/check.sh's tool venv"),
    ("python3-yaml", "deploy checkers without the venv"),
    (
        "redis-server",
        "the shared usage store (store and e2e tests)",
    ),
    ("shellcheck", "deploy checks"),
    ("socat", "fixtures"),
    ("tcpdump", "fixtures and captures"),
    (
        "tmux",
        "runs apitap top in the e2e tests (send-keys, capture-pane)",
    ),
    (
        "tshark",
        "golden tests compare counts with tshark's HTTP dissector",
    ),
    ("wrk", "benchmarks"),
];

/// Python packages, installed into the `python3` on PATH. (import name, pip requirement,
/// Debian twin used when that interpreter is Debian's externally managed one, who needs it)
pub const PIP: &[(&str, &str, &str, &str)] = &[
    (
        "aiosmtpd",
        "aiosmtpd==1.4.6",
        "python3-aiosmtpd",
        "the SMTP server the alert tests send mail to",
    ),
    (
        "grpc",
        "grpcio==1.85.3",
        "python3-grpcio",
        "the real gRPC server and client of the HTTP/2 fixtures and e2e tests",
    ),
];

/// npm packages, installed globally. (package, the command it provides, who needs it)
pub const NPM: &[(&str, &str, &str)] = &[];

/// rustup components of the active toolchain (also listed in rust-toolchain.toml).
pub const RUST_COMPONENTS: &[(&str, &str)] = &[
    ("clippy", "cargo clippy -D warnings"),
    ("rust-src", "-Z build-std=core for the eBPF object"),
    ("rustfmt", "cargo fmt --check"),
];

/// Cargo tools (each has its own presence check and installer in toolchain.rs).
pub const CARGO_TOOLS: &[(&str, &str)] = &[
    (
        "bpf-linker",
        "links the eBPF object (built against rustc's own LLVM)",
    ),
    ("cargo-fuzz", "cargo xtask fuzz and the fuzz smoke run"),
];

/// What is missing, by kind.
#[derive(Debug, Default)]
struct Missing {
    apt: Vec<&'static str>,
    pip: Vec<&'static str>,
    npm: Vec<&'static str>,
    components: Vec<&'static str>,
    cargo_tools: Vec<&'static str>,
}

impl Missing {
    fn is_empty(&self) -> bool {
        self.apt.is_empty()
            && self.pip.is_empty()
            && self.npm.is_empty()
            && self.components.is_empty()
            && self.cargo_tools.is_empty()
    }
}

/// Installs whatever is missing (see the module doc for what happens as non-root).
/// Idempotent: with everything present it only says so.
pub fn ensure() -> Result<()> {
    step("test prerequisites (xtask/src/prereqs.rs)");
    let python = Python::probe();
    let missing = find_missing(&python);
    let total = APT.len() + PIP.len() + NPM.len() + RUST_COMPONENTS.len() + CARGO_TOOLS.len();
    if missing.is_empty() {
        eprintln!("    all {total} present");
        return Ok(());
    }
    report(&missing);
    let root = cmd::is_root();
    let (pip_direct, pip_debian) = if python.takes_pip() {
        (missing.pip.clone(), Vec::new())
    } else {
        (Vec::new(), missing.pip.clone())
    };
    let mut apt = missing.apt.clone();
    apt.extend(pip_debian.iter().filter_map(|m| debian_twin(m)));
    if !apt.is_empty() {
        if !root {
            bail!(
                "Debian packages are missing and installing them needs root; run:\n    \
                 sudo apt-get install -y --no-install-recommends {}\nthen run this command again",
                apt.join(" ")
            );
        }
        apt_install(&apt)?;
    }
    for c in &missing.components {
        eprintln!("    installing rust component {c}");
        cmd::run(Command::new("rustup").args(["component", "add", c]))?;
    }
    for t in &missing.cargo_tools {
        install_cargo_tool(t)?;
    }
    if !pip_direct.is_empty() {
        let reqs: Vec<&str> = pip_direct.iter().filter_map(|m| requirement(m)).collect();
        eprintln!(
            "    installing python packages into {}: {}",
            python.exe,
            reqs.join(" ")
        );
        let mut c = Command::new("python3");
        c.args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ]);
        if !root && !python.venv && !python.writable {
            c.arg("--user");
        }
        cmd::run(c.args(&reqs))?;
    }
    if !missing.npm.is_empty() {
        eprintln!("    installing npm packages: {}", missing.npm.join(" "));
        cmd::run(
            Command::new("npm")
                .args(["install", "--global", "--no-fund", "--no-audit"])
                .args(&missing.npm),
        )?;
    }
    let still = find_missing(&Python::probe());
    if !still.is_empty() {
        report(&still);
        bail!("prerequisites are still missing after installing them (see above)");
    }
    eprintln!("    all {total} present now");
    Ok(())
}

/// One line per kind of what is missing.
fn report(m: &Missing) {
    for (kind, names) in [
        ("Debian packages", &m.apt),
        ("python packages", &m.pip),
        ("npm packages", &m.npm),
        ("rust components", &m.components),
        ("cargo tools", &m.cargo_tools),
    ] {
        if !names.is_empty() {
            eprintln!("    missing {kind}: {}", names.join(" "));
        }
    }
}

fn find_missing(python: &Python) -> Missing {
    let installed_components =
        output(Command::new("rustup").args(["component", "list", "--installed"]))
            .unwrap_or_default();
    let host = host_triple();
    Missing {
        apt: APT
            .iter()
            .map(|(p, _)| *p)
            .filter(|p| !dpkg_installed(p))
            .collect(),
        pip: PIP
            .iter()
            .map(|(m, ..)| *m)
            .filter(|m| !python.imports(m))
            .collect(),
        npm: NPM
            .iter()
            .filter(|(_, bin, _)| !on_path(bin))
            .map(|(p, ..)| *p)
            .collect(),
        components: RUST_COMPONENTS
            .iter()
            .map(|(c, _)| *c)
            .filter(|c| !component_installed(&installed_components, &host, c))
            .collect(),
        cargo_tools: CARGO_TOOLS
            .iter()
            .map(|(t, _)| *t)
            .filter(|t| !cargo_tool_present(t))
            .collect(),
    }
}

/// `rustup component list --installed` names host components with the host triple
/// (`clippy-x86_64-unknown-linux-gnu`) and target-independent ones without (`rust-src`).
fn component_installed(list: &str, host: &str, component: &str) -> bool {
    let with_host = format!("{component}-{host}");
    list.lines()
        .map(str::trim)
        .any(|l| l == component || l == with_host)
}

/// The host triple rustc builds for.
fn host_triple() -> String {
    output(Command::new("rustc").arg("-vV"))
        .and_then(|v| {
            v.lines()
                .find_map(|l| l.strip_prefix("host: "))
                .map(str::to_string)
        })
        .unwrap_or_default()
}

fn cargo_tool_present(tool: &str) -> bool {
    match tool {
        "bpf-linker" => toolchain::bpf_linker().is_some(),
        "cargo-fuzz" => toolchain::cargo_fuzz_present(),
        other => on_path(other),
    }
}

fn install_cargo_tool(tool: &str) -> Result<()> {
    match tool {
        "bpf-linker" => toolchain::ensure_bpf_linker(),
        "cargo-fuzz" => toolchain::ensure_cargo_fuzz(),
        other => {
            eprintln!("    installing cargo tool {other}");
            cmd::run(
                Command::new("cargo")
                    .env_remove("CARGO_TARGET_DIR")
                    .args(["install", "--locked", other]),
            )
        }
    }
}

fn dpkg_installed(package: &str) -> bool {
    output(Command::new("dpkg-query").args(["-W", "-f=${Status}", package]))
        .is_some_and(|s| s.trim() == "install ok installed")
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

fn debian_twin(import: &str) -> Option<&'static str> {
    PIP.iter()
        .find(|(m, ..)| *m == import)
        .map(|(_, _, d, _)| *d)
}

fn requirement(import: &str) -> Option<&'static str> {
    PIP.iter().find(|(m, ..)| *m == import).map(|(_, r, ..)| *r)
}

/// `apt-get update` then one `apt-get install` of everything missing, then stop the services
/// the packages start (nginx, redis-server, prometheus, alertmanager): the tests run their own
/// instances on their own ports, and a packaged daemon on the default port would disturb them.
fn apt_install(packages: &[&str]) -> Result<()> {
    eprintln!("    installing Debian packages: {}", packages.join(" "));
    let apt = |args: &[&str]| {
        let mut c = Command::new("apt-get");
        c.env("DEBIAN_FRONTEND", "noninteractive").args(args);
        c
    };
    cmd::run(&mut apt(&["update", "-qq"]))?;
    cmd::run(apt(&["install", "-y", "-qq", "--no-install-recommends"]).args(packages))?;
    stop_packaged_services();
    Ok(())
}

/// Services Debian's packages start on install.
const PACKAGED_SERVICES: &[&str] = &[
    "nginx",
    "prometheus",
    "prometheus-alertmanager",
    "redis-server",
];

fn stop_packaged_services() {
    // Without systemd as init (containers, this VM) policy-rc.d or the missing init keeps the
    // services from starting; with it, stop and disable them.
    if !std::path::Path::new("/run/systemd/system").exists() {
        return;
    }
    for s in PACKAGED_SERVICES {
        if output(Command::new("systemctl").args(["is-active", "--quiet", s])).is_some() {
            eprintln!("    stopping the packaged {s} service (the tests run their own)");
            let _ = Command::new("systemctl")
                .args(["disable", "--now", "--quiet", s])
                .status();
        }
    }
}

/// The `python3` on PATH, the one the tests run.
struct Python {
    exe: String,
    venv: bool,
    externally_managed: bool,
    writable: bool,
}

const PROBE: &str = "import os, sys, sysconfig
venv = sys.prefix != sys.base_prefix
em = os.path.exists(os.path.join(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED'))
print(sys.executable, int(venv), int(em), int(os.access(sysconfig.get_path('purelib'), os.W_OK)))";

impl Python {
    fn probe() -> Python {
        let out = output(Command::new("python3").args(["-c", PROBE])).unwrap_or_default();
        let f: Vec<&str> = out.split_whitespace().collect();
        let flag = |i: usize| f.get(i).is_some_and(|v| *v == "1");
        Python {
            exe: f
                .first()
                .map_or_else(|| "python3".into(), |s| s.to_string()),
            venv: flag(1),
            externally_managed: flag(2),
            writable: flag(3),
        }
    }

    /// Whether pip may install into this interpreter (else its Debian twin is used).
    fn takes_pip(&self) -> bool {
        self.venv || !self.externally_managed
    }

    fn imports(&self, module: &str) -> bool {
        Command::new("python3")
            .args(["-c", &format!("import {module}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

/// `cargo xtask doctor`: the toolchain and kernel, then every prerequisite and whether it is
/// present.
pub fn doctor() {
    let version = |what: &str, v: Option<String>| {
        eprintln!(
            "{what:<12} {}",
            v.as_deref().map(str::trim).unwrap_or("MISSING")
        );
    };
    version("rustc", output(Command::new("rustc").arg("--version")));
    version("kernel", output(Command::new("uname").arg("-r")));
    version("root", Some(cmd::is_root().to_string()));
    eprintln!();
    let python = Python::probe();
    let missing = find_missing(&python);
    let show = |kind: &str, name: &str, why: &str, absent: &[&str]| {
        let state = if absent.contains(&name) {
            "MISSING"
        } else {
            "ok"
        };
        eprintln!("{state:<8} {kind:<10} {name:<24} {why}");
    };
    for (p, why) in APT {
        show("apt", p, why, &missing.apt);
    }
    for (m, _, _, why) in PIP {
        show("pip", m, why, &missing.pip);
    }
    for (p, _, why) in NPM {
        show("npm", p, why, &missing.npm);
    }
    for (c, why) in RUST_COMPONENTS {
        show("component", c, why, &missing.components);
    }
    for (t, why) in CARGO_TOOLS {
        show("cargo", t, why, &missing.cargo_tools);
    }
    eprintln!(
        "python3  {} (venv: {}, externally managed: {})",
        python.exe, python.venv, python.externally_managed
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted_unique(names: &[&str]) -> bool {
        names.windows(2).all(|w| w[0] < w[1])
    }

    #[test]
    fn every_list_is_sorted_and_unique() {
        assert!(sorted_unique(&APT.iter().map(|e| e.0).collect::<Vec<_>>()));
        assert!(sorted_unique(&PIP.iter().map(|e| e.0).collect::<Vec<_>>()));
        assert!(sorted_unique(&NPM.iter().map(|e| e.0).collect::<Vec<_>>()));
        assert!(sorted_unique(
            &RUST_COMPONENTS.iter().map(|e| e.0).collect::<Vec<_>>()
        ));
        assert!(sorted_unique(
            &CARGO_TOOLS.iter().map(|e| e.0).collect::<Vec<_>>()
        ));
        assert!(sorted_unique(PACKAGED_SERVICES));
    }

    #[test]
    fn rust_components_match_the_toolchain_file() {
        let file = std::fs::read_to_string(cmd::root().join("rust-toolchain.toml"))
            .expect("rust-toolchain.toml is readable");
        for (c, _) in RUST_COMPONENTS {
            assert!(
                file.contains(&format!("\"{c}\"")),
                "{c} is not in rust-toolchain.toml"
            );
        }
    }

    #[test]
    fn component_names_with_and_without_the_target_triple() {
        let host = "x86_64-unknown-linux-gnu";
        let list = "cargo-x86_64-unknown-linux-gnu\nclippy-x86_64-unknown-linux-gnu\nrust-src\n\
                    rust-std-x86_64-unknown-linux-gnu\n";
        assert!(component_installed(list, host, "clippy"));
        assert!(component_installed(list, host, "rust-src"));
        assert!(!component_installed(list, host, "rustfmt"));
        // rust-std's line must not make "rust" count as installed.
        assert!(!component_installed(list, host, "rust"));
    }
}
