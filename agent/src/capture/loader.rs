//! Loading the embedded kernel object with the configured globals and ring size.

use agent_common::{globals, maps, programs};
use anyhow::{Context, Result, anyhow};
use aya::maps::{HashMap, MapData, PerCpuArray, RingBuf};
use aya::programs::SchedClassifier;
use aya::{Ebpf, EbpfLoader};

/// The BPF object built by agent/build.rs.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/apitap-ebpf.o"));

/// A loaded (not yet attached) object with its maps taken out.
pub struct Loaded {
    pub ebpf: Ebpf,
    pub ring: RingBuf<MapData>,
    pub ports: HashMap<MapData, u16, u8>,
    pub counters: PerCpuArray<MapData, u64>,
}

/// Bytes pending in the ring that make the kernel wake the reader: a sixteenth of the ring,
/// so wakeups come in batches; the reader also drains on a short timer.
pub fn wakeup_bytes(ring_bytes: u32) -> u32 {
    (ring_bytes / 16).clamp(256, 1 << 20)
}

/// Loads the object, patches SNAP_LEN and WAKEUP_BYTES, sizes the ring and loads both
/// classifiers into the kernel (the verifier runs here).
pub fn load(snap_len: u32, ring_bytes: u32) -> Result<Loaded> {
    let wake = wakeup_bytes(ring_bytes);
    let mut ebpf = EbpfLoader::new()
        .override_global(globals::SNAP_LEN, &snap_len, true)
        .override_global(globals::WAKEUP_BYTES, &wake, true)
        .map_max_entries(maps::EVENTS, ring_bytes)
        .load(OBJECT)
        .map_err(|e| privilege_hint(anyhow!(e)))
        .context("cannot load the BPF object")?;
    for name in [programs::TC_INGRESS, programs::TC_EGRESS] {
        let prog: &mut SchedClassifier = ebpf
            .program_mut(name)
            .with_context(|| format!("program {name} missing from the BPF object"))?
            .try_into()
            .with_context(|| format!("program {name} is not a TC classifier"))?;
        prog.load()
            .map_err(|e| privilege_hint(anyhow!(short_verifier_log(&e.to_string()))))
            .with_context(|| format!("the kernel rejected program {name}"))?;
    }
    let ring = RingBuf::try_from(take(&mut ebpf, maps::EVENTS)?)?;
    let ports = HashMap::try_from(take(&mut ebpf, maps::PORTS)?)?;
    let counters = PerCpuArray::try_from(take(&mut ebpf, maps::COUNTERS)?)?;
    Ok(Loaded {
        ebpf,
        ring,
        ports,
        counters,
    })
}

fn take(ebpf: &mut Ebpf, name: &str) -> Result<aya::maps::Map> {
    ebpf.take_map(name)
        .with_context(|| format!("map {name} missing from the BPF object"))
}

/// Adds the capabilities to an EPERM error, which is what a missing privilege looks like.
fn privilege_hint(err: anyhow::Error) -> anyhow::Error {
    let eperm = err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.raw_os_error() == Some(libc::EPERM))
            || e.to_string().contains("Operation not permitted")
    });
    if eperm {
        err.context(
            "permission denied: run as root or grant CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON",
        )
    } else {
        err
    }
}

/// Keeps an error to one readable line: the verifier's full log is replaced by its last lines.
fn short_verifier_log(msg: &str) -> String {
    match msg.split_once("Verifier output:") {
        Some((head, log)) => {
            let lines: Vec<&str> = log
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            let tail = lines
                .iter()
                .rev()
                .take(3)
                .rev()
                .copied()
                .collect::<Vec<_>>()
                .join(" | ");
            format!("{} verifier: {tail}", head.trim())
        }
        None => msg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn verifier_log_is_cut_to_its_last_lines() {
        let msg = "load failed. Verifier output: 0: r1 = 0\n1: call\nR4 invalid zero-sized read\nprocessed 3 insns\n";
        let short = super::short_verifier_log(msg);
        assert_eq!(
            short,
            "load failed. verifier: 1: call | R4 invalid zero-sized read | processed 3 insns"
        );
    }
}
