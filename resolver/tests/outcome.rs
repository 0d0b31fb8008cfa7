//! Stages H and O (resolution.md §4, §10) and §13 item 53.
mod common;
use common::*;
use qmail_resolver::handoff::{lspawn_report, senderadd, ChildStatus};
use qmail_resolver::rewrite::split_last_at;
use qmail_resolver::{Config, Outcome, ResolveOptions, Resolver, StaticPasswd, UsersDb, Verdict};

#[test]
fn h1_verp_sender_only() {
    assert_eq!(
        senderadd(b"owner-@host-@[]", b"box@rhost"),
        b"owner-box=rhost@host"
    );
    assert_eq!(senderadd(b"plain@host", b"box@rhost"), b"plain@host");
    assert_eq!(
        senderadd(b"x-@[]", b"box@rhost"),
        b"x-@[]",
        "no @ before -@[]"
    );
    assert_eq!(
        senderadd(b"owner-of-the-list-@[]", b"box@rhost"),
        b"owner-of-the-list-@[]",
        "no @ before -@[], a longer sender"
    );
    assert_eq!(senderadd(b"a@h-@[]", b"norecipat"), b"a@h-@[]");
}

#[test]
fn h3_split_at_last_at_keeps_case() {
    assert_eq!(split_last_at(b"A@b@C.Org"), (&b"A@b"[..], &b"C.Org"[..]));
}

#[test]
fn h4_empty_local_trash_before_lookup() {
    let sb = Sandbox::new();
    // even with users/cdb trouble, an empty local part is discarded
    let r = qmail_resolver::Resolver::from_parts(
        qmail_resolver::Config::with_home(sb.path()),
        controls(),
        qmail_resolver::UsersDb::Unreadable(libc::EISDIR),
        StaticPasswd::new(),
    );
    let t = r.resolve(b"@example.com");
    assert_eq!(t.outcome, Outcome::Trash);
    assert!(t.users.is_none());
}

#[test]
fn h5_users_before_getpw() {
    let sb = Sandbox::new();
    let mut pw = StaticPasswd::new();
    pw.add(b"joe", ouid(), 1, &sb.home("pwjoe"));
    let a = format!(
        "=joe:cdbjoe:{}:1:{}:::\n.\n",
        ouid(),
        String::from_utf8(sb.home("cdbjoe")).unwrap()
    );
    let r = resolver(controls(), Some(a.as_bytes()), pw, sb.path());
    let t = r.resolve(b"joe@example.com");
    assert!(t.getpw.is_none());
    assert_eq!(t.record.unwrap().user, "cdbjoe");
}

#[test]
fn h7_qmail_local_arguments() {
    let sb = Sandbox::new();
    let h = String::from_utf8(sb.home("j")).unwrap();
    sb.file("j/.qmail-default", b"&x\n", 0o644);
    let a = format!("+joe-:joe:{}:1:{h}:-::\n.\n", ouid());
    let r = resolver(
        controls(),
        Some(a.as_bytes()),
        StaticPasswd::new(),
        sb.path(),
    );
    let t = r.resolve(b"Joe-Ext@example.com");
    let Outcome::Deliver { target, .. } = &t.outcome else {
        panic!("{:?}", t.outcome)
    };
    let args: Vec<String> = target
        .qmail_local_args(b"s@x", b"./Mailbox\n")
        .iter()
        .map(|b| b.to_text())
        .collect();
    assert_eq!(
        args,
        [
            "joe",
            h.as_str(),
            "Joe-Ext",
            "-",
            "Ext",
            "example.com",
            "s@x",
            "./Mailbox\n"
        ]
    );
}

#[test]
fn o1_remote_unchanged() {
    let sb = Sandbox::new();
    let r = resolver(controls_nocatch(), None, StaticPasswd::new(), sb.path());
    assert_eq!(
        r.resolve(b"X@Remote.Example").outcome,
        Outcome::Remote {
            address: "X@Remote.Example".into()
        }
    );
}

#[test]
fn o2_lspawn_report_mapping() {
    let z = |c| lspawn_report(ChildStatus::Exited(c), b"");
    assert_eq!(
        lspawn_report(ChildStatus::Crashed, b"x"),
        (b'Z', "qmail-local crashed.".into())
    );
    assert_eq!(
        z(117),
        (b'Z', "Trouble reading users/cdb in qmail-lspawn.".into())
    );
    for (code, letter, text) in [
        (119, b'Z', "Out of memory in qmail-lspawn."),
        (118, b'Z', "Temporary failure in qmail-lspawn."),
        (116, b'Z', "Unable to find alias user!"),
        (113, b'Z', "Not allowed to perform deliveries as root."),
        (112, b'Z', "Internal qmail-lspawn bug."),
        (115, b'Z', "NFS failure in qmail-local."),
        (126, b'D', "Unable to run qmail-local."),
        (120, b'Z', "Unable to run qmail-local."),
        (121, b'Z', "Unable to run qmail-getpw."),
    ] {
        // qmail-lspawn's own text, whatever qmail-local wrote
        let got = lspawn_report(ChildStatus::Exited(code), b"ignored");
        assert_eq!(got, (letter, text.into()), "exit {code}");
    }
    for c in [111, 71, 74, 75] {
        assert_eq!(z(c).0, b'Z', "{c}");
    }
    assert_eq!(
        lspawn_report(ChildStatus::Exited(0), b"did 0+1+0\nqp 5\0junk"),
        (b'K', "did 0+1+0\nqp 5".into())
    );
    for c in [100, 1, 2, 99, 64] {
        assert_eq!(z(c).0, b'D', "{c}");
    }
}

#[test]
fn o3_queuelifetime_text() {
    assert!(qmail_resolver::handoff::QUEUELIFETIME_TEXT.starts_with("I'm not going to try again"));
}

#[test]
fn o4_evaluation_order() {
    let sb = Sandbox::new();
    // root (H6) is decided before a relative home (L1)
    let r = resolver(
        controls(),
        Some(b"=a:a:0:1:rel:::\n.\n"),
        StaticPasswd::new(),
        sb.path(),
    );
    assert_eq!(
        r.resolve(b"a@example.com").outcome.text().unwrap(),
        &"Not allowed to perform deliveries as root."
    );
    // L2 (missing home) before L5 (loop) before Q5
    let h = String::from_utf8(sb.home("h")).unwrap();
    let a = format!(
        "=a:a:7:1:/nonexistent/x:-::\n=b:b:{}:1:{h}:-::\n.\n",
        ouid()
    );
    let r = resolver(
        controls(),
        Some(a.as_bytes()),
        StaticPasswd::new(),
        sb.path(),
    );
    let o = ResolveOptions {
        headers: Some(b"Delivered-To: a@example.com\nDelivered-To: b@example.com\n".to_vec()),
        ..Default::default()
    };
    assert_eq!(
        r.resolve_with(b"a@example.com", &o).outcome.class(),
        "defer"
    );
    let t = r.resolve_with(b"b@example.com", &o);
    assert!(t
        .outcome
        .text()
        .unwrap()
        .starts_with(b"This message is looping"));
    assert_eq!(r.resolve(b"b@example.com").verdict, Verdict::Reject);
}

#[test]
fn edge_53_long_addresses() {
    let sb = Sandbox::new();
    let h = String::from_utf8(sb.home("h")).unwrap();
    let a = format!("+long-:l:{}:1:{h}:-::\n.\n", ouid());
    sb.file("h/.qmail-default", b"&x\n", 0o644);
    let r = resolver(
        controls(),
        Some(a.as_bytes()),
        StaticPasswd::new(),
        sb.path(),
    );
    // users/cdb has no length limit; the .qmail name is too long → absent
    let local = format!("long-{}", "y".repeat(10_000));
    let t = r.resolve(format!("{local}@example.com").as_bytes());
    assert_eq!(t.record.as_ref().unwrap().ext.len(), 10_000);
    match &t.outcome {
        Outcome::Deliver { file, .. } => assert_eq!(file.to_text(), ".qmail-default"),
        o => panic!("{o:?}"),
    }
    // qmail-send has no limit either
    assert_eq!(
        r.resolve(format!("{}@remote.example", "z".repeat(200_000)).as_bytes())
            .rewrite
            .address
            .len(),
        "catch-".len() + 200_000 + "@remote.example".len()
    );
}

#[test]
fn h2_rewritten_local_recipients_always_have_an_at() {
    let c = controls();
    for a in ["", "x", "@", "%@ph.net", "a%b"] {
        let r = qmail_resolver::rewrite(&c, a.as_bytes());
        assert!(
            r.address.contains(&b'@'),
            "{a}: W2 guarantees an @, so H2 cannot fire"
        );
    }
}

/// A sandbox with joe's home.
fn passwd_joe() -> (Sandbox, Vec<u8>) {
    let sb = Sandbox::new();
    let home = sb.home("joe");
    (sb, home)
}

/// A resolver on `cfg` with the standard controls, no users/cdb and joe
/// in passwd (home `joe` in `sb`).
fn joe_resolver(sb: &Sandbox, cfg: Config) -> Resolver<StaticPasswd> {
    let mut pw = StaticPasswd::new();
    pw.add(b"joe", ouid(), 1, &sb.pb("joe"));
    Resolver::from_parts(cfg, controls(), UsersDb::Missing, pw)
}

/// A structural error (P3) in the default delivery instructions
/// (aliasempty, no `.qmail` file found): the block says which
/// instructions were used, then the deferral.
#[test]
fn a_structural_error_in_aliasempty_is_reported_after_the_default_delivery_line() {
    use qmail_resolver::report::format_trace;
    let (sb, _) = passwd_joe();
    let mut cfg = Config::with_home(sb.path());
    cfg.aliasempty = b"\n./Mailbox\n".to_vec();
    let r = joe_resolver(&sb, cfg);
    let opts = ResolveOptions {
        instructions: true,
        ..Default::default()
    };
    let t = r.resolve_with(b"joe@example.com", &opts);
    let text = String::from_utf8(format_trace(&t)).unwrap();
    assert!(
        text.ends_with(
            "deliver according to default delivery instructions\n\
             defer: Uh-oh: first line of .qmail file is blank. (#4.2.1)\n\n"
        ),
        "{text}"
    );
}

/// qmail-getpw's record for a passwd user with an extension much longer
/// than the user's name and home: all six fields kept whole.
#[test]
fn a_long_extension_is_kept_whole_in_the_getpw_record() {
    let (sb, home) = passwd_joe();
    let r = joe_resolver(&sb, Config::with_home(sb.path()));
    let ext = "x".repeat(300);
    let t = r.resolve(format!("joe-{ext}@example.com").as_bytes());
    let rec = t.record.expect("a record");
    assert_eq!(rec.user, "joe");
    assert_eq!(rec.home.as_bytes(), &home[..]);
    assert_eq!(rec.dash, "-");
    assert_eq!(rec.ext.as_bytes(), ext.as_bytes());
}
