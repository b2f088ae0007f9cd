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
use crate::capture::{AttachPolicy, Attacher, caps, loader, stale};
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

    let names = if args.interfaces.is_empty() {
        ifaces::up_interfaces()
    } else {
        args.interfaces.clone()
    };
    if caps_ok {
        probe_features(&mut r);
        report_stale(&mut r, &names);
        probe_classifiers(&mut r, args.attach_mode);
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

    report_interfaces(&mut r, &names);
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

/// Loads the real classifiers (the verifier runs), attaches them to lo with each mechanism and
/// detaches; then says which one `apitap run` would use with `policy`.
fn probe_classifiers(r: &mut Report, policy: AttachPolicy) {
    let load = || loader::load(&loader::LoadOptions::with_ring_bytes(64 * 1024));
    match load() {
        Ok(_) => r.line(
            true,
            true,
            "apitap classifiers",
            "tc_ingress and tc_egress pass the verifier",
        ),
        Err(e) => {
            r.line(false, true, "apitap classifiers", &format!("{e:#}"));
            return;
        }
    }
    let works = |mechanism: AttachPolicy| -> Result<usize, String> {
        let loaded = load().map_err(|e| format!("{e:#}"))?;
        let mut attacher = Attacher::new(loaded.ebpf, mechanism).keep_stale();
        let n = attacher.attach("lo").map_err(|e| format!("{e:#}"))?;
        attacher.detach_all();
        Ok(n)
    };
    let tcx = works(AttachPolicy::Tcx);
    let netlink = works(AttachPolicy::Netlink);
    for (what, result, note) in [
        ("TCX links", &tcx, "(Linux 6.6+)"),
        ("netlink filters", &netlink, "(the fallback)"),
    ] {
        match result {
            Ok(n) => r.line(
                true,
                false,
                &format!("attach to lo with {what}"),
                &format!("{n} program(s) attached and detached again {note}"),
            ),
            Err(e) => r.line(false, false, &format!("attach to lo with {what}"), e),
        }
    }
    let mode = match policy {
        AttachPolicy::Auto if tcx.is_ok() => Ok("tcx (auto: this kernel has TCX links)"),
        AttachPolicy::Auto if netlink.is_ok() => Ok("netlink (auto: TCX links do not attach here)"),
        AttachPolicy::Tcx if tcx.is_ok() => Ok("tcx (forced)"),
        AttachPolicy::Netlink if netlink.is_ok() => Ok("netlink (forced)"),
        _ => Err("no mechanism apitap run would use attaches here"),
    };
    match mode {
        Ok(m) => r.line(true, true, "attach mode", m),
        Err(m) => r.line(false, true, "attach mode", m),
    }
}

/// apitap filters a killed apitap left behind (removed by the next `apitap run`).
fn report_stale(r: &mut Report, names: &[String]) {
    let census = stale::Census::take();
    let mut found = Vec::new();
    for name in names {
        let Some(ifindex) = ifaces::index(name) else {
            continue;
        };
        match stale::find(&census, ifindex) {
            Ok(fs) if !fs.is_empty() => found.push(format!("{} on {name}", fs.len())),
            Ok(_) => {}
            Err(e) => found.push(format!("{name}: cannot list filters ({e})")),
        }
    }
    if found.is_empty() {
        r.line(true, false, "stale apitap filters", "none");
    } else {
        r.line(
            false,
            false,
            "stale apitap filters",
            &format!(
                "{} (left by an apitap that was killed; apitap run removes them)",
                found.join(", ")
            ),
        );
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

fn report_interfaces(r: &mut Report, names: &[String]) {
    for name in names {
        match ifaces::framing(name) {
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
