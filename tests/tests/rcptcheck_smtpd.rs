//! The RCPTCHECK program under a real hook: qmail-smtpd with the
//! smtpd-rcptcheck patch (the stacked tree of `cargo xtask test
//! --with-patch`, `QMAIL_STACKED_QMAIL`, when its qmail-smtpd has the
//! hook, else SKIPPED; built by
//! [`RcptcheckBuild`], the tree of tier S/rcptcheck) runs
//! qmail-rcptcheck-realrcptto (from the rcptcheck patch, with the core and
//! a `realrcptto.o` rule as notqmail's realrcptto patch provides them) for
//! each RCPT. Its replies must follow the core's verdicts (oracle C, which
//! agrees with R on every generated scenario): 250 accept, `553 sorry, no
//! mailbox here by that name. (#5.1.1)` reject, `421 unable to verify
//! recipient (#4.3.0)` for a 111; its stderr gets the log line with
//! qmail-smtpd's pid.

mod rrt_common;

use std::io::Write;
use std::process::{Command, Stdio};

use qmail_difftest::oracle::c::COutcome;
use qmail_difftest::oracle::sq_rcptcheck::{self, RcptcheckBuild};
use qmail_difftest::procenv;
use rrt_common::*;

/// The hooked notqmail tree ([`RcptcheckBuild`]), or `None` (SKIPPED).
fn build() -> Option<RcptcheckBuild> {
    match qmail_difftest::upstream::stacked_qmail() {
        Some(t) if sq_rcptcheck::has_hook(&t) => Some(RcptcheckBuild::build(&t).unwrap()),
        _ => {
            println!("SKIPPED: rcptcheck_smtpd: no qmail tree with the smtpd-rcptcheck hook (cargo xtask test --source notqmail=DIR --with-patch smtpd-rcptcheck.patch)");
            None
        }
    }
}

/// One SMTP session (pipelined) with `rcpts`; the replies to the RCPTs
/// (until a 421), qmail-smtpd's pid and its stderr.
fn session(
    b: &RcptcheckBuild,
    w: &World,
    env: &[(&str, &str)],
    rcpts: &[&str],
) -> (Vec<String>, u32, String) {
    let mut cmd = Command::new(b.smtpd());
    cmd.env_clear()
        .current_dir(&w.home)
        .env("RCPTCHECK", b.program())
        .env("PROTO", "TCP")
        .env("TCPREMOTEIP", "192.0.2.9")
        .envs(env.iter().map(|(k, v)| (*k, *v)));
    let opts = w.opts();
    procenv::apply_nss(
        &mut cmd,
        opts.passwd.as_deref(),
        opts.group.as_deref(),
        &w.root().join("group"),
        &[],
    )
    .unwrap();
    let mut input = String::from("HELO t.test\r\nMAIL FROM:<s@t.test>\r\n");
    for r in rcpts {
        input.push_str(&format!("RCPT TO:<{r}>\r\n"));
    }
    input.push_str("QUIT\r\n");
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let lines: Vec<String> = out.split("\r\n").map(str::to_string).collect();
    // greeting, HELO, MAIL, then one reply per RCPT
    assert!(lines.len() > 3, "{out}");
    assert!(lines[2].starts_with("250 "), "MAIL: {out}");
    let rcpt: Vec<String> = lines[3..]
        .iter()
        .take(rcpts.len())
        .take_while(|l| !l.starts_with("221"))
        .cloned()
        .collect();
    (rcpt, pid, String::from_utf8_lossy(&o.stderr).into_owned())
}

fn world() -> World {
    let mut w = World::new();
    w.user("joe", 1001);
    w.dotqmail("joe", ".qmail-foo");
    w.control("rcpthosts", "example.com\n");
    w
}

const NOMBOX: &str = "553 sorry, no mailbox here by that name. (#5.1.1)";

#[test]
fn the_hooked_qmail_smtpd_follows_the_core() {
    let Some(tree) = build() else {
        return;
    };
    let w = world();
    let addrs = [
        "joe-foo@example.com",
        "joe-bar@example.com",
        "joe@example.com",
        "nobody@example.com",
    ];
    let c = w.check(&addrs);
    let (replies, pid, log) = session(&tree, &w, &[], &addrs);
    assert_eq!(replies.len(), addrs.len(), "{replies:?}");
    for ((a, r), v) in addrs.iter().zip(&replies).zip(&c) {
        match v.outcome {
            COutcome::Accept => assert!(r.starts_with("250 "), "{a}: {r}"),
            COutcome::Reject => assert_eq!(r, NOMBOX, "{a}"),
            other => panic!("{a}: C {other:?}"),
        }
    }
    assert_eq!(replies[1], NOMBOX);
    assert_eq!(
        log,
        format!("realrcptto {pid} 192.0.2.9 joe-bar@example.com\nrealrcptto {pid} 192.0.2.9 nobody@example.com\n")
    );
    // deny-all: every RCPT accepted, the would-be rejections still logged
    let (replies, pid, log) = session(&tree, &w, &[("QMAILRRTDENYALL", "1")], &addrs);
    assert!(replies.iter().all(|r| r.starts_with("250 ")), "{replies:?}");
    assert!(
        log.contains(&format!("realrcptto {pid} 192.0.2.9 joe-bar@example.com\n")),
        "{log}"
    );
}

#[test]
fn exit_111_is_421_unable_to_verify_recipient() {
    let Some(tree) = build() else {
        return;
    };
    let w = world();
    // control/locals a directory: the program cannot read its controls
    let locals = w.home.join("control").join("locals");
    std::fs::remove_file(&locals).unwrap();
    std::fs::create_dir(&locals).unwrap();
    let (replies, _, log) = session(&tree, &w, &[], &["joe-bar@example.com"]);
    assert_eq!(replies, ["421 unable to verify recipient (#4.3.0)"]);
    assert_eq!(log, "qmail-rcptcheck-realrcptto: unable to read controls\n");
}
