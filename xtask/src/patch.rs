//! `cargo xtask` — module patch (placeholder, to be written).

use anyhow::Result;

/// Arguments (placeholder).
#[derive(clap::Args)]
pub struct PatchArgs {}

/// Placeholder.
pub fn run(_args: PatchArgs) -> Result<()> {
    anyhow::bail!("not implemented yet")
}
