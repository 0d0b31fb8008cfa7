//! `cargo xtask mutants [PACKAGE…] [--in-diff FILE]`: mutation testing of
//! the library packages with cargo-mutants (`cargo install --locked
//! cargo-mutants`), one package at a time with its own tests, with the
//! settings that fit a small shared machine: one build at a time (`-j 1`;
//! `--jobs N` for more), a 120 s test timeout, the results under
//! `target/mutants/PACKAGE/`.
//! What is excluded, and why, is in `.cargo/mutants.toml`.
//!
//! For each package one line is printed, then the mutants no test caught:
//!
//! ```text
//! qmail-verify: 47 mutants, 36 caught, 0 missed, 11 unviable, 0 timeout, score 100.0 %
//! ```
//!
//! The score is caught / (caught + missed + timeout): unviable mutants
//! (those that do not compile) count for nothing either way. The figures
//! come from cargo-mutants' `mutants.out/outcomes.json`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::sources::workspace_root;

/// The library packages, in pipeline order (the default selection). The
/// differential harness (`qmail-difftest`) is not among them: it is the
/// test, and its checks run the built C programs (see the README).
pub const LIBRARIES: [&str; 8] = [
    "upstream-hashes",
    "qmail-fetch",
    "qmail-verify",
    "qmail-unpack",
    "qmail-sources",
    "qmail-patches",
    "qmail-build",
    "qmail-resolver",
];

/// Arguments of `cargo xtask mutants`.
#[derive(clap::Args)]
pub struct MutantsArgs {
    /// Packages to test, by package name (`qmail-verify`) or directory
    /// (`verify`) [default: every library package].
    #[arg(value_name = "PACKAGE")]
    packages: Vec<String>,
    /// Only the mutants in the lines a diff changes (`git diff main >
    /// change.diff`), the quick run for a contributor's change.
    #[arg(long, value_name = "FILE")]
    in_diff: Option<PathBuf>,
    /// Mutants built and tested at once (cargo-mutants' `-j`): 1 leaves
    /// a 2-core machine usable for other work; more when cores are idle.
    #[arg(long, short = 'j', value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    jobs: u32,
}

/// What cargo-mutants found in one package.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Mutants tested (not counting the unmutated baseline).
    pub mutants: u64,
    /// Mutants some test failed on.
    pub caught: u64,
    /// Mutants every test passed on.
    pub missed: u64,
    /// Mutants that did not build.
    pub unviable: u64,
    /// Mutants whose tests ran past the timeout (counted as caught by
    /// cargo-mutants' exit code, but listed apart here).
    pub timeout: u64,
    /// The names of the missed mutants (`FILE:LINE:COL: replace …`).
    pub missed_names: Vec<String>,
}

impl Tally {
    /// caught / (caught + missed + timeout), in percent; `None` when no
    /// mutant was viable.
    pub fn score(&self) -> Option<f64> {
        let viable = self.caught + self.missed + self.timeout;
        (viable > 0).then(|| 100.0 * self.caught as f64 / viable as f64)
    }

    /// The one line printed for `package`.
    pub fn line(&self, package: &str) -> String {
        let score = match self.score() {
            Some(s) => format!("{s:.1} %"),
            None => "n/a (no viable mutant)".to_string(),
        };
        format!(
            "{package}: {} mutants, {} caught, {} missed, {} unviable, {} timeout, score {score}",
            self.mutants, self.caught, self.missed, self.unviable, self.timeout
        )
    }
}

/// Counts the outcomes in the text of cargo-mutants' `outcomes.json`.
pub fn parse_outcomes(json: &str) -> Result<Tally> {
    let v: Value = serde_json::from_str(json).context("outcomes.json is not JSON")?;
    let Some(outcomes) = v["outcomes"].as_array() else {
        bail!("outcomes.json has no \"outcomes\" list");
    };
    let mut t = Tally::default();
    for o in outcomes {
        let Some(mutant) = o["scenario"].get("Mutant") else {
            continue; // the unmutated baseline
        };
        t.mutants += 1;
        match o["summary"].as_str() {
            Some("CaughtMutant") => t.caught += 1,
            Some("MissedMutant") => {
                t.missed += 1;
                let name = mutant["name"].as_str().unwrap_or("(unnamed mutant)");
                t.missed_names.push(name.to_string());
            }
            Some("Unviable") => t.unviable += 1,
            Some("Timeout") => t.timeout += 1,
            other => bail!("outcomes.json: unknown outcome {other:?} for {mutant}"),
        }
    }
    Ok(t)
}

/// `verify` → `qmail-verify`; a package name stays as it is.
fn package_name(given: &str) -> Result<&'static str> {
    LIBRARIES
        .iter()
        .find(|p| **p == given || p.strip_prefix("qmail-") == Some(given))
        .copied()
        .with_context(|| {
            format!(
                "{given}: not a library package; known: {}",
                LIBRARIES.join(", ")
            )
        })
}

/// Run `cargo xtask mutants …`.
pub fn run(args: MutantsArgs) -> Result<()> {
    let packages = if args.packages.is_empty() {
        LIBRARIES.to_vec()
    } else {
        let named: Result<Vec<_>> = args.packages.iter().map(|p| package_name(p)).collect();
        named?
    };
    let root = workspace_root();
    let in_diff = match &args.in_diff {
        Some(d) => Some(std::path::absolute(d).with_context(|| format!("{}", d.display()))?),
        None => None,
    };
    let mut lines = Vec::new();
    for p in packages {
        let t = run_package(&root, p, in_diff.as_deref(), args.jobs)?;
        println!("{}", t.line(p));
        for m in &t.missed_names {
            println!("  missed: {m}");
        }
        lines.push(t.line(p));
    }
    if lines.len() > 1 {
        println!("\nsummary:");
        for l in &lines {
            println!("{l}");
        }
    }
    Ok(())
}

/// One package's cargo-mutants run; its outcomes.
fn run_package(root: &Path, package: &str, in_diff: Option<&Path>, jobs: u32) -> Result<Tally> {
    let out = root.join("target").join("mutants").join(package);
    let outcomes = out.join("mutants.out").join("outcomes.json");
    // a stale file from an earlier run must not be read as this one's
    match std::fs::remove_file(&outcomes) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("{}", outcomes.display())),
    }
    // cargo-mutants creates `mutants.out` but not its parent (a fresh clone
    // has no target/mutants yet)
    std::fs::create_dir_all(&out).with_context(|| format!("create {}", out.display()))?;
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root)
        .args(["mutants", "-j", &jobs.to_string()])
        .args(["--timeout", "120", "--package", package])
        .arg("--output")
        .arg(&out);
    if let Some(d) = in_diff {
        cmd.arg("--in-diff").arg(d);
    }
    eprintln!("{package}: cargo mutants, log in {}", out.display());
    let status = cmd
        .status()
        .context("cannot run `cargo mutants` (cargo install --locked cargo-mutants)")?;
    // 0: all caught, 2: some missed, 3: some timed out; the figures say
    // which. Anything else (usage, a failing unmutated baseline) is fatal.
    if !matches!(status.code(), Some(0 | 2 | 3)) {
        bail!("{package}: cargo mutants failed ({status}); see its output above");
    }
    match std::fs::read_to_string(&outcomes) {
        Ok(json) => parse_outcomes(&json).with_context(|| format!("{}", outcomes.display())),
        // nothing to mutate (e.g. --in-diff touches no line of the package)
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && status.success() => {
            Ok(Tally::default())
        }
        Err(e) => Err(e).with_context(|| format!("{}", outcomes.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// outcomes.json as cargo-mutants 27 writes it, cut down to the keys
    /// read: a baseline, then one mutant of each outcome.
    const OUTCOMES: &str = r#"{
      "outcomes": [
        {"scenario": "Baseline", "summary": "Success", "phase_results": []},
        {"scenario": {"Mutant": {"name": "a.rs:1:1: replace f -> bool with true",
                                 "package": "p", "file": "a.rs"}},
         "summary": "CaughtMutant"},
        {"scenario": {"Mutant": {"name": "a.rs:2:5: replace + with * in g"}},
         "summary": "MissedMutant"},
        {"scenario": {"Mutant": {"name": "a.rs:3:5: replace h with ()"}},
         "summary": "Unviable"},
        {"scenario": {"Mutant": {"name": "a.rs:4:5: replace < with <= in k"}},
         "summary": "Timeout"},
        {"scenario": {"Mutant": {"name": "a.rs:5:5: delete ! in m"}},
         "summary": "CaughtMutant"},
        {"scenario": {"Mutant": {"name": "a.rs:6:5: replace n -> u32 with 0"}},
         "summary": "CaughtMutant"}
      ],
      "total_mutants": 6, "missed": 1, "caught": 3, "timeout": 1, "unviable": 1
    }"#;

    #[test]
    fn outcomes_are_counted_and_the_missed_named() {
        let t = parse_outcomes(OUTCOMES).unwrap();
        assert_eq!(
            t,
            Tally {
                mutants: 6,
                caught: 3,
                missed: 1,
                unviable: 1,
                timeout: 1,
                missed_names: vec!["a.rs:2:5: replace + with * in g".into()],
            }
        );
        assert_eq!(
            t.line("qmail-x"),
            "qmail-x: 6 mutants, 3 caught, 1 missed, 1 unviable, 1 timeout, score 60.0 %"
        );
    }

    #[test]
    fn the_score_leaves_unviable_mutants_out_and_counts_timeouts_against() {
        let t = |caught, missed, unviable, timeout| Tally {
            mutants: caught + missed + unviable + timeout,
            caught,
            missed,
            unviable,
            timeout,
            missed_names: vec![],
        };
        assert_eq!(t(9, 1, 0, 0).score(), Some(90.0));
        assert_eq!(t(9, 1, 50, 0).score(), Some(90.0));
        assert_eq!(t(9, 0, 0, 1).score(), Some(90.0));
        assert_eq!(t(0, 3, 0, 0).score(), Some(0.0));
        assert_eq!(
            t(2, 1, 0, 0).line("p").rsplit_once("score ").unwrap().1,
            "66.7 %"
        );
        assert_eq!(t(0, 0, 4, 0).score(), None);
        assert!(t(0, 0, 4, 0)
            .line("p")
            .ends_with("score n/a (no viable mutant)"));
    }

    #[test]
    fn broken_or_unknown_outcomes_are_errors_not_zeros() {
        assert!(parse_outcomes("{").is_err());
        assert!(parse_outcomes(r#"{"total_mutants": 3}"#).is_err());
        let odd = r#"{"outcomes": [{"scenario": {"Mutant": {"name": "x"}}, "summary": "Weird"}]}"#;
        let err = parse_outcomes(odd).unwrap_err().to_string();
        assert!(err.contains("Weird"), "{err}");
    }

    #[test]
    fn packages_are_named_by_package_or_directory() {
        assert_eq!(package_name("verify").unwrap(), "qmail-verify");
        assert_eq!(package_name("qmail-verify").unwrap(), "qmail-verify");
        assert_eq!(package_name("upstream-hashes").unwrap(), "upstream-hashes");
        assert_eq!(package_name("sources").unwrap(), "qmail-sources");
        let err = package_name("xtask").unwrap_err().to_string();
        assert!(
            err.starts_with("xtask: not a library package; known: "),
            "{err}"
        );
        assert!(
            err.contains("qmail-unpack, qmail-sources, qmail-patches"),
            "{err}"
        );
        assert!(package_name("difftest").is_err());
    }
}
