//! `apitap run`: live capture wired to the pipeline, the sinks and the HTTP endpoint.
//!
//! ```text
//! capture (per-CPU rings, read in place) ──▶ analyze (own thread: engine ▸ router ▸ aggregator)
//!        ──transactions──▶ usage store (flusher task) · request log (writer thread) · lookup ring
//!        ──snapshot (watch)──▶ HTTP endpoint · /health · alerts (notifier tasks)
//! ```
//! [`App`] owns every component; [`run`] starts it, cancels its token on SIGINT/SIGTERM and
//! shuts it down in the order [`App::shutdown`] documents.

mod analyze;
mod app;
mod self_metrics;

pub use app::App;

use anyhow::{Context, Result};
use std::process::ExitCode;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::Config;

/// `apitap run` with a validated config: a two-worker runtime, then [`run`].
pub fn main(cfg: Config) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("apitap")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(run(cfg))?;
    Ok(ExitCode::SUCCESS)
}

/// Starts the agent and runs it until SIGINT or SIGTERM, then shuts it down cleanly.
pub async fn run(cfg: Config) -> Result<()> {
    let cancel = CancellationToken::new();
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let on_signal = cancel.clone();
    let signals = tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => info!("SIGTERM: detaching"),
            _ = int.recv() => info!("SIGINT: detaching"),
            () = on_signal.cancelled() => return,
        }
        on_signal.cancel();
    });
    let app = match App::start(cfg, cancel.clone()).await {
        Ok(app) => app,
        Err(e) => {
            signals.abort();
            return Err(e);
        }
    };
    cancel.cancelled().await;
    app.shutdown().await;
    info!("apitap stopped");
    Ok(())
}
