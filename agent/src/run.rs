//! `apitap run`: live capture wired to the pipeline and the HTTP endpoint.

use anyhow::Result;
use std::process::ExitCode;

use crate::cli::RunArgs;
use crate::config::Config;

pub fn main(args: RunArgs) -> Result<ExitCode> {
    let _cfg = Config::from_run_args(&args)?;
    anyhow::bail!("live capture is not wired yet")
}
