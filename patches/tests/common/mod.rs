//! Helpers shared by the patch tests: finding the upstream trees, copying
//! a pristine tree, running `patch -p1` and `make` on it.
#![allow(dead_code)] // each test file uses its own subset

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use qmail_patches::Patch;

/// The tree named by `var` (`QMAIL_SOURCE_NETQMAIL`, `QMAIL_SOURCE_NOTQMAIL`,
/// `QMAIL_SOURCE_MESS822`),
/// or `None` after printing `SKIPPED: test: …` when it is not set. Fails the
/// test instead when the run requires it ([`upstream_hashes::source_required`]).
pub fn upstream_or_skip(test: &str, var: &str) -> Option<PathBuf> {
    match std::env::var_os(var).filter(|v| !v.is_empty()) {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            assert!(
                !upstream_hashes::source_required(var),
                "{test}: QMAIL_REQUIRE_UPSTREAM=1 but {var} is not set"
            );
            println!("SKIPPED: {test}: upstream sources absent ({var} not set)");
            None
        }
    }
}

/// The netqmail tree, or `None` (skipped); see [`upstream_or_skip`].
pub fn netqmail_or_skip(test: &str) -> Option<PathBuf> {
    upstream_or_skip(test, "QMAIL_SOURCE_NETQMAIL")
}

/// The notqmail-1.09 tree, or `None` (skipped); see [`upstream_or_skip`].
pub fn notqmail_or_skip(test: &str) -> Option<PathBuf> {
    upstream_or_skip(test, "QMAIL_SOURCE_NOTQMAIL")
}

/// The mess822 tree, or `None` (skipped); see [`upstream_or_skip`].
pub fn mess822_or_skip(test: &str) -> Option<PathBuf> {
    upstream_or_skip(test, "QMAIL_SOURCE_MESS822")
}

/// Copy the contents of the tree `from` into the existing directory `to`.
pub fn copy_tree(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-R")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success(), "cp -R {} {}", from.display(), to.display());
}

/// Run `patch -p1 --batch --forward` (with `--dry-run` when `dry`) in
/// `dir` with `diff` on stdin.
pub fn patch_p1(dir: &Path, diff: &str, dry: bool) -> Output {
    let mut cmd = Command::new("patch");
    cmd.arg("-p1").arg("--batch").arg("--forward");
    if dry {
        cmd.arg("--dry-run");
    }
    let mut child = cmd
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("patch(1) installed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(diff.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Run `patch -p1 --batch --forward --fuzz=0` in `dir` with `diff` on
/// stdin, failing the test with patch's output when it fails or when it
/// reports an offset-free but fuzzy match.
pub fn apply_no_fuzz(dir: &Path, diff: &str, what: &str) {
    let mut child = Command::new("patch")
        .args(["-p1", "--batch", "--forward", "--fuzz=0"])
        .current_dir(dir)
        .env("LC_ALL", "C")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("patch(1) installed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(diff.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !text.contains("fuzz"),
        "{what}: patch -p1 --fuzz=0 failed:\n{text}"
    );
}

/// [`patch_p1`], failing the test with patch's output when it fails.
pub fn apply_ok(dir: &Path, diff: &str, dry: bool, what: &str) {
    let out = patch_p1(dir, diff, dry);
    assert!(
        out.status.success(),
        "{what}: patch -p1{} failed:\n{}{}",
        if dry { " --dry-run" } else { "" },
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every file of `patch` in `dir` is exactly what the generator made.
pub fn assert_files_match(dir: &Path, patch: &Patch) {
    for f in &patch.files {
        let got = std::fs::read_to_string(dir.join(&f.path)).unwrap();
        assert!(got == f.new, "{}: differs after patch -p1", f.path);
    }
}

/// Run `make targets` in `dir`, failing the test with make's output when
/// it fails.
pub fn make_ok(dir: &Path, targets: &[&str], what: &str) {
    let out = Command::new("make")
        .args(targets)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{what}: make {} failed:\n{}\n{}",
        targets.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What `groff -man -ww -z` prints (warnings) for the roff `text`, or
/// `None` after printing `SKIPPED: test: …` when groff is not installed.
pub fn groff_warnings(test: &str, name: &str, text: &str) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join(name);
    std::fs::write(&f, text).unwrap();
    match Command::new("groff")
        .args(["-man", "-ww", "-z"])
        .arg(&f)
        .output()
    {
        Ok(out) => {
            assert!(out.status.success(), "{test}: groff failed on {name}");
            Some(String::from_utf8_lossy(&out.stderr).into_owned())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("SKIPPED: {test}: groff not installed, {name} not rendered");
            None
        }
        Err(e) => panic!("{test}: running groff: {e}"),
    }
}

/// The new text of `path` in `patch`.
pub fn new_text<'a>(patch: &'a Patch, path: &str) -> &'a str {
    &patch
        .files
        .iter()
        .find(|f| f.path == path)
        .unwrap_or_else(|| panic!("{} does not change {path}", patch.file_name))
        .new
}
