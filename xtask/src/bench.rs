//! `cargo xtask bench`: figures, never assertions. As root first the live measurements (the
//! `bench` binary of the end-to-end crate, against real nginx and wrk on lo in a private
//! namespace): the worst case and a realistic handler, each A/B/A/B without and with apitap
//! (throughput ratio, p99, classifier ns per packet with bpf_stats on, agent CPU per request,
//! events lost, IRQ-work interrupts), ring bytes per request for 200 B and 1 MiB responses,
//! the agent's RSS and PSS with 10,000 open flows, and the classifier timed in isolation;
//! then server discovery's scan cost with 200 pod network namespaces (agent/benches/discovery.rs).
//! Then the criterion benches of agent-core and of the agent's sinks (unless `--live-only`).
//! Run it under `flock /tmp/apitap-root.lock` and record the machine's load with the output.

use anyhow::Result;

use crate::build;
use crate::cmd::{self, step};

/// What `cargo xtask bench` runs.
pub struct Options {
    pub live_only: bool,
    pub rounds: u32,
    pub secs: u32,
    /// Live parts to run (comma-separated); all when `None`.
    pub parts: Option<String>,
}

impl Options {
    /// The parts for the live bench binary, and whether discovery's bench runs.
    fn split_parts(&self) -> (Option<String>, bool) {
        let Some(parts) = &self.parts else {
            return (None, true);
        };
        let live: Vec<&str> = parts.split(',').filter(|p| *p != "discovery").collect();
        let discovery = parts.split(',').any(|p| p == "discovery");
        ((!live.is_empty()).then(|| live.join(",")), discovery)
    }
}

pub fn all(o: &Options) -> Result<()> {
    if cmd::is_root() {
        let bin = build::build(true)?;
        let (live, discovery) = o.split_parts();
        if live.is_some() || o.parts.is_none() {
            step(
                "live cost on lo: A/B/A/B with wrk, ring bytes per request, memory with 10,000 flows",
            );
            let mut bench = cmd::cargo();
            bench
                .env("APITAP_BIN", &bin)
                .args([
                    "run",
                    "--release",
                    "--package",
                    "apitap-e2e",
                    "--bin",
                    "bench",
                    "--",
                ])
                .args([
                    "--rounds",
                    &o.rounds.to_string(),
                    "--secs",
                    &o.secs.to_string(),
                ]);
            if let Some(parts) = &live {
                bench.args(["--parts", parts]);
            }
            cmd::run(&mut bench)?;
        }
        if discovery {
            step("server discovery: scan cost with 200 pod network namespaces");
            cmd::run(cmd::cargo().args([
                "bench",
                "--package",
                "apitap",
                "--bench",
                "discovery",
                "--",
                "200",
            ]))?;
        }
    } else {
        eprintln!("    LIVE MEASUREMENTS NOT RUN: they need root (network namespaces, BPF)");
    }
    if o.live_only {
        return Ok(());
    }
    step("criterion benches (agent-core: engine, replay, aggregate)");
    cmd::run(cmd::cargo().args(["bench", "--package", "agent-core"]))?;
    step("sinks: alert evaluation tick, request log throughput, usage store record and flush");
    cmd::run(cmd::cargo().args(["bench", "--package", "apitap", "--bench", "sinks"]))
}
