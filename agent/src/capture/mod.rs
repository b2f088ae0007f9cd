//! Live capture: load and attach the kernel programs, follow ports and interfaces, drain the
//! ring buffer into segment batches.
//!
//! Interfaces are followed by polling /sys/class/net every second (simple, and enough for
//! containers and hot-plugged NICs); ports by polling /proc/net/tcp{,6} every two seconds.

mod attach;
mod batch;
pub mod caps;
mod clock;
pub mod ifaces;
pub mod loader;
mod netlink;
mod ports;
mod reader;
pub mod stale;
mod stats;

pub use attach::{AttachMode, AttachPolicy, Attacher};
pub use batch::SegmentBatch;
pub use stats::{CaptureStats, StatsSnapshot};

use anyhow::{Context, Result, bail};
use aya::maps::{HashMap, MapData};
use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::Config;

/// Batches waiting for the pipeline before the reader starts dropping.
const CHANNEL_BATCHES: usize = 256;
const IFACE_POLL: Duration = Duration::from_secs(1);
const PORT_POLL: Duration = Duration::from_secs(2);

/// A running capture. `shutdown` detaches everything; dropping it detaches too.
pub struct CaptureHandle {
    stats: CaptureStats,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    attacher: Arc<Mutex<Attacher>>,
}

impl CaptureHandle {
    pub fn stats(&self) -> CaptureStats {
        self.stats.clone()
    }

    /// Stops the reader and watchers, detaches every filter and deletes the qdiscs we added.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        let mut a = self.attacher.lock().unwrap_or_else(|p| p.into_inner());
        a.detach_all();
        self.stats.user.programs_attached.store(0, Relaxed);
        self.stats.user.interfaces_attached.store(0, Relaxed);
        self.stats
            .user
            .interface_names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        info!("capture detached");
    }
}

/// Refuses what would make `start` fail on bad input (missing privileges, unknown interface)
/// before the agent has any side effect (token, store, listener).
pub fn preflight(cfg: &Config) -> Result<()> {
    let missing = caps::missing();
    if !missing.is_empty() {
        return Err(crate::exit::usage(format!(
            "missing privileges {}: run as root or grant CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON",
            missing.join(", ")
        )));
    }
    for name in &cfg.interfaces {
        if !ifaces::exists(name) {
            return Err(crate::exit::usage(format!("unknown interface {name}")));
        }
    }
    Ok(())
}

/// Loads, attaches and starts draining. Must run inside a tokio runtime.
pub fn start(cfg: &Config) -> Result<(CaptureHandle, mpsc::Receiver<SegmentBatch>)> {
    preflight(cfg)?;
    let loaded = loader::load(cfg.snap_len, cfg.ring_bytes)?;
    let stats = CaptureStats::new(loaded.counters);
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();

    let mut port_map = loaded.ports;
    if cfg.ports.is_empty() {
        let exclude = vec![cfg.listen.port()];
        let mut watched = BTreeSet::new();
        sync_ports(
            &mut port_map,
            &mut watched,
            ports::listening_ports(&exclude),
        );
        tasks.push(tokio::spawn(follow_ports(
            port_map,
            watched,
            exclude,
            stop_rx.clone(),
        )));
    } else {
        let mut watched = BTreeSet::new();
        sync_ports(
            &mut port_map,
            &mut watched,
            cfg.ports.iter().copied().collect(),
        );
    }

    let attacher = Arc::new(Mutex::new(Attacher::new(loaded.ebpf, cfg.attach_mode)));
    {
        let mut a = attacher.lock().unwrap_or_else(|p| p.into_inner());
        if cfg.interfaces.is_empty() {
            for name in ifaces::up_interfaces() {
                if let Err(e) = a.attach(&name) {
                    warn!(interface = name.as_str(), "not attached: {e:#}");
                }
            }
            if a.programs() == 0 {
                bail!("no interface could be attached (see the warnings above)");
            }
        } else {
            for name in &cfg.interfaces {
                a.attach(name)?;
            }
        }
        publish(&stats, &a);
    }
    if cfg.interfaces.is_empty() {
        tasks.push(tokio::spawn(follow_interfaces(
            attacher.clone(),
            stats.clone(),
            stop_rx.clone(),
        )));
    }

    let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
    // SAFETY: the ring's fd is owned by the RingBuf moved into the AsyncFd, so it stays open
    // for as long as the registration exists.
    let ring =
        unsafe { AsyncFd::register_with_interest(loaded.ring, tokio::io::Interest::READABLE) }
            .map_err(std::io::Error::from)
            .context("cannot poll the ring buffer")?;
    let reader = reader::Reader {
        ring,
        tx,
        counters: stats.user.clone(),
        wall_offset_ns: clock::wall_offset_ns(),
    };
    tasks.push(tokio::spawn(reader.run(stop_rx)));
    Ok((
        CaptureHandle {
            stats,
            stop,
            tasks,
            attacher,
        },
        rx,
    ))
}

fn publish(stats: &CaptureStats, a: &Attacher) {
    stats
        .user
        .programs_attached
        .store(a.programs() as u64, Relaxed);
    stats
        .user
        .interfaces_attached
        .store(a.interfaces() as u64, Relaxed);
    stats.user.set_attach_mode(a.mode());
    stats
        .user
        .stale_filters_removed
        .store(a.stale_removed(), Relaxed);
    let names = a.interface_names();
    *stats
        .user
        .interface_names
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = names;
}

/// Makes the kernel's PORTS map equal to `want`.
fn sync_ports(map: &mut HashMap<MapData, u16, u8>, have: &mut BTreeSet<u16>, want: BTreeSet<u16>) {
    for p in have.difference(&want) {
        if let Err(e) = map.remove(p) {
            warn!(port = p, "cannot unwatch port: {e}");
        }
    }
    for p in want.difference(have) {
        if let Err(e) = map.insert(p, 1, 0) {
            warn!(port = p, "cannot watch port: {e}");
        }
    }
    if *have != want {
        info!(ports = ?want, "watched ports");
    }
    *have = want;
}

async fn follow_ports(
    mut map: HashMap<MapData, u16, u8>,
    mut have: BTreeSet<u16>,
    exclude: Vec<u16>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(PORT_POLL);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => sync_ports(&mut map, &mut have, ports::listening_ports(&exclude)),
        }
    }
}

async fn follow_interfaces(
    attacher: Arc<Mutex<Attacher>>,
    stats: CaptureStats,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(IFACE_POLL);
    // Interfaces that failed once are not retried until they disappear and come back.
    let mut failed: HashSet<String> = HashSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        let up = ifaces::up_interfaces();
        failed.retain(|n| up.contains(n));
        let mut a = attacher.lock().unwrap_or_else(|p| p.into_inner());
        a.forget_missing();
        for name in up {
            if a.is_attached(&name) || failed.contains(&name) {
                continue;
            }
            if let Err(e) = a.attach(&name) {
                warn!(interface = name.as_str(), "not attached: {e:#}");
                failed.insert(name);
            }
        }
        publish(&stats, &a);
    }
}
