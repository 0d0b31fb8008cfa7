//! Pairs R-B and R-L: generated `.qmail` programs
//! ([`crate::options::program_seed`]) through the resolver's `.qmail`
//! model and oracle B (the branch C core in its driver; always, the first
//! [`PROGRAMS_B`]) and oracle L (patched qmail-local; with the netqmail
//! tree, the first [`PROGRAMS_L`]), each with `-N` and `-n`, compared as
//! `tests/tests/branch_b.rs` and `branch_l.rs` do.

use crate::cc::Sanitize;
use crate::error::RunError;
use crate::failures::program_failure_dir;
use crate::options::{program_seed, RunOptions, NO_QMAIL_TREE, PROGRAMS_B, PROGRAMS_L};
use crate::oracle::b::{self, Driver, GenOptions, GenProgram, Mode};
use crate::oracle::l::{self, LocalBuild};
use crate::report::{write_atomic, Failure, Report};
use crate::scratch::scratch_dir;
use std::path::{Path, PathBuf};
use std::time::Instant;
use upstream_hashes::SourceTree;

/// Both modes every program is run in.
const MODES: [Mode; 2] = [Mode::Deliver, Mode::Print];

/// Runs pairs R-B and R-L into `report` (R-L is listed as skipped without
/// a qmail tree).
pub(crate) fn compare_programs(opts: &RunOptions, report: &mut Report) -> Result<(), RunError> {
    let start = Instant::now();
    let scratch = scratch_dir(&opts.out_dir)?;
    pair_r_b(opts, &scratch, report)?;
    match opts.patched_base() {
        Some(src) => pair_r_l(opts, &src, &scratch, report)?,
        None => report
            .skipped
            .push(format!("R-L (patched qmail-local): {NO_QMAIL_TREE}")),
    }
    let secs = start.elapsed().as_secs_f64();
    report.programs_seconds = secs;
    report.seconds += secs;
    Ok(())
}

/// How a program is named in a failure.
fn desc(opts: &RunOptions, i: u64, ps: u64, g: &GenProgram, mode: Mode) -> String {
    format!(
        "program {i} (generate_program({ps}, GenOptions::default()), run seed {}), {mode:?}, x bit {}, statuses {:?}:\n{}",
        opts.seed,
        g.forward_only,
        g.statuses,
        String::from_utf8_lossy(&g.bytes)
    )
}

/// Pair R-B: oracle B's trace vs the resolver's view of every program.
fn pair_r_b(opts: &RunOptions, scratch: &Path, report: &mut Report) -> Result<(), RunError> {
    let driver = Driver::build_cached(Sanitize::None)?;
    // Per-run: concurrent runs share the scratch dir.
    let files = tempfile::Builder::new()
        .prefix("b-programs")
        .tempdir_in(scratch)?;
    let files = files.path();
    for i in 0..PROGRAMS_B {
        let ps = program_seed(opts.seed, i);
        let g = b::generate_program(ps, GenOptions::default());
        report.programs_b += 1;
        for mode in MODES {
            let file = files.join(format!("{mode:?}.qmail"));
            let run = driver.run(&file, &g.bytes, g.forward_only, mode, &g.statuses);
            let (left, right) = match run {
                Ok(t) => {
                    let cmp = b::compare_resolver(&g.bytes, g.forward_only, mode, &g.statuses, &t);
                    let Err(views) = cmp else {
                        report.check("R-B", true);
                        continue;
                    };
                    let (bv, rv) = *views;
                    (
                        format!("B {bv:?}\nB trace:\n{}", t.render()),
                        format!("R {rv:?}"),
                    )
                }
                Err(e) => (format!("B failed: {e}"), "R ran".to_string()),
            };
            report.check("R-B", false);
            let name = format!("R-B-{ps}-{mode:?}");
            let dir = program_failure_dir(opts, &name, &g.bytes, "")?;
            let cmd =
                driver.rerun_command(&dir.join("dot-qmail"), g.forward_only, mode, &g.statuses);
            let d = desc(opts, i, ps, &g, mode);
            let text = format!(
                "pair: R-B\n{d}\nleft:  {left}\nright: {right}\n\nre-run oracle B:\n  {cmd}\n"
            );
            write_atomic(&dir.join("disagreement.txt"), text.as_bytes())?;
            push_program_failure(report, "R-B", i, d, left, right, dir, cmd);
        }
    }
    Ok(())
}

/// Pair R-L: what patched qmail-local delivered vs what the resolver's
/// model says it delivers, for the first [`PROGRAMS_L`] programs.
fn pair_r_l(
    opts: &RunOptions,
    src: &SourceTree,
    scratch: &Path,
    report: &mut Report,
) -> Result<(), RunError> {
    let lb = LocalBuild::build_cached(src, &scratch.join("l"), true)?;
    // Per-run (concurrent runs share the scratch dir), kept while
    // a failing home in it is kept for its re-run script.
    let homes = tempfile::Builder::new()
        .prefix("l-homes")
        .tempdir_in(scratch)?
        .keep();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&homes, std::fs::Permissions::from_mode(0o755))?;
    }
    for i in 0..PROGRAMS_L {
        let ps = program_seed(opts.seed, i);
        let g = b::generate_program(ps, GenOptions::default());
        report.programs_l += 1;
        for mode in MODES {
            let home = homes.join(format!("p{i}-{mode:?}"));
            let got = lb.run(&home, &g.bytes, g.forward_only, &g.maildirs, mode)?;
            let want = l::resolver_expected(&g, mode);
            let rerun = home.with_extension("rerun.sh");
            if got == want {
                report.check("R-L", true);
                let _ = std::fs::remove_dir_all(&home);
                let _ = std::fs::remove_file(&rerun);
                let _ = std::fs::remove_file(homes.join(format!("p{i}-{mode:?}.queue")));
                continue;
            }
            report.check("R-L", false);
            let cmd = format!("sh {}", rerun.display());
            let left = format!("L (patched qmail-local, home {}) {got:?}", home.display());
            let right = format!("R {want:?}");
            let d = desc(opts, i, ps, &g, mode);
            let text = format!(
                "pair: R-L\n{d}\nleft:  {left}\nright: {right}\n\nre-run qmail-local (into the same home):\n  {cmd}\n"
            );
            let dir = program_failure_dir(opts, &format!("R-L-{ps}-{mode:?}"), &g.bytes, &text)?;
            push_program_failure(report, "R-L", i, d, left, right, dir, cmd);
        }
    }
    // gone unless a failing home is kept in it
    let _ = std::fs::remove_dir(&homes);
    Ok(())
}

/// Records a disagreement on generated program `index` (pairs R-B, R-L).
#[allow(clippy::too_many_arguments)]
fn push_program_failure(
    report: &mut Report,
    pair: &str,
    index: u64,
    desc: String,
    left: String,
    right: String,
    dir: PathBuf,
    replay: String,
) {
    report.failures.push(Failure {
        pair: pair.into(),
        scenario: index,
        address: None,
        left: format!("{desc}\n{left}"),
        right,
        dir: Some(dir),
        replay: Some(replay),
        shrunk: false,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_generated_program_is_compared_r_vs_b_in_both_modes() {
        let out = tempfile::tempdir().unwrap();
        let opts = RunOptions {
            stack: None,
            release: None,
            seed: 7,
            scenarios: 0,
            out_dir: out.path().to_path_buf(),
            exe: PathBuf::from("/nonexistent"),
            qmail: None,
            require_upstream: false,
            progress: false,
            require_coverage: false,
            tamper: None,
        };
        let mut report = Report::default();
        compare_programs(&opts, &mut report).unwrap();
        let rb = &report.pairs["R-B"];
        assert_eq!(rb.compared, 2 * PROGRAMS_B);
        assert_eq!(rb.disagreed, 0, "{:#?}", report.failures);
        assert_eq!(report.programs_b, PROGRAMS_B);
        assert!(!report.pairs.contains_key("R-L"));
        assert!(report.skipped.iter().any(|s| s.starts_with("R-L ")));
        assert!(report
            .markdown()
            .contains(&format!("{PROGRAMS_B} generated `.qmail` programs")));
        // the programs differ from run seed to run seed
        assert_ne!(
            b::generate_program(program_seed(7, 0), GenOptions::default()),
            b::generate_program(program_seed(8, 0), GenOptions::default())
        );
    }
}
