//! The writer thread: drains the bounded queue, serializes each transaction as one JSON line,
//! and flushes at least every `flush_interval`. Blocking file I/O lives on its own OS thread so
//! neither the pipeline nor the tokio runtime ever waits on a disk.

use std::io::{self, BufWriter, Stdout, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use agent_core::Transaction;

use super::rotate::RotatingFile;
use super::stats::LogStats;

/// Where the lines go.
pub enum Sink {
    Stdout(BufWriter<Stdout>),
    File(RotatingFile),
}

impl Sink {
    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        match self {
            Sink::Stdout(out) => out.write_all(line),
            Sink::File(f) => f.write_line(line),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Stdout(out) => out.flush(),
            Sink::File(f) => f.flush(),
        }
    }

    fn rotations(&self) -> u64 {
        match self {
            Sink::Stdout(_) => 0,
            Sink::File(f) => f.rotations(),
        }
    }
}

/// Runs until every sender is gone, then flushes what is left.
pub fn run(mut sink: Sink, rx: Receiver<Transaction>, stats: Arc<LogStats>, flush_every: Duration) {
    let mut line = Vec::with_capacity(1024);
    let mut dirty = false;
    let mut last_flush = Instant::now();
    loop {
        let wait = flush_every.saturating_sub(last_flush.elapsed());
        match rx.recv_timeout(wait) {
            Ok(t) => {
                write_one(&mut sink, &t, &mut line, &stats);
                dirty = true;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if last_flush.elapsed() >= flush_every {
            if dirty {
                flush(&mut sink, &stats);
                dirty = false;
            }
            last_flush = Instant::now();
        }
    }
    flush(&mut sink, &stats);
    tracing::debug!("request log writer stopped");
}

fn write_one(sink: &mut Sink, t: &Transaction, line: &mut Vec<u8>, stats: &LogStats) {
    line.clear();
    if let Err(e) = serde_json::to_writer(&mut *line, t) {
        // Unreachable with the Transaction serializer (no maps with non-string keys), but a
        // record that cannot be written is still a counted loss, not a panic.
        stats.write_errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(error = %e, "request log: cannot serialize a transaction");
        return;
    }
    line.push(b'\n');
    let before = sink.rotations();
    match sink.write_line(line) {
        Ok(()) => {
            stats.written.fetch_add(1, Ordering::Relaxed);
            stats.bytes.fetch_add(line.len() as u64, Ordering::Relaxed);
        }
        Err(e) => {
            let n = stats.write_errors.fetch_add(1, Ordering::Relaxed);
            if n.is_power_of_two() {
                tracing::warn!(error = %e, errors = n + 1, "request log: write failed, record lost");
            }
        }
    }
    stats
        .rotations
        .fetch_add(sink.rotations() - before, Ordering::Relaxed);
}

fn flush(sink: &mut Sink, stats: &LogStats) {
    if let Err(e) = sink.flush() {
        let n = stats.write_errors.fetch_add(1, Ordering::Relaxed);
        if n.is_power_of_two() {
            tracing::warn!(error = %e, "request log: flush failed");
        }
    }
}
