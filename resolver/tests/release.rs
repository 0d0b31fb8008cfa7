//! The release choice (netqmail-1.06, notqmail-1.09): the enum, its
//! effect on the two modelled differences (qmail-lspawn's run-time users,
//! qmail-queue's exit-82 text), and `qtraceaddr --release` with the JSON
//! field and the error for an unknown name.
mod common;
use common::*;
use qmail_resolver::dotqmail::{
    parse_instructions, queue_result, run_instructions_with, ProgramExit, QqStatus, QueueFailure,
    RunStatus,
};
use qmail_resolver::{
    CachedPasswd, Config, ControlFiles, Outcome, Passwd, PwResult, QmailRelease, Resolver,
    StaticPasswd, Trace, UsersDb, Verdict,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NET: QmailRelease = QmailRelease::Netqmail106;
const NOT: QmailRelease = QmailRelease::Notqmail109;

#[test]
fn names_parse_and_default() {
    assert_eq!(QmailRelease::default(), NET);
    for r in QmailRelease::ALL {
        assert_eq!(r.name().parse::<QmailRelease>().unwrap(), r);
        assert_eq!(r.to_string(), r.name());
    }
    assert_eq!(NOT.name(), "notqmail-1.09");
    assert_eq!(NET.name(), "netqmail-1.06");
    let e = "qmail-1.03"
        .parse::<QmailRelease>()
        .unwrap_err()
        .to_string();
    assert!(e.contains("qmail-1.03"), "{e}");
    assert!(
        e.contains("netqmail-1.06") && e.contains("notqmail-1.09"),
        "{e}"
    );
    assert!(
        "NOTQMAIL-1.09".parse::<QmailRelease>().is_err(),
        "names are exact"
    );
}

/// A world with joe (home owned by joe) and the given extra users.
fn world(sb: &Sandbox, extra: &[&str]) -> StaticPasswd {
    let mut pw = StaticPasswd::new();
    pw.add(b"joe", ouid(), 100, &sb.home("joe"));
    pw.add(b"alias", ouid(), 101, &sb.home("alias"));
    for u in extra {
        pw.add(u.as_bytes(), 7791, 2108, b"/var/qmail");
    }
    pw
}

fn trace(sb: &Sandbox, pw: StaticPasswd, release: QmailRelease, addr: &str) -> Trace {
    let cfg = Config {
        release,
        ..Config::with_home(sb.path())
    };
    Resolver::from_parts(cfg, controls_nocatch(), UsersDb::Missing, pw).resolve(addr.as_bytes())
}

fn defer_text(t: &Trace) -> String {
    match &t.outcome {
        Outcome::Defer { text } => text.to_string(),
        o => panic!("not a deferral: {o:?}"),
    }
}

/// Difference 1: without qmailp, notqmail's qmail-lspawn does not start
/// (every local address defers, realrcptto accepts); netqmail delivers.
#[test]
fn lspawn_needs_qmailp_under_notqmail_only() {
    let sb = Sandbox::new();
    sb.file("joe/.qmail", b"./Maildir/\n", 0o644);
    let net = trace(&sb, world(&sb, &[]), NET, "joe@example.com");
    let not = trace(&sb, world(&sb, &[]), NOT, "joe@example.com");
    assert_eq!(net.outcome.class(), "deliver", "{:?}", net.outcome);
    assert_eq!(defer_text(&not), "fatal: unable to find user qmailp");
    assert_eq!(not.verdict, Verdict::Accept);
    assert!(
        not.users.is_none() && not.getpw.is_none(),
        "no stage after W ran"
    );
    // an unknown user: netqmail rejects (Q5), notqmail never gets that far
    let net = trace(&sb, world(&sb, &[]), NET, "nobody-here@example.com");
    let not = trace(&sb, world(&sb, &[]), NOT, "nobody-here@example.com");
    assert_eq!(net.verdict, Verdict::Reject);
    assert_eq!(not.verdict, Verdict::Accept);
    // remote addresses do not go through qmail-lspawn
    let not = trace(&sb, world(&sb, &[]), NOT, "x@remote.example.net");
    assert_eq!(not.outcome.class(), "remote");
}

#[test]
fn lspawn_users_checked_in_order_then_the_group() {
    let sb = Sandbox::new();
    let t = trace(&sb, world(&sb, &["qmailp"]), NOT, "joe@example.com");
    assert_eq!(defer_text(&t), "fatal: unable to find user qmailq");
    let t = trace(&sb, world(&sb, &["qmailq"]), NOT, "joe@example.com");
    assert_eq!(defer_text(&t), "fatal: unable to find user qmailp");
    let mut pw = world(&sb, &["qmailp", "qmailq"]);
    pw.remove_group(b"nofiles");
    let t = trace(&sb, pw.clone(), NOT, "joe@example.com");
    assert_eq!(defer_text(&t), "fatal: unable to find group nofiles");
    // netqmail asks neither passwd nor group for them
    let t = trace(&sb, pw, NET, "joe@example.com");
    assert_ne!(t.outcome.class(), "defer", "{:?}", t.outcome);
}

fn trace_with<P: Passwd>(sb: &Sandbox, pw: P, addr: &str) -> Trace {
    let cfg = Config {
        release: NOT,
        ..Config::with_home(sb.path())
    };
    Resolver::from_parts(cfg, controls_nocatch(), UsersDb::Missing, pw).resolve(addr.as_bytes())
}

/// A passwd oracle that answers users only and keeps the trait's default
/// for groups.
struct UsersOnly(StaticPasswd);

impl Passwd for UsersOnly {
    fn getpwnam(&self, name: &[u8]) -> PwResult {
        self.0.getpwnam(name)
    }
}

/// The group question reaches the oracle through every wrapper the
/// resolver is built with (a reference, a box, qtraceaddr's per-run
/// cache); an oracle that does not model groups has every group.
#[test]
fn lspawn_group_question_goes_through_every_passwd_wrapper() {
    let sb = Sandbox::new();
    sb.file("joe/.qmail", b"./Maildir/\n", 0o644);
    let mut pw = world(&sb, &["qmailp", "qmailq"]);
    pw.remove_group(b"nofiles");
    let missing = "fatal: unable to find group nofiles";
    assert_eq!(
        defer_text(&trace_with(&sb, &pw, "joe@example.com")),
        missing
    );
    let boxed: Box<dyn Passwd> = Box::new(pw.clone());
    assert_eq!(
        defer_text(&trace_with(&sb, boxed, "joe@example.com")),
        missing
    );
    let cached = CachedPasswd::new(pw.clone());
    assert_eq!(
        defer_text(&trace_with(&sb, cached, "joe@example.com")),
        missing
    );
    // with the group there, every wrapper lets qmail-lspawn start
    let pw = world(&sb, &["qmailp", "qmailq"]);
    let t = trace_with(&sb, &pw, "joe@example.com");
    assert_eq!(t.outcome.class(), "deliver", "{:?}", t.outcome);
    let boxed: Box<dyn Passwd> = Box::new(pw.clone());
    let t = trace_with(&sb, boxed, "joe@example.com");
    assert_eq!(t.outcome.class(), "deliver", "{:?}", t.outcome);
    let mut pw = pw;
    pw.remove_group(b"nofiles");
    // the trait's default: every group exists, so joe's mailbox is found
    let t = trace_with(&sb, UsersOnly(pw), "joe@example.com");
    assert_eq!(t.outcome.class(), "deliver", "{:?}", t.outcome);
}

/// With the qmail users present, the releases decide the same for every
/// address of a small mixed set (and the traces differ only in `release`).
#[test]
fn same_decision_when_qmail_users_exist() {
    let sb = Sandbox::new();
    sb.file("joe/.qmail-list", b"&a@b.example\n", 0o644);
    sb.file("joe/.qmail-w", b"./Maildir/\n", 0o666);
    let users = ["qmailp", "qmailq"];
    for a in [
        "joe@example.com",
        "joe-list@example.com",
        "joe-w@example.com",
        "joe-none@example.com",
        "nobody@example.com",
        "@example.com",
        "x@remote.example.net",
    ] {
        let net = trace(&sb, world(&sb, &users), NET, a);
        let mut not = trace(&sb, world(&sb, &users), NOT, a);
        assert_eq!(not.release, NOT);
        not.release = NET;
        assert_eq!(net, not, "{a}");
    }
}

fn exit(code: u8, fd6: &[u8]) -> QqStatus {
    QqStatus::Exit {
        code,
        fd6: fd6.to_vec(),
    }
}

/// Difference 2: qmail-queue exit 82 with a text on descriptor 6.
#[test]
fn qq_exit_82_text_is_used_by_notqmail_only() {
    let st = exit(82, b"Dno such list (#5.1.1)");
    assert_eq!(
        queue_result(NET, &st, false),
        Err(QueueFailure::Temporary(
            b"qq temporary problem (#4.3.0)".to_vec()
        ))
    );
    assert_eq!(
        queue_result(NOT, &st, false),
        Err(QueueFailure::Permanent(b"no such list (#5.1.1)".to_vec()))
    );
    // a Z text is temporary, a NUL first is success, 2 bytes are too few
    assert_eq!(
        queue_result(NOT, &exit(82, b"Zbusy\0junk"), false),
        Err(QueueFailure::Temporary(b"busy".to_vec()))
    );
    assert_eq!(queue_result(NOT, &exit(82, b"\0xyz"), false), Ok(()));
    assert_eq!(
        queue_result(NOT, &exit(82, b"Dx"), false),
        queue_result(NET, &exit(82, b"Dx"), false)
    );
    // at most 255 bytes are read
    let long = [b"D".as_slice(), &[b'a'; 400]].concat();
    match queue_result(NOT, &exit(82, &long), false) {
        Err(QueueFailure::Permanent(t)) => assert_eq!(t.len(), 254),
        r => panic!("{r:?}"),
    }
}

#[test]
fn qq_other_exits_are_the_same_in_both() {
    for (st, werr) in [
        (exit(0, b""), false),
        (exit(0, b""), true),
        (exit(11, b"Dx y z"), false),
        (exit(31, b""), false),
        (exit(35, b""), false),
        (exit(81, b"Dcustom"), false),
        (exit(100, b"Dcustom"), false),
        (QqStatus::Crashed, false),
    ] {
        assert_eq!(
            queue_result(NET, &st, werr),
            queue_result(NOT, &st, werr),
            "{st:?}"
        );
    }
    assert_eq!(queue_result(NET, &exit(0, b""), false), Ok(()));
    assert_eq!(
        queue_result(NET, &exit(0, b""), true),
        Err(QueueFailure::Temporary(b"qq read error (#4.3.0)".to_vec()))
    );
    assert_eq!(
        queue_result(NET, &exit(35, b""), false),
        Err(QueueFailure::Permanent(
            b"qq permanent problem (#5.3.0)".to_vec()
        ))
    );
}

/// The forward's result in a .qmail run: a bounce under notqmail, a
/// deferral under netqmail.
#[test]
fn forward_run_bounces_or_defers_by_release() {
    let instr = parse_instructions(b"&list@example.org\n", true);
    let run = |r| {
        let q = queue_result(r, &exit(82, b"Dlist closed"), false);
        run_instructions_with(&instr, false, |_, _| ProgramExit::Code(0), |_, _| None, q).status
    };
    match run(NOT) {
        RunStatus::Hard { text } => {
            assert_eq!(text.to_string(), "Unable to forward message: list closed.")
        }
        s => panic!("{s:?}"),
    }
    match run(NET) {
        RunStatus::Soft { text } => assert_eq!(
            text.to_string(),
            "Unable to forward message: qq temporary problem (#4.3.0)."
        ),
        s => panic!("{s:?}"),
    }
}

// ---- qtraceaddr --release, with passwd and group from nss_wrapper ----

const NSS_WRAPPER: &str = "/usr/lib/x86_64-linux-gnu/libnss_wrapper.so";

fn nss_wrapper() -> Option<PathBuf> {
    let p = Path::new(NSS_WRAPPER);
    if p.exists() {
        return Some(p.to_path_buf());
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{NSS_WRAPPER} is missing and CI=true: install libnss-wrapper");
    }
    println!("SKIPPED: {NSS_WRAPPER} not found (install libnss-wrapper)");
    None
}

/// A qmail home and passwd/group files; `qmail_users` adds qmailp,
/// qmailq and the group nofiles.
fn cli_world(sb: &Sandbox, qmail_users: bool) -> (PathBuf, PathBuf, PathBuf) {
    cli_world_group(sb, qmail_users, qmail_users.then_some("nofiles:x:2108:\n"))
}

/// [`cli_world`] with the qmail users (if `qmail_users`) and `nofiles`
/// as the given group line (`None`: no such group).
fn cli_world_group(
    sb: &Sandbox,
    qmail_users: bool,
    nofiles: Option<&str>,
) -> (PathBuf, PathBuf, PathBuf) {
    let f = ControlFiles {
        me: Some(b"mail.example.com\n".to_vec()),
        locals: Some(b"example.com\n".to_vec()),
        ..Default::default()
    };
    let qmail = sb.qmail_home(&f, None);
    let joe = String::from_utf8(sb.home("joe")).unwrap();
    let alias = String::from_utf8(sb.home("alias")).unwrap();
    let u = ouid();
    let mut pw = format!(
        "root:x:0:0:root:/root:/bin/sh\njoe:x:{u}:100:J:{joe}:/bin/sh\nalias:x:{u}:101:A:{alias}:/bin/sh\n"
    );
    let mut gr = String::from("root:x:0:\nusers:x:100:\n");
    if qmail_users {
        pw.push_str(
            "qmailp:x:7791:2108::/var/qmail:/bin/true\nqmailq:x:7792:2107::/var/qmail:/bin/true\n",
        );
    }
    if let Some(line) = nofiles {
        gr.push_str(line);
    }
    let (p, g) = (sb.p("passwd"), sb.p("group"));
    std::fs::write(&p, pw).unwrap();
    std::fs::write(&g, gr).unwrap();
    (qmail, p, g)
}

fn run(nss: &Path, w: &(PathBuf, PathBuf, PathBuf), args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qtraceaddr"))
        .env("LD_PRELOAD", nss)
        .env("NSS_WRAPPER_PASSWD", &w.1)
        .env("NSS_WRAPPER_GROUP", &w.2)
        .env("QMAIL", &w.0)
        .env_remove("QMAILBREAK")
        .env_remove("QMAILALIAS")
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn cli_unknown_release_is_a_usage_error_listing_the_names() {
    let o = Command::new(env!("CARGO_BIN_EXE_qtraceaddr"))
        .args(["--release", "netqmail-1.05", "joe@example.com"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(111));
    assert!(o.stdout.is_empty());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("netqmail-1.05"), "{e}");
    assert!(e.contains("netqmail-1.06, notqmail-1.09"), "{e}");
    let h = Command::new(env!("CARGO_BIN_EXE_qtraceaddr"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(stdout(&h).contains("--release <NAME>"));
}

#[test]
fn cli_json_has_the_release_field() {
    let Some(nss) = nss_wrapper() else { return };
    let sb = Sandbox::new();
    let w = cli_world(&sb, true);
    for (args, want) in [
        (vec!["--json", "joe@example.com"], "netqmail-1.06"),
        (
            vec!["--json", "--release", "notqmail-1.09", "joe@example.com"],
            "notqmail-1.09",
        ),
        (
            vec![
                "--release",
                "notqmail-1.09",
                "--json",
                "--release",
                "netqmail-1.06",
                "joe@example.com",
            ],
            "netqmail-1.06",
        ),
    ] {
        let o = run(&nss, &w, &args);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["release"], want, "{args:?}");
        assert_eq!(v["outcome"]["class"], "default", "{args:?}");
    }
}

/// The text block: notqmail has a `release:` line and, without qmailp,
/// defers with qmail-lspawn's message; netqmail's block has neither.
#[test]
fn cli_text_block_by_release() {
    let Some(nss) = nss_wrapper() else { return };
    let sb = Sandbox::new();
    let w = cli_world(&sb, false);
    let net = stdout(&run(&nss, &w, &["--check", "nobody@example.com"]));
    assert!(!net.contains("release:"), "{net}");
    assert!(net.contains("verdict: reject"), "{net}");
    let o = run(
        &nss,
        &w,
        &[
            "--check",
            "--release",
            "notqmail-1.09",
            "nobody@example.com",
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o),
        "input: nobody@example.com\n\
         release: notqmail-1.09\n\
         after percenthack: nobody@example.com\n\
         domain exists in locals\n\
         defer: fatal: unable to find user qmailp\n\
         verdict: accept\n\n"
    );
    // with the qmail users, notqmail decides as netqmail does
    let sb2 = Sandbox::new();
    let w2 = cli_world(&sb2, true);
    let net = stdout(&run(&nss, &w2, &["--check", "nobody@example.com"]));
    let not = stdout(&run(
        &nss,
        &w2,
        &[
            "--check",
            "--release",
            "notqmail-1.09",
            "nobody@example.com",
        ],
    ));
    assert_eq!(not.replace("release: notqmail-1.09\n", ""), net);
    assert!(not.contains("verdict: reject"), "{not}");
}

/// qtraceaddr asks the system's group database (here nss_wrapper) for
/// `nofiles` under notqmail: missing, every local address defers with
/// qmail-lspawn's text; present with a member list longer than the first
/// `getgrnam_r` buffer (4 KiB), it is still found.
#[test]
fn cli_notqmail_asks_the_group_database_for_nofiles() {
    let Some(nss) = nss_wrapper() else { return };
    let not = ["--check", "--release", "notqmail-1.09", "joe@example.com"];
    let sb = Sandbox::new();
    let w = cli_world_group(&sb, true, None);
    let o = stdout(&run(&nss, &w, &not));
    assert!(
        o.contains("defer: fatal: unable to find group nofiles\nverdict: accept\n"),
        "{o}"
    );
    let members: Vec<String> = (0..1500).map(|i| format!("member{i}")).collect();
    let big = format!("nofiles:x:2108:{}\n", members.join(","));
    assert!(big.len() > 8192);
    let sb2 = Sandbox::new();
    let w2 = cli_world_group(&sb2, true, Some(&big));
    let o = stdout(&run(&nss, &w2, &not));
    assert!(!o.contains("unable to find group"), "{o}");
    assert!(o.contains("verdict: accept"), "{o}");
    assert!(!o.contains("defer:"), "{o}");
}

/// qmail.c `qmail_close`: the text of every exit code qmail-queue can give
/// (the same in both releases; 82 with no descriptor-6 text too), `D` for
/// the permanent ones.
#[test]
fn qq_exit_codes_give_qmail_close_texts() {
    let t = |s: &str| s.as_bytes().to_vec();
    for (codes, want) in [
        (
            &[11u8, 115][..],
            QueueFailure::Permanent(t("envelope address too long for qq (#5.1.3)")),
        ),
        (
            &[31],
            QueueFailure::Permanent(t("mail server permanently rejected message (#5.3.0)")),
        ),
        (
            &[51],
            QueueFailure::Temporary(t("qq out of memory (#4.3.0)")),
        ),
        (&[52], QueueFailure::Temporary(t("qq timeout (#4.3.0)"))),
        (
            &[53],
            QueueFailure::Temporary(t("qq write error or disk full (#4.3.0)")),
        ),
        (&[54], QueueFailure::Temporary(t("qq read error (#4.3.0)"))),
        (
            &[55],
            QueueFailure::Temporary(t("qq unable to read configuration (#4.3.0)")),
        ),
        (
            &[56],
            QueueFailure::Temporary(t("qq trouble making network connection (#4.3.0)")),
        ),
        (
            &[61],
            QueueFailure::Temporary(t("qq trouble in home directory (#4.3.0)")),
        ),
        (
            &[62, 64, 66],
            QueueFailure::Temporary(t("qq trouble creating files in queue (#4.3.0)")),
        ),
        (
            &[71],
            QueueFailure::Temporary(t("mail server temporarily rejected message (#4.3.0)")),
        ),
        (
            &[72],
            QueueFailure::Temporary(t("connection to mail server timed out (#4.4.1)")),
        ),
        (
            &[73],
            QueueFailure::Temporary(t("connection to mail server rejected (#4.4.1)")),
        ),
        (
            &[74],
            QueueFailure::Temporary(t("communication with mail server failed (#4.4.2)")),
        ),
        (
            &[81, 91],
            QueueFailure::Temporary(t("qq internal bug (#4.3.0)")),
        ),
        (
            &[120],
            QueueFailure::Temporary(t("unable to exec qq (#4.3.0)")),
        ),
        (
            &[12, 30, 40],
            QueueFailure::Permanent(t("qq permanent problem (#5.3.0)")),
        ),
        (
            &[1, 41, 67, 82, 100, 255],
            QueueFailure::Temporary(t("qq temporary problem (#4.3.0)")),
        ),
    ] {
        for &code in codes {
            for release in [NET, NOT] {
                assert_eq!(
                    queue_result(release, &exit(code, b""), false),
                    Err(want.clone()),
                    "exit {code}"
                );
            }
        }
    }
}
