//! `build --prefix` as an unprivileged user: it succeeds, writes nothing
//! outside the prefix, both instchecks are silent, the programs run, and a
//! second build does nothing; for netqmail-1.06 and notqmail-1.09.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use qmail_build::manifest::Manifest;
use qmail_build::{build, LEAPSECS_PATH};

fn env_path(k: &str) -> PathBuf {
    PathBuf::from(std::env::var_os(k).unwrap_or_else(|| panic!("{k} not set")))
}

/// Runs as the unprivileged user, started by the test below.
#[test]
#[ignore = "started by nonroot_build_installs_into_the_prefix_only"]
fn child_nonroot_build() {
    let prefix = env_path("QTK_PREFIX");
    let work = env_path("QTK_WORK");
    let case = std::env::var("QTK_QMAIL").unwrap_or_default();
    let (q, m8) = common::case_named(&case).expect("sources set by the parent");
    let opts = common::options_for(q.release, &q.tree, &m8, &prefix, &work);
    let out = build(&opts).unwrap();
    assert!(!out.up_to_date);
    assert!(
        out.instcheck_warnings.is_empty(),
        "instcheck warned: {:?}",
        out.instcheck_warnings
    );
    assert!(!out.manifest.ownership_applied);
    let again = build(&opts).unwrap();
    assert!(
        again.up_to_date,
        "second build with the same inputs did work"
    );
    // Both instchecks, run directly by this user: silent.
    // (notqmail's own instcheck looks the qmail users up: the build's
    // qtk-instcheck is the same checks without the lookup.)
    let q_check = match q.release.name {
        "notqmail" => "qtk-instcheck",
        _ => "instcheck",
    };
    for (tree, name, check) in [
        (q.release.full_name, q.release.name, q_check),
        ("mess822-0.58", "mess822", "instcheck"),
    ] {
        let o = Command::new(work.join(tree).join(check))
            .current_dir(work.join(tree))
            .output()
            .unwrap();
        assert!(o.status.success(), "{name} instcheck failed");
        assert!(
            o.stdout.is_empty() && o.stderr.is_empty(),
            "{name} instcheck printed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    println!("CHILD-OK");
}

#[test]
fn nonroot_build_installs_into_the_prefix_only() {
    if let Some((q, m8)) = common::netqmail_case() {
        nonroot_build(&q, &m8);
    }
}

#[test]
fn notqmail_nonroot_build_installs_into_the_prefix_only() {
    if let Some((q, m8)) = common::notqmail_case() {
        nonroot_build(&q, &m8);
    }
}

fn nonroot_build(q: &common::Qmail, m8: &Path) {
    let nq = &q.tree;
    let t = tempfile::tempdir().unwrap();
    let top = t.path();
    std::fs::set_permissions(top, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let owned = top.join("owned");
    let work = top.join("work");
    let prefix = owned.join("qmail");
    for d in [&owned, &work, &prefix] {
        std::fs::create_dir(d).unwrap();
        common::give_to_nobody(d);
    }
    // The setgid-directory gotcha (mess822-nonroot spec C.2): the prefix
    // is a setgid directory of a group the building user is not in, so
    // every directory created in it inherits that group, and a plain
    // chmod 02755 by the user would silently lose the setgid bit (and
    // mess822's instcheck would warn).
    // PREFIX/mess822 (mess822's conf-home) is such a directory here.
    if unsafe { libc::geteuid() } == 0 {
        let m8home = prefix.join("mess822");
        std::fs::create_dir(&m8home).unwrap();
        std::os::unix::fs::chown(&m8home, Some(65534), Some(54321)).unwrap();
        std::fs::set_permissions(
            &m8home,
            std::os::unix::fs::PermissionsExt::from_mode(0o2775),
        )
        .unwrap();
    }
    std::fs::write(owned.join("neighbour"), "untouched\n").unwrap();
    common::give_to_nobody(&owned.join("neighbour"));
    let skip: [&Path; 2] = [&work, &prefix];
    let before_top = common::snapshot(top, &skip);
    let before_etc = common::snapshot(Path::new("/etc"), &[]);
    common::run_child_unprivileged(
        "child_nonroot_build",
        &[
            ("QTK_PREFIX", &prefix),
            ("QTK_WORK", &work),
            ("QTK_QMAIL", Path::new(q.release.name)),
            (q.var, nq),
            ("QMAIL_SOURCE_MESS822", m8),
        ],
    );
    assert_eq!(
        before_top,
        common::snapshot(top, &skip),
        "something outside the prefix changed"
    );
    assert_eq!(
        before_etc,
        common::snapshot(Path::new("/etc"), &[]),
        "/etc changed"
    );
    assert!(
        !Path::new("/etc/leapsecs.dat").exists() || before_etc.contains_key("/etc/leapsecs.dat")
    );

    // What was installed.
    let m = Manifest::read(&prefix.join("share/qmail-toolkit/manifest.json"))
        .unwrap()
        .expect("manifest written");
    let leap = prefix.join(LEAPSECS_PATH);
    assert_eq!(
        std::fs::read(&leap).unwrap(),
        std::fs::read(m8.join("leapsecs.dat")).unwrap()
    );
    for f in &m.files {
        assert!(
            f.path.starts_with(prefix.to_str().unwrap()),
            "{} outside prefix",
            f.path
        );
        let p = Path::new(&f.path);
        assert!(
            p.symlink_metadata().is_ok(),
            "{} in manifest but missing",
            f.path
        );
    }
    let smtpd = m
        .files
        .iter()
        .find(|f| f.path.ends_with("/bin/qmail-smtpd"))
        .unwrap();
    assert_eq!(smtpd.mode, "0755");
    assert_eq!(smtpd.user.as_ref().unwrap().name, "root");
    assert!(smtpd.sha256.as_ref().unwrap().len() == 64);
    assert!(m
        .patches
        .iter()
        .any(|p| p.file == "mess822-0.58-nonroot.patch"));
    // the RCPTCHECK program and its page, from the rcptcheck patch
    let rcptcheck_patch = format!("{}-rcptcheck.patch", q.release.full_name);
    assert!(
        m.patches.iter().any(|p| p.file == rcptcheck_patch),
        "{rcptcheck_patch} not recorded"
    );
    for f in [
        "/bin/qmail-rcptcheck-realrcptto",
        "/man/man8/qmail-rcptcheck-realrcptto.8",
    ] {
        assert!(
            m.files.iter().any(|e| e.path.ends_with(f)),
            "{f} not installed"
        );
    }
    assert!(m
        .releases
        .iter()
        .all(|r| r.digest.starts_with("unverified: ")));

    // The programs run.
    let bin = prefix.join("bin");
    let o = Command::new(bin.join("qmail-local")).output().unwrap();
    assert_eq!(o.status.code(), Some(100));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("usage"),
        "qmail-local: {o:?}"
    );

    std::fs::write(prefix.join("control/me"), "qtk.example\n").unwrap();
    // the RCPTCHECK program runs: a 111 with its cause without RECIPIENT,
    // exit 0 for a remote recipient
    let rc = bin.join("qmail-rcptcheck-realrcptto");
    let o = Command::new(&rc).env_clear().output().unwrap();
    assert_eq!(o.status.code(), Some(111), "{o:?}");
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "qmail-rcptcheck-realrcptto: RECIPIENT not set\n"
    );
    let o = Command::new(&rc)
        .env_clear()
        .env("RECIPIENT", "someone@remote.example")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(o.stdout.is_empty());
    let mut child = Command::new(bin.join("qmail-smtpd"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"QUIT\r\n").unwrap();
    let o = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.starts_with("220 qtk.example ESMTP\r\n"),
        "qmail-smtpd said {text:?}"
    );
    assert!(
        text.contains("221 qtk.example"),
        "qmail-smtpd said {text:?}"
    );

    let mut child = Command::new(prefix.join("mess822/bin/822date"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .env("TZ", "UTC")
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"Date: Mon, 23 Nov 2026 21:00:00 +0100\nSubject: x\n\nbody\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    assert!(
        text.contains("2026-11-23 21:00:00 +0100"),
        "822date said {text:?}"
    );
    assert!(
        text.contains("2026-11-23 20:00:00"),
        "822date said {text:?}"
    );
}
