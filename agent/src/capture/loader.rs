//! Loading the embedded kernel object: globals, one ring per CPU (`agent_common::ring`), and
//! both classifiers through the verifier.

use agent_common::{
    CpuState, DEFAULT_SMALL_COPY_LEN, DEFAULT_SNAP_LEN, MIN_RING_BYTES_PER_CPU, Ports, globals,
    maps, programs, ring::RING_CHUNK_BYTES,
};
use anyhow::{Context, Result, anyhow};
use aya::maps::{Array, MapData, PerCpuArray};
use aya::programs::SchedClassifier;
use aya::{Ebpf, EbpfLoader};

/// The BPF object built by agent/build.rs.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/apitap-ebpf.o"));

/// What the classifiers are loaded with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadOptions {
    /// Payload bytes copied at the start of a burst.
    pub snap_len: u32,
    /// Segments with at most this many payload bytes are always copied.
    pub small_copy_len: u32,
    /// Total ring budget, split over the rings.
    pub ring_bytes: u32,
    /// Time responses with their departure time where the packet has one (needs
    /// `__sk_buff.tstamp_type`, Linux 5.18+; the classifier's `stamp`).
    pub stack_stamps: bool,
}

impl LoadOptions {
    /// The default copy lengths with a ring budget of `ring_bytes`.
    pub fn with_ring_bytes(ring_bytes: u32) -> LoadOptions {
        LoadOptions {
            snap_len: DEFAULT_SNAP_LEN,
            small_copy_len: DEFAULT_SMALL_COPY_LEN,
            ring_bytes,
            stack_stamps: kernel_has_tstamp_type(),
        }
    }
}

/// Whether this kernel lets TC programs read `__sk_buff.tstamp_type` (added in Linux 5.18).
/// An older verifier rejects the read, so the loader switches it off (the code stays dead).
pub fn kernel_has_tstamp_type() -> bool {
    let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") else {
        return false;
    };
    release_at_least(&release, (5, 18))
}

/// Whether a kernel release string (`6.18.0-1-amd64`) is at least `major.minor`.
fn release_at_least(release: &str, (major, minor): (u32, u32)) -> bool {
    let mut parts = release.trim().split(['.', '-', '+']);
    let mut number = || parts.next().and_then(|p| p.parse::<u32>().ok());
    match (number(), number()) {
        (Some(a), Some(b)) => (a, b) >= (major, minor),
        _ => false,
    }
}

/// The rings: one per CPU id up to the highest online one, `ring_bytes` each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingLayout {
    pub rings: u32,
    pub ring_bytes: u32,
}

impl RingLayout {
    /// The layout for this host's online CPUs: a ring for every id up to the highest online
    /// one. Not one per possible CPU: hypervisors often declare far more possible CPUs than
    /// they bring online, and each ring is at least 128 KiB of kernel memory. A CPU brought
    /// online later, above that id, finds no ring: its records are counted lost
    /// (`apitap_events_lost_total`) until the agent restarts.
    pub fn for_this_host(total: u32) -> Result<RingLayout> {
        let online =
            aya::util::online_cpus().map_err(|(path, e)| anyhow!("cannot read {path}: {e}"))?;
        let highest = online.iter().copied().max().unwrap_or(0);
        Ok(RingLayout::new(total, highest + 1))
    }

    /// One ring per CPU, each the largest power of two within `total / cpus` and at least
    /// [`MIN_RING_BYTES_PER_CPU`] (one chunk), so the rings may take more than `total` on a
    /// host with very many CPUs.
    pub fn new(total: u32, cpus: u32) -> RingLayout {
        let rings = cpus.max(1);
        let share = (total / rings).max(MIN_RING_BYTES_PER_CPU);
        // Largest power of two <= share.
        let ring_bytes = 1u32 << (31 - share.leading_zeros());
        RingLayout { rings, ring_bytes }
    }

    /// Chunks per ring (`agent_common::ring`).
    pub fn chunks(&self) -> u32 {
        self.ring_bytes / RING_CHUNK_BYTES
    }

    /// A CPU checks its ring's fill level after writing this many bytes.
    pub fn wake_check_bytes(&self) -> u32 {
        self.ring_bytes / 8
    }

    /// The reader is woken when a ring holds this many bytes (half of it).
    pub fn wake_at_bytes(&self) -> u32 {
        self.ring_bytes / 2
    }
}

/// The maps the rings live in, for the reader to map.
pub struct RingMaps {
    /// `RING_DATA`: every CPU's chunks.
    pub data: MapData,
    /// `RING_POS`: every CPU's positions.
    pub pos: MapData,
    /// `WAKE`: the ring buffer whose records only wake the reader.
    pub wake: MapData,
    pub layout: RingLayout,
}

/// A loaded (not yet attached) object with its maps taken out.
pub struct Loaded {
    pub ebpf: Ebpf,
    pub rings: RingMaps,
    pub ports: Array<MapData, Ports>,
    pub state: PerCpuArray<MapData, CpuState>,
}

/// The kernel programs embedded in this binary.
pub fn embedded_object() -> &'static [u8] {
    OBJECT
}

/// Loads the embedded object with one ring per CPU.
pub fn load(opts: &LoadOptions) -> Result<Loaded> {
    load_object(OBJECT, opts, RingLayout::for_this_host(opts.ring_bytes)?)
}

/// Loads `object` with `opts` and `layout` (`opts.ring_bytes` is not used): patches the
/// globals, sizes the rings, and loads both classifiers into the kernel (the verifier runs
/// here).
pub fn load_object(object: &[u8], opts: &LoadOptions, layout: RingLayout) -> Result<Loaded> {
    let wake_check = layout.wake_check_bytes();
    let wake_at = layout.wake_at_bytes();
    let chunks = layout.chunks();
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u32;
    let mut ebpf = EbpfLoader::new()
        .override_global(globals::SNAP_LEN, &opts.snap_len, true)
        .override_global(globals::SMALL_COPY_LEN, &opts.small_copy_len, true)
        .override_global(globals::WAKE_CHECK_BYTES, &wake_check, true)
        .override_global(globals::WAKE_AT_BYTES, &wake_at, true)
        .override_global(globals::STACK_STAMPS, &u32::from(opts.stack_stamps), true)
        .override_global(globals::RING_CHUNKS, &chunks, true)
        .map_max_entries(maps::RING_DATA, layout.rings * chunks)
        .map_max_entries(maps::RING_POS, layout.rings)
        .map_max_entries(maps::WAKE, page)
        .load(object)
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
    let rings = RingMaps {
        data: map_data(take(&mut ebpf, maps::RING_DATA)?)?,
        pos: map_data(take(&mut ebpf, maps::RING_POS)?)?,
        wake: map_data(take(&mut ebpf, maps::WAKE)?)?,
        layout,
    };
    let ports = Array::try_from(take(&mut ebpf, maps::PORTS)?)?;
    let state = PerCpuArray::try_from(take(&mut ebpf, maps::CPU_STATE)?)?;
    Ok(Loaded {
        ebpf,
        rings,
        ports,
        state,
    })
}

/// The map behind an array or ring buffer handle.
fn map_data(map: aya::maps::Map) -> Result<MapData> {
    match map {
        aya::maps::Map::Array(m) | aya::maps::Map::RingBuf(m) => Ok(m),
        other => Err(anyhow!("unexpected map type {other:?}")),
    }
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
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("6.18.0-1-amd64", true)]
    #[case("5.18.0", true)]
    #[case("5.17.15-arch1", false)]
    #[case("5.4.0-150-generic", false)]
    #[case("4.19.0", false)]
    #[case("6.1", true)]
    #[case("6.1.0-rc1+", true)]
    #[case("", false)]
    #[case("linux", false)]
    fn tstamp_type_needs_linux_5_18(#[case] release: &str, #[case] has: bool) {
        assert_eq!(release_at_least(release, (5, 18)), has, "{release}");
    }

    #[test]
    fn verifier_log_is_cut_to_its_last_lines() {
        let msg = "load failed. Verifier output: 0: r1 = 0\n1: call\nR4 invalid zero-sized read\nprocessed 3 insns\n";
        let short = short_verifier_log(msg);
        assert_eq!(
            short,
            "load failed. verifier: 1: call | R4 invalid zero-sized read | processed 3 insns"
        );
    }

    #[rstest]
    #[case::one_ring_per_cpu(8 << 20, 2, 2, 4 << 20)]
    #[case::rounded_down_to_a_power_of_two(6 << 20, 2, 2, 2 << 20)]
    #[case::one_chunk_each_when_the_budget_is_small(512 << 10, 8, 8, 128 << 10)]
    #[case::at_least_the_minimum(4096, 4, 4, 128 << 10)]
    #[case::no_cpu_reported(1 << 20, 0, 1, 1 << 20)]
    fn ring_layout_splits_the_budget(
        #[case] total: u32,
        #[case] cpus: u32,
        #[case] rings: u32,
        #[case] bytes: u32,
    ) {
        let l = RingLayout::new(total, cpus);
        assert_eq!((l.rings, l.ring_bytes), (rings, bytes));
        assert!(l.ring_bytes.is_power_of_two());
        assert!(l.chunks().is_power_of_two());
        assert_eq!(l.chunks() * RING_CHUNK_BYTES, bytes);
        assert_eq!(l.wake_at_bytes(), bytes / 2);
    }
}
