//! The kernel classifiers driven directly with BPF_PROG_TEST_RUN and synthetic frames.

use agent_common::{Counter, SegmentEvent, globals, maps};
use anyhow::{Context, Result, bail};
use aya::maps::{HashMap, MapData, PerCpuArray, RingBuf};
use aya::programs::SchedClassifier;
use aya::{Ebpf, EbpfLoader};
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;

/// TC_ACT_UNSPEC (TCX_NEXT): what the classifiers must return for every packet, so that every
/// program after them runs (TCX ends its chain on any other value), as BPF_PROG_TEST_RUN
/// reports it (the u32 bit pattern of -1).
pub const TC_ACT_UNSPEC: u32 = u32::MAX;
const BPF_PROG_TEST_RUN: libc::c_long = 10;

/// The BPF object: APITAP_EBPF_OBJECT, else the one agent/build.rs built (building the agent
/// first when it is missing).
pub fn object_path() -> PathBuf {
    if let Some(p) = std::env::var_os("APITAP_EBPF_OBJECT") {
        return PathBuf::from(p);
    }
    let obj = crate::repo_root().join("agent-ebpf/target/bpfel-unknown-none/release/agent-ebpf");
    if !obj.exists() {
        let _ = crate::agent::apitap_bin();
    }
    obj
}

/// A freshly loaded copy of the object (its own maps), both programs loaded, not attached.
pub struct Classifier {
    ebpf: Ebpf,
    ring: RingBuf<MapData>,
    counters: PerCpuArray<MapData, u64>,
    _ports: HashMap<MapData, u16, u8>,
}

impl Classifier {
    pub fn load(snap_len: u32, ports: &[u16]) -> Result<Self> {
        Self::load_with_ring(snap_len, ports, 1 << 20)
    }

    /// As [`Classifier::load`] with a ring of `ring_bytes` (a power-of-two multiple of the
    /// page size).
    pub fn load_with_ring(snap_len: u32, ports: &[u16], ring_bytes: u32) -> Result<Self> {
        let path = object_path();
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let wake = 1u32;
        let mut ebpf = EbpfLoader::new()
            .override_global(globals::SNAP_LEN, &snap_len, true)
            .override_global(globals::WAKEUP_BYTES, &wake, true)
            .map_max_entries(maps::EVENTS, ring_bytes)
            .load(&bytes)
            .context("loading the BPF object")?;
        for name in [
            agent_common::programs::TC_INGRESS,
            agent_common::programs::TC_EGRESS,
        ] {
            let prog: &mut SchedClassifier = ebpf
                .program_mut(name)
                .context("program missing")?
                .try_into()?;
            prog.load()
                .with_context(|| format!("the verifier rejected {name}"))?;
        }
        let ring = RingBuf::try_from(ebpf.take_map(maps::EVENTS).context("EVENTS")?)?;
        let counters = PerCpuArray::try_from(ebpf.take_map(maps::COUNTERS).context("COUNTERS")?)?;
        let mut port_map: HashMap<MapData, u16, u8> =
            HashMap::try_from(ebpf.take_map(maps::PORTS).context("PORTS")?)?;
        for p in ports {
            port_map.insert(p, 1, 0)?;
        }
        Ok(Classifier {
            ebpf,
            ring,
            counters,
            _ports: port_map,
        })
    }

    /// Runs program `prog` once on `frame` (an Ethernet frame); returns its verdict.
    pub fn run(&self, prog: &str, frame: &[u8]) -> Result<u32> {
        let p: &SchedClassifier = self
            .ebpf
            .program(prog)
            .context("program missing")?
            .try_into()?;
        let fd = p.fd()?.as_fd().as_raw_fd();
        test_run(fd, frame)
    }

    /// Every record in the ring so far, decoded.
    pub fn events(&mut self) -> Vec<(SegmentEvent, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(item) = self.ring.next() {
            let (ev, payload) = SegmentEvent::from_bytes(&item).expect("a well-formed record");
            out.push((ev, payload.to_vec()));
        }
        out
    }

    /// Sum over CPUs of a kernel counter.
    pub fn counter(&self, c: Counter) -> u64 {
        self.counters
            .get(&(c as u32), 0)
            .map(|v| v.iter().sum())
            .expect("COUNTERS readable")
    }
}

/// `bpf(BPF_PROG_TEST_RUN)` with `data_in = frame`, run once.
fn test_run(prog_fd: i32, frame: &[u8]) -> Result<u32> {
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
        repeat: 1,
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
    Ok(attr.retval)
}

/// Synthetic Ethernet frames.
pub mod frames {
    pub const ACK: u8 = 0x10;
    pub const PSH: u8 = 0x08;
    pub const SYN: u8 = 0x02;
    pub const FIN: u8 = 0x01;

    pub struct Tcp<'a> {
        pub sport: u16,
        pub dport: u16,
        pub seq: u32,
        pub ack: u32,
        pub flags: u8,
        pub payload: &'a [u8],
    }

    fn eth(ethertype: u16) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
        f.extend_from_slice(&ethertype.to_be_bytes());
        f
    }

    fn tcp_header(t: &Tcp<'_>) -> Vec<u8> {
        let mut h = Vec::with_capacity(20);
        h.extend_from_slice(&t.sport.to_be_bytes());
        h.extend_from_slice(&t.dport.to_be_bytes());
        h.extend_from_slice(&t.seq.to_be_bytes());
        h.extend_from_slice(&t.ack.to_be_bytes());
        h.push(5 << 4);
        h.push(t.flags);
        h.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
        h
    }

    fn ipv4(
        proto: u8,
        src: [u8; 4],
        dst: [u8; 4],
        l4_len: usize,
        claimed_tot: Option<u16>,
    ) -> Vec<u8> {
        let tot = claimed_tot.unwrap_or((20 + l4_len) as u16);
        let mut h = vec![0x45, 0];
        h.extend_from_slice(&tot.to_be_bytes());
        h.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0]);
        h.extend_from_slice(&src);
        h.extend_from_slice(&dst);
        h
    }

    /// IPv4 TCP; `claimed_tot` overrides the IP total length (a GSO-style frame whose IP
    /// header announces more than the frame carries).
    pub fn ipv4_tcp(src: [u8; 4], dst: [u8; 4], t: &Tcp<'_>, claimed_tot: Option<u16>) -> Vec<u8> {
        let mut f = eth(0x0800);
        f.extend(ipv4(6, src, dst, 20 + t.payload.len(), claimed_tot));
        f.extend(tcp_header(t));
        f.extend_from_slice(t.payload);
        f
    }

    pub fn ipv6_tcp(src: [u8; 16], dst: [u8; 16], t: &Tcp<'_>) -> Vec<u8> {
        let mut f = eth(0x86DD);
        f.extend_from_slice(&[0x60, 0, 0, 0]);
        f.extend_from_slice(&((20 + t.payload.len()) as u16).to_be_bytes());
        f.extend_from_slice(&[6, 64]);
        f.extend_from_slice(&src);
        f.extend_from_slice(&dst);
        f.extend(tcp_header(t));
        f.extend_from_slice(t.payload);
        f
    }

    pub fn ipv4_udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = eth(0x0800);
        f.extend(ipv4(17, src, dst, 8 + payload.len(), None));
        f.extend_from_slice(&sport.to_be_bytes());
        f.extend_from_slice(&dport.to_be_bytes());
        f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(payload);
        f
    }
}
