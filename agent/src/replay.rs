//! `apitap replay FILE`: the pipeline over a capture file, with no root.
//!
//! Packets are read as a stream, decoded to segments, run through the engine with packet time,
//! and every transaction is written as one JSON line (stdout or `--log`). A summary goes to
//! stderr; `--metrics-out` gets the final Prometheus exposition (the same [`Pipeline`] as live
//! capture: engine, routes, aggregation) plus the replay's own counters. A truncated or corrupt
//! capture still yields everything before the damage, then one error line and a non-zero exit.

use anyhow::{Context, Result, bail};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use agent_core::engine::{EngineStats, HttpStats};
use agent_core::export::{Format, MetricKind, SelfMetric, prometheus};
use agent_core::pcap::tunnel::Tunnel;
use agent_core::pcap::{self, CaptureReader, DecodeStats, Decoder, PcapError};
use agent_core::pipeline::Pipeline;
use agent_core::{ErrorType, Transaction};

use crate::cli::ReplayArgs;
use crate::config::Config;

const OUTPUT_BUFFER: usize = 256 * 1024;

pub fn main(args: ReplayArgs) -> Result<ExitCode> {
    let cfg = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if args.ports.contains(&0) {
        return Err(crate::exit::usage("--port 0 is not a valid server port"));
    }
    let file = File::open(&args.file)
        .map_err(|e| crate::exit::usage(format!("cannot open {}: {e}", args.file.display())))?;
    let mut reader =
        CaptureReader::new(file).with_context(|| format!("{}", args.file.display()))?;
    let mut decoder = Decoder::new(&args.ports);
    let mut pipeline = Pipeline::new(cfg.pipeline_config()?).context("routes")?;
    let mut sink = open_log(args.log.as_deref())?;
    let mut tally = Tally::default();
    let started = Instant::now();

    let mut line = Vec::with_capacity(1024);
    let stopped = pcap::replay(&mut reader, &mut decoder, &mut pipeline, |t| {
        tally.count(t);
        // One reused line buffer and one write per transaction.
        line.clear();
        serde_json::to_writer(&mut line, t)?;
        line.push(b'\n');
        sink.write_all(&line)
    })
    .context("writing transactions")?;
    sink.flush().context("writing transactions")?;
    drop(sink);

    let elapsed = started.elapsed().as_secs_f64();
    eprint!(
        "{}",
        summary(
            &args.file,
            decoder.stats(),
            pipeline.engine().stats(),
            &tally,
            elapsed,
            stopped.as_ref(),
        )
    );
    if let Some(path) = &args.metrics_out {
        let snapshot = pipeline.snapshot(pipeline.aggregator().latest_ns());
        let mut own = pipeline.self_metrics();
        own.extend(replay_metrics(decoder.stats()));
        std::fs::write(
            path,
            prometheus::render(&snapshot, &own, Format::Prometheus),
        )
        .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(err) = stopped {
        bail!(
            "{}: {err} (after {} packets; the transactions before it were written)",
            args.file.display(),
            decoder.stats().packets
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn open_log(log: Option<&str>) -> Result<Box<dyn Write>> {
    Ok(match log {
        None | Some("-") => Box::new(BufWriter::with_capacity(OUTPUT_BUFFER, io::stdout().lock())),
        Some(path) => {
            let file =
                File::create(path).with_context(|| format!("cannot create log file {path}"))?;
            Box::new(BufWriter::with_capacity(OUTPUT_BUFFER, file))
        }
    })
}

/// Transactions written, by outcome.
#[derive(Debug, Default)]
struct Tally {
    transactions: u64,
    errors: [u64; ErrorType::ALL.len()],
}

impl Tally {
    fn count(&mut self, t: &Transaction) {
        self.transactions += 1;
        if let Some(e) = t.error {
            self.errors[e as usize] += 1;
        }
    }
}

fn summary(
    file: &Path,
    d: &DecodeStats,
    e: &EngineStats,
    tally: &Tally,
    elapsed_s: f64,
    stopped: Option<&PcapError>,
) -> String {
    let mut s = String::new();
    let rate = if elapsed_s > 0.0 {
        d.packets as f64 / elapsed_s
    } else {
        0.0
    };
    let _ = writeln!(
        s,
        "apitap replay {}: {:.3} s, {rate:.0} packets/s",
        file.display(),
        elapsed_s
    );
    let _ = writeln!(
        s,
        "  packets {} (segments {}, pure acks {}, non-ip {}, non-tcp {}, fragments held {}, malformed {}, \
         too deep {}, other ports {}, unsupported link {})",
        d.packets,
        d.segments,
        d.pure_acks,
        d.non_ip,
        d.non_tcp,
        d.fragments_held,
        d.malformed,
        d.too_deep,
        d.other_ports,
        d.unsupported_link
    );
    let tunnels: Vec<String> = Tunnel::ALL
        .iter()
        .filter(|t| d.decapsulated(**t) > 0)
        .map(|t| format!("{} {}", t.as_str(), d.decapsulated(*t)))
        .collect();
    if !tunnels.is_empty() {
        let _ = writeln!(s, "  tunnel layers opened: {}", tunnels.join(", "));
    }
    let f = &d.fragment_table;
    if f.fragments > 0 {
        let _ = writeln!(
            s,
            "  ip fragments {} (datagrams reassembled {}, dropped: timeout {}, table full {}, invalid {}; \
             still incomplete {}, differing overlap bytes {})",
            f.fragments, f.reassembled, f.timed_out, f.overflow, f.invalid, f.pending, f.conflicts
        );
    }
    match stopped {
        None => s.push_str("  capture: read to the end, no decode errors\n"),
        Some(err) => {
            let _ = writeln!(s, "  capture: decode error, stopped early: {err}");
        }
    }
    let errors: Vec<String> = ErrorType::ALL
        .iter()
        .zip(tally.errors)
        .filter(|(_, n)| *n > 0)
        .map(|(t, n)| format!("{} {n}", t.as_str()))
        .collect();
    let _ = writeln!(
        s,
        "  transactions {} (errors: {}), flows {}, non-http flows {}, gaps {} ({} bytes)",
        tally.transactions,
        if errors.is_empty() {
            "none".into()
        } else {
            errors.join(", ")
        },
        e.flows.opened,
        e.http.non_http_flows,
        e.gaps(),
        e.reassembly.gap_bytes
    );
    let parse: Vec<String> = HttpStats::reasons()
        .iter()
        .zip(e.http.parse_errors)
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| format!("{r} {n}"))
        .collect();
    let _ = writeln!(
        s,
        "  parse errors: {}",
        if parse.is_empty() {
            "none".into()
        } else {
            parse.join(", ")
        }
    );
    s
}

/// The decoder's counters as `apitap_*` self-metrics (the engine's come from the pipeline).
fn replay_metrics(d: &DecodeStats) -> Vec<SelfMetric> {
    let counter = |name: &str, help: &str, label: Option<(&str, &str)>, v: u64| SelfMetric {
        name: name.to_string(),
        help: help.to_string(),
        kind: MetricKind::Counter,
        labels: label
            .map(|(k, v)| vec![(k.to_string(), v.to_string())])
            .unwrap_or_default(),
        value: v as f64,
    };
    let skipped = "Packets of the capture file that carried nothing for the engine, by reason \
                   (fragment: held for reassembly).";
    let mut m = vec![counter(
        "apitap_replay_packets_total",
        "Packets read from the capture file.",
        None,
        d.packets,
    )];
    for (reason, v) in [
        ("pure_ack", d.pure_acks),
        ("non_ip", d.non_ip),
        ("non_tcp", d.non_tcp),
        ("fragment", d.fragments_held),
        ("malformed", d.malformed),
        ("too_deep", d.too_deep),
        ("other_port", d.other_ports),
        ("unsupported_link", d.unsupported_link),
    ] {
        m.push(counter(
            "apitap_replay_packets_skipped_total",
            skipped,
            Some(("reason", reason)),
            v,
        ));
    }
    for t in Tunnel::ALL {
        m.push(counter(
            "apitap_replay_decapsulated_total",
            "Tunnel layers opened (the inner packet is analysed), by tunnel.",
            Some(("tunnel", t.as_str())),
            d.decapsulated(t),
        ));
    }
    let f = &d.fragment_table;
    m.push(counter(
        "apitap_replay_ip_fragments_total",
        "IP fragments read (IPv4 and IPv6).",
        None,
        f.fragments,
    ));
    m.push(counter(
        "apitap_replay_ip_datagrams_reassembled_total",
        "IP datagrams rebuilt from their fragments and decoded.",
        None,
        f.reassembled,
    ));
    for (reason, v) in [
        ("timeout", f.timed_out),
        ("table_full", f.overflow),
        ("invalid", f.invalid),
    ] {
        m.push(counter(
            "apitap_replay_ip_fragments_dropped_total",
            "IP fragments given up on, by reason; fragments still incomplete at the end are \
             apitap_replay_ip_fragments_pending.",
            Some(("reason", reason)),
            v,
        ));
    }
    m.push(SelfMetric {
        kind: MetricKind::Gauge,
        ..counter(
            "apitap_replay_ip_fragments_pending",
            "IP fragments held at the end, their datagram incomplete.",
            None,
            f.pending,
        )
    });
    m.push(counter(
        "apitap_replay_orientation_resets_total",
        "Times the table of inferred server sides was full and cleared.",
        None,
        d.orientation_resets,
    ));
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures")
            .join(name)
    }

    #[test]
    fn replay_writes_one_line_per_transaction_and_the_exposition() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (log, prom) = (dir.path().join("tx.jsonl"), dir.path().join("metrics.prom"));
        let args = ReplayArgs {
            file: fixture("ab-k.pcap"),
            config: None,
            ports: Vec::new(),
            log: Some(log.display().to_string()),
            metrics_out: Some(prom.clone()),
        };
        assert_eq!(main(args).expect("clean replay"), ExitCode::SUCCESS);
        let lines = std::fs::read_to_string(&log).expect("log written");
        assert_eq!(lines.lines().count(), 20);
        for line in lines.lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("one JSON object a line");
            assert_eq!(v["http.route"], "/api/users");
        }
        let text = std::fs::read_to_string(&prom).expect("exposition written");
        assert!(text.contains(r#"api_requests_total{namespace="",service="port-18931",method="GET",endpoint="/api/users",status="200"} 20"#));
        assert!(text.contains("apitap_replay_packets_total "));
    }

    #[test]
    fn a_truncated_capture_writes_what_it_could_then_fails() {
        let dir = tempfile::tempdir().expect("temp dir");
        let bytes = std::fs::read(fixture("ab.pcap")).expect("fixture");
        let cut = dir.path().join("cut.pcap");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write cut capture");
        let log = dir.path().join("tx.jsonl");
        let args = ReplayArgs {
            file: cut,
            config: None,
            ports: Vec::new(),
            log: Some(log.display().to_string()),
            metrics_out: None,
        };
        let err = main(args).expect_err("truncated capture fails");
        assert!(err.to_string().contains("truncated capture"), "{err}");
        let written = std::fs::read_to_string(&log)
            .expect("log written")
            .lines()
            .count();
        assert!(written >= 5, "{written} transactions before the cut");
    }

    #[rstest::rstest]
    #[case::port_zero(vec![0], "--port 0")]
    fn bad_arguments_are_one_clear_error(#[case] ports: Vec<u16>, #[case] want: &str) {
        let args = ReplayArgs {
            file: fixture("ab.pcap"),
            config: None,
            ports,
            log: None,
            metrics_out: None,
        };
        let err = main(args).expect_err("refused");
        assert!(err.to_string().contains(want), "{err}");
    }

    #[test]
    fn every_skipped_packet_reason_is_a_self_metric() {
        let m = replay_metrics(&DecodeStats {
            packets: 3,
            pure_acks: 2,
            ..DecodeStats::default()
        });
        assert_eq!(m.len(), 10 + Tunnel::ALL.len() + 6);
        assert!(m.iter().all(|s| s.name.starts_with("apitap_replay_")));
        assert_eq!(
            m[1].labels,
            vec![("reason".to_string(), "pure_ack".to_string())]
        );
        assert_eq!(m[1].value, 2.0);
    }

    #[test]
    fn the_config_file_reaches_the_pipeline() {
        let mut cfg = Config::default();
        cfg.engine.request_timeout_ms = 1500;
        cfg.redact.query_keys = vec!["sig".into()];
        let p = cfg.pipeline_config().expect("no OpenAPI file to read");
        assert_eq!(p.engine.request_timeout_ns, 1_500_000_000);
        assert_eq!(p.engine.identity.redact_keys, vec!["sig".to_string()]);
    }
}
