//! Where the upstream trees are, for the tiers that need them.
//!
//! `cargo xtask test` finds (or fetches, verifies and unpacks) the releases
//! and passes the unpacked trees to the tests in `QMAIL_SOURCE_NETQMAIL`
//! (or `QMAIL_SOURCE_NOTQMAIL`, with `--source notqmail=DIR`) and
//! `QMAIL_SOURCE_MESS822`. A tier whose sources are absent prints a
//! `SKIPPED:` line and passes, unless `QMAIL_REQUIRE_UPSTREAM=1`, when it
//! fails instead.

use std::path::PathBuf;
use upstream_hashes::{SourceTree, NETQMAIL, NOTQMAIL};

/// The unpacked netqmail-1.06 tree, if one was given.
pub fn netqmail() -> Option<PathBuf> {
    dir_from_env("QMAIL_SOURCE_NETQMAIL")
}

/// The pristine qmail tree given: netqmail-1.06's
/// (`QMAIL_SOURCE_NETQMAIL`), else notqmail-1.09's
/// (`QMAIL_SOURCE_NOTQMAIL`).
pub fn qmail() -> Option<SourceTree> {
    match netqmail() {
        Some(p) => Some(SourceTree::unverified(&NETQMAIL, p)),
        None => dir_from_env("QMAIL_SOURCE_NOTQMAIL").map(|p| SourceTree::unverified(&NOTQMAIL, p)),
    }
}

/// The qmail tree with the third-party stack of `cargo xtask test
/// --with-patch` applied (`QMAIL_STACKED_QMAIL`, of the release of
/// [`qmail`]), else the pristine tree: the one S, Q and L are built from.
pub fn stacked_qmail() -> Option<SourceTree> {
    let q = qmail()?;
    Some(match dir_from_env("QMAIL_STACKED_QMAIL") {
        Some(p) => SourceTree::unverified(q.release, p),
        None => q,
    })
}

/// The qmail tree (netqmail or notqmail) for a test named `tier`, or
/// `None` after printing `SKIPPED: tier: …` when neither is given and
/// they are not required.
///
/// # Panics
/// When no tree is given and `QMAIL_REQUIRE_UPSTREAM=1`: the test fails.
pub fn qmail_or_skip(tier: &str) -> Option<SourceTree> {
    match qmail() {
        Some(t) => Some(t),
        None => skip_or_fail(tier, "QMAIL_SOURCE_NETQMAIL or QMAIL_SOURCE_NOTQMAIL"),
    }
}

/// The unpacked mess822-0.58 tree, if one was given.
pub fn mess822() -> Option<PathBuf> {
    dir_from_env("QMAIL_SOURCE_MESS822")
}

fn dir_from_env(var: &str) -> Option<PathBuf> {
    let v = std::env::var_os(var)?;
    if v.is_empty() {
        return None;
    }
    Some(PathBuf::from(v))
}

/// Whether the upstream tiers must run (`QMAIL_REQUIRE_UPSTREAM=1`).
pub fn required() -> bool {
    std::env::var("QMAIL_REQUIRE_UPSTREAM").as_deref() == Ok("1")
}

/// The netqmail tree for a test named `tier`, or `None` after printing
/// `SKIPPED: tier: …` when it is absent and not required.
///
/// # Panics
/// When the tree is absent and `QMAIL_REQUIRE_UPSTREAM=1`: the test fails.
///
/// In a run that proves notqmail-1.09 (`QMAIL_SOURCE_NOTQMAIL` set, no
/// netqmail tree) a netqmail-only test is skipped, even when the upstream
/// tiers are required: the release-independent ones run on notqmail.
pub fn netqmail_or_skip(tier: &str) -> Option<PathBuf> {
    match netqmail() {
        Some(p) => Some(p),
        None if dir_from_env("QMAIL_SOURCE_NOTQMAIL").is_some() => {
            println!("SKIPPED: {tier}: netqmail-1.06 only, and this run proves notqmail-1.09");
            None
        }
        None => skip_or_fail(tier, "QMAIL_SOURCE_NETQMAIL"),
    }
}

/// The mess822 tree for a test named `tier`; see [`netqmail_or_skip`].
pub fn mess822_or_skip(tier: &str) -> Option<PathBuf> {
    match mess822() {
        Some(p) => Some(p),
        None => skip_or_fail(tier, "QMAIL_SOURCE_MESS822"),
    }
}

fn skip_or_fail<T>(tier: &str, var: &str) -> Option<T> {
    let needed = var.split(" or ").any(upstream_hashes::source_required);
    if needed {
        panic!("{tier}: upstream sources required (QMAIL_REQUIRE_UPSTREAM=1) but {var} is not set");
    }
    println!("SKIPPED: {tier}: upstream sources absent ({var} not set; run `cargo xtask test`)");
    None
}
