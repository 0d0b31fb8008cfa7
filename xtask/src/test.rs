//! `cargo xtask` — module test (placeholder, to be written).

use anyhow::Result;

/// Arguments (placeholder).
#[derive(clap::Args)]
pub struct TestArgs {}

/// Placeholder.
pub fn run(_args: TestArgs) -> Result<()> {
    anyhow::bail!("not implemented yet")
}
