//! Running a binary of the differential test crate (`qmail-difftest`)
//! with `cargo run`, so that the xtask does not link the test harness:
//! `bench rcpt` runs `bench-rcpt`, `fuzz` runs `difftest corpus`.

use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::sources::workspace_root;

/// `cargo run --quiet -p qmail-difftest --bin BIN --` (in the dev profile,
/// from the current directory, so relative paths in the arguments keep
/// their meaning); append the binary's arguments.
pub fn command(bin: &str) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut c = Command::new(cargo);
    c.arg("run")
        .arg("--quiet")
        .arg("--manifest-path")
        .arg(workspace_root().join("Cargo.toml"))
        .args(["-p", "qmail-difftest", "--bin", bin, "--"]);
    c
}

/// Runs `c` (made by [`command`] for `bin`) with the terminal's stdout
/// and stderr; fails when it does not exit 0.
pub fn run(c: &mut Command, bin: &str) -> Result<()> {
    let status = c
        .status()
        .with_context(|| format!("cannot run cargo for the {bin} binary"))?;
    if !status.success() {
        bail!("{bin} failed ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The xtask runs the difftest binaries instead of linking the crate:
    /// no dependency on it, and the binaries it names exist.
    #[test]
    fn runs_difftest_binaries_without_linking_the_crate() {
        let root = workspace_root();
        let manifest = std::fs::read_to_string(root.join("xtask/Cargo.toml")).unwrap();
        assert!(
            !manifest.contains("qmail-difftest"),
            "xtask/Cargo.toml depends on qmail-difftest again"
        );
        for bin in ["bench-rcpt", "difftest"] {
            let src = root.join("tests/src/bin").join(format!("{bin}.rs"));
            assert!(src.is_file(), "{} is missing", src.display());
            let c = command(bin);
            let args: Vec<_> = c.get_args().map(|a| a.to_string_lossy()).collect();
            let want = ["-p", "qmail-difftest", "--bin", bin, "--"];
            assert!(args.ends_with(&want.map(Into::into)), "{args:?}");
        }
    }
}
