//! Loading the embedded kernel object: globals, one ring buffer per CPU (or per group of CPUs
//! when the ring budget is small), and both classifiers through the verifier.

use agent_common::{
    CpuState, DEFAULT_SMALL_COPY_LEN, DEFAULT_SNAP_LEN, MIN_RING_BYTES_PER_CPU, Ports, globals,
    maps, programs,
};
use anyhow::{Context, Result, anyhow, bail};
use aya::maps::{Array, ArrayOfMaps, MapData, PerCpuArray};
use aya::programs::SchedClassifier;
use aya::{Ebpf, EbpfLoader};

/// The BPF object built by agent/build.rs.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/apitap-ebpf.o"));

/// `BPF_MAP_TYPE_RINGBUF`.
const MAP_TYPE_RINGBUF: u32 = 27;

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

/// How CPUs map to rings: `rings` rings of `ring_bytes` each; CPU `c` writes to ring
/// `c % rings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingLayout {
    pub rings: u32,
    pub ring_bytes: u32,
}

impl RingLayout {
    /// The layout for this host's online CPUs.
    pub fn for_this_host(total: u32) -> Result<RingLayout> {
        let online = aya::util::online_cpus()
            .map_err(|(path, e)| anyhow!("cannot read {path}: {e}"))?
            .len() as u32;
        Ok(RingLayout::new(total, online))
    }

    /// One ring per online CPU, each the largest power of two within `total / online` and at
    /// least [`MIN_RING_BYTES_PER_CPU`]; fewer, shared rings when the budget is too small for
    /// one each.
    pub fn new(total: u32, online: u32) -> RingLayout {
        let online = online.max(1);
        let most = (total / MIN_RING_BYTES_PER_CPU).max(1);
        let rings = online.min(most);
        let share = (total / rings).max(MIN_RING_BYTES_PER_CPU);
        // Largest power of two <= share.
        let ring_bytes = 1u32 << (31 - share.leading_zeros());
        RingLayout { rings, ring_bytes }
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

/// One ring buffer map and the CPUs writing to it.
pub struct Ring {
    pub map: MapData,
    pub bytes: u32,
}

/// A loaded (not yet attached) object with its maps taken out.
pub struct Loaded {
    pub ebpf: Ebpf,
    pub rings: Vec<Ring>,
    pub layout: RingLayout,
    pub ports: Array<MapData, Ports>,
    pub state: PerCpuArray<MapData, CpuState>,
}

/// The kernel programs embedded in this binary.
pub fn embedded_object() -> &'static [u8] {
    OBJECT
}

/// Loads the embedded object with one ring per online CPU.
pub fn load(opts: &LoadOptions) -> Result<Loaded> {
    load_object(OBJECT, opts, RingLayout::for_this_host(opts.ring_bytes)?)
}

/// Loads `object` with `opts` and `layout` (`opts.ring_bytes` is not used): patches the
/// globals, creates the rings, and loads both classifiers into the kernel (the verifier runs
/// here).
pub fn load_object(object: &[u8], opts: &LoadOptions, layout: RingLayout) -> Result<Loaded> {
    let possible =
        aya::util::nr_cpus().map_err(|(path, e)| anyhow!("cannot read {path}: {e}"))? as u32;
    let wake_check = layout.wake_check_bytes();
    let wake_at = layout.wake_at_bytes();
    let mut ebpf = EbpfLoader::new()
        .override_global(globals::SNAP_LEN, &opts.snap_len, true)
        .override_global(globals::SMALL_COPY_LEN, &opts.small_copy_len, true)
        .override_global(globals::WAKE_CHECK_BYTES, &wake_check, true)
        .override_global(globals::WAKE_AT_BYTES, &wake_at, true)
        .override_global(globals::STACK_STAMPS, &u32::from(opts.stack_stamps), true)
        .map_max_entries(maps::RINGS, possible)
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
    let rings = create_rings(&mut ebpf, layout, possible)?;
    let ports = Array::try_from(take(&mut ebpf, maps::PORTS)?)?;
    let state = PerCpuArray::try_from(take(&mut ebpf, maps::CPU_STATE)?)?;
    Ok(Loaded {
        ebpf,
        rings,
        layout,
        ports,
        state,
    })
}

/// Creates `layout.rings` ring buffers and points every possible CPU's slot at one.
fn create_rings(ebpf: &mut Ebpf, layout: RingLayout, possible: u32) -> Result<Vec<Ring>> {
    let mut outer: ArrayOfMaps<MapData, MapData> = ArrayOfMaps::try_from(take(ebpf, maps::RINGS)?)?;
    let mut rings = Vec::with_capacity(layout.rings as usize);
    for i in 0..layout.rings {
        let def = aya_obj::Map::new_from_params(MAP_TYPE_RINGBUF, 0, 0, layout.ring_bytes, 0);
        let map = MapData::create(def, "apitap_ring", None)
            .map_err(|e| privilege_hint(anyhow!(e)))
            .with_context(|| {
                format!(
                    "cannot create ring buffer {i} ({} bytes)",
                    layout.ring_bytes
                )
            })?;
        rings.push(Ring {
            map,
            bytes: layout.ring_bytes,
        });
    }
    for cpu in 0..possible {
        let ring = &rings[(cpu % layout.rings) as usize];
        outer
            .set(cpu, &ring.map, 0)
            .with_context(|| format!("cannot install the ring of CPU {cpu}"))?;
    }
    // The outer map stays referenced by the loaded programs after this handle is dropped.
    if rings.is_empty() {
        bail!("no ring buffer created");
    }
    Ok(rings)
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
    #[case::shared_when_the_budget_is_small(128 << 10, 8, 2, 64 << 10)]
    #[case::at_least_the_minimum(4096, 4, 1, 64 << 10)]
    #[case::no_online_cpu_reported(1 << 20, 0, 1, 1 << 20)]
    fn ring_layout_splits_the_budget(
        #[case] total: u32,
        #[case] online: u32,
        #[case] rings: u32,
        #[case] bytes: u32,
    ) {
        let l = RingLayout::new(total, online);
        assert_eq!((l.rings, l.ring_bytes), (rings, bytes));
        assert!(l.ring_bytes.is_power_of_two());
        assert_eq!(l.wake_at_bytes(), bytes / 2);
    }
}
