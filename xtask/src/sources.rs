//! `cargo xtask` — module sources (placeholder, to be written).

use anyhow::Result;

/// Arguments (placeholder).
#[derive(clap::Args)]
pub struct FetchArgs {}

/// Placeholder.
pub fn fetch(_args: FetchArgs) -> Result<()> {
    anyhow::bail!("not implemented yet")
}

/// Arguments (placeholder).
#[derive(clap::Args)]
pub struct VerifyArgs {}

/// Placeholder.
pub fn verify(_args: VerifyArgs) -> Result<()> {
    anyhow::bail!("not implemented yet")
}
