//! `apitap run` (temporary wiring until the HTTP engine lands): live capture, per-flow payload
//! byte accounting with sequence-number dedup, and GET /metrics on `--listen`.

use agent_core::segment::{Direction, Segment};
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use tracing::{debug, info};

use crate::capture::{self, CaptureStats};
use crate::cli::RunArgs;
use crate::config::Config;

/// Flows idle this long are forgotten.
const FLOW_IDLE: Duration = Duration::from_secs(120);
/// Most flows remembered; past it the oldest-idle sweep runs early.
const MAX_FLOWS: usize = 1 << 20;

pub fn main(args: RunArgs) -> Result<ExitCode> {
    let cfg = Config::from_run_args(&args)?;
    init_tracing(&cfg.log_format);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(run(cfg))?;
    Ok(ExitCode::SUCCESS)
}

fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

async fn run(cfg: Config) -> Result<()> {
    let listener = TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let (handle, mut rx) = capture::start(&cfg)?;
    info!(listen = %cfg.listen, "capturing; GET /metrics");
    let totals = Arc::new(FlowTotals::default());
    let server = tokio::spawn(serve(listener, handle.stats(), totals.clone()));
    let consumer = tokio::spawn(async move {
        let mut flows = FlowBytes::default();
        while let Some(batch) = rx.recv().await {
            for seg in batch.iter() {
                flows.add(&seg, Instant::now(), &totals);
            }
            flows.sweep(Instant::now());
        }
    });
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: detaching"),
        _ = int.recv() => info!("SIGINT: detaching"),
    }
    server.abort();
    handle.shutdown().await;
    let _ = consumer.await;
    Ok(())
}

/// Deduplicated payload bytes per direction, summed over flows.
#[derive(Debug, Default)]
pub struct FlowTotals {
    to_server: AtomicU64,
    to_client: AtomicU64,
}

#[derive(Debug, Clone, Copy)]
struct FlowState {
    /// Sequence number just past the highest payload byte counted.
    next: u32,
    last_seen: Instant,
}

/// Per (client, server, direction) the highest sequence counted, so a segment seen twice
/// (retransmitted, or captured on two hooks) counts once.
#[derive(Debug, Default)]
struct FlowBytes {
    flows: HashMap<(SocketAddr, SocketAddr, Direction), FlowState>,
    last_sweep: Option<Instant>,
}

impl FlowBytes {
    /// Returns the payload bytes of `seg` not counted before, and adds them to `totals`.
    fn add(&mut self, seg: &Segment<'_>, now: Instant, totals: &FlowTotals) -> u64 {
        if seg.payload_len == 0 {
            return 0;
        }
        let start = seg.seq.wrapping_add(u32::from(seg.flags.syn()));
        let end = start.wrapping_add(seg.payload_len);
        let key = (seg.client, seg.server, seg.direction);
        let new = match self.flows.get_mut(&key) {
            None => {
                self.flows.insert(
                    key,
                    FlowState {
                        next: end,
                        last_seen: now,
                    },
                );
                seg.payload_len
            }
            Some(st) => {
                st.last_seen = now;
                let ahead = end.wrapping_sub(st.next) as i32;
                if ahead <= 0 {
                    0
                } else {
                    st.next = end;
                    (ahead as u32).min(seg.payload_len)
                }
            }
        };
        let counter = match seg.direction {
            Direction::ToServer => &totals.to_server,
            Direction::ToClient => &totals.to_client,
        };
        counter.fetch_add(u64::from(new), Relaxed);
        u64::from(new)
    }

    fn sweep(&mut self, now: Instant) {
        let due = self
            .last_sweep
            .is_none_or(|t| now.duration_since(t) > Duration::from_secs(10));
        if due || self.flows.len() > MAX_FLOWS {
            self.flows
                .retain(|_, st| now.duration_since(st.last_seen) < FLOW_IDLE);
            self.last_sweep = Some(now);
        }
    }
}

async fn serve(listener: TcpListener, stats: CaptureStats, totals: Arc<FlowTotals>) {
    loop {
        let Ok((conn, peer)) = listener.accept().await else {
            continue;
        };
        let stats = stats.clone();
        let totals = totals.clone();
        tokio::spawn(async move {
            if let Err(e) = respond(conn, &stats, &totals).await {
                debug!(%peer, "metrics connection: {e}");
            }
        });
    }
}

/// A minimal HTTP/1.1 responder: GET /metrics, 404 otherwise, one request per connection.
async fn respond(
    mut conn: TcpStream,
    stats: &CaptureStats,
    totals: &FlowTotals,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 8192];
    let mut n = 0;
    while n < buf.len() && !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
        let r = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf[n..]))
            .await
            .map_err(|_| std::io::ErrorKind::TimedOut)??;
        if r == 0 {
            break;
        }
        n += r;
    }
    let head = String::from_utf8_lossy(&buf[..n]);
    let mut parts = head.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, body) = if method == "GET" && (path == "/metrics" || path.starts_with("/metrics?"))
    {
        ("200 OK", metrics_text(stats, totals))
    } else {
        ("404 Not Found", "not found\n".to_string())
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(resp.as_bytes()).await?;
    conn.shutdown().await
}

fn metrics_text(stats: &CaptureStats, totals: &FlowTotals) -> String {
    let mut out = stats.exposition();
    out.push_str("# HELP apitap_flow_payload_bytes_total TCP payload bytes of watched flows, each sequence range counted once.\n");
    out.push_str("# TYPE apitap_flow_payload_bytes_total counter\n");
    out.push_str(&format!(
        "apitap_flow_payload_bytes_total{{direction=\"request\"}} {}\n",
        totals.to_server.load(Relaxed)
    ));
    out.push_str(&format!(
        "apitap_flow_payload_bytes_total{{direction=\"response\"}} {}\n",
        totals.to_client.load(Relaxed)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_core::segment::TcpFlags;
    use rstest::rstest;

    fn seg(dir: Direction, seq: u32, len: u32, flags: u8) -> Segment<'static> {
        Segment {
            ts_ns: 0,
            client: "192.0.2.2:40000".parse().expect("literal"),
            server: "192.0.2.1:80".parse().expect("literal"),
            direction: dir,
            seq,
            ack: 0,
            flags: TcpFlags(flags),
            payload_len: len,
            payload: b"",
        }
    }

    #[rstest]
    #[case::in_order(&[(100, 10), (110, 5)], 15)]
    #[case::exact_duplicate_counts_once(&[(100, 10), (100, 10)], 10)]
    #[case::overlapping_retransmit_counts_new_part(&[(100, 10), (105, 10)], 15)]
    #[case::old_segment_after_newer(&[(100, 10), (110, 10), (100, 10)], 20)]
    #[case::wraps_around_sequence_space(&[(u32::MAX - 4, 10), (5, 10)], 20)]
    fn counts_each_sequence_range_once(#[case] segs: &[(u32, u32)], #[case] want: u64) {
        let mut f = FlowBytes::default();
        let totals = FlowTotals::default();
        let now = Instant::now();
        for (seq, len) in segs {
            f.add(
                &seg(Direction::ToServer, *seq, *len, TcpFlags::ACK),
                now,
                &totals,
            );
        }
        assert_eq!(totals.to_server.load(Relaxed), want);
        assert_eq!(totals.to_client.load(Relaxed), 0);
    }

    #[test]
    fn directions_are_separate_flows() {
        let mut f = FlowBytes::default();
        let totals = FlowTotals::default();
        let now = Instant::now();
        f.add(
            &seg(Direction::ToServer, 100, 10, TcpFlags::ACK),
            now,
            &totals,
        );
        f.add(
            &seg(Direction::ToClient, 100, 7, TcpFlags::ACK),
            now,
            &totals,
        );
        assert_eq!(totals.to_server.load(Relaxed), 10);
        assert_eq!(totals.to_client.load(Relaxed), 7);
    }

    #[test]
    fn idle_flows_are_forgotten() {
        let mut f = FlowBytes::default();
        let totals = FlowTotals::default();
        let t0 = Instant::now();
        f.add(&seg(Direction::ToServer, 1, 1, TcpFlags::ACK), t0, &totals);
        f.sweep(t0 + FLOW_IDLE + Duration::from_secs(1));
        assert!(f.flows.is_empty());
    }
}
