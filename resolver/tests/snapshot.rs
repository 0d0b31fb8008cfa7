//! The per-run filesystem snapshot (`Resolver::with_fs_snapshot`, as
//! qtraceaddr runs): the traces are those of the resolver without it, on
//! the same filesystem, for every kind of probe result; and it saves the
//! system calls (a second pass makes none, and an edit made after the
//! first resolve is not seen, as `--help` says).
mod common;
use common::*;
use qmail_resolver::{ResolveOptions, Resolver, Sender, StaticPasswd, Trace};
use std::os::unix::fs::symlink;

/// A home `joe` (users/cdb, with `-` wildcard) full of odd `.qmail`
/// objects, passwd users with missing, file and symlinked homes, owner
/// files, and the alias user.
struct World {
    sb: Sandbox,
    assign: String,
    pw: StaticPasswd,
}

fn world() -> World {
    let sb = Sandbox::new();
    let h = String::from_utf8(sb.home("joe")).unwrap();
    let u = ouid();
    let assign = format!("=joe:joe:{u}:1:{h}:::\n+joe-:joe:{u}:1:{h}:-::\n.\n");
    sb.file("joe/.qmail", b"./Maildir/\n", 0o644);
    sb.file("joe/.qmail-list", b"&a@b.example\n&c@d.example\n", 0o644);
    sb.file("joe/.qmail-list-owner", b"&owner@example.com\n", 0o644);
    sb.file("joe/.qmail-fwd", b"&x@y.example\n", 0o744);
    sb.file("joe/.qmail-blank", b"\n&x@y.example\n", 0o644);
    sb.file("joe/.qmail-empty", b"", 0o644);
    sb.file("joe/.qmail-gw", b"&x\n", 0o666);
    sb.file("joe/.qmail-plain", b"/dev/null\n", 0o644);
    sb.file("joe/.qmail-prog-default", b"|true\n", 0o644);
    // non-regular: a directory and a FIFO (absent, the walk goes on)
    std::fs::create_dir(sb.p("joe/.qmail-d")).unwrap();
    let fifo = std::ffi::CString::new(sb.pb("joe/.qmail-fifo")).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    // ENOTDIR (a '/' ext under a file), ELOOP, a dangling and a good link
    symlink(".qmail-loop", sb.p("joe/.qmail-loop")).unwrap();
    symlink("/nonexistent/target", sb.p("joe/.qmail-dangle")).unwrap();
    symlink(sb.p("joe/.qmail-fwd"), sb.p("joe/.qmail-sym")).unwrap();
    // over the 16 MiB limit (sparse)
    let big = std::fs::File::create(sb.p("joe/.qmail-big")).unwrap();
    big.set_len((16 << 20) + 1).unwrap();
    // passwd users: a good home, a missing one, a file, a symlink to joe's
    let mut pw = StaticPasswd::new();
    let ah = String::from_utf8(sb.home("alias")).unwrap();
    sb.file("alias/.qmail-default", b"./Mailbox\n", 0o644);
    pw.add(b"alias", u, 1, ah.as_bytes());
    let ph = String::from_utf8(sb.home("pat")).unwrap();
    sb.file("pat/.qmail-news", b"&news@example.com\n", 0o644);
    pw.add(b"pat", u, 1, ph.as_bytes());
    pw.add(b"gone", u, 1, sb.pb("nohome").as_slice());
    sb.file("afile", b"", 0o644);
    pw.add(b"filehome", u, 1, sb.pb("afile").as_slice());
    symlink(sb.p("pat"), sb.p("patlink")).unwrap();
    pw.add(b"linked", u, 1, sb.pb("patlink").as_slice());
    World { sb, assign, pw }
}

impl World {
    fn resolver(&self) -> Resolver<StaticPasswd> {
        resolver(
            controls(),
            Some(self.assign.as_bytes()),
            self.pw.clone(),
            self.sb.path(),
        )
    }
}

/// Every kind of probe result, each address twice (the second answered
/// from the snapshot).
const LOCALS: &[&str] = &[
    "joe",
    "joe-list",
    "joe-fwd",
    "joe-blank",
    "joe-empty",
    "joe-gw",
    "joe-plain",
    "joe-prog-x",
    "joe-prog-y-z",
    "joe-d",
    "joe-fifo",
    "joe-plain/x",
    "joe-loop",
    "joe-dangle",
    "joe-sym",
    "joe-big",
    "joe-nosuch",
    "pat",
    "pat-news",
    "pat-nosuch",
    "gone",
    "gone-x",
    "filehome",
    "linked-news",
    "linked-nosuch",
    "ghost",
];

fn addresses() -> Vec<Vec<u8>> {
    let one: Vec<Vec<u8>> = LOCALS
        .iter()
        .map(|l| format!("{l}@example.com").into_bytes())
        .collect();
    [one.clone(), one].concat()
}

fn traces(r: &Resolver<StaticPasswd>, opts: &ResolveOptions) -> Vec<Trace> {
    addresses()
        .iter()
        .map(|a| r.resolve_with(a, opts))
        .collect()
}

fn all_options() -> Vec<ResolveOptions> {
    vec![
        ResolveOptions::default(),
        ResolveOptions {
            instructions: true,
            ..Default::default()
        },
        ResolveOptions {
            sender: Sender::Address(b"".as_slice().into()),
            instructions: true,
            ..Default::default()
        },
    ]
}

#[test]
fn snapshot_traces_equal_the_uncached_ones() {
    let w = world();
    for opts in all_options() {
        let plain = traces(&w.resolver(), &opts);
        let snap = w.resolver().with_fs_snapshot();
        let cached = traces(&snap, &opts);
        for (a, (p, c)) in addresses().iter().zip(plain.iter().zip(&cached)) {
            assert_eq!(p, c, "{}", String::from_utf8_lossy(a));
            assert_eq!(
                serde_json::to_string(p).unwrap(),
                serde_json::to_string(c).unwrap()
            );
        }
        // the fixture reaches the probe results it is meant to
        let classes: Vec<&str> = plain.iter().map(|t| t.outcome.class()).collect();
        for c in ["deliver", "default", "bounce", "defer"] {
            assert!(classes.contains(&c), "{c} missing: {classes:?}");
        }
    }
}

#[test]
fn a_stage_p_run_after_a_probe_without_contents_reads_the_file() {
    let w = world();
    let r = w.resolver().with_fs_snapshot();
    let a = b"joe-list@example.com";
    let without = r.resolve(a);
    assert!(without.listing.is_none());
    let opts = ResolveOptions {
        instructions: true,
        ..Default::default()
    };
    let with = r.resolve_with(a, &opts);
    assert_eq!(with, w.resolver().resolve_with(a, &opts));
    let lines = with.listing.unwrap().lines;
    assert!(
        lines.iter().any(|l| l == &"forward c@d.example"),
        "{lines:?}"
    );
}

#[test]
fn the_snapshot_saves_the_probes_and_does_not_see_later_edits() {
    let w = world();
    let r = w.resolver().with_fs_snapshot();
    let opts = ResolveOptions {
        instructions: true,
        ..Default::default()
    };
    let first = traces(&r, &opts);
    let c1 = r.fs_snapshot_counts().unwrap();
    assert!(c1.probes > 0 && c1.hits > 0, "{c1:?}");
    let second = traces(&r, &opts);
    let c2 = r.fs_snapshot_counts().unwrap();
    assert_eq!(c2.probes, c1.probes, "a second pass makes no probe");
    assert!(c2.hits > c1.hits);
    assert_eq!(first, second);
    assert!(
        w.resolver().fs_snapshot_counts().is_none(),
        "off by default"
    );

    // an edit after the first resolve: seen without the snapshot only
    let a = b"joe-nosuch@example.com";
    assert_eq!(r.resolve(a).outcome.class(), "bounce");
    w.sb.file("joe/.qmail-nosuch", b"&x@y.example\n", 0o644);
    assert_eq!(r.resolve(a).outcome.class(), "bounce", "snapshot kept");
    assert_eq!(w.resolver().resolve(a).outcome.class(), "deliver");
    // a home removed: the snapshot still delivers through its .qmail-news,
    // the uncached resolver falls back to the alias user
    std::fs::remove_dir_all(w.sb.p("pat")).unwrap();
    let file = |t: Trace| t.chosen().map(|s| s.path.to_text());
    let news = w.sb.p("pat/.qmail-news").to_str().unwrap().to_string();
    assert_eq!(file(r.resolve(b"pat-news@example.com")), Some(news.clone()));
    assert_ne!(
        file(w.resolver().resolve(b"pat-news@example.com")),
        Some(news)
    );
}

#[test]
fn snapshot_equal_with_access_denied_unprivileged() {
    if !unprivileged("snapshot_equal_with_access_denied_unprivileged") {
        return;
    }
    let w = world();
    w.sb.file("joe/.qmail-secret", b"&x\n", 0o000);
    std::fs::create_dir(w.sb.p("joe/.qmail-sub")).unwrap();
    w.sb.chmod("joe/.qmail-sub", 0o000);
    let locked = String::from_utf8(w.sb.home("locked")).unwrap();
    w.sb.chmod("locked", 0o000);
    let mut pw = w.pw.clone();
    pw.add(b"locked", ouid(), 1, locked.as_bytes());
    let mk = || {
        resolver(
            controls(),
            Some(w.assign.as_bytes()),
            pw.clone(),
            w.sb.path(),
        )
    };
    let snap = mk().with_fs_snapshot();
    let opts = ResolveOptions {
        instructions: true,
        ..Default::default()
    };
    for l in [
        "joe-secret",
        "joe-sub/x",
        "locked",
        "locked-x",
        "joe-secret",
    ] {
        let a = format!("{l}@example.com");
        let (p, c) = (
            mk().resolve_with(a.as_bytes(), &opts),
            snap.resolve_with(a.as_bytes(), &opts),
        );
        assert_eq!(p, c, "{l}");
        assert!(!p.uncertain.is_empty(), "{l}: EACCES is uncertain");
    }
    w.sb.chmod("joe/.qmail-sub", 0o755);
    w.sb.chmod("locked", 0o755);
}

/// One resolve asks the file system about each path once: qmail-local's
/// stat of the home (L2) reuses stage G's (G3) rather than making it again.
#[test]
fn one_resolve_probes_each_path_once() {
    let w = world();
    for a in ["pat-news@example.com", "pat@example.com"] {
        let r = w.resolver().with_fs_snapshot();
        let t = r.resolve(a.as_bytes());
        assert!(t.getpw.is_some(), "{a}: a passwd user");
        let c = r.fs_snapshot_counts().unwrap();
        assert!(c.probes > 0, "{a}: {c:?}");
        assert_eq!(c.hits, 0, "{a}: a path probed twice: {c:?}");
    }
}
