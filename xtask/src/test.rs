//! `cargo xtask test`: the whole test suite in one command.
//!
//! 1. Find the upstream trees without touching the network: `--source
//!    NAME=DIR` / `QMAIL_SOURCE_*`, or verified tarballs already in the
//!    distfiles directory (unpacked under `target/xtask-test/`). Absent
//!    sources skip the upstream tiers with a `SKIPPED:` line, or fail with
//!    `--require-upstream`.
//! 2. `cargo test --workspace --no-fail-fast` (every test binary runs even
//!    after one fails; binaries that did not finish are counted), with
//!    `QMAIL_SOURCE_NETQMAIL` (or `QMAIL_SOURCE_NOTQMAIL`) /
//!    `QMAIL_SOURCE_MESS822` (and `QMAIL_REQUIRE_UPSTREAM=1`) passed on.
//! 3. The differential run (`difftest run`): oracles R, C and P (the
//!    RCPTCHECK program) always (at least 500 scenarios); with the sources
//!    also G (pristine netqmail-1.06, or notqmail-1.09 with `--source
//!    notqmail=DIR`: one run proves one qmail), S, Q and L (at least 2,000
//!    scenarios).
//!
//! With `--with-patch FILE` (repeatable) the third-party stack is applied
//! to the qmail tree (`target/xtask-test/stacked/`): the cargo tests of
//! S get it in `QMAIL_STACKED_QMAIL`, the difftest builds S, Q and L
//! from it (G stays pristine) and its report names every patch and digest;
//! a stack with an RCPTCHECK hook (notqmail's smtpd-rcptcheck patch) adds
//! the tier S/rcptcheck.
//!
//! It ends with one line, `N passed, M failed` (cargo test results plus
//! differential checks), and exits non-zero on any failure.
//! `--replay DIR` re-runs one saved disagreement instead.

use crate::cargo_tests;
use crate::sources::{workspace_root, SourceArgs};
use crate::stack::StackArgs;
use anyhow::{Context, Result};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use upstream_hashes::{SourceTree, MESS822, NETQMAIL, NOTQMAIL};

/// Scenarios per run without upstream sources (R and C).
pub const CI_SCENARIOS: u64 = 500;
/// Scenarios per run with upstream sources (R, C and G).
pub const FULL_SCENARIOS: u64 = 2000;
/// The default seed (fixed, so that a run is reproducible; pass `--seed`
/// to explore).
pub const DEFAULT_SEED: u64 = 1;

/// Arguments of `cargo xtask test`.
#[derive(clap::Args, Debug)]
pub struct TestArgs {
    #[command(flatten)]
    sources: SourceArgs,
    #[command(flatten)]
    stack: StackArgs,
    /// Fail, instead of skipping, when a tier needs upstream sources that
    /// are absent (or cannot run here, e.g. oracle G without root).
    #[arg(long)]
    require_upstream: bool,
    /// Seed of the scenario generator (the same seed gives the same
    /// scenarios).
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,
    /// Number of generated scenarios [default: 500 without upstream
    /// sources, 2000 with them].
    #[arg(long)]
    scenarios: Option<u64>,
    /// Re-run the disagreement saved in this failure directory
    /// (target/difftest/failures/SEED-N) and nothing else.
    #[arg(long, value_name = "DIR")]
    replay: Option<PathBuf>,
    /// Skip `cargo test --workspace` (run only the differential tiers).
    #[arg(long)]
    no_cargo_test: bool,
    /// The release R, C and P model when no qmail tree is given. Without
    /// it such a run proves netqmail-1.06 and then, in a second, shorter
    /// run (a quarter of the scenarios), notqmail-1.09; with a tree, the
    /// tree's release only.
    #[arg(long, value_parser = ["netqmail-1.06", "notqmail-1.09"])]
    release: Option<String>,
}

/// One differential run: the release modelled without a tree (`None`:
/// the tree's, or netqmail-1.06), how many scenarios (`None`: the
/// default) and where its report goes (`None`: target/difftest).
struct DifftestRun {
    release: Option<String>,
    scenarios: Option<u64>,
    out: Option<PathBuf>,
}

/// The differential runs of `args`: one, and without a qmail tree a
/// second one modelling notqmail-1.09 (unless `--release` or `--replay`
/// chose).
fn difftest_runs(args: &TestArgs, root: &std::path::Path, trees: &Trees) -> Vec<DifftestRun> {
    let mut runs = vec![DifftestRun {
        release: args.release.clone(),
        scenarios: args.scenarios,
        out: None,
    }];
    if trees.qmail.is_none() && args.release.is_none() && args.replay.is_none() {
        let n = args.scenarios.unwrap_or(CI_SCENARIOS);
        runs.push(DifftestRun {
            release: Some(NOTQMAIL.full_name.to_string()),
            scenarios: Some((n / 4).max(1)),
            out: Some(root.join("target/difftest").join(NOTQMAIL.full_name)),
        });
    }
    runs
}

/// Runs one difftest command: its summary line, or one failure when it
/// printed none or failed without counting a failure.
fn difftest_step(c: &mut Command) -> Result<(u64, u64)> {
    let (lines, ok) = run_echo(c)?;
    Ok(match lines.iter().rev().find_map(|l| parse_summary(l)) {
        Some((p, f)) if !ok && f == 0 => (p, 1),
        Some(pf) => pf,
        None => (0, 1),
    })
}

/// `N passed, M failed` → (N, M).
fn parse_summary(line: &str) -> Option<(u64, u64)> {
    let (p, rest) = line.trim().split_once(" passed, ")?;
    let f = rest.strip_suffix(" failed")?;
    Some((p.parse().ok()?, f.parse().ok()?))
}

/// Runs a command, echoing its stdout, and returns the stdout lines and
/// whether it succeeded.
fn run_echo(cmd: &mut Command) -> Result<(Vec<String>, bool)> {
    cmd.stdout(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("cannot run {cmd:?}"))?;
    let out = child.stdout.take().context("no stdout")?;
    let mut lines = Vec::new();
    for line in BufReader::new(out).lines() {
        let line = line.context("reading output")?;
        println!("{line}");
        lines.push(line);
    }
    let status = child.wait().context("waiting")?;
    Ok((lines, status.success()))
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// The upstream trees found offline (`None` where absent).
struct Trees {
    /// The qmail tree the run proves: netqmail-1.06's, or notqmail-1.09's
    /// with `--source notqmail=DIR`.
    qmail: Option<SourceTree>,
    mess822: Option<PathBuf>,
    /// The qmail tree after `--with-patch`'s stack (for the cargo tests
    /// of S, Q and L; the difftest applies the same stack itself).
    stacked: Option<PathBuf>,
}

/// The qmail release a run proves: notqmail-1.09 when its tree is given
/// (`--source notqmail=DIR` or `QMAIL_SOURCE_NOTQMAIL`), else
/// netqmail-1.06. One run proves one qmail; a netqmail tree given as well
/// is left out, with a note.
fn qmail_release(overrides: &[(String, PathBuf)]) -> &'static upstream_hashes::Release {
    if !overrides.iter().any(|(n, _)| n == NOTQMAIL.name) {
        return &NETQMAIL;
    }
    if let Some((_, d)) = overrides.iter().find(|(n, _)| n == NETQMAIL.name) {
        eprintln!(
            "note: this run proves notqmail-1.09; the netqmail tree {} is left out (run again without --source notqmail to prove it)",
            d.display()
        );
    }
    &NOTQMAIL
}

/// Step 1: the sources, offline only, one release at a time (a missing
/// mess822 must not hide a present qmail). Absent ones print a
/// `SKIPPED:` line.
fn find_trees(args: &TestArgs, root: &std::path::Path) -> Trees {
    let overrides = args.sources.overrides();
    let work = root.join("target").join("xtask-test");
    let mut trees = Trees {
        qmail: None,
        mess822: None,
        stacked: None,
    };
    for release in [qmail_release(&overrides), &MESS822] {
        let mut opts = qmail_sources::SourcesOptions::new(args.sources.distfiles.dir());
        opts.offline = true;
        opts.releases = vec![release];
        opts.overrides = overrides
            .iter()
            .filter(|(n, _)| n == release.name)
            .cloned()
            .collect();
        match qmail_sources::obtain_sources(&opts, &work) {
            Ok(found) => {
                for t in found {
                    eprintln!("{}", t.provenance_note());
                    if *t.release == MESS822 {
                        trees.mess822 = Some(t.root.clone());
                    } else {
                        trees.qmail = Some(t);
                    }
                }
            }
            Err(e) => println!(
                "SKIPPED: tiers that need {}: sources unavailable: {e} \
                 (run `cargo xtask fetch`, or pass --source {}=DIR)",
                release.name, release.name
            ),
        }
    }
    trees
}

/// Step 3: the `difftest` command line (a run, or the replay of one
/// saved failure).
fn difftest_command(
    args: &TestArgs,
    run: &DifftestRun,
    root: &std::path::Path,
    trees: &Trees,
) -> Command {
    let mut c = Command::new(cargo());
    c.current_dir(root).args([
        "run",
        "--quiet",
        "-p",
        "qmail-difftest",
        "--bin",
        "difftest",
        "--",
    ]);
    match &args.replay {
        Some(dir) => {
            println!("== difftest replay {}", dir.display());
            c.arg("replay").arg(dir);
        }
        None => {
            let g = trees.qmail.as_ref().map(|q| q.release.full_name);
            let n = run.scenarios.unwrap_or(if g.is_some() {
                FULL_SCENARIOS
            } else {
                CI_SCENARIOS
            });
            println!(
                "== difftest: seed {}, {n} scenarios, oracles R, C, P{}{}",
                args.seed,
                g.map(|g| format!(", G (pristine {g}), S, Q, L"))
                    .unwrap_or_default(),
                run.release
                    .as_ref()
                    .map(|r| format!(", modelling {r}"))
                    .unwrap_or_default()
            );
            c.arg("run")
                .arg("--seed")
                .arg(args.seed.to_string())
                .arg("--scenarios")
                .arg(n.to_string());
        }
    }
    if args.require_upstream {
        c.arg("--require-upstream");
    }
    if let Some(r) = &run.release {
        c.arg("--release").arg(r);
    }
    if let Some(o) = &run.out {
        c.arg("--out").arg(o);
    }
    for p in &args.stack.with_patch {
        c.arg("--with-patch").arg(p);
    }
    c
}

/// Apply `--with-patch`'s stack to the qmail tree found, in
/// `target/xtask-test/stacked/`. A stack without a qmail tree cannot be
/// proved: that is an error, not a skip.
fn stack_step(args: &TestArgs, root: &std::path::Path, trees: &mut Trees) -> Result<()> {
    if args.stack.with_patch.is_empty() {
        return Ok(());
    }
    let stack = args.stack.load()?;
    let Some(pristine) = &trees.qmail else {
        anyhow::bail!(
            "--with-patch needs a qmail tree to prove the stack on (--source netqmail=DIR or --source notqmail=DIR, or netqmail's verified tarball in the distfiles directory)"
        );
    };
    let dest = root.join("target").join("xtask-test").join("stacked");
    let stacked = qmail_patches::apply_stack(pristine, &stack, &dest)?;
    println!(
        "== stack: {} + {} (S, Q and L run on it; G stays pristine)",
        pristine.release.full_name,
        stack
            .iter()
            .map(|p| p.label())
            .collect::<Vec<_>>()
            .join(" + ")
    );
    trees.stacked = Some(stacked.root);
    Ok(())
}

/// Step 2: `cargo test --workspace --no-fail-fast`, as (passed, failed);
/// binaries that did not run or finish count as failures.
fn cargo_step(root: &std::path::Path, envs: &dyn Fn(&mut Command)) -> Result<(u64, u64)> {
    println!("== cargo test --workspace");
    let t = cargo_tests::run(&cargo(), root, envs)?;
    let missing = t.not_finished();
    print!("== cargo test: {} passed, {} failed", t.passed, t.failed);
    if missing > 0 {
        print!(
            "; {missing} of {} test binaries did not run or did not finish",
            t.binaries + t.doc_runs
        );
    }
    println!();
    Ok((t.passed, t.failed + missing))
}

/// `cargo xtask test`: exits non-zero (after the summary line) when any
/// check failed.
pub fn run(args: TestArgs) -> Result<ExitCode> {
    let root = workspace_root();
    let mut passed = 0u64;
    let mut failed = 0u64;

    let mut trees = find_trees(&args, &root);
    for (name, found) in [
        ("qmail", trees.qmail.is_some()),
        (MESS822.name, trees.mess822.is_some()),
    ] {
        if !found && args.require_upstream && args.replay.is_none() {
            println!("upstream sources required (--require-upstream) but {name} is unavailable");
            println!("{passed} passed, 1 failed");
            return Ok(ExitCode::FAILURE);
        }
    }
    stack_step(&args, &root, &mut trees)?;
    let tmp = crate::tmpdir::for_tests()?;
    let envs = |c: &mut Command| {
        if let Some(t) = &tmp {
            c.env("TMPDIR", t.path());
        }
        let qmail_of = |name: &str| {
            trees
                .qmail
                .as_ref()
                .filter(|q| q.release.name == name)
                .map(|q| q.root.clone())
        };
        for (var, tree) in [
            ("QMAIL_SOURCE_NETQMAIL", &qmail_of(NETQMAIL.name)),
            ("QMAIL_SOURCE_NOTQMAIL", &qmail_of(NOTQMAIL.name)),
            ("QMAIL_SOURCE_MESS822", &trees.mess822),
            ("QMAIL_STACKED_QMAIL", &trees.stacked),
        ] {
            match tree {
                Some(t) => c.env(var, t),
                None => c.env_remove(var),
            };
        }
        if args.require_upstream {
            c.env("QMAIL_REQUIRE_UPSTREAM", "1");
        }
    };

    if args.replay.is_none() && !args.no_cargo_test {
        let (p, f) = cargo_step(&root, &envs)?;
        passed += p;
        failed += f;
    }

    for run in difftest_runs(&args, &root, &trees) {
        let mut c = difftest_command(&args, &run, &root, &trees);
        envs(&mut c);
        let (p, f) = difftest_step(&mut c)?;
        passed += p;
        failed += f;
    }

    println!("{passed} passed, {failed} failed");
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(argv: &[&str]) -> TestArgs {
        #[derive(clap::Parser)]
        struct P {
            #[command(flatten)]
            t: TestArgs,
        }
        <P as clap::Parser>::parse_from(std::iter::once("test").chain(argv.iter().copied())).t
    }

    fn no_trees() -> Trees {
        Trees {
            qmail: None,
            mess822: None,
            stacked: None,
        }
    }

    #[test]
    fn without_a_tree_both_releases_are_proven() {
        let root = std::path::Path::new("/w");
        let runs = difftest_runs(&args(&[]), root, &no_trees());
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].release, None);
        assert_eq!(runs[1].release.as_deref(), Some("notqmail-1.09"));
        assert_eq!(runs[1].scenarios, Some(CI_SCENARIOS / 4));
        assert_eq!(
            runs[1].out.as_deref(),
            Some(std::path::Path::new("/w/target/difftest/notqmail-1.09"))
        );
        let runs = difftest_runs(&args(&["--scenarios", "40"]), root, &no_trees());
        assert_eq!(runs[1].scenarios, Some(10));
        // --release (or --replay) chooses: one run
        let runs = difftest_runs(&args(&["--release", "notqmail-1.09"]), root, &no_trees());
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].release.as_deref(), Some("notqmail-1.09"));
        assert_eq!(
            difftest_runs(&args(&["--replay", "/f"]), root, &no_trees()).len(),
            1
        );
        // a tree proves its own release only
        let trees = Trees {
            qmail: Some(SourceTree::unverified(&NETQMAIL, "/src/netqmail-1.06")),
            ..no_trees()
        };
        assert_eq!(difftest_runs(&args(&[]), root, &trees).len(), 1);
    }

    #[test]
    fn parses_the_summary_lines() {
        assert_eq!(parse_summary("12 passed, 3 failed"), Some((12, 3)));
        assert_eq!(parse_summary("junk"), None);
    }
}
