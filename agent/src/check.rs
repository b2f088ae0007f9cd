//! `apitap check`: what this kernel supports and what would attach. Exit 1 if live capture
//! cannot work here, 0 otherwise. Every probe is real: the classifiers are loaded (verifier)
//! and attached to lo for a moment, then detached.

use anyhow::Result;
use aya::maps::MapType;
use aya::programs::ProgramType;
use aya::sys::{is_map_supported, is_program_supported};
use std::path::Path;
use std::process::ExitCode;

use crate::capture::ifaces::{self, Framing};
use crate::capture::{Attacher, caps, loader};
use crate::cli::CheckArgs;

struct Report {
    fatal: bool,
}

impl Report {
    fn line(&mut self, ok: bool, fatal_if_bad: bool, what: &str, detail: &str) {
        let mark = if ok {
            "ok  "
        } else if fatal_if_bad {
            "FAIL"
        } else {
            "no  "
        };
        println!("[{mark}] {what}: {detail}");
        if !ok && fatal_if_bad {
            self.fatal = true;
        }
    }
}

pub fn main(args: CheckArgs) -> Result<ExitCode> {
    let mut r = Report { fatal: false };
    println!("apitap {} check", env!("CARGO_PKG_VERSION"));
    r.line(true, false, "kernel", &kernel_release());
    let btf = Path::new("/sys/kernel/btf/vmlinux").exists();
    r.line(
        btf,
        false,
        "BTF",
        if btf {
            "/sys/kernel/btf/vmlinux present"
        } else {
            "absent (not needed by the TC classifiers)"
        },
    );

    let missing = caps::missing();
    let caps_ok = missing.is_empty();
    let detail = if caps_ok {
        "CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON present".to_string()
    } else {
        format!(
            "missing {} (run as root or grant CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON)",
            missing.join(", ")
        )
    };
    r.line(caps_ok, true, "capabilities", &detail);

    if caps_ok {
        probe_features(&mut r);
        probe_classifiers(&mut r);
    }
    let kprobes = kprobes();
    r.line(kprobes.0, false, "kprobes", &kprobes.1);
    let tp = [
        "/sys/kernel/tracing/events",
        "/sys/kernel/debug/tracing/events",
    ]
    .iter()
    .find(|p| Path::new(p).exists());
    r.line(
        tp.is_some(),
        false,
        "tracepoints",
        tp.map_or("tracefs not mounted", |p| p),
    );

    report_interfaces(&mut r, &args.interfaces);
    if r.fatal {
        println!("result: live capture cannot work here (see FAIL lines)");
        Ok(ExitCode::from(1))
    } else {
        println!("result: live capture works here");
        Ok(ExitCode::SUCCESS)
    }
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

fn probe_features(r: &mut Report) {
    for (ty, name, fatal) in [
        (
            ProgramType::SchedClassifier,
            "TC classifier (sched_cls) programs",
            true,
        ),
        (ProgramType::TracePoint, "tracepoint programs", false),
        (ProgramType::CgroupSkb, "cgroup_skb programs", false),
        (ProgramType::SocketFilter, "socket filter programs", false),
    ] {
        match is_program_supported(ty) {
            Ok(ok) => r.line(
                ok,
                fatal,
                name,
                if ok { "supported" } else { "not supported" },
            ),
            Err(e) => r.line(false, fatal, name, &format!("probe failed: {e}")),
        }
    }
    match is_map_supported(MapType::RingBuf) {
        Ok(ok) => r.line(
            ok,
            true,
            "ring buffer maps",
            if ok {
                "supported"
            } else {
                "not supported (needs Linux 5.8+)"
            },
        ),
        Err(e) => r.line(
            false,
            true,
            "ring buffer maps",
            &format!("probe failed: {e}"),
        ),
    }
}

/// Loads the real classifiers (the verifier runs), attaches them to lo and detaches.
fn probe_classifiers(r: &mut Report) {
    let loaded = match loader::load(agent_common::DEFAULT_SNAP_LEN, 64 * 1024) {
        Ok(l) => l,
        Err(e) => {
            r.line(false, true, "apitap classifiers", &format!("{e:#}"));
            return;
        }
    };
    r.line(
        true,
        true,
        "apitap classifiers",
        "tc_ingress and tc_egress pass the verifier",
    );
    let mut attacher = Attacher::new(loaded.ebpf);
    match attacher.attach("lo") {
        Ok(n) => {
            attacher.detach_all();
            r.line(
                true,
                true,
                "attach to lo",
                &format!("{n} program(s) attached and detached again"),
            );
        }
        Err(e) => r.line(false, true, "attach to lo", &format!("{e:#}")),
    }
}

/// Kprobes need CONFIG_KPROBES and a kprobe_events file in tracefs.
fn kprobes() -> (bool, String) {
    let events = [
        "/sys/kernel/tracing/kprobe_events",
        "/sys/kernel/debug/tracing/kprobe_events",
    ]
    .iter()
    .any(|p| Path::new(p).exists());
    let config = kernel_config();
    let set = config
        .as_deref()
        .map(|c| c.lines().any(|l| l == "CONFIG_KPROBES=y"));
    match (events, set) {
        (true, _) | (_, Some(true)) => (true, "available (not used by apitap)".into()),
        (false, Some(false)) => (
            false,
            "CONFIG_KPROBES is not set (apitap does not need them)".into(),
        ),
        (false, None) => (
            false,
            "no kprobe_events in tracefs (apitap does not need them)".into(),
        ),
    }
}

fn kernel_config() -> Option<String> {
    let boot = format!("/boot/config-{}", kernel_release());
    if let Ok(text) = std::fs::read_to_string(&boot) {
        return Some(text);
    }
    if Path::new("/proc/config.gz").exists() {
        let out = std::process::Command::new("zcat")
            .arg("/proc/config.gz")
            .output()
            .ok()?;
        return out
            .status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned());
    }
    None
}

fn report_interfaces(r: &mut Report, wanted: &[String]) {
    let names = if wanted.is_empty() {
        ifaces::up_interfaces()
    } else {
        wanted.to_vec()
    };
    for name in names {
        match ifaces::framing(&name) {
            None => r.line(
                false,
                true,
                &format!("interface {name}"),
                "unknown interface",
            ),
            Some(Framing::Loopback) => r.line(
                true,
                false,
                &format!("interface {name}"),
                "would attach tc_ingress (loopback: one hook)",
            ),
            Some(Framing::Ethernet) => r.line(
                true,
                false,
                &format!("interface {name}"),
                "would attach tc_ingress and tc_egress",
            ),
            Some(Framing::Other(t)) => r.line(
                false,
                false,
                &format!("interface {name}"),
                &format!("skipped: link type {t} has no Ethernet header"),
            ),
        }
    }
}
