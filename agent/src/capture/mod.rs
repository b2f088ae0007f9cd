//! Live capture: load and attach the kernel programs, follow ports and interfaces, and hand
//! the per-CPU rings to the analysis thread as a [`SegmentSource`] read in place.
//!
//! Interfaces are followed by polling /sys/class/net every second (simple, and enough for
//! containers and hot-plugged NICs); ports follow the servers discovery finds in every network
//! namespace (`crate::discovery`), unless `--port` fixes them.

pub mod attach;
pub mod caps;
mod clock;
pub mod cpu_ring;
pub mod ifaces;
pub mod loader;
mod mapping;
mod merge;
mod netlink;
mod port_map;
mod reader;
pub mod record;
pub mod ring;
pub mod stale;
mod stats;

pub use attach::{AttachMode, AttachPolicy, Attacher};
pub use clock::monotonic_ns;
pub use port_map::{CopyHints, PortMap, needs_full_copy};
pub use reader::{SegmentSource, StopSignal, Wake};
pub use stats::{CaptureStats, StatsSnapshot, UserCounters};

use anyhow::{Context, Result, bail};
use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::Config;

const IFACE_POLL: Duration = Duration::from_secs(1);

/// A running capture. `shutdown` detaches everything; dropping it detaches too.
pub struct CaptureHandle {
    stats: CaptureStats,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    attacher: Arc<Mutex<Attacher>>,
    source_stop: Arc<StopSignal>,
}

impl CaptureHandle {
    pub fn stats(&self) -> CaptureStats {
        self.stats.clone()
    }

    /// Stops the watchers, detaches every filter and deletes the qdiscs we added, then tells
    /// the [`SegmentSource`] to drain what is left and end.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        {
            let mut a = self.attacher.lock().unwrap_or_else(|p| p.into_inner());
            a.detach_all();
        }
        self.stats.user.programs_attached.store(0, Relaxed);
        self.stats.user.interfaces_attached.store(0, Relaxed);
        self.stats
            .user
            .interface_names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.source_stop.stop();
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

/// Loads and attaches; the returned source is drained by the analysis thread. The kernel's
/// port filter follows `ports` (the union of every namespace's server ports) unless
/// `cfg.ports` fixes it. Must run inside a tokio runtime (the port and interface watchers are
/// tasks).
pub fn start(
    cfg: &Config,
    ports: watch::Receiver<BTreeSet<u16>>,
) -> Result<(CaptureHandle, SegmentSource)> {
    preflight(cfg)?;
    let defaults = loader::LoadOptions::with_ring_bytes(cfg.ring_bytes);
    let stack_stamps = cfg.stack_stamps && defaults.stack_stamps;
    let loaded = loader::load(&loader::LoadOptions {
        snap_len: cfg.snap_len,
        stack_stamps,
        ..defaults
    })?;
    info!(
        responses = if stack_stamps {
            "their sender's departure time"
        } else {
            "a clock read"
        },
        "record times"
    );
    let capacity = u64::from(loaded.rings.layout.rings) * u64::from(loaded.rings.layout.ring_bytes);
    info!(
        rings = loaded.rings.layout.rings,
        ring_bytes = loaded.rings.layout.ring_bytes,
        "ring buffers created"
    );
    let stats = CaptureStats::new(loaded.state, capacity, u64::from(loaded.rings.layout.rings));
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();

    let port_map = Arc::new(PortMap::new(loaded.ports, stats.user.clone()));
    if cfg.ports.is_empty() {
        port_map.set_watched(ports.borrow().clone());
        tasks.push(tokio::spawn(follow_ports(
            port_map.clone(),
            ports,
            stop_rx.clone(),
        )));
    } else {
        port_map.set_watched(cfg.ports.iter().copied().collect());
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

    let source = SegmentSource::new(
        loaded.rings,
        Some(CopyHints::new(port_map)),
        stats.user.clone(),
        clock::wall_offset_ns(),
    )
    .context("cannot map the ring buffers")?;
    Ok((
        CaptureHandle {
            stats,
            stop,
            tasks,
            attacher,
            source_stop: source.stop_signal(),
        },
        source,
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

/// Keeps the kernel's watched ports equal to what discovery publishes.
async fn follow_ports(
    map: Arc<PortMap>,
    mut ports: watch::Receiver<BTreeSet<u16>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            changed = ports.changed() => {
                if changed.is_err() {
                    return;
                }
                let want = ports.borrow_and_update().clone();
                map.set_watched(want);
            }
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
