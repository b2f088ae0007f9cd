//! `cargo xtask bench`: criterion benches of agent-core. Figures are recorded, never asserted.

use anyhow::Result;

use crate::cmd::{self, step};

pub fn all() -> Result<()> {
    step("criterion benches (agent-core)");
    cmd::run(cmd::cargo().args(["bench", "--package", "agent-core"]))
}
