//! Drains the ring buffer into `SegmentBatch`es: woken by the kernel in batches, and on a
//! short timer for the records that did not reach the wakeup threshold.

use aya::maps::{MapData, RingBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, watch};
use tracing::{debug, trace};

use super::batch::SegmentBatch;
use super::stats::UserCounters;

/// Drain at least this often even without a wakeup.
pub const DRAIN_INTERVAL: Duration = Duration::from_millis(20);
/// A batch is sent once it holds this many segments or arena bytes.
const BATCH_SEGMENTS: usize = 4096;
const BATCH_BYTES: usize = 4 << 20;

pub struct Reader {
    pub ring: AsyncFd<RingBuf<MapData>>,
    pub tx: mpsc::Sender<SegmentBatch>,
    pub counters: Arc<UserCounters>,
    pub wall_offset_ns: i64,
}

impl Reader {
    /// Runs until `stop` turns true or the receiver is gone; drains once more before leaving.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(DRAIN_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                _ = tick.tick() => {}
                guard = self.ring.readable_mut() => {
                    match guard {
                        Ok(mut g) => g.clear_ready(),
                        Err(e) => {
                            debug!("ring buffer poll failed: {e}");
                            tokio::time::sleep(DRAIN_INTERVAL).await;
                        }
                    }
                }
            }
            if !self.drain() {
                return;
            }
        }
        self.drain();
    }

    /// Reads every available record; returns false when the receiver has gone away.
    fn drain(&mut self) -> bool {
        let mut batch = SegmentBatch::with_capacity(256, 64 * 1024);
        let ring = self.ring.get_mut();
        while let Some(item) = ring.next() {
            self.counters.events_read.fetch_add(1, Relaxed);
            if let Err(e) = batch.push_record(&item, self.wall_offset_ns) {
                self.counters.decode_errors.fetch_add(1, Relaxed);
                trace!("undecodable record: {e}");
            }
            drop(item);
            if batch.len() >= BATCH_SEGMENTS || batch.arena_bytes() >= BATCH_BYTES {
                let full =
                    std::mem::replace(&mut batch, SegmentBatch::with_capacity(256, 64 * 1024));
                if !send(&self.tx, &self.counters, full) {
                    return false;
                }
            }
        }
        batch.is_empty() || send(&self.tx, &self.counters, batch)
    }
}

/// Never waits on a full channel: drops the batch and counts its segments.
fn send(tx: &mpsc::Sender<SegmentBatch>, counters: &UserCounters, batch: SegmentBatch) -> bool {
    let n = batch.len() as u64;
    match tx.try_send(batch) {
        Ok(()) => {
            counters.batches_sent.fetch_add(1, Relaxed);
            true
        }
        Err(mpsc::error::TrySendError::Full(_)) => {
            counters.events_dropped.fetch_add(n, Relaxed);
            true
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}
