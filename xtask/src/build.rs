//! `cargo xtask` — module build (placeholder, to be written).

use anyhow::Result;

/// Arguments (placeholder).
#[derive(clap::Args)]
pub struct BuildArgs {}

/// Placeholder.
pub fn run(_args: BuildArgs) -> Result<()> {
    anyhow::bail!("not implemented yet")
}
