//! `cargo xtask` — module bench (placeholder, to be written).

use anyhow::Result;

/// Arguments (placeholder).
#[derive(clap::Args)]
pub struct BenchArgs {}

/// Placeholder.
pub fn run(_args: BenchArgs) -> Result<()> {
    anyhow::bail!("not implemented yet")
}
