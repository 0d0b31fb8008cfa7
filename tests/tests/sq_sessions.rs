//! Oracle S inside sessions of the third-party patches: RCPTs inside a
//! real STARTTLS session (`oracle::sq_tls`) when the tree S runs on (`QMAIL_STACKED_QMAIL`, set by
//! `cargo xtask test --with-patch`, else `QMAIL_SOURCE_NETQMAIL`)
//! is a tree with the STARTTLS patch, and inside an authenticated session
//! (`oracle::sq_auth`) when it is a tree with the SMTP AUTH patch. On
//! other trees (or without one) each test prints a SKIPPED line.
//!
//! Each asserts the same realrcptto replies as the plain tier
//! (realrcptto_sq.rs): 550 at RCPT, 554 at DATA in deny-all mode, 421 on
//! a broken users/cdb; and the negative cases: a client trusting another
//! CA fails the handshake, a wrong password gets 535 and no RCPT through.

mod rrt_common;

use std::path::PathBuf;
use std::sync::OnceLock;

use qmail_difftest::oracle::sq::{ask_smtp, queue_log, SqBuild};
use qmail_difftest::oracle::sq_auth::{self, AuthStub};
use qmail_difftest::oracle::sq_tls::{self, TlsCerts};
use qmail_difftest::upstream;
use rrt_common::*;

const R550: &str = "550 sorry, no mailbox here by that name. (#5.1.1)\r\n";
const R554: &str = "554 sorry, no mailbox here by that name. (#5.1.1)\r\n";
const R421CDB: &str = "421 unable to read cdb user database (#4.3.0)\r\n";
const NOGATEWAY: &str = "553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)\r\n";
/// The TLS patch's rcpthosts refusal inside a TLS session.
const NOGATEWAY_TLS: &str =
    "553 sorry, that domain isn't in my list of allowed rcpthosts; no valid cert for gatewaying (#5.7.1)\r\n";

/// The patched build of the given tree, once.
fn build() -> Option<&'static SqBuild> {
    static B: OnceLock<Option<SqBuild>> = OnceLock::new();
    B.get_or_init(|| {
        let src = upstream::stacked_qmail()?;
        Some(SqBuild::build(&src, true).unwrap_or_else(|e| panic!("{e}")))
    })
    .as_ref()
}

fn skip(test: &str, stack: &str, what: &str) {
    println!(
        "SKIPPED: sq_sessions::{test}: the qmail tree (QMAIL_STACKED_QMAIL, QMAIL_SOURCE_NETQMAIL or QMAIL_SOURCE_NOTQMAIL) is not a tree with the {stack} patch (its qmail-smtpd does not {what})"
    );
}

/// The build and fresh certificates, when the tree's qmail-smtpd offers
/// STARTTLS; else None after printing SKIPPED.
fn tls_stack(test: &str) -> Option<(&'static SqBuild, TlsCerts)> {
    upstream::qmail_or_skip(&format!("sq_sessions::{test}"))?;
    let b = build()?;
    let dir = tempfile::tempdir().unwrap();
    if !sq_tls::probe(b, dir.path()).unwrap_or_else(|e| panic!("{e}")) {
        skip(test, "STARTTLS", "offer STARTTLS");
        return None;
    }
    Some((b, TlsCerts::generate().unwrap_or_else(|e| panic!("{e}"))))
}

/// The build and the checkpassword stub, when the tree's qmail-smtpd
/// advertises AUTH; else None after printing SKIPPED.
fn auth_stack(test: &str) -> Option<(&'static SqBuild, AuthStub)> {
    upstream::qmail_or_skip(&format!("sq_sessions::{test}"))?;
    let b = build()?;
    let stub = AuthStub::build().unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    if !sq_auth::probe(b, &stub, dir.path()).unwrap_or_else(|e| panic!("{e}")) {
        skip(test, "SMTP AUTH", "advertise AUTH");
        return None;
    }
    Some((b, stub))
}

fn v(addrs: &[&str]) -> Vec<Vec<u8>> {
    addrs.iter().map(|a| a.as_bytes().to_vec()).collect()
}

fn texts(r: &[qmail_difftest::oracle::sq::Reply]) -> Vec<&str> {
    r.iter().map(|x| x.text.as_str()).collect()
}

#[test]
fn sq_tls_session_needs_tls_stack() {
    let Some((b, certs)) = tls_stack("sq_tls_session_needs_tls_stack") else {
        return;
    };
    let w = sq_world(b);
    certs.install(&w.home).unwrap();
    let mut s = b.smtp(&w.home, &sq_opts(&w)).unwrap();
    let st = sq_tls::starttls(&mut s, certs.roots()).unwrap();
    assert_eq!(st.ready.text, sq_tls::READY);
    assert!(
        !sq_tls::offers_starttls(&st.ehlo_tls),
        "inside TLS STARTTLS is no longer offered: {:?}",
        st.ehlo_tls
    );
    let addrs = v(&[
        "joe@example.com",
        "nobody@example.com",
        "joe-foo@example.com",
        "x@remote.example",
    ]);
    let env = s
        .envelope(
            b"sender@remote.example",
            &addrs,
            Some("Subject: x\n\nbody\n"),
        )
        .unwrap();
    assert_eq!(
        texts(&env.rcpt),
        ["250 ok\r\n", R550, "250 ok\r\n", NOGATEWAY_TLS],
        "the rcpthosts text shows the RCPTs went through the TLS session"
    );
    assert!(env.data.unwrap().text.starts_with("250 ok "));
    s.finish().unwrap();
    let q = queue_log(&w.home);
    assert_eq!(q.len(), 1, "{q:?}");
    assert!(
        q[0].ends_with(" Fsender@remote.example Tjoe@example.com Tjoe-foo@example.com"),
        "{q:?}"
    );
    // the tier's verdicts are the plain tier's
    let tls = sq_tls::ask_smtp_tls(b, &w.home, &sq_opts(&w), &certs, &addrs[..3]).unwrap();
    let plain = ask_smtp(b, &w.home, &sq_opts(&w), &addrs[..3], false).unwrap();
    assert_eq!(tls, plain);
    let want: Vec<Option<String>> = ["accept", "reject", "accept"]
        .iter()
        .map(|x| Some(x.to_string()))
        .collect();
    assert_eq!(tls, want);
}

#[test]
fn sq_tls_denyall_554_and_cdb_421_needs_tls_stack() {
    let Some((b, certs)) = tls_stack("sq_tls_denyall_554_and_cdb_421_needs_tls_stack") else {
        return;
    };
    let w = sq_world(b);
    certs.install(&w.home).unwrap();
    let o = sq_opts(&w).with("QMAILRRTDENYALL", "1");
    let mut s = b.smtp(&w.home, &o).unwrap();
    sq_tls::starttls(&mut s, certs.roots()).unwrap();
    let env = s
        .envelope(
            b"a@b.example",
            &v(&["joe@example.com", "nobody@example.com"]),
            Some("x\n"),
        )
        .unwrap();
    assert_eq!(texts(&env.rcpt), ["250 ok\r\n", "250 ok\r\n"]);
    assert_eq!(env.data.unwrap().text, R554);
    s.finish().unwrap();
    assert!(
        queue_log(&w.home).is_empty(),
        "DATA refused: nothing queued"
    );
    // a broken users/cdb: 421 and the session ends
    std::fs::create_dir_all(w.home.join("users/cdb")).unwrap();
    let mut s = b.smtp(&w.home, &sq_opts(&w)).unwrap();
    sq_tls::starttls(&mut s, certs.roots()).unwrap();
    let env = s
        .envelope(
            b"a@b.example",
            &v(&["joe@example.com", "joe-foo@example.com"]),
            None,
        )
        .unwrap();
    assert_eq!(texts(&env.rcpt), [R421CDB]);
    let end = s.finish().unwrap();
    assert_eq!(end.status.code(), Some(1));
}

#[test]
fn sq_tls_wrong_trust_root_fails_handshake_needs_tls_stack() {
    let Some((b, certs)) = tls_stack("sq_tls_wrong_trust_root_fails_handshake_needs_tls_stack")
    else {
        return;
    };
    let w = sq_world(b);
    certs.install(&w.home).unwrap();
    let mut s = b.smtp(&w.home, &sq_opts(&w)).unwrap();
    let other = TlsCerts::other_roots().unwrap();
    let err = sq_tls::starttls(&mut s, other).unwrap_err().to_string();
    assert!(
        err.contains("handshake with qmail-smtpd failed") && err.contains("UnknownIssuer"),
        "{err}"
    );
    assert!(
        s.cmd(b"RCPT TO:<joe@example.com>").is_err(),
        "no session left"
    );
    let _ = s.finish();
    // the same server with the right trust root
    let mut s = b.smtp(&w.home, &sq_opts(&w)).unwrap();
    sq_tls::starttls(&mut s, certs.roots()).unwrap();
    s.finish().unwrap();
}

#[test]
fn sq_auth_session_needs_auth_stack() {
    let Some((b, stub)) = auth_stack("sq_auth_session_needs_auth_stack") else {
        return;
    };
    let w = sq_world(b);
    let addrs = v(&[
        "joe@example.com",
        "nobody@example.com",
        "joe-foo@example.com",
        "x@remote.example",
    ]);
    // without AUTH, the remote address stops at rcpthosts
    let plain = b
        .smtp_transaction(&w.home, &sq_opts(&w), b"a@b.example", &addrs, None)
        .unwrap();
    assert_eq!(
        texts(&plain.rcpt),
        ["250 ok\r\n", R550, "250 ok\r\n", NOGATEWAY]
    );
    // authenticated (PLAIN): relaying allowed, realrcptto still judges
    let o = stub.options(&sq_opts(&w), "", "joe", "pw-1");
    let mut s = b.smtp(&w.home, &o).unwrap();
    assert_eq!(
        sq_auth::auth_plain(&mut s, "joe", "pw-1").unwrap().text,
        sq_auth::OK
    );
    let env = s
        .envelope(b"joe@example.com", &addrs, Some("Subject: x\n\nbody\n"))
        .unwrap();
    assert_eq!(
        texts(&env.rcpt),
        ["250 ok\r\n", R550, "250 ok\r\n", "250 ok\r\n"]
    );
    assert!(env.data.unwrap().text.starts_with("250 ok "));
    s.finish().unwrap();
    // LOGIN, deny-all: 554 at DATA
    let o = stub.options(&sq_opts(&w).with("QMAILRRTDENYALL", "1"), "", "joe", "pw-1");
    let mut s = b.smtp(&w.home, &o).unwrap();
    assert_eq!(
        sq_auth::auth_login(&mut s, "joe", "pw-1").unwrap().text,
        sq_auth::OK
    );
    let env = s
        .envelope(b"joe@example.com", &addrs[..2], Some("x\n"))
        .unwrap();
    assert_eq!(texts(&env.rcpt), ["250 ok\r\n", "250 ok\r\n"]);
    assert_eq!(env.data.unwrap().text, R554);
    s.finish().unwrap();
    assert_eq!(queue_log(&w.home).len(), 1, "only the first message queued");
    // the tier's verdicts
    let got = sq_auth::ask_smtp_auth(b, &w.home, &sq_opts(&w), &stub, &addrs).unwrap();
    let want: Vec<Option<String>> = ["accept", "reject", "accept", "accept"]
        .iter()
        .map(|x| Some(x.to_string()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn sq_auth_wrong_password_needs_auth_stack() {
    let Some((b, stub)) = auth_stack("sq_auth_wrong_password_needs_auth_stack") else {
        return;
    };
    let w = sq_world(b);
    // AUTH required ("!"): a wrong password leaves the client unable to
    // start a transaction
    let o = stub.options(&sq_opts(&w), "!", "joe", "pw-1");
    let mut s = b.smtp(&w.home, &o).unwrap();
    let r = sq_auth::auth_plain(&mut s, "joe", "wrong").unwrap();
    assert_eq!(r.text, sq_auth::FAILED);
    let env = s
        .envelope(
            b"joe@example.com",
            &v(&["joe@example.com", "x@remote.example"]),
            None,
        )
        .unwrap();
    assert_eq!(env.mail.code, 530, "{:?}", env.mail);
    assert!(
        env.rcpt.iter().all(|r| r.code != 250),
        "no RCPT accepted: {:?}",
        env.rcpt
    );
    s.finish().unwrap();
    // a broken users/cdb after a good AUTH: 421
    std::fs::create_dir_all(w.home.join("users/cdb")).unwrap();
    let mut s = b.smtp(&w.home, &o).unwrap();
    assert_eq!(
        sq_auth::auth_plain(&mut s, "joe", "pw-1").unwrap().text,
        sq_auth::OK
    );
    let env = s
        .envelope(b"a@b.example", &v(&["joe@example.com"]), None)
        .unwrap();
    assert_eq!(texts(&env.rcpt), [R421CDB]);
    s.finish().unwrap();
}

#[test]
fn sq_session_disagreement_is_reported_needs_tls_or_auth_stack() {
    use qmail_difftest::options::{RunOptions, SESSION_EVERY};
    use qmail_difftest::oracle::sq::smtp_safe;
    use qmail_difftest::{runner, scenario};
    let test = "sq_session_disagreement_is_reported_needs_tls_or_auth_stack";
    let Some(src) = upstream::qmail_or_skip(&format!("sq_sessions::{test}")) else {
        return;
    };
    let b = build().expect("built");
    let dir = tempfile::tempdir().unwrap();
    let pair = if sq_tls::probe(b, dir.path()).unwrap() {
        "R-S/tls"
    } else if sq_auth::probe(b, &AuthStub::build().unwrap(), dir.path()).unwrap() {
        "R-S/auth"
    } else {
        skip(test, "STARTTLS or SMTP AUTH", "offer STARTTLS or AUTH");
        return;
    };
    // a scenario the session tiers take (index a multiple of
    // SESSION_EVERY, conf-break `-`, no errno fault) and one of its
    // SMTP-safe addresses, whose R verdict is flipped
    let (sc, addr) = (0..200u64)
        .map(|i| scenario::generate(7, i * SESSION_EVERY))
        .filter(|s| s.conf_break == scenario::DEFAULT_BREAK && s.errno_fault.is_none())
        .find_map(|s| {
            let a = s
                .addresses
                .iter()
                .find(|a| smtp_safe(&a.0) && a.0.len() > 3)?;
            let a = a.0.clone();
            Some((s, a))
        })
        .expect("a scenario for the session tiers");
    let out = tempfile::tempdir().unwrap();
    sc.save(&out.path().join(scenario::layout::SCENARIO_JSON))
        .unwrap();
    let stack = upstream::stacked_qmail()
        .filter(|t| t.root != src.root)
        .map(|t| qmail_difftest::options::Stack {
            tree: t.root,
            patches: Vec::new(),
        });
    let o = RunOptions {
        stack,
        seed: 7,
        scenarios: 1,
        out_dir: out.path().join("run"),
        exe: PathBuf::from(env!("CARGO_BIN_EXE_difftest")),
        qmail: Some(src),
        release: None,
        require_upstream: false,
        progress: false,
        require_coverage: false,
        tamper: Some(addr.clone()),
    };
    let r = runner::replay(out.path(), &o).unwrap();
    let f = r
        .failures
        .iter()
        .find(|f| f.pair == pair)
        .unwrap_or_else(|| panic!("no {pair} failure: {:#?}", r.failures));
    assert!(f.left.starts_with("R "), "{f:?}");
    assert!(r.pairs[pair].disagreed >= 1, "{:?}", r.pairs);
    // without the defect the same scenario agrees on the pair
    let clean = RunOptions { tamper: None, ..o };
    let r = runner::replay(out.path(), &clean).unwrap();
    assert_eq!(r.pairs[pair].disagreed, 0, "{:#?}", r.failures);
    assert!(r.pairs[pair].compared >= 1);
}
