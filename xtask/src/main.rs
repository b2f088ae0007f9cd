//! Orchestration only: install the eBPF toolchain pieces, build, run, test.
//!
//! `cargo xtask run` and `cargo xtask test` are the README's two commands.

mod bench;
mod build;
mod cmd;
mod prereqs;
mod test;
mod toolchain;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "xtask", about = "apitap build, run and test orchestration")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install rust-src and bpf-linker if missing, then build the eBPF object and the agent.
    Build {
        /// Debug build instead of release.
        #[arg(long)]
        debug: bool,
    },
    /// Build, then start `apitap run` with its defaults (extra args are passed through).
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Everything CI checks: installs the test prerequisites (xtask/src/prereqs.rs) if
    /// missing, then fmt, clippy -D warnings, unit and golden tests, deploy checks, fuzz smoke
    /// runs and the root end-to-end tests.
    Test {
        /// Seconds each fuzz target runs (0 skips the fuzz smoke run, and says so).
        #[arg(long, default_value_t = 20)]
        fuzz_seconds: u64,
    },
    /// The root end-to-end tests only (network namespaces, real nginx/redis/curl/ab).
    IntegrationTest {
        /// Only tests whose name contains this.
        filter: Option<String>,
    },
    /// Run every fuzz target for a bounded time.
    Fuzz {
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// The live cost table (root) and the criterion benches (figures, never assertions).
    Bench {
        /// Only the live measurements, no criterion benches.
        #[arg(long)]
        live_only: bool,
        /// A/B pairs per live scenario.
        #[arg(long, default_value_t = 2)]
        rounds: u32,
        /// Seconds of each wrk run.
        #[arg(long, default_value_t = 5)]
        secs: u32,
        /// Only these live parts, comma-separated: worst, realistic, floor, ring, memory,
        /// isolated, discovery (all by default).
        #[arg(long)]
        parts: Option<String>,
    },
    /// Install the test prerequisites only (what `test` does first).
    Prereqs,
    /// Show what the build and the tests need and what is present.
    Doctor,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: Result<()> = match cli.command {
        Command::Build { debug } => build::build(!debug).map(|_| ()),
        Command::Run { args } => build::run(&args),
        Command::Test { fuzz_seconds } => test::all(fuzz_seconds),
        Command::IntegrationTest { filter } => test::integration(filter.as_deref()),
        Command::Fuzz { seconds } => test::fuzz(seconds),
        Command::Bench {
            live_only,
            rounds,
            secs,
            parts,
        } => bench::all(&bench::Options {
            live_only,
            rounds,
            secs,
            parts,
        }),
        Command::Prereqs => prereqs::ensure(),
        Command::Doctor => {
            prereqs::doctor();
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: {err:#}");
            ExitCode::FAILURE
        }
    }
}
