//! The failure directories under `OUT/failures/`: each disagreement of a
//! scenario pair (shrunk to its one address when that still disagrees)
//! saved as a `scenario.json` that `runner::replay` re-runs, and
//! each disagreement of a `.qmail` program pair (R-B, R-L) saved as the
//! program.

use crate::compare_scenario::{check_scenario, Disagreement};
use crate::error::RunError;
use crate::options::{RunOptions, Stack};
use crate::oracle::setup::Oracles;
use crate::report::{write_atomic, Failure, Report};
use crate::scenario::{self, Scenario};
use crate::scratch::world_dir;
use qmail_resolver::QmailRelease;
use std::path::{Path, PathBuf};
use upstream_hashes::SourceTree;

/// The command that replays a failure directory: on the same qmail tree
/// and stack, and, without a tree, modelling the same `release`.
pub fn replay_command(
    dir: &Path,
    qmail: Option<&SourceTree>,
    stack: Option<&Stack>,
    release: QmailRelease,
) -> String {
    let mut cmd = format!("cargo xtask test --replay {}", dir.display());
    // a notqmail run is replayed on notqmail (netqmail is the default)
    if let Some(q) = qmail.filter(|q| q.release.name != "netqmail") {
        cmd.push_str(&format!(
            " --source {}={}",
            q.release.name,
            q.root.display()
        ));
    } else if qmail.is_none() && release != QmailRelease::default() {
        cmd.push_str(&format!(" --release {release}"));
    }
    for p in stack.iter().flat_map(|s| &s.patches) {
        match p.strip {
            1 => cmd.push_str(&format!(" --with-patch {}", p.path.display())),
            n => cmd.push_str(&format!(" --with-patch p{n}:{}", p.path.display())),
        }
    }
    cmd
}

/// Writes failure directory number `n` of scenario `sc` for the
/// disagreement `d` and lists it in the report.
pub(crate) fn record_failure(
    report: &mut Report,
    sc: &Scenario,
    d: &Disagreement,
    o: &Oracles,
    opts: &RunOptions,
    n: usize,
) -> Result<(), RunError> {
    // Shrink to the one address when there is one, and check that the
    // shrunk case still disagrees on the same pair.
    let mut keep = sc.clone();
    let mut shrunk = false;
    if let Some(a) = &d.address {
        let small = sc.with_addresses(vec![a.clone()]);
        let w = world_dir(&o.scratch, "world")?;
        if let Ok(c) = check_scenario(&small, &w.path().join("w"), o, opts) {
            if c.disagreements.iter().any(|x| x.pair == d.pair) {
                keep = small;
                shrunk = true;
            }
        }
    }
    let dir = opts
        .out_dir
        .join("failures")
        .join(format!("{}-{}", sc.seed, n));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    keep.save(&dir.join(scenario::layout::SCENARIO_JSON))?;
    let cmd = replay_command(
        &dir,
        opts.qmail.as_ref(),
        opts.stack.as_ref(),
        opts.resolver_release(),
    );
    let text = format!(
        "pair: {}\nscenario: seed {} index {}\naddress: {}\nleft:  {}\nright: {}\nshrunk to this address: {}\n\nreplay:\n  {cmd}\n",
        d.pair,
        sc.seed,
        sc.index,
        d.address.as_ref().map(|a| a.to_text()).unwrap_or_else(|| "(whole scenario)".into()),
        d.left,
        d.right,
        shrunk
    );
    write_atomic(&dir.join("disagreement.txt"), text.as_bytes())?;
    write_atomic(
        &dir.join("replay.sh"),
        format!("#!/bin/sh\nexec {cmd}\n").as_bytes(),
    )?;
    report.failures.push(Failure {
        pair: d.pair.to_string(),
        scenario: sc.index,
        address: d.address.as_ref().map(|a| a.to_text()),
        left: d.left.clone(),
        right: d.right.clone(),
        dir: Some(dir),
        replay: Some(cmd),
        shrunk,
    });
    Ok(())
}

/// Writes the failure directory `failures/NAME/` of a `.qmail` program
/// disagreement: the program as `dot-qmail` and `disagreement.txt`.
pub(crate) fn program_failure_dir(
    opts: &RunOptions,
    name: &str,
    program: &[u8],
    text: &str,
) -> Result<PathBuf, RunError> {
    let dir = opts.out_dir.join("failures").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    write_atomic(&dir.join("dot-qmail"), program)?;
    write_atomic(&dir.join("disagreement.txt"), text.as_bytes())?;
    Ok(dir)
}
