//! Oracle P on its own: the RCPTCHECK program qmail-rcptcheck-realrcptto
//! (built with ASan+UBSan, run per address by the hook harness) on small
//! worlds: exit codes, the cause line of exit 111, the log line naming
//! qmail-smtpd's pid (the parent), deny-all mode, nothing on stdout; and
//! the program warning-free with gcc and clang.

mod rrt_common;

use std::ffi::OsString;
use std::sync::OnceLock;

use qmail_difftest::cc::{self, Sanitize};
use qmail_difftest::oracle::c::CheckOptions;
use qmail_difftest::oracle::p::{expected_log_line, PAnswers, PDriver, PStatus};
use rrt_common::*;

fn p() -> &'static PDriver {
    static P: OnceLock<PDriver> = OnceLock::new();
    P.get_or_init(|| {
        PDriver::build(Sanitize::AddressUndefined, false)
            .expect("building the RCPTCHECK program and harness")
    })
}

fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect()
}

fn ask(w: &World, addrs: &[&str], opts: &CheckOptions) -> PAnswers {
    let a: Vec<Vec<u8>> = addrs.iter().map(|x| x.as_bytes().to_vec()).collect();
    p().check(&w.home, w.brk, &w.alias, &a, opts, false)
        .unwrap()
}

/// joe (uid 1001) with `.qmail-foo`.
fn joe_world() -> World {
    let mut w = World::new();
    w.user("joe", 1001);
    w.dotqmail("joe", ".qmail-foo");
    w
}

#[test]
fn exit_codes_and_the_reject_log_line() {
    let w = joe_world();
    let mut o = w.opts();
    o.env = env(&[("PROTO", "TCP"), ("TCPREMOTEIP", "192.0.2.7")]);
    let a = ask(
        &w,
        &[
            "joe-foo@example.com",
            "joe-bar@example.com",
            "x@remote.example",
        ],
        &o,
    );
    let st: Vec<PStatus> = a.runs.iter().map(|r| r.status).collect();
    assert_eq!(st, [PStatus::Exit(0), PStatus::Exit(100), PStatus::Exit(0)]);
    assert!(a.runs[0].stderr.is_empty() && a.runs[2].stderr.is_empty());
    // the line qmail-smtpd itself would log, with qmail-smtpd's pid
    let want = format!("realrcptto {} 192.0.2.7 joe-bar@example.com\n", a.parent);
    assert_eq!(String::from_utf8_lossy(&a.runs[1].stderr), want);
    assert_eq!(
        expected_log_line(a.parent, "192.0.2.7", b"joe-bar@example.com") + "\n",
        want
    );
    for r in &a.runs {
        assert!(r.stdout.is_empty(), "wrote to the client: {r:?}");
    }
}

#[test]
fn unreadable_control_file_is_111_with_the_cause() {
    let w = joe_world();
    let locals = w.home.join("control").join("locals");
    chmod(&locals, 0o000);
    let mut o = w.opts();
    o.run_as = Some(NOBODY);
    let a = ask(&w, &["joe-bar@example.com"], &o);
    let r = &a.runs[0];
    assert_eq!(r.status, PStatus::Exit(111), "{r:?}");
    assert_eq!(
        String::from_utf8_lossy(&r.stderr),
        "qmail-rcptcheck-realrcptto: unable to read controls\n"
    );
    assert_eq!(r.verdict(), "tempfail-control");
    // readable again: the same address is refused
    chmod(&locals, 0o644);
    assert_eq!(
        ask(&w, &["joe-bar@example.com"], &o).runs[0].status,
        PStatus::Exit(100)
    );
}

#[test]
fn unreadable_users_cdb_is_111_with_the_cause() {
    let w = joe_world();
    w.assign(&["=joe:joe:1001:1001:/nonexistent:::"]);
    chmod(&w.home.join("users").join("cdb"), 0o000);
    let mut o = w.opts();
    o.run_as = Some(NOBODY);
    let r = &ask(&w, &["joe-bar@example.com"], &o).runs[0];
    assert_eq!(r.status, PStatus::Exit(111), "{r:?}");
    assert_eq!(
        String::from_utf8_lossy(&r.stderr),
        "qmail-rcptcheck-realrcptto: unable to read cdb user database\n"
    );
}

#[test]
fn deny_all_accepts_every_recipient_and_logs_each_would_be_rejection() {
    let w = joe_world();
    let mut o = w.opts();
    o.env = env(&[("QMAILRRTDENYALL", "1")]);
    let a = ask(
        &w,
        &[
            "joe-bar@example.com",
            "joe-foo@example.com",
            "joe-baz@example.com",
        ],
        &o,
    );
    for r in &a.runs {
        assert_eq!(r.status, PStatus::Exit(0), "{r:?}");
    }
    // each recipient is its own process: both would-be rejections logged
    assert_eq!(
        a.runs[0].log_lines(),
        [format!(
            "realrcptto {} unknown joe-bar@example.com",
            a.parent
        )]
    );
    assert!(a.runs[1].stderr.is_empty());
    assert_eq!(
        a.runs[2].log_lines(),
        [format!(
            "realrcptto {} unknown joe-baz@example.com",
            a.parent
        )]
    );
    // any other value is not deny-all
    o.env = env(&[("QMAILRRTDENYALL", "yes")]);
    assert_eq!(
        ask(&w, &["joe-bar@example.com"], &o).runs[0].status,
        PStatus::Exit(100)
    );
}

#[test]
fn missing_recipient_is_111_with_the_cause() {
    let w = joe_world();
    let a = p()
        .check(
            &w.home,
            w.brk,
            &w.alias,
            &[b"joe-bar@example.com".to_vec()],
            &w.opts(),
            true,
        )
        .unwrap();
    let r = &a.runs[0];
    assert_eq!(r.status, PStatus::Exit(111));
    assert_eq!(
        String::from_utf8_lossy(&r.stderr),
        "qmail-rcptcheck-realrcptto: RECIPIENT not set\n"
    );
}

#[test]
fn program_is_warning_free_with_gcc_and_clang() {
    let srcs = [
        cc::core_dir().join("qmail-rcptcheck-realrcptto.c"),
        cc::core_dir().join("realrcptto.c"),
        cc::driver_dir().join("rcptcheck-autos.c"),
    ];
    let dir = tempfile::tempdir().unwrap();
    for compiler in ["gcc", "clang"] {
        if qmail_difftest::procenv::which(compiler).is_none() {
            assert!(
                std::env::var_os("CI").is_none(),
                "{compiler} is required in CI"
            );
            println!("SKIPPED: {compiler} not installed");
            continue;
        }
        let out = dir.path().join(compiler);
        cc::compile(compiler, &srcs, &out, Sanitize::None)
            .unwrap_or_else(|e| panic!("{compiler}: {e}"));
    }
}
