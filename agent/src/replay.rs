//! `apitap replay FILE`: the pipeline over a capture file.

use anyhow::Result;
use std::process::ExitCode;

use crate::cli::ReplayArgs;

pub fn main(_args: ReplayArgs) -> Result<ExitCode> {
    anyhow::bail!("replay is not written yet")
}
