//! How a differential run is set up (the bottom layer: nothing here
//! imports another module of the suite): [`RunOptions`], the default
//! output directory, the O4 classes a full run must hit and the sizes and
//! seeds of the `.qmail` program comparisons (pairs R-B and R-L).

use qmail_resolver::QmailRelease;
use std::path::{Path, PathBuf};
use upstream_hashes::SourceTree;

/// Generated `.qmail` programs compared R vs B in every run (each with
/// `-N` and `-n`).
pub const PROGRAMS_B: u64 = 1000;
/// Generated `.qmail` programs compared R vs L in a run with the netqmail
/// tree (each with `-N` and `-n`): the first [`PROGRAMS_L`] of R-B's.
pub const PROGRAMS_L: u64 = 200;

/// Every [`SESSION_EVERY`]th scenario (index 0, 4, 8, …) is also asked
/// inside the session tiers S/tls and S/auth (all its SMTP-safe
/// addresses), when S's qmail-smtpd offers STARTTLS or AUTH.
pub const SESSION_EVERY: u64 = 4;

/// Pair R-P runs the ASan+UBSan build of the RCPTCHECK program for the
/// scenarios with an index below this (every scenario of the CI run),
/// and the plain build, about ten times cheaper per run, for the rest of
/// a longer run (2,000 scenarios with the sources).
pub const P_SANITIZED: u64 = 500;

/// The `oracle::b::generate_program` seed of `.qmail` program `index` of
/// a run with seed `seed` (with `GenOptions::default()`).
pub fn program_seed(seed: u64, index: u64) -> u64 {
    seed.wrapping_mul(1_000_003).wrapping_add(index)
}

/// Why the upstream tiers are skipped when no qmail tree was given.
pub const NO_QMAIL_TREE: &str =
    "upstream sources absent (QMAIL_SOURCE_NETQMAIL or QMAIL_SOURCE_NOTQMAIL not set)";

/// The outcome classes of resolution.md O4 that every full run must hit.
pub const O4_CLASSES: &[&str] = &["remote", "trash", "deliver", "default", "bounce", "defer"];

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The seed.
    pub seed: u64,
    /// How many scenarios.
    pub scenarios: u64,
    /// The output directory (`target/difftest`).
    pub out_dir: PathBuf,
    /// The difftest executable (for the R child).
    pub exe: PathBuf,
    /// The pristine qmail tree the upstream tiers are built from, if any:
    /// netqmail-1.06 or notqmail-1.09, by its release. Its release is the
    /// one R models ([`RunOptions::resolver_release`]) and G runs.
    pub qmail: Option<SourceTree>,
    /// The third-party stack (`--with-patch`, on the qmail tree) S, Q and
    /// L are built on, if any; G stays pristine.
    pub stack: Option<Stack>,
    /// The release R, C and P model when no qmail tree is given
    /// (`difftest run --release`); `None` is netqmail-1.06. With a tree,
    /// the tree's release is modelled and this must name the same one.
    pub release: Option<QmailRelease>,
    /// Fail instead of skipping tiers that need the sources.
    pub require_upstream: bool,
    /// Show a progress bar (only if stderr is a terminal).
    pub progress: bool,
    /// Assert that every O4 class was hit.
    pub require_coverage: bool,
    /// For testing the failure path only: R's verdict is reported flipped
    /// (accept ↔ reject) for addresses containing these bytes, so that the
    /// comparison, shrinking and replay of a disagreement can be exercised.
    pub tamper: Option<Vec<u8>>,
}

/// A third-party stack: the qmail tree after the third-party patches
/// (`qmail_patches::apply_stack`), and those patches in order.
#[derive(Debug, Clone)]
pub struct Stack {
    /// The stacked tree.
    pub tree: PathBuf,
    /// The third-party patches it carries.
    pub patches: Vec<qmail_patches::ThirdPartyPatch>,
}

impl RunOptions {
    /// The qmail tree S, Q and L are built from: the stack's when there
    /// is one, else the pristine tree (of the same release).
    pub fn patched_base(&self) -> Option<SourceTree> {
        let q = self.qmail.as_ref()?;
        Some(match &self.stack {
            Some(s) => SourceTree::unverified(q.release, &s.tree),
            None => q.clone(),
        })
    }

    /// The release R models: that of the qmail tree, else the one asked
    /// for (`release`), else netqmail-1.06.
    pub fn resolver_release(&self) -> QmailRelease {
        self.qmail
            .as_ref()
            .and_then(|q| q.release.full_name.parse().ok())
            .or(self.release)
            .unwrap_or_default()
    }

    /// The qmail release the upstream tiers run, for messages
    /// (`netqmail-1.06` when no tree was given).
    pub fn qmail_name(&self) -> &'static str {
        self.qmail
            .as_ref()
            .map(|q| q.release.full_name)
            .unwrap_or(upstream_hashes::NETQMAIL.full_name)
    }
}

/// The default output directory: `<workspace>/target/difftest`, or
/// `$QMAIL_DIFFTEST_DIR`.
pub fn default_out_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("QMAIL_DIFFTEST_DIR") {
        return PathBuf::from(d);
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .unwrap_or(manifest)
        .join("target")
        .join("difftest")
}
