//! The capture side of /health and /readyz, filled in by the capture task.

use serde_json::{Value, json};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::Status;

/// Losses within this long make the capture check a warning.
const RECENT_LOSS: Duration = Duration::from_secs(300);

/// Shared with the capture task, which updates it; read by /health and /readyz.
#[derive(Debug, Default)]
pub struct CaptureHealth {
    programs_attached: AtomicU32,
    events_lost: AtomicU64,
    ready: AtomicBool,
    /// The loss total last seen by a check and when it last grew.
    last_loss: Mutex<Option<(u64, Instant)>>,
}

impl CaptureHealth {
    pub fn new() -> Self {
        Self::default()
    }

    /// TC programs currently attached.
    pub fn set_programs_attached(&self, n: u32) {
        self.programs_attached.store(n, Ordering::Relaxed);
    }

    /// Events lost in the ring buffer since start (a running total).
    pub fn set_events_lost(&self, total: u64) {
        self.events_lost.store(total, Ordering::Relaxed);
    }

    /// Capture is running (programs loaded, reader started).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    pub fn programs_attached(&self) -> u32 {
        self.programs_attached.load(Ordering::Relaxed)
    }

    pub fn events_lost(&self) -> u64 {
        self.events_lost.load(Ordering::Relaxed)
    }

    /// GET /readyz: ready and at least one program attached.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed) && self.programs_attached() > 0
    }

    /// True when the loss total grew within [`RECENT_LOSS`] (as observed by checks).
    fn lost_recently(&self, now: Instant) -> bool {
        let total = self.events_lost();
        let mut last = self.last_loss.lock().unwrap_or_else(|p| p.into_inner());
        match *last {
            Some((seen, _)) if total > seen => *last = Some((total, now)),
            None if total > 0 => *last = Some((total, now)),
            _ => {}
        }
        last.is_some_and(|(_, at)| now.duration_since(at) < RECENT_LOSS)
    }
}

pub fn check(c: &CaptureHealth) -> (Status, Value) {
    let status = if !c.is_ready() {
        Status::Unhealthy
    } else if c.lost_recently(Instant::now()) {
        Status::Warning
    } else {
        Status::Healthy
    };
    super::check(
        status,
        json!({
            "ready": c.ready.load(Ordering::Relaxed),
            "programs_attached": c.programs_attached(),
            "events_lost": c.events_lost(),
        }),
    )
}
