//! `apitap`: parse, init tracing, run.

mod alert;
mod api;
mod capture;
mod check;
mod cli;
mod config;
mod health;
mod live;
mod replay;
mod reqlog;
mod store;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Run(args) => live::main(args),
        cli::Command::Replay(args) => replay::main(args),
        cli::Command::Check(args) => check::main(args),
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
