//! notqmail-1.09's qmail-lspawn looks up qmailp, qmailq and the group
//! nofiles when it starts and exits 111 when one is missing, so that every
//! local delivery defers. The realrcptto core, told those names
//! (`realrcptto_lspawn_users`, as notqmail's hooks and the notqmail build
//! of the RCPTCHECK program do), then accepts every local recipient; told
//! nothing (netqmail, whose ids are compiled in), it judges as before.
//! Oracle C (`-L`) and oracle P (the program built as notqmail's rcptcheck
//! patch builds it), on small worlds, without upstream sources.

mod rrt_common;

use std::sync::OnceLock;

use qmail_difftest::cc::Sanitize;
use qmail_difftest::oracle::c::CheckOptions;
use qmail_difftest::oracle::p::{PDriver, PStatus};
use rrt_common::*;

/// joe (uid 1001) with `.qmail-foo`, and the qmail accounts qmail-lspawn
/// needs except those named in `missing` (`qmailp`, `qmailq`, `nofiles`).
fn world(missing: &str) -> (World, CheckOptions) {
    let mut w = World::new();
    w.user("joe", 1001);
    w.dotqmail("joe", ".qmail-foo");
    let mut o = w.opts();
    // World's passwd file has qmailp and qmailq; this one may leave one out
    let all = std::fs::read_to_string(w.passwd_file()).unwrap();
    let passwd = w.root().join("passwd-lspawn");
    let kept: String = all
        .lines()
        .filter(|l| missing.is_empty() || !l.starts_with(&format!("{missing}:")))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(kept.contains("joe:"));
    write(&passwd, kept);
    o.passwd = Some(passwd);
    let group = w.root().join("group-lspawn");
    let nofiles = if missing == "nofiles" {
        ""
    } else {
        "nofiles:x:41101:\n"
    };
    write(&group, format!("qmail:x:41100:\n{nofiles}"));
    o.group = Some(group);
    o.env = vec![
        ("PROTO".into(), "TCP".into()),
        ("TCPREMOTEIP".into(), "192.0.2.7".into()),
    ];
    (w, o)
}

const ADDRS: [&str; 3] = [
    "joe-foo@example.com",
    "joe-bar@example.com",
    "x@remote.example",
];

fn c_verdicts(w: &World, o: &CheckOptions) -> Vec<(bool, Vec<u8>)> {
    let a: Vec<&[u8]> = ADDRS.iter().map(|x| x.as_bytes()).collect();
    w.check_with(&a, o)
        .into_iter()
        .map(|v| (accept(&v), v.log))
        .collect()
}

#[test]
fn told_the_lspawn_users_the_core_accepts_every_local_recipient_when_one_is_missing() {
    for missing in ["qmailp", "qmailq", "nofiles"] {
        let (w, mut o) = world(missing);
        o.lspawn_users = true;
        let got = c_verdicts(&w, &o);
        assert!(got.iter().all(|(a, _)| *a), "{missing}: {got:?}");
        assert!(got.iter().all(|(_, log)| log.is_empty()), "{missing}");
        let why = w.one_with("joe-bar@example.com", &o).why;
        assert!(
            why.contains("qmail-lspawn cannot start"),
            "{missing}: {why}"
        );
        // not told (netqmail): the missing account changes nothing
        o.lspawn_users = false;
        let got = c_verdicts(&w, &o);
        assert!(got[0].0 && !got[1].0 && got[2].0, "{missing}: {got:?}");
    }
}

#[test]
fn with_every_lspawn_user_present_the_core_judges_as_before() {
    let (w, mut o) = world("");
    o.lspawn_users = true;
    let got = c_verdicts(&w, &o);
    assert!(got[0].0 && !got[1].0 && got[2].0, "{got:?}");
    assert!(String::from_utf8_lossy(&got[1].1).contains("joe-bar@example.com"));
}

fn p_lspawn() -> &'static PDriver {
    static P: OnceLock<PDriver> = OnceLock::new();
    P.get_or_init(|| PDriver::build(Sanitize::AddressUndefined, true).expect("building P"))
}

fn p_exits(w: &World, o: &CheckOptions) -> Vec<PStatus> {
    let a: Vec<Vec<u8>> = ADDRS.iter().map(|x| x.as_bytes().to_vec()).collect();
    p_lspawn()
        .check(&w.home, w.brk, &w.alias, &a, o, false)
        .unwrap()
        .runs
        .iter()
        .map(|r| r.status)
        .collect()
}

#[test]
fn the_notqmail_build_of_the_rcptcheck_program_accepts_when_lspawn_would_not_start() {
    let (w, o) = world("");
    assert_eq!(
        p_exits(&w, &o),
        [PStatus::Exit(0), PStatus::Exit(100), PStatus::Exit(0)]
    );
    for missing in ["qmailp", "qmailq", "nofiles"] {
        let (w, o) = world(missing);
        assert_eq!(p_exits(&w, &o), [PStatus::Exit(0); 3], "{missing}");
    }
}
