//! The agent's kernel classifiers driven directly with BPF_PROG_TEST_RUN and synthetic frames.

use agent_common::{Counter, CpuState, Ports, SegmentEvent};
use anyhow::{Context, Result, bail};
use apitap::capture::cpu_ring::{CpuRing, CpuRings};
use apitap::capture::loader::{self, LoadOptions, RingLayout, RingMaps};
use aya::maps::{MapData, PerCpuArray};
use aya::programs::SchedClassifier;
use std::os::fd::{AsFd, AsRawFd};

/// TC_ACT_UNSPEC (TCX_NEXT): what the classifiers must return for every packet, so that every
/// program after them runs (TCX ends its chain on any other value), as BPF_PROG_TEST_RUN
/// reports it (the u32 bit pattern of -1).
pub const TC_ACT_UNSPEC: u32 = u32::MAX;
const BPF_PROG_TEST_RUN: libc::c_long = 10;

/// The agent's default options with `snap_len` and a 1 MiB ring.
pub fn options(snap_len: u32) -> LoadOptions {
    LoadOptions {
        snap_len,
        ..LoadOptions::with_ring_bytes(1 << 20)
    }
}

/// The agent's embedded kernel object, loaded on its own (own maps), both programs through
/// the verifier, not attached.
pub struct Classifier {
    ebpf: aya::Ebpf,
    ports: aya::maps::Array<MapData, Ports>,
    state: PerCpuArray<MapData, CpuState>,
    /// The rings and a reader per CPU, unless their reading was handed elsewhere
    /// ([`Classifier::load_rings`]).
    rings: Option<(RingMaps, Vec<CpuRing>)>,
}

impl Classifier {
    pub fn load(snap_len: u32, ports: &[u16]) -> Result<Self> {
        Self::load_with(options(snap_len), ports)
    }

    /// As [`Classifier::load`] with rings of `ring_bytes` each (a power-of-two multiple of
    /// `agent_common::ring::RING_CHUNK_BYTES`).
    pub fn load_with_ring(snap_len: u32, ports: &[u16], ring_bytes: u32) -> Result<Self> {
        Self::load_with(
            LoadOptions {
                ring_bytes,
                ..options(snap_len)
            },
            ports,
        )
    }

    /// Loads with `opts` and a ring of `opts.ring_bytes` per CPU, and pins the calling thread
    /// to the CPU it is on, so that records come out in the order the frames were run.
    pub fn load_with(opts: LoadOptions, ports: &[u16]) -> Result<Self> {
        // SAFETY: sched_getcpu has no preconditions.
        let cpu = unsafe { libc::sched_getcpu() };
        pin_to_cpu(usize::try_from(cpu).context("sched_getcpu")?)?;
        let (mut c, rings) = Self::load_rings(opts, ports)?;
        let readers = CpuRings::map(&rings)?.readers();
        c.rings = Some((rings, readers));
        Ok(c)
    }

    /// Loads with a ring of `opts.ring_bytes` per online CPU and hands the rings out, for
    /// the agent's own reader.
    pub fn load_rings(opts: LoadOptions, want_ports: &[u16]) -> Result<(Self, RingMaps)> {
        let cpus = RingLayout::for_this_host(opts.ring_bytes)?.rings;
        let layout = RingLayout::new(opts.ring_bytes * cpus, cpus);
        let loader::Loaded {
            ebpf,
            rings,
            mut ports,
            state,
            ..
        } = loader::load_object(loader::embedded_object(), &opts, layout)
            .context("loading the agent's BPF object")?;
        let mut v = Ports::default();
        for p in want_ports {
            v.watched.insert(*p);
        }
        ports.set(0, v, 0)?;
        let c = Classifier {
            ebpf,
            ports,
            state,
            rings: None,
        };
        Ok((c, rings))
    }

    fn fd(&self, prog: &str) -> Result<i32> {
        let p: &SchedClassifier = self
            .ebpf
            .program(prog)
            .context("program missing")?
            .try_into()?;
        Ok(p.fd()?.as_fd().as_raw_fd())
    }

    /// Runs program `prog` once on `frame` (an Ethernet frame); returns its verdict.
    pub fn run(&self, prog: &str, frame: &[u8]) -> Result<u32> {
        Ok(test_run(self.fd(prog)?, frame, 1)?.0)
    }

    /// As [`Classifier::run`] with the packet's `skb->tstamp` set to `tstamp` (a receive
    /// time on the realtime clock, the only kind BPF_PROG_TEST_RUN accepts).
    pub fn run_stamped(&self, prog: &str, frame: &[u8], tstamp: u64) -> Result<u32> {
        let mut ctx = [0u8; SKB_TSTAMP_END];
        ctx[SKB_TSTAMP_END - 8..].copy_from_slice(&tstamp.to_ne_bytes());
        Ok(test_run_ctx(self.fd(prog)?, frame, 1, &ctx)?.0)
    }

    /// Runs `prog` on `frame` `repeat` times in the kernel; returns the mean nanoseconds per
    /// run as the kernel measured them.
    pub fn time(&self, prog: &str, frame: &[u8], repeat: u32) -> Result<u32> {
        Ok(test_run(self.fd(prog)?, frame, repeat)?.1)
    }

    /// Every record in the rings so far, decoded.
    pub fn events(&mut self) -> Vec<(SegmentEvent, Vec<u8>)> {
        self.records()
            .iter()
            .map(|r| {
                let (ev, payload) = SegmentEvent::from_bytes(r).expect("a well-formed record");
                (ev, payload.to_vec())
            })
            .collect()
    }

    /// Every raw record in the rings so far (header and copied payload), CPU by CPU.
    pub fn records(&mut self) -> Vec<Vec<u8>> {
        let (_, readers) = self
            .rings
            .as_mut()
            .expect("this classifier reads its own rings");
        let mut out = Vec::new();
        for r in readers {
            r.snapshot();
            while let Some(rec) = r.peek() {
                let footprint = rec.footprint;
                out.push(rec.bytes.to_vec());
                r.advance(footprint);
            }
            r.release();
        }
        out
    }

    /// Sum over CPUs of a kernel counter.
    pub fn counter(&self, c: Counter) -> u64 {
        let state: &PerCpuArray<MapData, CpuState> = &self.state;
        state
            .get(&0, 0)
            .map(|v| v.iter().map(|s| s.get(c)).sum())
            .expect("CPU_STATE readable")
    }

    /// Has every segment of server port `port` copied, as the agent does for servers whose
    /// messages heads alone do not frame.
    pub fn copy_in_full(&mut self, port: u16) -> Result<()> {
        let mut v = self.ports.get(&0, 0)?;
        v.copy_all.insert(port);
        self.ports.set(0, v, 0)?;
        Ok(())
    }
}

/// Where `__sk_buff.tstamp` ends (it starts at byte 152 of the UAPI struct): a context of
/// this length sets every field up to it, all zero but the stamp.
const SKB_TSTAMP_END: usize = 160;

/// `bpf(BPF_PROG_TEST_RUN)` with `data_in = frame`, `repeat` times: (verdict, mean ns).
fn test_run(prog_fd: i32, frame: &[u8], repeat: u32) -> Result<(u32, u32)> {
    test_run_ctx(prog_fd, frame, repeat, &[])
}

/// [`test_run`] with `ctx` as the program's `__sk_buff` (a prefix of it; none when empty).
fn test_run_ctx(prog_fd: i32, frame: &[u8], repeat: u32, ctx: &[u8]) -> Result<(u32, u32)> {
    // union bpf_attr, test member: prog_fd, retval, data_size_in, data_size_out, data_in,
    // data_out, repeat, duration, ctx_size_in, ctx_size_out, ctx_in, ctx_out, flags, cpu,
    // batch_size (zero tail padding).
    #[repr(C)]
    #[derive(Default)]
    struct TestAttr {
        prog_fd: u32,
        retval: u32,
        data_size_in: u32,
        data_size_out: u32,
        data_in: u64,
        data_out: u64,
        repeat: u32,
        duration: u32,
        ctx_size_in: u32,
        ctx_size_out: u32,
        ctx_in: u64,
        ctx_out: u64,
        flags: u32,
        cpu: u32,
        batch_size: u32,
        _pad: [u32; 9],
    }
    let mut out = vec![0u8; frame.len() + 256];
    let mut attr = TestAttr {
        prog_fd: prog_fd as u32,
        data_size_in: frame.len() as u32,
        data_size_out: out.len() as u32,
        data_in: frame.as_ptr() as u64,
        data_out: out.as_mut_ptr() as u64,
        repeat,
        ctx_size_in: ctx.len() as u32,
        ctx_in: if ctx.is_empty() {
            0
        } else {
            ctx.as_ptr() as u64
        },
        ..Default::default()
    };
    // SAFETY: attr is a valid bpf_attr prefix with zeroed tail; the buffers outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            &mut attr as *mut TestAttr,
            std::mem::size_of::<TestAttr>() as u32,
        )
    };
    if rc != 0 {
        bail!(
            "BPF_PROG_TEST_RUN failed: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok((attr.retval, attr.duration))
}

/// Pins the calling thread to `cpu` (test runs then execute there).
pub fn pin_to_cpu(cpu: usize) -> Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes inside it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        bail!(
            "cannot pin to CPU {cpu}: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}
