//! `cargo xtask verify` prints one line for every release tarball, even
//! when one cannot be read, and never blocks on a FIFO.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `xtask verify --distfiles DIR`, killing it (and failing) after 30 s.
fn verify(dir: &Path) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("verify")
        .arg("--distfiles")
        .arg(dir)
        .env_remove("QMAIL_DISTFILES")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("xtask verify blocked for more than 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_fifo_in_place_of_the_first_tarball_is_reported_and_the_rest_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let releases = upstream_hashes::tarballs();
    assert!(releases.len() >= 2);
    let first = tmp.path().join(releases[0].file_name);
    let st = Command::new("mkfifo").arg(&first).status().unwrap();
    assert!(st.success());

    let (code, stdout, stderr) = verify(tmp.path());
    eprintln!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(code, Some(1));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), releases.len(), "{stdout}");
    assert_eq!(
        lines[0],
        format!("not a regular file: {} (a FIFO)", first.display())
    );
    for (line, r) in lines[1..].iter().zip(&releases[1..]) {
        assert_eq!(
            *line,
            format!("{}: missing", tmp.path().join(r.file_name).display())
        );
    }
    assert!(stderr.contains("are not the upstream ones"), "{stderr}");
}

#[test]
fn an_unreadable_path_says_cannot_read_not_missing() {
    let tmp = tempfile::tempdir().unwrap();
    // A file where the distfiles directory should be: ENOTDIR for every
    // tarball.
    let not_dir = tmp.path().join("distfiles");
    std::fs::write(&not_dir, b"x").unwrap();
    let (code, stdout, _) = verify(&not_dir);
    assert_eq!(code, Some(1));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), upstream_hashes::tarballs().len(), "{stdout}");
    for (line, r) in lines.iter().zip(upstream_hashes::tarballs()) {
        let prefix = format!("cannot read {}: ", not_dir.join(r.file_name).display());
        assert!(line.starts_with(&prefix), "{line}");
        assert!(!line.contains("missing"), "{line}");
    }
}
