//! `apitap`: parse, init tracing, run. Exit codes: see [`apitap::exit`].

use apitap::cli::{Cli, Command};
use apitap::config::Config;
use apitap::exit;
use apitap::{check, live, replay, top};
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = exit::code_of_clap(&e);
            if code == exit::OK {
                // --help, --version: as clap prints them.
                let _ = e.print();
            } else {
                eprintln!("apitap: {}", exit::clap_line(&e));
            }
            return exit::exit_code(code);
        }
    };
    let result = match cli.command {
        Command::Run(args) => Config::from_run_args(&args)
            .map_err(anyhow::Error::from)
            .and_then(|cfg| {
                apitap::init_tracing(&cfg.log_format, cfg.log_level.as_deref());
                live::main(cfg)
            }),
        Command::Replay(args) => replay::main(args),
        Command::Check(args) => check::main(args),
        Command::Top(args) => top::main(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            // One clear line, never a panic or a backtrace.
            eprintln!("apitap: {err:#}");
            exit::exit_code(exit::code_of(&err))
        }
    }
}
