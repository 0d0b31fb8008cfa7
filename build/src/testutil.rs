//! Helpers for the unit tests: fake trees and scripts, and running a test
//! again as an unprivileged user.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// Write an executable file (a fake `cc`, `compile`, `load`, …). It is
/// written by a `cp` child, not by this process: a descriptor open for
/// writing here could be inherited by another test thread's fork and make
/// the file "busy" (ETXTBSY) when it is run.
pub fn script(path: &Path, body: &str) {
    let src = path.with_extension("script-text");
    std::fs::write(&src, body).unwrap();
    copy_executable(&src, path);
}

fn copy_executable(src: &Path, dest: &Path) {
    let st = Command::new("cp").arg(src).arg(dest).status().unwrap();
    assert!(st.success(), "cp {} {}", src.display(), dest.display());
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A fake `--cc` in `dir` whose `--version` prints `text` (and which
/// exits 1 if `text` is empty); returns its path.
pub fn fake_cc(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    let body = if text.is_empty() {
        "#!/bin/sh\necho 'no such option' >&2\nexit 1\n".to_string()
    } else {
        format!("#!/bin/sh\n[ \"$1\" = --version ] || exit 2\ncat <<'EOT'\n{text}\nEOT\n")
    };
    script(&p, &body);
    p.to_str().unwrap().to_string()
}

/// Whether this process is root, read from the owner of `/proc/self`
/// (independent of the code under test).
pub fn euid_is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").unwrap().uid() == 0
}

/// The number of supplementary groups of this process, from
/// `/proc/self/status` (independent of the code under test).
pub fn supplementary_groups() -> Vec<u32> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Groups:")).unwrap();
    line["Groups:".len()..]
        .split_whitespace()
        .map(|g| g.parse().unwrap())
        .collect()
}

/// When root: run this unit-test binary's ignored test `name` again as
/// uid/gid 65534 without supplementary groups (from a copy of the binary
/// that user can execute), and panic with its output if it fails. Not
/// root: returns `false` without running anything.
pub fn run_as_nobody(name: &str) -> bool {
    if !euid_is_root() {
        return false;
    }
    let t = tempfile::tempdir().unwrap();
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = t.path().join("unit-tests");
    copy_executable(&std::env::current_exe().unwrap(), &exe);
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&exe);
    rerun(
        &mut cmd,
        name,
        &[("TMPDIR", "/tmp"), ("HOME", "/nonexistent")],
    );
    true
}

/// Run this unit-test binary's ignored test `name` again, as this user,
/// with the extra environment `env`; panics with its output if it fails,
/// else returns it (stdout and stderr).
pub fn run_self(name: &str, env: &[(&str, &str)]) -> String {
    rerun(
        &mut Command::new(std::env::current_exe().unwrap()),
        name,
        env,
    )
}

/// Runs `cmd` (a test binary, or a command that execs one) with the
/// arguments that run only its ignored test `name`, and the extra
/// environment `env`; returns the child's stdout and stderr, and panics
/// with them unless it succeeded and ran exactly that one test.
fn rerun(cmd: &mut Command, name: &str, env: &[(&str, &str)]) -> String {
    let out = cmd
        .args([
            "--ignored",
            "--exact",
            name,
            "--nocapture",
            "--test-threads=1",
        ])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child {name} failed:\n{text}");
    assert!(
        text.contains("1 passed"),
        "child {name} did not run:\n{text}"
    );
    text
}
