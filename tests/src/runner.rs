//! The run loop on top of the suite: generated scenarios through every
//! oracle available ([`crate::compare_scenario`]), then the known
//! differences ([`crate::known`]) and the `.qmail` programs
//! ([`crate::compare_programs`]), tallied into one [`Report`]; and the
//! replay of a failure directory.
//!
//! * R's own [`Outcome`](qmail_resolver::Outcome) class and text are
//!   compared with G's (a P3 structural error is a deferral in both).
//! * Only an answer where R recorded an uncertain step (EACCES/EPERM with
//!   qmaild's uid, stages `getpw`, `home`, `qmail`) may disagree with G;
//!   it is excused and listed, per stage, in the report.
//! * A scenario with a conf-break other than `-`
//!   ([`Scenario::conf_break`]) is compared R vs C only: the qmail programs
//!   of G and S/Q are built with `-`. The pairs left out count it in their
//!   "skipped" column.
//! * A scenario with an errno fault ([`Scenario::errno_fault`]) is also
//!   compared R vs C only: both run with the errno shim
//!   ([`crate::cc::errno_shim`]) preloaded, which G's and S/Q's processes
//!   do not get. A run with such scenarios must see the verdict
//!   `tempfail-sys` from both R and C (checked with the O4 coverage).
//! * After the scenarios and the known differences,
//!   [`PROGRAMS_B`](crate::options::PROGRAMS_B) generated `.qmail`
//!   programs are run through oracle B and the resolver's `.qmail` model
//!   (pair R-B), and, with the netqmail tree, the first
//!   [`PROGRAMS_L`](crate::options::PROGRAMS_L) through patched
//!   qmail-local (oracle L, pair R-L).

use crate::compare_programs::compare_programs;
use crate::compare_rg::g_class_name;
use crate::compare_scenario::{check_scenario, Checked};
use crate::error::RunError;
use crate::failures::{record_failure, replay_command};
use crate::known::{self, KnownRow, RowStatus};
use crate::options::{RunOptions, NO_QMAIL_TREE, O4_CLASSES};
use crate::oracle::r::RRun;
use crate::oracle::setup::{self, Absent};
use crate::report::{Excused, Failure, Report};
use crate::scenario::{self, Scenario};
use crate::scratch::world_dir;
use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

/// Runs `opts.scenarios` generated scenarios and writes the report.
pub fn run(opts: &RunOptions) -> Result<Report, RunError> {
    let mut report = Report {
        seed: opts.seed,
        stack: stack_labels(opts),
        release: opts.resolver_release().to_string(),
        ..Report::default()
    };
    let _ = std::fs::remove_dir_all(opts.out_dir.join("failures"));
    let seed = opts.seed;
    let mut it = (0..opts.scenarios).map(|i| scenario::generate(seed, i));
    run_scenarios(&mut it, opts.scenarios, opts, &mut report, &opts.out_dir)?;
    // Every deliberate change of realrcptto.md Part 1 as a hand-written
    // scenario that our patch gets right (rows that need an absent oracle
    // are listed as skipped; rows shown by named tests are not counted).
    let rows = known::run_known(opts)?;
    tally_known(&mut report, rows);
    compare_programs(opts, &mut report)?;
    report.write(&opts.out_dir)?;
    Ok(report)
}

/// Re-runs the scenario saved in a failure directory (its `scenario.json`)
/// and writes a report into `DIR/replay/`.
pub fn replay(dir: &Path, opts: &RunOptions) -> Result<Report, RunError> {
    let sc = Scenario::load(&dir.join(scenario::layout::SCENARIO_JSON))?;
    let mut report = Report {
        seed: sc.seed,
        stack: stack_labels(opts),
        release: opts.resolver_release().to_string(),
        ..Report::default()
    };
    let mut o = opts.clone();
    o.out_dir = dir.join("replay");
    // A failure directory may come from elsewhere (a CI artefact): its
    // `replay` must be a real directory, not a symlink leading the report
    // (and the removal of `failures/` below) somewhere else.
    match std::fs::symlink_metadata(&o.out_dir) {
        Ok(m) if !m.file_type().is_dir() => {
            return Err(RunError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "{}: not a directory (a symlink?); refusing to replay into it",
                    o.out_dir.display()
                ),
            )))
        }
        _ => {}
    }
    o.require_coverage = false;
    let mut it = std::iter::once(sc);
    // The worlds and the G build go where a normal run puts them, not
    // into the failure directory.
    run_scenarios(&mut it, 1, &o, &mut report, &opts.out_dir)?;
    // The replay's own failures would nest; keep only the report.
    let _ = std::fs::remove_dir_all(o.out_dir.join("failures"));
    for f in &mut report.failures {
        f.dir = None;
        f.replay = Some(replay_command(
            dir,
            opts.qmail.as_ref(),
            opts.stack.as_ref(),
            opts.resolver_release(),
        ));
    }
    report.write(&o.out_dir)?;
    Ok(report)
}

/// Sets the oracles up, checks every scenario of `scs` (writing a failure
/// directory per disagreement) and, with `opts.require_coverage`, checks
/// the O4 coverage.
fn run_scenarios(
    scs: &mut dyn Iterator<Item = Scenario>,
    total: u64,
    opts: &RunOptions,
    report: &mut Report,
    scratch_base: &Path,
) -> Result<(), RunError> {
    let start = Instant::now();
    let o = setup::prepare(opts, scratch_base)?;
    list_absent(report, &o);
    let bar = progress_bar(opts, total);
    let mut nfail = 0usize;
    for (k, sc) in scs.enumerate() {
        let w = world_dir(&o.scratch, "world")?;
        let root = w.path().join("w");
        let c = check_scenario(&sc, &root, &o, opts)?;
        tally(report, &sc, &c);
        report.scenarios += 1;
        for d in &c.disagreements {
            nfail += 1;
            record_failure(report, &sc, d, &o, opts, nfail)?;
        }
        if let Some(b) = &bar {
            b.set_position(k as u64 + 1);
            b.set_message(format!("{} failed", report.failed));
        } else if (k + 1) % 100 == 0 {
            eprintln!(
                "difftest: {}/{total} scenarios, {} addresses, {} failed",
                k + 1,
                report.addresses,
                report.failed
            );
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if opts.require_coverage {
        check_coverage(report, o.g.is_ok());
    }
    report.seconds = start.elapsed().as_secs_f64();
    Ok(())
}

/// Lists the oracles that could not be set up as skipped tiers.
fn list_absent(report: &mut Report, o: &setup::Oracles) {
    match &o.g {
        Ok(_) => {}
        Err(Absent::NotRoot(uid)) => report.skipped.push(format!(
            "G (pristine {}): needs root to run qmail-lspawn (uid {uid})",
            o.release
        )),
        Err(Absent::NoSources) => report
            .skipped
            .push(format!("G (pristine qmail): {NO_QMAIL_TREE}")),
    }
    if o.sq.is_err() {
        report.skipped.push(format!(
            "S/Q (patched qmail-smtpd/qmail-qmtpd): {NO_QMAIL_TREE}"
        ));
    }
    let why = if o.sq.is_err() {
        NO_QMAIL_TREE
    } else {
        "this tree's qmail-smtpd does not offer it"
    };
    if o.rcptcheck.is_none() {
        report.skipped.push(
            "S/rcptcheck (qmail-smtpd with the smtpd-rcptcheck hook running qmail-rcptcheck-realrcptto): the qmail tree has no RCPTCHECK hook (--with-patch the smtpd-rcptcheck patch)".into(),
        );
    }
    if o.tls.is_none() {
        report.skipped.push(format!(
            "S/tls (RCPTs inside a STARTTLS session; a tree with the STARTTLS patch): {why}"
        ));
    }
    if o.auth.is_none() {
        report.skipped.push(format!(
            "S/auth (RCPTs inside an SMTP AUTH session; a tree with the SMTP AUTH patch): {why}"
        ));
    }
}

/// A progress bar on a terminal when `opts.progress` asks for one.
fn progress_bar(opts: &RunOptions, total: u64) -> Option<indicatif::ProgressBar> {
    if !(opts.progress && std::io::stderr().is_terminal()) {
        return None;
    }
    let b = indicatif::ProgressBar::new(total);
    b.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} scenarios, {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(b)
}

/// Adds one checked scenario to the report's counts.
fn tally(report: &mut Report, sc: &Scenario, c: &Checked) {
    report.addresses += sc.addresses.len() as u64;
    if sc.conf_break != scenario::DEFAULT_BREAK {
        report.other_break_scenarios += 1;
    }
    if sc.errno_fault.is_some() {
        report.errno_fault_scenarios += 1;
    }
    if sc.lspawn_missing.is_some() {
        report.lspawn_missing_scenarios += 1;
    }
    if let Some(RRun::Answers(answers)) = &c.r {
        report.lspawn_defers += answers
            .iter()
            .filter(|a| {
                a.text
                    .as_ref()
                    .is_some_and(|t| t.0.starts_with(b"fatal: unable to find "))
            })
            .count() as u64;
    }
    for v in &c.c_verdicts {
        *report.c_verdicts.entry(v.to_string()).or_default() += 1;
    }
    for (pair, ok) in &c.checks {
        report.check(pair, *ok);
    }
    for (pair, n) in &c.skipped {
        report.skip(pair, *n);
    }
    for (a, why, stages) in &c.excused {
        report.excuse(Excused {
            pair: "R-G".into(),
            scenario: sc.index,
            address: a.to_text(),
            why: why.clone(),
            stages: stages.clone(),
        });
    }
    if let Some(RRun::Answers(ra)) = &c.r {
        for a in ra {
            report.class("R", &a.class);
            *report.verdicts.entry(a.verdict.clone()).or_default() += 1;
        }
    }
    if let Some(gs) = &c.g {
        for g in gs {
            report.class("G", g_class_name(g));
        }
    }
    for q in &sc.qmail_files {
        *report.qmail_kinds.entry(q.kind.clone()).or_default() += 1;
    }
}

/// A coverage failure (pair `coverage`).
fn coverage_failure(report: &mut Report, left: String, right: &str) {
    report.failures.push(Failure {
        pair: "coverage".into(),
        scenario: 0,
        address: None,
        left,
        right: right.into(),
        dir: None,
        replay: None,
        shrunk: false,
    });
}

/// Every O4 class must have been produced by R (and by G when it ran), and
/// the errno faults must have reached G2/G4 in both R and C.
fn check_coverage(report: &mut Report, g_ran: bool) {
    for (oracle, present) in [("R", true), ("G", g_ran)] {
        if !present {
            continue;
        }
        for c in O4_CLASSES {
            let name = if oracle == "G" && *c == "default" {
                "deliver-or-default"
            } else {
                c
            };
            let n = report
                .classes
                .get(oracle)
                .and_then(|m| m.get(name))
                .copied()
                .unwrap_or(0);
            report.check("coverage", n > 0);
            if n == 0 {
                let left = format!("oracle {oracle} never produced class {c}");
                coverage_failure(report, left, "every O4 class must be hit");
            }
        }
    }
    // notqmail: a left-out qmail account must stop qmail-lspawn (in R;
    // G agrees address by address)
    if report.release == qmail_resolver::QmailRelease::Notqmail109.name()
        && report.lspawn_missing_scenarios > 0
    {
        report.check("coverage", report.lspawn_defers > 0);
        if report.lspawn_defers == 0 {
            let left = format!(
                "R never answered qmail-lspawn's start failure in {} scenarios without one of qmailp, qmailq, nofiles",
                report.lspawn_missing_scenarios
            );
            coverage_failure(
                report,
                left,
                "notqmail's qmail-lspawn looks them up when it starts",
            );
        }
    }
    if report.errno_fault_scenarios > 0 {
        let sys = |m: &std::collections::BTreeMap<String, u64>| {
            m.get("tempfail-sys").copied().unwrap_or(0)
        };
        let counts = [("R", sys(&report.verdicts)), ("C", sys(&report.c_verdicts))];
        for (oracle, n) in counts {
            report.check("coverage", n > 0);
            if n == 0 {
                let left = format!(
                    "oracle {oracle} never gave the verdict tempfail-sys in {} errno-fault scenarios",
                    report.errno_fault_scenarios
                );
                coverage_failure(report, left, "an injected ETXTBSY/EIO must reach G2/G4");
            }
        }
    }
}

/// Counts the known-differences rows as checks (pair `known`) and keeps
/// them for the report's table.
fn tally_known(report: &mut Report, rows: Vec<KnownRow>) {
    for row in &rows {
        match row.status {
            RowStatus::Right => report.check("known", true),
            RowStatus::Wrong => {
                report.check("known", false);
                report.failures.push(Failure {
                    pair: "known".into(),
                    scenario: 0,
                    address: Some(row.address.clone()),
                    left: format!("deliberate change {}: {}", row.change, row.title),
                    right: row.note.clone().unwrap_or_default(),
                    dir: None,
                    replay: None,
                    shrunk: false,
                });
            }
            RowStatus::Skipped | RowStatus::Covered => {}
        }
    }
    report.known = rows;
}

/// The report's names of the third-party patches of the run's stack.
fn stack_labels(opts: &RunOptions) -> Vec<String> {
    opts.stack
        .iter()
        .flat_map(|s| s.patches.iter().map(|p| p.label()))
        .collect()
}
