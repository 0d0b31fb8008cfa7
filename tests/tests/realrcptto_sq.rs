//! Oracles S and Q: patched qmail-smtpd and qmail-qmtpd built from the
//! netqmail-1.06 tree in `QMAIL_SOURCE_NETQMAIL` (or the notqmail-1.09
//! tree in `QMAIL_SOURCE_NOTQMAIL`), driven through real SMTP
//! and QMTP conversations. One named test per kept item and deliberate
//! change of spec/realrcptto.md that the protocol can show, with the exact
//! reply texts. bin/qmail-queue is the recording stub (see oracle::sq).

mod rrt_common;

use std::sync::OnceLock;

use qmail_difftest::oracle::sq::{queue_log, QmtpMessage, SmtpOutcome, SqBuild, SqOptions};
use qmail_difftest::upstream;
use rrt_common::*;

const R550: &str = "550 sorry, no mailbox here by that name. (#5.1.1)\r\n";
const R554: &str = "554 sorry, no mailbox here by that name. (#5.1.1)\r\n";
const QD: &[u8] = b"Dsorry, no mailbox here by that name. (#5.1.1)";
const QRCPTHOSTS: &[u8] = b"Dsorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)";

fn builds() -> Option<&'static (SqBuild, SqBuild)> {
    static B: OnceLock<Option<(SqBuild, SqBuild)>> = OnceLock::new();
    B.get_or_init(|| {
        let src = upstream::stacked_qmail()?;
        let p = SqBuild::build(&src, true).unwrap_or_else(|e| panic!("{e}"));
        let u = SqBuild::build(&src, false).unwrap_or_else(|e| panic!("{e}"));
        Some((p, u))
    })
    .as_ref()
}

/// The patched build, or None after printing SKIPPED.
fn patched(test: &str) -> Option<&'static SqBuild> {
    upstream::qmail_or_skip(&format!("realrcptto_sq::{test}"))?;
    builds().map(|b| &b.0)
}

fn pristine() -> &'static SqBuild {
    &builds().expect("built").1
}

fn rcpts(b: &SqBuild, w: &World, o: &SqOptions, addrs: &[&str], body: Option<&str>) -> SmtpOutcome {
    let a: Vec<Vec<u8>> = addrs.iter().map(|x| x.as_bytes().to_vec()).collect();
    b.smtp_transaction(&w.home, o, b"sender@remote.example", &a, body)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn texts(o: &SmtpOutcome) -> Vec<&str> {
    o.rcpt.iter().map(|r| r.text.as_str()).collect()
}

fn stderr_lines(b: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(b)
        .lines()
        .map(str::to_string)
        .collect()
}

fn msg(rcpts: &[&[u8]]) -> QmtpMessage {
    QmtpMessage {
        body: b"Subject: t\n\nhello\n".to_vec(),
        sender: b"sender@remote.example".to_vec(),
        rcpts: rcpts.iter().map(|r| r.to_vec()).collect(),
    }
}

#[test]
fn smtp_rejects_unknown_recipients_and_queues_the_rest() {
    let Some(b) = patched("smtp_rejects_unknown_recipients_and_queues_the_rest") else {
        return;
    };
    let w = sq_world(b);
    let o = sq_opts(&w);
    let r = rcpts(
        b,
        &w,
        &o,
        &[
            "joe@example.com",
            "nobody@example.com",
            "joe-foo@example.com",
            "joe-bar@example.com",
        ],
        Some("Subject: x\n\nbody\n"),
    );
    assert_eq!(texts(&r), ["250 ok\r\n", R550, "250 ok\r\n", R550]);
    assert!(
        r.data.as_ref().unwrap().text.starts_with("250 ok "),
        "{r:?}"
    );
    let q = queue_log(&w.home);
    assert_eq!(q.len(), 1, "{q:?}");
    assert!(
        q[0].ends_with(" Fsender@remote.example Tjoe@example.com Tjoe-foo@example.com"),
        "only accepted recipients are queued: {q:?}"
    );
    // the unpatched build accepts all of them
    let u = pristine();
    u.install_queue_stub(&w.home).unwrap();
    let r = rcpts(
        u,
        &w,
        &o,
        &["nobody@example.com", "joe-bar@example.com"],
        None,
    );
    assert_eq!(texts(&r), ["250 ok\r\n", "250 ok\r\n"]);
}

#[test]
fn kept_1_hooks_check_comes_after_rcpthosts_and_mail_starts_a_transaction() {
    let Some(b) = patched("kept_1") else { return };
    let w = sq_world(b);
    let o = sq_opts(&w).with("QMAILRRTDENYALL", "1");
    // rcpthosts refuses first: the check never runs for that address
    let r = rcpts(b, &w, &o, &["nobody@remote.example"], None);
    assert_eq!(
        texts(&r),
        ["553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)\r\n"]
    );
    assert!(r.stderr.is_empty(), "{:?}", stderr_lines(&r.stderr));
    // a new MAIL starts a new transaction: the denial does not carry over
    let mut s = b.smtp(&w.home, &o).unwrap();
    assert_eq!(s.cmd(b"HELO c").unwrap().code, 250);
    assert_eq!(s.cmd(b"MAIL FROM:<a@b.example>").unwrap().code, 250);
    assert_eq!(s.cmd(b"RCPT TO:<nobody@example.com>").unwrap().code, 250);
    assert_eq!(s.data("x\n").unwrap().text, R554);
    assert_eq!(s.cmd(b"MAIL FROM:<a@b.example>").unwrap().code, 250);
    assert_eq!(s.cmd(b"RCPT TO:<joe@example.com>").unwrap().code, 250);
    assert!(s
        .data("Subject: y\n\nz\n")
        .unwrap()
        .text
        .starts_with("250 ok "));
    s.finish().unwrap();
    let q = queue_log(&w.home);
    assert_eq!(q.len(), 1, "{q:?}");
    assert!(q[0].ends_with(" Tjoe@example.com"), "{q:?}");
}

#[test]
fn kept_2_replies_cdb_trouble_421() {
    let Some(b) = patched("kept_2_cdb") else {
        return;
    };
    let w = sq_world(b);
    std::fs::create_dir_all(w.home.join("users/cdb")).unwrap();
    let r = rcpts(
        b,
        &w,
        &sq_opts(&w),
        &["x@remote.example", "joe@example.com", "joe-foo@example.com"],
        None,
    );
    // the RELAYCLIENT-less remote address stops at rcpthosts; the local
    // one hits the broken users/cdb and the session ends
    assert_eq!(
        texts(&r),
        [
            "553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)\r\n",
            "421 unable to read cdb user database (#4.3.0)\r\n"
        ]
    );
    assert_eq!(r.status.code(), Some(1));
    // QMTP: exit 111, no reply
    let q = b
        .qmtp(&w.home, &sq_opts(&w), &[msg(&[b"joe@example.com"])])
        .unwrap();
    assert_eq!(q.status.code(), Some(111));
    assert!(q.replies.iter().all(|m| m.is_empty()), "{q:?}");
    assert!(queue_log(&w.home).iter().all(|l| !l.starts_with("queued")));
}

#[test]
fn kept_2_replies_system_user_database_421() {
    let Some(b) = patched("kept_2_sys") else {
        return;
    };
    let w = sq_world(b);
    let mut o = sq_opts(&w).with("RRT_SHIM_TXTBSY", "joe");
    o.preload = vec![shim().to_path_buf()];
    let r = rcpts(b, &w, &o, &["joe-x@example.com"], None);
    assert_eq!(
        texts(&r),
        ["421 unable to read system user database (#4.3.0)\r\n"]
    );
    assert_eq!(r.status.code(), Some(1));
}

#[test]
fn kept_2_replies_controls_421_at_connect() {
    let Some(b) = patched("kept_2_controls") else {
        return;
    };
    let w = sq_world(b);
    w.rm_control("locals");
    w.rm_control("me");
    w.control("smtpgreeting", "greeting.example");
    let s = b.smtp(&w.home, &sq_opts(&w)).unwrap();
    assert_eq!(
        s.greeting().text,
        "421 unable to read controls (#4.3.0)\r\n"
    );
    let q = b
        .qmtp(&w.home, &sq_opts(&w), &[msg(&[b"joe@example.com"])])
        .unwrap();
    assert_eq!(q.status.code(), Some(111));
    // the pristine build has no such requirement
    let s = pristine().smtp(&w.home, &sq_opts(&w)).unwrap();
    assert_eq!(s.greeting().code, 220);
}

#[test]
fn kept_3_control_files_read_once_per_connection() {
    let Some(b) = patched("kept_3") else { return };
    let w = sq_world(b);
    let o = sq_opts(&w).with("RELAYCLIENT", "");
    let mut s = b.smtp(&w.home, &o).unwrap();
    s.cmd(b"HELO c").unwrap();
    s.cmd(b"MAIL FROM:<>").unwrap();
    w.control("locals", "other.example\n");
    assert_eq!(s.cmd(b"RCPT TO:<nobody@example.com>").unwrap().text, R550);
    assert_eq!(
        s.cmd(b"RCPT TO:<nobody@other.example>").unwrap().text,
        "250 ok\r\n"
    );
    s.finish().unwrap();
    // the next connection sees the new file
    let r = rcpts(
        b,
        &w,
        &o,
        &["nobody@example.com", "nobody@other.example"],
        None,
    );
    assert_eq!(texts(&r), ["250 ok\r\n", R550]);
}

#[test]
fn users_cdb_replaced_by_qmail_newu_counts_from_the_next_mail() {
    // qmail-smtpd keeps users/cdb open for the connection; qmail-newu
    // renames a new one into place: the RCPTs of the open transaction keep
    // the old file, the next MAIL sees the new one (and RSET does not)
    let Some(b) = patched("users_cdb_replaced") else {
        return;
    };
    let mut w = sq_world(b);
    let fred = w.user("fred", 1002);
    let cur = w.home.join("users/cdb");
    w.assign(&[]);
    let next = w.home.join("users/cdb.next");
    std::fs::rename(&cur, &next).unwrap();
    w.assign(&[&format!("=fred:fred:1002:1002:{}:-:x:", fred.display())]);
    let o = sq_opts(&w).with("RELAYCLIENT", "");
    let mut s = b.smtp(&w.home, &o).unwrap();
    s.cmd(b"HELO c").unwrap();
    s.cmd(b"MAIL FROM:<>").unwrap();
    // fred's users/cdb record wants .qmail-x, which is missing
    assert_eq!(s.cmd(b"RCPT TO:<fred@example.com>").unwrap().text, R550);
    std::fs::rename(&next, &cur).unwrap();
    assert_eq!(s.cmd(b"RCPT TO:<fred@example.com>").unwrap().text, R550);
    s.cmd(b"RSET").unwrap();
    assert_eq!(s.cmd(b"RCPT TO:<fred@example.com>").unwrap().code, 503);
    s.cmd(b"MAIL FROM:<>").unwrap();
    // no record: fred is a passwd user with a default delivery
    assert_eq!(
        s.cmd(b"RCPT TO:<fred@example.com>").unwrap().text,
        "250 ok\r\n"
    );
    s.finish().unwrap();
}

#[test]
fn kept_4_denyall_smtp_554_at_data_nothing_queued() {
    let Some(b) = patched("kept_4_smtp") else {
        return;
    };
    let w = sq_world(b);
    let o = sq_opts(&w).with("QMAILRRTDENYALL", "1");
    let r = rcpts(
        b,
        &w,
        &o,
        &["joe@example.com", "nobody@example.com", "other@example.com"],
        Some("Subject: x\n\nbody\n"),
    );
    assert_eq!(texts(&r), ["250 ok\r\n", "250 ok\r\n", "250 ok\r\n"]);
    assert_eq!(r.data.unwrap().text, R554);
    assert!(
        queue_log(&w.home).is_empty(),
        "DATA refused: qmail-queue never ran"
    );
    // only the first bad recipient is logged
    assert_eq!(
        stderr_lines(&r.stderr).len(),
        1,
        "{:?}",
        stderr_lines(&r.stderr)
    );
    // any other value is not deny-all
    let o = sq_opts(&w).with("QMAILRRTDENYALL", "yes");
    let r = rcpts(b, &w, &o, &["nobody@example.com"], None);
    assert_eq!(texts(&r), [R550]);
}

#[test]
fn kept_4_denyall_qmtp_every_recipient_refused() {
    let Some(b) = patched("kept_4_qmtp") else {
        return;
    };
    let w = sq_world(b);
    let o = sq_opts(&w).with("QMAILRRTDENYALL", "1");
    let q = b
        .qmtp(
            &w.home,
            &o,
            &[msg(&[
                b"joe@example.com",
                b"nobody@example.com",
                b"joe-foo@example.com",
            ])],
        )
        .unwrap();
    assert_eq!(q.replies, [vec![QD.to_vec(), QD.to_vec(), QD.to_vec()]]);
}

#[test]
fn kept_5_log_line_pid_remoteip_addr() {
    let Some(b) = patched("kept_5") else { return };
    let w = sq_world(b);
    let o = sq_opts(&w).with("TCPREMOTEIP", "198.51.100.4");
    let mut s = b.smtp(&w.home, &o).unwrap();
    let pid = s.pid();
    s.cmd(b"HELO c").unwrap();
    s.cmd(b"MAIL FROM:<>").unwrap();
    assert_eq!(s.cmd(b"RCPT TO:<Nobody@Example.COM>").unwrap().text, R550);
    assert_eq!(s.cmd(b"RCPT TO:<joe@example.com>").unwrap().code, 250);
    assert_eq!(s.cmd(b"RCPT TO:<joe-x@example.com>").unwrap().text, R550);
    let end = s.finish().unwrap();
    assert_eq!(
        stderr_lines(&end.stderr),
        [
            format!("realrcptto {pid} 198.51.100.4 Nobody@Example.COM"),
            format!("realrcptto {pid} 198.51.100.4 joe-x@example.com")
        ]
    );
    // QMTP: PROTO=QMTP reads QMTPREMOTEIP
    let o = SqOptions {
        env: Vec::new(),
        ..sq_opts(&w)
    }
    .with("PROTO", "QMTP")
    .with("QMTPREMOTEIP", "203.0.113.5");
    let q = b
        .qmtp(&w.home, &o, &[msg(&[b"nobody@example.com"])])
        .unwrap();
    let l = stderr_lines(&q.stderr);
    assert_eq!(l.len(), 1, "{l:?}");
    assert!(
        l[0].starts_with("realrcptto ") && l[0].ends_with(" 203.0.113.5 nobody@example.com"),
        "{l:?}"
    );
}

#[test]
fn kept_6_applies_to_relayclient_clients() {
    let Some(b) = patched("kept_6") else { return };
    let w = sq_world(b);
    let o = sq_opts(&w).with("RELAYCLIENT", "");
    let r = rcpts(
        b,
        &w,
        &o,
        &["nobody@example.com", "x@remote.example", "joe@example.com"],
        None,
    );
    assert_eq!(texts(&r), [R550, "250 ok\r\n", "250 ok\r\n"]);
    // the check sees the address with the RELAYCLIENT suffix appended
    let o = sq_opts(&w).with("RELAYCLIENT", ".com");
    let r = rcpts(b, &w, &o, &["nobody@example", "joe@example"], None);
    assert_eq!(texts(&r), [R550, "250 ok\r\n"]);
    assert!(stderr_lines(&r.stderr)[0].ends_with(" nobody@example.com"));
    // QMTP too
    let q = b
        .qmtp(&w.home, &o, &[msg(&[b"nobody@example", b"joe@example"])])
        .unwrap();
    assert_eq!(q.replies[0][0], QD);
    assert!(q.replies[0][1].starts_with(b"Kok "), "{q:?}");
}

#[test]
fn deliberate_1_non_regular_dot_qmail_is_absent() {
    let Some(b) = patched("deliberate_1") else {
        return;
    };
    let w = sq_world(b);
    let h = w.homedir("joe");
    std::fs::create_dir(h.join(".qmail-dir")).unwrap();
    std::os::unix::fs::symlink(h.join("missing"), h.join(".qmail-dangling")).unwrap();
    let r = rcpts(
        b,
        &w,
        &sq_opts(&w),
        &["joe-dir@example.com", "joe-dangling@example.com"],
        None,
    );
    assert_eq!(texts(&r), [R550, R550]);
    // EACCES (smtpd as an unprivileged uid): cannot know, accept and log
    let sub = h.join(".qmail-sub");
    std::fs::create_dir(&sub).unwrap();
    chmod(&sub, 0o700);
    let mut o = sq_opts(&w);
    o.run_as = Some(NOBODY);
    let r = rcpts(b, &w, &o, &["joe-sub/x@example.com"], None);
    assert_eq!(texts(&r), ["250 ok\r\n"]);
    assert_eq!(
        stderr_lines(&r.stderr),
        [format!(
            "realrcptto: unable to stat {}/.qmail-sub/x: Permission denied",
            h.display()
        )]
    );
}

#[test]
fn deliberate_2_missing_home_accepts() {
    let Some(b) = patched("deliberate_2") else {
        return;
    };
    let w = sq_world(b);
    let sticky = w.homedir("joe");
    w.assign(&[
        "=ghost:ghost:1005:1005:/nonexistent/ghost:-::",
        "+ghost-:ghost:1005:1005:/nonexistent/ghost:-::",
        &format!("+sticky-:joe:1001:1001:{}:-::", sticky.display()),
    ]);
    let r = rcpts(
        b,
        &w,
        &sq_opts(&w),
        &[
            "ghost@example.com",
            "ghost-x@example.com",
            "sticky-x@example.com",
        ],
        None,
    );
    assert_eq!(texts(&r), ["250 ok\r\n", "250 ok\r\n", R550]);
    assert_eq!(
        stderr_lines(&r.stderr)[0],
        "realrcptto: unable to stat /nonexistent/ghost: No such file or directory"
    );
    // a sticky home: qmail-local would defer, so accept
    chmod(&sticky, 0o1755);
    let r = rcpts(b, &w, &sq_opts(&w), &["sticky-x@example.com"], None);
    assert_eq!(texts(&r), ["250 ok\r\n"]);
}

#[test]
fn deliberate_3_unsearchable_passwd_home_accepts() {
    let Some(b) = patched("deliberate_3") else {
        return;
    };
    let mut w = sq_world(b);
    w.unsearchable_home("bob", 1003);
    let mut o = sq_opts(&w);
    o.run_as = Some(NOBODY);
    let r = rcpts(
        b,
        &w,
        &o,
        &["bob-x@example.com", "nobody@example.com"],
        None,
    );
    assert_eq!(texts(&r), ["250 ok\r\n", R550]);
}

#[test]
fn deliberate_4_missing_alias_user_accepts() {
    let Some(b) = patched("deliberate_4") else {
        return;
    };
    // the build's auto_usera is "alias" (conf-users): drop it from passwd
    let w = sq_world(b);
    let mut w2 = World::new();
    w2.user("joe", 1001);
    w2.control("rcpthosts", "example.com\n");
    b.install_queue_stub(&w2.home).unwrap();
    // World::new always adds alias; rebuild the passwd without it
    let pw = w2.passwd_file();
    let text = std::fs::read_to_string(&pw).unwrap();
    let kept: Vec<&str> = text.lines().filter(|l| !l.starts_with("alias:")).collect();
    std::fs::write(&pw, kept.join("\n") + "\n").unwrap();
    let o = SqOptions {
        passwd: Some(pw),
        group: Some(w2.root().join("group")),
        ..SqOptions::default()
    };
    let r = rcpts(
        b,
        &w2,
        &o,
        &["nobody@example.com", "joe-x@example.com"],
        None,
    );
    assert_eq!(texts(&r), ["250 ok\r\n", R550]);
    let r = rcpts(b, &w, &sq_opts(&w), &["nobody@example.com"], None);
    assert_eq!(texts(&r), [R550]);
}

#[test]
fn deliberate_5_empty_local_part_accepts() {
    let Some(b) = patched("deliberate_5") else {
        return;
    };
    let w = sq_world(b);
    let q = b
        .qmtp(&w.home, &sq_opts(&w), &[msg(&[b"@example.com"])])
        .unwrap();
    assert!(q.replies[0][0].starts_with(b"Kok "), "{q:?}");
    assert!(q.stderr.is_empty());
}

#[test]
fn deliberate_6_qmtp_no_mailbox_text() {
    let Some(b) = patched("deliberate_6") else {
        return;
    };
    let w = sq_world(b);
    let q = b
        .qmtp(
            &w.home,
            &sq_opts(&w),
            &[msg(&[
                b"nobody@example.com",
                b"x@remote.example",
                b"joe@example.com",
            ])],
        )
        .unwrap();
    assert_eq!(q.replies[0][0], QD);
    assert_eq!(q.replies[0][1], QRCPTHOSTS);
    assert!(q.replies[0][2].starts_with(b"Kok "), "{q:?}");
    let log = queue_log(&w.home);
    assert_eq!(log.len(), 1);
    assert!(log[0].ends_with(" Tjoe@example.com"), "{log:?}");
}

#[test]
fn deliberate_7_qmtp_denyall_does_not_queue() {
    let Some(b) = patched("deliberate_7") else {
        return;
    };
    let w = sq_world(b);
    let o = sq_opts(&w).with("QMAILRRTDENYALL", "1");
    let q = b
        .qmtp(
            &w.home,
            &o,
            &[
                msg(&[b"joe@example.com", b"nobody@example.com"]),
                msg(&[b"joe@example.com", b"joe-foo@example.com"]),
            ],
        )
        .unwrap();
    assert_eq!(q.replies[0], [QD.to_vec(), QD.to_vec()]);
    assert!(q.replies[1].iter().all(|r| r.starts_with(b"Kok ")), "{q:?}");
    let log = queue_log(&w.home);
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(
        log[0].starts_with("aborted"),
        "the denied message is not queued: {log:?}"
    );
    assert!(
        log[1].starts_with("queued") && log[1].ends_with(" Tjoe@example.com Tjoe-foo@example.com")
    );
}

#[test]
fn deliberate_8_log_unknown_when_proto_unset() {
    let Some(b) = patched("deliberate_8") else {
        return;
    };
    let w = sq_world(b);
    let base = sq_opts(&w);
    let no_proto = SqOptions {
        env: base
            .env
            .iter()
            .filter(|(k, _)| k != "PROTO")
            .cloned()
            .collect(),
        ..base.clone()
    };
    let no_ip = SqOptions {
        env: base
            .env
            .iter()
            .filter(|(k, _)| k != "TCPREMOTEIP")
            .cloned()
            .collect(),
        ..base.clone()
    };
    for o in [no_proto, no_ip] {
        let r = rcpts(b, &w, &o, &["nobody@example.com"], None);
        assert_eq!(texts(&r), [R550]);
        let l = stderr_lines(&r.stderr);
        assert!(
            l.len() == 1 && l[0].ends_with(" unknown nobody@example.com"),
            "{l:?}"
        );
    }
}

#[test]
fn deliberate_9_qmtp_address_with_nul_is_refused_before_the_check() {
    let Some(b) = patched("deliberate_9") else {
        return;
    };
    let w = sq_world(b);
    let nul = b"Dsorry, I can't handle that recipient (#5.1.3)".to_vec();
    let m = [msg(&[b"nobody@example.com\0x", b"joe\0@example.com"])];
    // without RELAYCLIENT qmail's rcpthosts check also sees the NUL domain
    let q = b.qmtp(&w.home, &sq_opts(&w), &m).unwrap();
    assert_eq!(q.replies[0], [QRCPTHOSTS.to_vec(), nul.clone()]);
    assert!(
        q.stderr.is_empty(),
        "the check never ran: {:?}",
        stderr_lines(&q.stderr)
    );
    let q = b
        .qmtp(&w.home, &sq_opts(&w).with("RELAYCLIENT", ""), &m)
        .unwrap();
    assert_eq!(q.replies[0], [nul.clone(), nul]);
    assert!(
        q.stderr.is_empty(),
        "the check never ran: {:?}",
        stderr_lines(&q.stderr)
    );
    assert!(queue_log(&w.home).iter().all(|l| !l.starts_with("queued")));
}
