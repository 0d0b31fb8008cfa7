//! The `cargo test --workspace` step of `cargo xtask test`.
//!
//! Every test binary runs even after one fails (`--no-fail-fast`). The
//! binaries are first listed with `cargo test --no-run
//! --message-format=json`, so that the step can say how many of them did
//! not run or did not finish (a crash, a build failure): each of those
//! counts as one failure, on top of the failed tests.

use anyhow::{Context, Result};
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

/// What the cargo step counted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CargoTally {
    /// Tests passed, summed over every `test result:` line.
    pub passed: u64,
    /// Tests failed, summed the same way.
    pub failed: u64,
    /// Test binaries cargo built (unit, integration, bench-as-test).
    pub binaries: u64,
    /// `test result:` lines seen (one per binary that finished, plus one
    /// per crate's doc-tests).
    pub results: u64,
    /// Doc-test runs started (`Doc-tests NAME` lines).
    pub doc_runs: u64,
}

impl CargoTally {
    /// Binaries (and doc-test runs) that were expected but printed no
    /// `test result:` line: they did not run, crashed or were cut short.
    pub fn not_finished(&self) -> u64 {
        (self.binaries + self.doc_runs).saturating_sub(self.results)
    }
}

/// `test result: ok. 5 passed; 0 failed; …` → (5, 0).
pub fn parse_cargo_result(line: &str) -> Option<(u64, u64)> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let (_, counts) = rest.split_once(". ")?;
    let mut parts = counts.split("; ");
    let p = parts.next()?.strip_suffix(" passed")?.parse().ok()?;
    let f = parts.next()?.strip_suffix(" failed")?.parse().ok()?;
    Some((p, f))
}

/// The number of test executables in `cargo test --no-run
/// --message-format=json` output: compiler-artifact messages of test
/// targets that have an executable.
pub fn count_test_binaries(json_lines: &str) -> u64 {
    json_lines
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["reason"] == "compiler-artifact")
        .filter(|v| v["profile"]["test"] == true)
        .filter(|v| v["executable"].is_string())
        .count() as u64
}

/// Adds what one line of cargo's output says to `tally`.
fn account(tally: &mut CargoTally, line: &str) {
    if let Some((p, f)) = parse_cargo_result(line) {
        tally.passed += p;
        tally.failed += f;
        tally.results += 1;
    } else if line.trim_start().starts_with("Doc-tests ") {
        tally.doc_runs += 1;
    }
}

/// Runs `cargo test --workspace --no-fail-fast` (with `envs` applied to
/// both cargo commands), echoing its output, and counts what ran.
pub fn run(cargo: &str, root: &std::path::Path, envs: &dyn Fn(&mut Command)) -> Result<CargoTally> {
    let mut tally = CargoTally::default();
    let mut list = Command::new(cargo);
    list.current_dir(root)
        .args(["test", "--workspace", "--no-run", "--message-format=json"])
        .stderr(Stdio::inherit());
    envs(&mut list);
    let out = list
        .output()
        .with_context(|| format!("cannot run {list:?}"))?;
    tally.binaries = count_test_binaries(&String::from_utf8_lossy(&out.stdout));
    if !out.status.success() {
        println!("== cargo test: the test binaries did not build");
        tally.failed += 1;
        return Ok(tally);
    }
    let mut c = Command::new(cargo);
    c.current_dir(root)
        .args(["test", "--workspace", "--no-fail-fast"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    envs(&mut c);
    let mut child = c.spawn().with_context(|| format!("cannot run {c:?}"))?;
    let stderr = child.stderr.take().context("no stderr")?;
    // cargo prints `Running`/`Doc-tests` on stderr and the results on
    // stdout; read stderr on a thread so that neither pipe fills up.
    let echo_err = std::thread::spawn(move || -> CargoTally {
        let mut t = CargoTally::default();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            account(&mut t, &line);
        }
        t
    });
    let stdout = child.stdout.take().context("no stdout")?;
    echo_lines(stdout, &mut tally)?;
    let status = child.wait().context("waiting for cargo test")?;
    let from_err = echo_err
        .join()
        .map_err(|_| anyhow::anyhow!("reading cargo's stderr failed"))?;
    tally.doc_runs += from_err.doc_runs;
    if !status.success() && tally.failed == 0 && tally.not_finished() == 0 {
        // cargo failed without a failed test or a missing binary.
        tally.failed += 1;
    }
    Ok(tally)
}

fn echo_lines(out: impl Read, tally: &mut CargoTally) -> Result<()> {
    for line in BufReader::new(out).lines() {
        let line = line.context("reading cargo test output")?;
        println!("{line}");
        account(tally, &line);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cargo_result_lines() {
        assert_eq!(
            parse_cargo_result("test result: ok. 5 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s"),
            Some((5, 0))
        );
        assert_eq!(
            parse_cargo_result("test result: FAILED. 4 passed; 2 failed; 0 ignored"),
            Some((4, 2))
        );
        assert_eq!(parse_cargo_result("running 3 tests"), None);
    }

    #[test]
    fn counts_only_test_executables() {
        let json = concat!(
            r#"{"reason":"compiler-artifact","profile":{"test":true},"executable":"/t/deps/a-1"}"#,
            "\n",
            r#"{"reason":"compiler-artifact","target":{"test":true},"profile":{"test":false},"executable":null}"#,
            "\n",
            r#"{"reason":"compiler-artifact","profile":{"test":true},"executable":"/t/deps/b-2"}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
            "\n"
        );
        assert_eq!(count_test_binaries(json), 2);
    }

    #[test]
    fn a_binary_without_a_result_line_is_not_finished() {
        let mut t = CargoTally {
            binaries: 3,
            ..CargoTally::default()
        };
        for l in [
            "test result: ok. 2 passed; 0 failed; 0 ignored",
            "   Doc-tests qmail_fetch",
            "test result: FAILED. 1 passed; 1 failed; 0 ignored",
            "test result: ok. 0 passed; 0 failed; 0 ignored",
        ] {
            account(&mut t, l);
        }
        // 3 binaries + 1 doc run expected, 3 results seen.
        assert_eq!((t.passed, t.failed, t.not_finished()), (3, 1, 1));
    }
}
