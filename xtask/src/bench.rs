//! `cargo xtask bench`: figures, never assertions. Criterion benches of agent-core (engine,
//! replay, aggregation), the agent's sinks (alerts, request log, usage store), then, as root,
//! the live measurements against a real nginx on lo in a private namespace: nginx's throughput without, with and again without apitap, the
//! classifier's kernel cost per packet, events lost under `ab -n 20000 -c 8 -k`, and the
//! agent's memory with 10,000 open flows. Record the output with the machine and its load.

use anyhow::Result;
use std::process::Command;

use crate::build;
use crate::cmd::{self, step};

pub fn all() -> Result<()> {
    step("criterion benches (agent-core: engine, replay, aggregate)");
    cmd::run(cmd::cargo().args(["bench", "--package", "agent-core"]))?;
    step("sinks: alert evaluation tick, request log throughput, usage store record and flush");
    cmd::run(cmd::cargo().args(["bench", "--package", "apitap", "--bench", "sinks"]))?;
    if !cmd::is_root() {
        eprintln!("    LIVE MEASUREMENTS NOT RUN: they need root (network namespaces, BPF)");
        return Ok(());
    }
    let bin = build::build(true)?;
    step("live overhead on lo: nginx with and without apitap, BPF cost per packet, losses");
    cmd::run(
        cmd::cargo()
            .env("APITAP_BIN", &bin)
            .args([
                "test",
                "--release",
                "--package",
                "apitap-e2e",
                "--test",
                "capture",
            ])
            .args(["--", "--ignored", "--nocapture", "measure"]),
    )?;
    step("agent memory with 10,000 open flows");
    cmd::run(
        Command::new("bash")
            .arg("bench/flows.sh")
            .arg(&bin)
            .arg("10000"),
    )
}
