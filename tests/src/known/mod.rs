//! The known differences between the original realrcptto (2006.12.10) and
//! qmail itself: realrcptto.md Part 1, "deliberate changes" 1–9, each
//! shown as a hand-written scenario that our patch gets right.
//!
//! Every directory `tests/known/NN-name/` holds
//!
//! * `known.json`: the change number, a one-line title and one entry per
//!   address: what the original patch did (its verdict and the Part 2 rule
//!   it follows), what qmail itself does (outcome class and text, per
//!   resolution.md), and what is observed (`verdict`, `qmtp_reply`,
//!   `qmtp_denyall` or `log`);
//! * `scenario.json`: the qmail world, in the
//!   [`Scenario`] format (absent when every
//!   entry only points at named tests, `covered_by`).
//!
//! [`run_known`] runs each case in two steps:
//!
//! | Step    | File         | What                                                   |
//! |---------|--------------|--------------------------------------------------------|
//! | model   | `case.rs`    | `known.json` ([`KnownFile`], [`KnownCase`]), loading     |
//! | observe | `observe.rs` | materialise the world, ask R (as qmaild) and C always; S and Q (patched qmail-smtpd/qmail-qmtpd) and G (pristine netqmail-1.06, as root) when `RunOptions::netqmail` is set |
//! | judge   | `judge.rs`   | compare with qmail's outcome and the original's        |
//! | table   | `table.rs`   | one [`KnownRow`] per address; [`render_markdown`]       |
//!
//! A row is *right* when our verdicts follow qmail's outcome under the
//! verdict rule (reject iff qmail bounces with `Sorry, no mailbox here by
//! that name. (#5.1.1)`) and differ from the original's (for the few
//! entries marked `"difference": false`, which check a claim that the
//! original behaved differently, they must equal it instead).

mod case;
mod judge;
mod observe;
mod table;

pub use case::{
    known_dir, Documented, KnownCase, KnownError, KnownFile, Observe, Original, KNOWN_JSON,
    NO_MAILBOX, QMTP_NO_MAILBOX, SMTP_NO_MAILBOX,
};
pub use table::{render_markdown, to_json, KnownRow, RowStatus};

use crate::options::RunOptions;
use crate::oracle::setup::{self, Oracles};
use crate::scenario::{self, Scenario};
use case::{io_err, load_known, test_exists};
use std::path::{Path, PathBuf};

/// Runs every case of [`known_dir`].
pub fn run_known(opts: &RunOptions) -> Result<Vec<KnownRow>, KnownError> {
    run_known_in(&known_dir(), opts)
}

/// Runs every case directory under `dir` (sorted by name).
pub fn run_known_in(dir: &Path, opts: &RunOptions) -> Result<Vec<KnownRow>, KnownError> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io_err(format!("reading {}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(KNOWN_JSON).is_file())
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        return Err(KnownError::Data(format!(
            "{}: no case directories (with {KNOWN_JSON})",
            dir.display()
        )));
    }
    let o = setup::prepare(opts, &opts.out_dir)?;
    let mut rows = Vec::new();
    for d in dirs {
        rows.extend(run_case(&d, &o)?);
    }
    Ok(rows)
}

/// The rows of one case directory: observed and judged when it has a
/// scenario, else the named tests that cover it.
fn run_case(dir: &Path, o: &Oracles) -> Result<Vec<KnownRow>, KnownError> {
    let kf = load_known(&dir.join(KNOWN_JSON))?;
    let case = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let scp = dir.join(scenario::layout::SCENARIO_JSON);
    if !scp.is_file() {
        return covered_rows(dir, &kf, &case);
    }
    let sc = Scenario::load(&scp).map_err(io_err(format!("loading {}", scp.display())))?;
    for k in &kf.cases {
        if !sc.addresses.contains(&k.address) {
            return Err(KnownError::Data(format!(
                "{}: address {} is not in scenario.json",
                dir.display(),
                k.address
            )));
        }
    }
    let obs = observe::observe(&scp, &sc, &kf, o)?;
    let g_absent = o.g.as_ref().err().copied();
    let mut rows = Vec::new();
    for (k, us) in kf.cases.iter().zip(&obs.ours) {
        rows.push(judge::judge(&kf, &case, k, us, &sc, &obs, g_absent)?);
    }
    Ok(rows)
}

/// The rows of a case without a scenario: every entry must name tests
/// that exist (`covered_by`).
fn covered_rows(dir: &Path, kf: &KnownFile, case: &str) -> Result<Vec<KnownRow>, KnownError> {
    let mut rows = Vec::new();
    for k in &kf.cases {
        let mut row = table::base_row(kf, case, k);
        if k.covered_by.is_empty() {
            return Err(KnownError::Data(format!(
                "{}: no scenario.json and no covered_by for {}",
                dir.display(),
                k.address
            )));
        }
        let missing: Vec<&String> = k.covered_by.iter().filter(|t| !test_exists(t)).collect();
        if missing.is_empty() {
            row.status = RowStatus::Covered;
            row.note = Some(format!("covered by {}", k.covered_by.join(", ")));
        } else {
            row.status = RowStatus::Wrong;
            row.note = Some(format!("named tests not found: {missing:?}"));
        }
        rows.push(row);
    }
    Ok(rows)
}
