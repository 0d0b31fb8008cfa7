//! Stages L and Q (resolution.md §7, §8), the realrcptto verdict and its
//! deliberate changes, and §13 items 37–43.
mod common;
use common::*;
use qmail_resolver::dotqmail::{search_names, Probe};
use qmail_resolver::resolve::HomeCheck;
use qmail_resolver::{Outcome, ResolveOptions, Resolver, Sender, StaticPasswd, Trace, Verdict};

struct Fx {
    sb: Sandbox,
    r: Resolver<StaticPasswd>,
}

impl Fx {
    fn new() -> Fx {
        let sb = Sandbox::new();
        let home = sb.home("joe");
        let h = String::from_utf8(home).unwrap();
        let u = ouid();
        let assign = format!("=joe:joe:{u}:1:{h}:::\n+joe-:joe:{u}:1:{h}:-::\n.\n");
        let r = resolver(
            controls(),
            Some(assign.as_bytes()),
            StaticPasswd::new(),
            sb.path(),
        );
        Fx { sb, r }
    }
    fn file(&self, name: &str, content: &[u8], mode: u32) {
        self.sb.file(&format!("joe/{name}"), content, mode);
    }
    fn res(&self, local: &str) -> Trace {
        self.r.resolve(format!("{local}@example.com").as_bytes())
    }
}

fn delivered(t: &Trace) -> String {
    match &t.outcome {
        Outcome::Deliver { file, .. } => file.to_text(),
        o => panic!("expected deliver, got {o:?}"),
    }
}

fn names(dash: &str, ext: &str) -> Vec<String> {
    search_names(dash.as_bytes(), ext.as_bytes())
        .into_iter()
        .map(|n| n.name.to_text())
        .collect()
}

const NOBOX: &str = "Sorry, no mailbox here by that name. (#5.1.1)";

#[test]
fn l1_relative_home_bounces() {
    let sb = Sandbox::new();
    let r = resolver(
        controls(),
        Some(b"=a:a:7:1:home/a:::\n.\n"),
        StaticPasswd::new(),
        sb.path(),
    );
    let t = r.resolve(b"a@example.com");
    assert_eq!(t.outcome.class(), "bounce");
    assert_eq!(t.verdict, Verdict::Accept);
}

#[test]
fn l2_unreachable_home_defers_and_accepts() {
    let sb = Sandbox::new();
    sb.file("notdir", b"x", 0o644);
    let p = String::from_utf8(sb.pb("notdir")).unwrap();
    let a = format!("=a:a:7:1:{p}:-::\n.\n");
    let r = resolver(
        controls(),
        Some(a.as_bytes()),
        StaticPasswd::new(),
        sb.path(),
    );
    let t = r.resolve(b"a@example.com");
    assert_eq!(
        t.outcome.text().unwrap().to_text(),
        format!("Unable to switch to {p}: not a directory. (#4.3.0)")
    );
    assert_eq!(t.verdict, Verdict::Accept);
}

#[test]
fn l3_writable_and_sticky_home() {
    let fx = Fx::new();
    fx.sb.chmod("joe", 0o777);
    let t = fx.res("joe-nobox");
    assert_eq!(
        t.outcome.text().unwrap(),
        &"Uh-oh: home directory is writable. (#4.7.0)"
    );
    assert_eq!(t.verdict, Verdict::Accept, "deliberate change 2");
    fx.sb.chmod("joe", 0o775);
    assert_eq!(
        fx.res("joe-nobox").verdict,
        Verdict::Reject,
        "group-writable is fine"
    );
    fx.sb.chmod("joe", 0o1755);
    let t = fx.res("joe-nobox");
    assert_eq!(
        t.outcome.text().unwrap(),
        &"Home directory is sticky: user is editing his .qmail file. (#4.2.1)"
    );
    assert!(matches!(t.home, Some(HomeCheck::Sticky { .. })));
    assert_eq!(t.verdict, Verdict::Accept);
}

#[test]
fn l4_safeext_lowercase_dots_to_colons() {
    assert_eq!(qmail_resolver::dotqmail::safeext(b"A.b/C..d"), b"a:b/c::d");
}

#[test]
fn l5_delivered_to_loop_case_sensitive() {
    let fx = Fx::new();
    let opts = |h: &[u8]| ResolveOptions {
        headers: Some(h.to_vec()),
        ..Default::default()
    };
    let t = fx.r.resolve_with(
        b"joe-none@example.com",
        &opts(b"Received: x\nDelivered-To: joe-none@example.com\n\nbody\n"),
    );
    assert_eq!(
        t.outcome.text().unwrap(),
        &"This message is looping: it already has my Delivered-To line. (#5.4.6)"
    );
    assert!(t.looping);
    assert_eq!(t.verdict, Verdict::Accept);
    let t = fx.r.resolve_with(
        b"joe-none@example.com",
        &opts(b"Delivered-To: JOE-none@example.com\n"),
    );
    assert_eq!(t.outcome.text().unwrap(), &NOBOX);
    // a matching line after the blank separator is body, not header
    let t = fx.r.resolve_with(
        b"joe-none@example.com",
        &opts(b"X: y\n\nDelivered-To: joe-none@example.com\n"),
    );
    assert_eq!(t.outcome.text().unwrap(), &NOBOX);
}

#[test]
fn q1_probe_classes() {
    let fx = Fx::new();
    std::fs::create_dir(fx.sb.p("joe/.qmail-dir")).unwrap();
    fx.file(".qmail-default", b"&x\n", 0o644);
    let t = fx.res("joe-dir");
    assert!(matches!(t.search[0].probe, Probe::NotRegular { .. }));
    assert_eq!(delivered(&t), ".qmail-default");
    fx.file(".qmail-ww", b"&x\n", 0o646);
    let t = fx.res("joe-ww");
    assert_eq!(
        t.outcome.text().unwrap(),
        &"Uh-oh: .qmail file is writable. (#4.7.0)"
    );
    fx.file(".qmail-fo", b"&x\n", 0o744);
    match fx.res("joe-fo").outcome {
        Outcome::Deliver { forward_only, .. } => assert!(forward_only),
        o => panic!("{o:?}"),
    }
}

#[test]
fn q2_exact_and_default_value() {
    let fx = Fx::new();
    fx.file(".qmail-foo-default", b"&x\n", 0o644);
    match fx.res("joe-foo-default").outcome {
        Outcome::Deliver { file, default, .. } => {
            assert_eq!(file, ".qmail-foo-default");
            assert_eq!(default.unwrap(), "default");
        }
        o => panic!("{o:?}"),
    }
    fx.file(".qmail-bar", b"&x\n", 0o644);
    match fx.res("joe-bar").outcome {
        Outcome::Deliver { default, .. } => assert_eq!(default, None),
        o => panic!("{o:?}"),
    }
}

#[test]
fn q3_default_walk_order() {
    assert_eq!(
        names("-", "a-b-c"),
        [
            ".qmail-a-b-c",
            ".qmail-a-b-default",
            ".qmail-a-default",
            ".qmail-default"
        ]
    );
    assert_eq!(
        names("-", "a-"),
        [".qmail-a-", ".qmail-a-default", ".qmail-default"]
    );
    assert_eq!(
        names("-", "a--b"),
        [
            ".qmail-a--b",
            ".qmail-a--default",
            ".qmail-a-default",
            ".qmail-default"
        ]
    );
    assert_eq!(names("-", ""), [".qmail-", ".qmail-default"]);
    let n = search_names(b"-", b"A-x.B");
    assert_eq!(n[0].name, ".qmail-a-x:b");
    assert_eq!(n[1].name, ".qmail-a-default");
    assert_eq!(n[1].default_value(b"A-x.B").unwrap(), b"x.B");
    let fx = Fx::new();
    fx.file(".qmail-a-default", b"&x\n", 0o644);
    match fx.res("joe-A-x.B").outcome {
        Outcome::Deliver { default, .. } => assert_eq!(default.unwrap(), "x.B"),
        o => panic!("{o:?}"),
    }
}

#[test]
fn q4_qmaildefault_for_base_address() {
    assert_eq!(names("", ""), [".qmail", ".qmaildefault"]);
    assert_eq!(names("", "foo"), [".qmailfoo", ".qmaildefault"]);
    let fx = Fx::new();
    fx.file(".qmaildefault", b"&x\n", 0o644);
    assert_eq!(delivered(&fx.res("joe")), ".qmaildefault");
}

#[test]
fn q5_no_file_dash_decides() {
    let fx = Fx::new();
    let t = fx.res("joe");
    assert_eq!(t.outcome.class(), "default");
    assert_eq!(t.verdict, Verdict::Accept);
    let t = fx.res("joe-x");
    assert_eq!(t.outcome, Outcome::Bounce { text: NOBOX.into() });
    assert_eq!(t.verdict, Verdict::Reject);
}

#[test]
fn q6_slash_descends_dots_cannot_escape() {
    let fx = Fx::new();
    fx.file(".qmail-a/b-default", b"&x\n", 0o644);
    assert_eq!(delivered(&fx.res("joe-a/b-c")), ".qmail-a/b-default");
    assert_eq!(names("-", "../../etc/passwd")[0], ".qmail-::/::/etc/passwd");
    assert_eq!(
        names("+", "a-b"),
        [".qmail+a-b", ".qmail+a-default", ".qmail+default"]
    );
}

#[test]
fn q7_owner_newsender_by_sender_kind() {
    let fx = Fx::new();
    fx.file(".qmail-list", b"&x\n", 0o644);
    fx.file(".qmail-list-owner", b"&y\n", 0o644);
    let with = |s: &[u8]| ResolveOptions {
        sender: Sender::Address(s.into()),
        ..Default::default()
    };
    let ns = |t: Trace| match t.outcome {
        Outcome::Deliver { newsender, .. } => newsender.map(|b| b.to_text()),
        o => panic!("{o:?}"),
    };
    assert_eq!(
        ns(fx.r.resolve_with(b"joe-list@example.com", &with(b"a@b"))).unwrap(),
        "joe-list-owner@example.com"
    );
    assert_eq!(
        ns(fx.r.resolve_with(b"joe-list@example.com", &with(b""))),
        None
    );
    assert_eq!(
        ns(fx.r.resolve_with(b"joe-list@example.com", &with(b"#@[]"))),
        None
    );
    fx.file(".qmail-list-owner-default", b"&y\n", 0o644);
    assert_eq!(
        ns(fx.res("joe-list")).unwrap(),
        "joe-list-owner-@example.com-@[]"
    );
}

#[test]
fn edge_37_home_modes() {
    let fx = Fx::new();
    for (mode, class) in [(0o777, "defer"), (0o775, "bounce"), (0o1755, "defer")] {
        fx.sb.chmod("joe", mode);
        assert_eq!(fx.res("joe-x").outcome.class(), class, "mode {mode:o}");
    }
    fx.sb.chmod("joe", 0o755);
}

#[test]
fn edge_37_mode_000_home_defers_unprivileged() {
    if !unprivileged("edge_37_mode_000_home_defers_unprivileged") {
        return;
    }
    let fx = Fx::new();
    fx.sb.chmod("joe", 0o000);
    let t = fx.res("joe-x");
    assert!(t
        .outcome
        .text()
        .unwrap()
        .to_text()
        .ends_with(": access denied. (#4.3.0)"));
    assert_eq!(t.verdict, Verdict::Accept);
    fx.sb.chmod("joe", 0o755);
}

#[test]
fn l2_access_denied_home_is_uncertain() {
    if !unprivileged("l2_access_denied_home_is_uncertain") {
        return;
    }
    let fx = Fx::new();
    fx.sb.chmod("joe", 0o000);
    let t = fx.res("joe-nobox");
    assert_eq!(t.outcome.class(), "defer");
    assert_eq!(t.uncertain.len(), 1, "{:?}", t.uncertain);
    let u = &t.uncertain[0];
    assert_eq!(u.stage, "home");
    assert_eq!(u.errno, libc::EACCES);
    assert_eq!(u.path.as_bytes(), fx.sb.pb("joe").as_slice());
    assert_eq!(t.verdict, Verdict::Accept, "not Q5: the user may see more");
    // a home that does not exist is certain
    fx.sb.chmod("joe", 0o755);
    let sb = Sandbox::new();
    let r = resolver(
        controls(),
        Some(b"=a:a:7:1:/nonexistent/a:-::\n.\n"),
        StaticPasswd::new(),
        sb.path(),
    );
    let t = r.resolve(b"a@example.com");
    assert_eq!(t.outcome.class(), "defer");
    assert!(t.uncertain.is_empty(), "{:?}", t.uncertain);
}

#[test]
fn edge_38_loop_before_search() {
    let fx = Fx::new();
    let o = ResolveOptions {
        headers: Some(b"Delivered-To: joe-nobox@example.com\n".to_vec()),
        ..Default::default()
    };
    assert_eq!(
        fx.r.resolve_with(b"joe-nobox@example.com", &o)
            .outcome
            .class(),
        "bounce"
    );
    assert!(fx
        .r
        .resolve_with(b"joe-nobox@example.com", &o)
        .search
        .is_empty());
    let o = ResolveOptions {
        headers: Some(b"Delivered-To: joe-nobox@example.co\n".to_vec()),
        ..Default::default()
    };
    assert_eq!(
        fx.r.resolve_with(b"joe-nobox@example.com", &o).verdict,
        Verdict::Reject
    );
}

#[test]
fn edge_39_search_levels() {
    let fx = Fx::new();
    fx.file(".qmail-a-b", b"&x\n", 0o644);
    fx.file(".qmail-a-default", b"&x\n", 0o644);
    assert_eq!(delivered(&fx.res("joe-a-b")), ".qmail-a-b");
    assert_eq!(delivered(&fx.res("joe-a-c")), ".qmail-a-default");
    assert_eq!(fx.res("joe-b").verdict, Verdict::Reject);
    fx.file(".qmail-default", b"&x\n", 0o644);
    assert_eq!(delivered(&fx.res("joe-b")), ".qmail-default");
    assert_eq!(fx.res("joe").outcome.class(), "default");
}

#[test]
fn edge_40_ext_shapes() {
    let fx = Fx::new();
    fx.file(".qmail-default", b"&x\n", 0o644);
    fx.file(".qmail-a:b", b"&x\n", 0o644);
    assert_eq!(delivered(&fx.res("joe-A.B")), ".qmail-a:b");
    match fx.res("joe-UP").outcome {
        Outcome::Deliver { default, .. } => assert_eq!(default.unwrap(), "UP"),
        o => panic!("{o:?}"),
    }
    assert_eq!(
        delivered(&fx.res("joe-x/y")),
        ".qmail-default",
        "ENOENT under missing dir"
    );
    assert_eq!(delivered(&fx.res("joe-..")), ".qmail-default");
    let long = "z".repeat(300);
    let t = fx.res(&format!("joe-{long}"));
    assert_eq!(
        t.search[0].probe,
        Probe::Missing {
            errno: libc::ENAMETOOLONG
        }
    );
    assert_eq!(delivered(&t), ".qmail-default");
}

#[test]
fn edge_41_object_kinds() {
    let fx = Fx::new();
    std::fs::create_dir(fx.sb.p("joe/.qmail-d")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/target", fx.sb.p("joe/.qmail-dangle")).unwrap();
    let fifo = std::ffi::CString::new(fx.sb.pb("joe/.qmail-fifo")).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    for l in ["joe-d", "joe-dangle", "joe-fifo"] {
        assert_eq!(
            fx.res(l).verdict,
            Verdict::Reject,
            "{l}: absent, walk goes on (deliberate change 1)"
        );
    }
    fx.file("target", b"&x\n", 0o744);
    std::os::unix::fs::symlink(fx.sb.p("joe/target"), fx.sb.p("joe/.qmail-sym")).unwrap();
    match fx.res("joe-sym").outcome {
        Outcome::Deliver { forward_only, .. } => assert!(forward_only, "target's mode"),
        o => panic!("{o:?}"),
    }
    fx.file(".qmail-gw", b"&x\n", 0o664);
    assert_eq!(fx.res("joe-gw").outcome.class(), "deliver");
    fx.file("wwtarget", b"&x\n", 0o666);
    std::os::unix::fs::symlink(fx.sb.p("joe/wwtarget"), fx.sb.p("joe/.qmail-wsym")).unwrap();
    assert_eq!(
        fx.res("joe-wsym").outcome.text().unwrap(),
        &"Uh-oh: .qmail file is writable. (#4.7.0)"
    );
}

#[test]
fn edge_41_unreadable_qmail_stops_walk_unprivileged() {
    if !unprivileged("edge_41_unreadable_qmail_stops_walk_unprivileged") {
        return;
    }
    let fx = Fx::new();
    fx.file(".qmail-default", b"&x\n", 0o644);
    fx.file(".qmail-secret", b"&x\n", 0o000);
    let t = fx.res("joe-secret");
    assert_eq!(
        t.outcome.text().unwrap(),
        &"Unable to open .qmail-secret: access denied. (#4.3.0)"
    );
    assert_eq!(t.search.len(), 1, "the walk does not go on");
    assert_eq!(t.verdict, Verdict::Accept, "EACCES means cannot know");
    assert_eq!(t.uncertain.len(), 1, "{:?}", t.uncertain);
    assert_eq!(t.uncertain[0].stage, "qmail");
    assert_eq!(t.uncertain[0].path, t.search[0].path);
    // EACCES on a parent directory of a '/' ext
    std::fs::create_dir(fx.sb.p("joe/.qmail-sub")).unwrap();
    fx.sb.chmod("joe/.qmail-sub", 0o000);
    let t = fx.res("joe-sub/x");
    assert_eq!(t.outcome.class(), "defer");
    assert_eq!(t.verdict, Verdict::Accept);
    fx.sb.chmod("joe/.qmail-sub", 0o755);
}

#[test]
fn edge_42_empty_file_uses_aliasempty() {
    let fx = Fx::new();
    fx.file(".qmail-empty", b"", 0o744);
    match fx.res("joe-empty").outcome {
        Outcome::Deliver {
            empty,
            forward_only,
            ..
        } => {
            assert!(empty);
            assert!(!forward_only, "x bit cleared for an empty file");
        }
        o => panic!("{o:?}"),
    }
    let t = fx.r.resolve_with(
        b"joe-empty@example.com",
        &ResolveOptions {
            instructions: true,
            ..Default::default()
        },
    );
    let lines: Vec<String> = t
        .listing
        .unwrap()
        .lines
        .iter()
        .map(|l| l.to_text())
        .collect();
    assert_eq!(lines, ["mbox ./Mailbox", "did 1+0+0"]);
}

#[test]
fn edge_43_owner_files_and_senders() {
    let fx = Fx::new();
    fx.file(".qmail-x", b"&a\n", 0o644);
    std::fs::create_dir(fx.sb.p("joe/.qmail-x-owner")).unwrap();
    // any file type counts as existing
    let t = fx.res("joe-x");
    assert_eq!(
        t.owner,
        vec![
            (".qmail-x-owner".into(), true),
            (".qmail-x-owner-default".into(), false)
        ]
    );
    let o = ResolveOptions {
        sender: Sender::Address("".into()),
        ..Default::default()
    };
    assert!(fx.r.resolve_with(b"joe-x@example.com", &o).owner.is_empty());
    // names use the requested ext even when a default file was used
    fx.file(".qmail-y-default", b"&a\n", 0o644);
    fx.file(".qmail-y-z-owner", b"&a\n", 0o644);
    match fx.res("joe-y-z").outcome {
        Outcome::Deliver { newsender, .. } => {
            assert_eq!(newsender.unwrap(), "joe-y-z-owner@example.com")
        }
        o => panic!("{o:?}"),
    }
}

#[test]
fn verdict_remote_trash_default_found_accept_q5_rejects() {
    let fx = Fx::new();
    let r = resolver(controls_nocatch(), None, StaticPasswd::new(), fx.sb.path());
    assert_eq!(r.resolve(b"x@remote.example").verdict, Verdict::Accept);
    assert_eq!(fx.r.resolve(b"@example.com").verdict, Verdict::Accept);
    assert_eq!(fx.res("joe").verdict, Verdict::Accept);
    fx.file(".qmail-yes", b"&x\n", 0o644);
    assert_eq!(fx.res("joe-yes").verdict, Verdict::Accept);
    assert_eq!(fx.res("joe-no").verdict, Verdict::Reject);
    assert_eq!(fx.res("joe-no").verdict.as_str(), "reject");
}

#[test]
fn outcome_json_is_stable() {
    let fx = Fx::new();
    let t = fx.res("joe-no");
    let v: serde_json::Value = serde_json::to_value(&t).unwrap();
    assert_eq!(v["outcome"]["class"], "bounce");
    assert_eq!(v["outcome"]["text"], NOBOX);
    assert_eq!(v["verdict"]["verdict"], "reject");
    assert_eq!(v["rewrite"]["address"], "joe-no@example.com");
    let t = fx.res("joe");
    let v: serde_json::Value = serde_json::to_value(&t).unwrap();
    assert_eq!(v["outcome"]["class"], "default");
    assert_eq!(v["outcome"]["target"]["user"], "joe");
}

fn res_p(fx: &Fx, local: &str) -> Trace {
    fx.r.resolve_with(
        format!("{local}@example.com").as_bytes(),
        &ResolveOptions {
            instructions: true,
            ..Default::default()
        },
    )
}

/// Stage P ran and stopped at a P3 error with `text`: the outcome is that
/// deferral, the verdict accepts, and the trace still names `file`.
fn assert_p3_defer(t: &Trace, file: &str, text: &str) {
    assert_eq!(t.outcome, Outcome::Defer { text: text.into() });
    assert_eq!(t.verdict, Verdict::Accept, "a deferral, not Q5");
    assert_eq!(t.structural_error().map(|e| e.to_text()), Some(text.into()));
    assert_eq!(t.chosen().map(|s| s.name.name.to_text()), Some(file.into()));
    assert!(t.uncertain.is_empty());
}

const PROG_X: &str = "Uh-oh: .qmail has prog delivery but has x bit set. (#4.7.0)";
const FILE_X: &str = "Uh-oh: .qmail has file delivery but has x bit set. (#4.7.0)";
const BLANK: &str = "Uh-oh: first line of .qmail file is blank. (#4.2.1)";

#[test]
fn p3_x_bit_with_program_line_defers() {
    let fx = Fx::new();
    fx.file(".qmail-prog", b"&fwd@example.net\n|true\n", 0o744);
    assert_p3_defer(&res_p(&fx, "joe-prog"), ".qmail-prog", PROG_X);
    // without stage P the file is not read: the search result stands
    assert_eq!(delivered(&fx.res("joe-prog")), ".qmail-prog");
}

#[test]
fn p3_x_bit_with_file_line_defers() {
    let fx = Fx::new();
    fx.file(".qmail-box", b"./Mailbox\n", 0o744);
    assert_p3_defer(&res_p(&fx, "joe-box"), ".qmail-box", FILE_X);
    fx.file(".qmail-dir", b"./Maildir/\n", 0o744);
    assert_p3_defer(&res_p(&fx, "joe-dir"), ".qmail-dir", FILE_X);
}

#[test]
fn p3_plus_list_then_program_defers() {
    let fx = Fx::new();
    fx.file(".qmail-l", b"&a@example.net\n+list\n|true\n", 0o644);
    assert_p3_defer(&res_p(&fx, "joe-l"), ".qmail-l", PROG_X);
    // a program before +list is fine
    fx.file(".qmail-ok", b"|true\n+list\n&a@example.net\n", 0o644);
    let t = res_p(&fx, "joe-ok");
    assert_eq!(delivered(&t), ".qmail-ok");
    assert_eq!(t.structural_error(), None);
}

#[test]
fn p3_blank_first_line_defers() {
    let fx = Fx::new();
    fx.file(".qmail-b", b"\n&a@example.net\n", 0o644);
    assert_p3_defer(&res_p(&fx, "joe-b"), ".qmail-b", BLANK);
    // only whitespace is blank too; a later blank line is not an error
    fx.file(".qmail-w", b" \t\n&a@example.net\n", 0o644);
    assert_p3_defer(&res_p(&fx, "joe-w"), ".qmail-w", BLANK);
    fx.file(".qmail-later", b"&a@example.net\n\n", 0o644);
    assert_eq!(delivered(&res_p(&fx, "joe-later")), ".qmail-later");
}

#[test]
fn o4_11_structural_error_is_defer() {
    // an empty file with the x bit uses aliasempty with forward-only
    // cleared (P1): no error
    let fx = Fx::new();
    fx.file(".qmail-e", b"", 0o744);
    let t = res_p(&fx, "joe-e");
    assert_eq!(delivered(&t), ".qmail-e");
    assert_eq!(t.structural_error(), None);
    // the default delivery instructions are checked too
    let sb = Sandbox::new();
    let h = String::from_utf8(sb.home("joe")).unwrap();
    let assign = format!(
        "=joe:joe:{u}:1:{h}:::\n+joe-:joe:{u}:1:{h}:-::\n.\n",
        u = ouid()
    );
    let mut cfg = qmail_resolver::Config::with_home(sb.path());
    cfg.aliasempty = b"\n./Mailbox\n".to_vec();
    let r = Resolver::from_parts(
        cfg,
        controls(),
        qmail_resolver::UsersDb::from_records(
            &qmail_resolver::compile_assign(assign.as_bytes()).unwrap(),
        )
        .unwrap(),
        StaticPasswd::new(),
    );
    let o = ResolveOptions {
        instructions: true,
        ..Default::default()
    };
    let t = r.resolve_with(b"joe@example.com", &o);
    assert_eq!(t.outcome, Outcome::Defer { text: BLANK.into() });
    assert_eq!(
        t.structural_error().map(|e| e.to_text()),
        Some(BLANK.into())
    );
    assert!(t.chosen().is_none(), "no file: the default instructions");
    assert_eq!(t.verdict, Verdict::Accept);
    // O4 order: Q5 (item 9) comes before P3 (item 11)
    let t = r.resolve_with(b"joe-nobox@example.com", &o);
    assert_eq!(t.outcome.text().unwrap(), &NOBOX);
    // and the other deferrals are not structural
    fx.sb.chmod("joe", 0o777);
    assert_eq!(res_p(&fx, "joe-e").structural_error(), None);
    fx.sb.chmod("joe", 0o755);
}
