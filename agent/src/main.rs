//! `apitap`: parse, init tracing, run.

use apitap::cli::{Cli, Command};
use apitap::config::Config;
use apitap::{check, live, replay};
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => Config::from_run_args(&args)
            .map_err(anyhow::Error::from)
            .and_then(|cfg| {
                apitap::init_tracing(&cfg.log_format);
                live::main(cfg)
            }),
        Command::Replay(args) => replay::main(args),
        Command::Check(args) => check::main(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            // One clear line, never a panic or a backtrace.
            eprintln!("apitap: {err:#}");
            ExitCode::from(2)
        }
    }
}
