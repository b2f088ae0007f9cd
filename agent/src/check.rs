//! `apitap check`: what this kernel supports and what would attach.

use anyhow::Result;
use std::process::ExitCode;

use crate::cli::CheckArgs;

pub fn main(_args: CheckArgs) -> Result<ExitCode> {
    anyhow::bail!("check is not written yet")
}
