//! The qtraceaddr binary, with passwd lookups through the real
//! `getpwnam` (SystemPasswd) fed by nss_wrapper.
mod common;
use common::*;
use qmail_resolver::ControlFiles;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

struct Box_ {
    sb: Sandbox,
    qmail: PathBuf,
    passwd: PathBuf,
    group: PathBuf,
}

fn setup(passwd_extra: &str, assign: Option<&[u8]>) -> Box_ {
    let sb = Sandbox::new();
    let f = ControlFiles {
        me: Some(b"mail.example.com\n".to_vec()),
        locals: Some(b"example.com\n".to_vec()),
        virtualdomains: Some(b"virt.org:vu\nnoway.org:\n".to_vec()),
        ..Default::default()
    };
    let qmail = sb.qmail_home(&f, assign);
    let joe = String::from_utf8(sb.home("joe")).unwrap();
    let alias = String::from_utf8(sb.home("alias")).unwrap();
    let u = ouid();
    let passwd = sb.p("passwd");
    std::fs::write(
        &passwd,
        format!("root:x:0:0:root:/root:/bin/sh\njoe:x:{u}:100:Joe:{joe}:/bin/sh\nalias:x:{u}:101:Alias:{alias}:/bin/sh\nvu-x:x:0:0:r:/:/bin/sh\n{passwd_extra}"),
    )
    .unwrap();
    let group = sb.p("group");
    std::fs::write(&group, "root:x:0:\nusers:x:100:\n").unwrap();
    Box_ {
        sb,
        qmail,
        passwd,
        group,
    }
}

fn cmd(b: &Box_, nss: &Path) -> Command {
    qtraceaddr(&b.qmail, &b.passwd, &b.group, nss)
}

/// qtraceaddr on the qmail home `qmail`, with passwd and group served by
/// nss_wrapper and the QMAILBREAK/QMAILALIAS defaults.
fn qtraceaddr(qmail: &Path, passwd: &Path, group: &Path, nss: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_qtraceaddr"));
    c.env("LD_PRELOAD", nss)
        .env("NSS_WRAPPER_PASSWD", passwd)
        .env("NSS_WRAPPER_GROUP", group)
        .env("QMAIL", qmail)
        .env_remove("QMAILBREAK")
        .env_remove("QMAILALIAS");
    c
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn cli_default_output_passwd_branch_through_nss_wrapper() {
    let Some(nss) = nss_wrapper() else { return };
    let b = setup("", None);
    b.sb.file("joe/.qmail-default", b"&elsewhere@example.net\n", 0o644);
    let home = b.sb.p("joe");
    let h = home.display();
    let o = cmd(&b, &nss)
        .arg("JOE-Foo.Bar@example.com")
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let want = format!(
        "input: JOE-Foo.Bar@example.com\n\
         after percenthack: JOE-Foo.Bar@example.com\n\
         domain exists in locals\n\
         no entry in users/cdb\n\
         matched /etc/passwd entry for joe\n\
         delivering as USER=joe, UID={u}, GID=100\n\
         missing .qmail file:{h}/.qmail-foo:bar\n\
         deliver according to {h}/.qmail-default\n\n",
        u = ouid()
    );
    assert_eq!(text(&o), want);
}

#[test]
fn cli_alias_bounce_remote_and_check_exit() {
    let Some(nss) = nss_wrapper() else { return };
    let b = setup("", None);
    let ah = b.sb.p("alias");
    let o = cmd(&b, &nss)
        .args(["--check", "root@example.com", "x@noway.org", "joe"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(100), "root@ would be rejected");
    let t = text(&o);
    let want_root = format!(
        "input: root@example.com\n\
         after percenthack: root@example.com\n\
         domain exists in locals\n\
         no entry in users/cdb\n\
         user root has uid==0, skipping\n\
         matched default /etc/passwd entry for alias\n\
         delivering as USER=alias, UID={u}, GID=101\n\
         missing .qmail file:{a}/.qmail-root\n\
         missing .qmail file:{a}/.qmail-default\n\
         bounce message due to lack of a .qmail file\n\
         verdict: reject\n\n",
        u = ouid(),
        a = ah.display()
    );
    assert!(t.starts_with(&want_root), "{t}");
    assert!(t.contains("input: x@noway.org\nafter percenthack: x@noway.org\naccept address for remote delivery\nverdict: accept\n\n"), "{t}");
    assert!(t.contains("input: joe\nafter envnoathost: joe@mail.example.com\nafter percenthack: joe@mail.example.com\n"), "{t}");
    // without --check the same trace exits 0
    let o = cmd(&b, &nss).arg("root@example.com").output().unwrap();
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn cli_json_and_users_cdb() {
    let Some(nss) = nss_wrapper() else { return };
    let b0 = Sandbox::new();
    let joeh = String::from_utf8(b0.home("j")).unwrap();
    let assign = format!(
        "=joe:joe:{u}:100:{joeh}:::\n+:alias:7790:2108:/nonexistent/alias:-::\n.\n",
        u = ouid()
    );
    let b = setup("", Some(assign.as_bytes()));
    let o = cmd(&b, &nss)
        .args(["--json", "joe@example.com", "x@virt.org", "@example.com"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let lines: Vec<serde_json::Value> = text(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["outcome"]["class"], "default");
    assert_eq!(lines[0]["users"]["matched"]["kind"], "exact");
    assert_eq!(lines[0]["verdict"]["verdict"], "accept");
    assert_eq!(lines[1]["rewrite"]["address"], "vu-x@virt.org");
    assert_eq!(lines[1]["users"]["matched"]["kind"], "wildcard");
    assert_eq!(lines[1]["outcome"]["class"], "defer");
    assert_eq!(lines[2]["outcome"]["class"], "trash");
    // text form of the users/cdb match and the deferral
    let o = cmd(&b, &nss).arg("x@virt.org").output().unwrap();
    let t = text(&o);
    assert!(t.contains("after virtualdomains: vu-x\nmatched users/cdb entry for +\ndelivering as USER=alias, UID=7790, GID=2108\ndefer: Unable to switch to /nonexistent/alias: file does not exist. (#4.3.0)\n\n"), "{t}");
}

#[test]
fn cli_explain_shows_both_branch_paths() {
    let Some(nss) = nss_wrapper() else { return };
    let b = setup("", None);
    b.sb.file(
        "joe/.qmail-list",
        b"?spam /usr/bin/spamcheck\n./Maildir/\n?end\n:spam\n./Spam/\n:end\n",
        0o644,
    );
    let o = cmd(&b, &nss)
        .args(["--explain", "joe-list@example.com"])
        .output()
        .unwrap();
    let t = text(&o);
    assert!(t.contains("explain: qmail-local -n would print:\n  program /usr/bin/spamcheck\n  maildir ./Maildir/\n  did 1+0+1\n"), "{t}");
    assert!(t.contains("explain: deliveries if every command exits 0:\n  line 1: program /usr/bin/spamcheck\n  line 2: maildir ./Maildir/\n  skipped lines: 4,5\n  result: did 1+0+1\n"), "{t}");
    assert!(t.contains("explain: deliveries if the command on line 1 exits 99 (others 0):\n  line 1: program /usr/bin/spamcheck\n  line 5: maildir ./Spam/\n  skipped lines: 2,3\n  result: did 1+0+1\n"), "{t}");
    // the whole section, from the instructions to the last path
    let want = "explain: instructions from .qmail-list\n  line 1: branch-program ?spam /usr/bin/spamcheck\n  line 2: maildir ./Maildir/\n  line 3: jump ?end\n  line 4: label :spam\n  line 5: maildir ./Spam/\n  line 6: label :end\nexplain: qmail-local -n would print:\n";
    assert!(t.contains(want), "{t}");
    assert!(
        t.ends_with("  skipped lines: 2,3\n  result: did 1+0+1\n\n"),
        "{t}"
    );
    // an empty .qmail file: qmail-local reads aliasempty instead
    b.sb.file("joe/.qmail-empty", b"", 0o644);
    let o = cmd(&b, &nss)
        .args(["--explain", "joe-empty@example.com"])
        .output()
        .unwrap();
    let t = text(&o);
    assert!(
        t.contains("explain: instructions from default delivery instructions (aliasempty)\n  line 1: mbox ./Mailbox\n"),
        "{t}"
    );
}

#[test]
fn cli_flags_override_env_and_break() {
    let Some(nss) = nss_wrapper() else { return };
    let b = setup("", None);
    b.sb.file("joe/.qmail-a-default", b"&x\n", 0o644);
    let o = cmd(&b, &nss)
        .env("QMAIL", "/nonexistent/qmail")
        .args([
            "--qmail",
            b.qmail.to_str().unwrap(),
            "--break",
            "+",
            "joe+a-b@example.com",
        ])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(text(&o).contains("deliver according to "), "{}", text(&o));
    assert!(text(&o).contains(".qmail-a-default\n"));
    // QMAILALIAS names a missing alias user: qmail defers
    let o = cmd(&b, &nss)
        .env("QMAILALIAS", "nosuch")
        .arg("stranger@example.com")
        .output()
        .unwrap();
    assert!(
        text(&o).contains("defer: Unable to find alias user!\n"),
        "{}",
        text(&o)
    );
    let o = cmd(&b, &nss)
        .args(["--alias", "nosuch", "--check", "stranger@example.com"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "missing alias user accepts");
}

#[test]
fn cli_usage_and_environment_errors_exit_111() {
    let Some(nss) = nss_wrapper() else { return };
    let b = setup("", None);
    assert_eq!(
        cmd(&b, &nss).output().unwrap().status.code(),
        Some(111),
        "no address"
    );
    assert_eq!(
        cmd(&b, &nss)
            .args(["--bogus", "a"])
            .output()
            .unwrap()
            .status
            .code(),
        Some(111)
    );
    let o = cmd(&b, &nss)
        .env("QMAIL", "/nonexistent/qmail")
        .arg("a")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(111));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/qmail"));
    // a qmail home that is a file is refused before anything under it is read
    let file = b.sb.p("afile");
    std::fs::write(&file, "").unwrap();
    let o = cmd(&b, &nss).env("QMAIL", &file).arg("a").output().unwrap();
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        format!("qtraceaddr: {}: not a directory\n", file.display())
    );
    std::fs::remove_file(b.qmail.join("control/locals")).unwrap();
    std::fs::remove_file(b.qmail.join("control/me")).unwrap();
    let o = cmd(&b, &nss).arg("a").output().unwrap();
    assert_eq!(o.status.code(), Some(111));
    assert!(String::from_utf8_lossy(&o.stderr).contains("locals"));
}

#[test]
fn cli_unprivileged_eacces_home_accepts() {
    let Some(nss) = nss_wrapper() else { return };
    let b = setup("", None);
    // put a second account's home under a directory nobody can search
    let locked = b.sb.home("locked/deep");
    b.sb.chmod("locked", 0o700);
    let u = ouid();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&b.passwd)
        .and_then(|mut f| {
            use std::io::Write;
            writeln!(
                f,
                "hidden:x:{u}:100:H:{}:/bin/sh",
                String::from_utf8_lossy(&locked)
            )
        })
        .unwrap();
    if !is_root() {
        b.sb.chmod("locked", 0o000);
    }
    let o = unprivileged_cmd(&b, &nss)
        .args(["--check", "hidden-x@example.com"])
        .output()
        .unwrap();
    let t = text(&o);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{t}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        t.contains(&format!(
            "uncertain: cannot stat {}: access denied (realrcptto accepts)\n",
            String::from_utf8_lossy(&locked)
        )),
        "{t}"
    );
    assert!(t.contains("verdict: accept\n"), "{t}");
    b.sb.chmod("locked", 0o755);
}

#[test]
fn cli_p3_structural_error_defers_after_the_chosen_file() {
    let Some(nss) = nss_wrapper() else { return };
    let b = setup("", None);
    b.sb.file("joe/.qmail-prog", b"|true\n", 0o744);
    let h = b.sb.p("joe");
    let h = h.display();
    let o = cmd(&b, &nss)
        .args(["--check", "joe-prog@example.com"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "a deferral accepts");
    let want = format!(
        "input: joe-prog@example.com\n\
         after percenthack: joe-prog@example.com\n\
         domain exists in locals\n\
         no entry in users/cdb\n\
         matched /etc/passwd entry for joe\n\
         delivering as USER=joe, UID={u}, GID=100\n\
         deliver according to {h}/.qmail-prog\n\
         defer: Uh-oh: .qmail has prog delivery but has x bit set. (#4.7.0)\n\
         verdict: accept\n\n",
        u = ouid()
    );
    assert_eq!(text(&o), want);
    // JSON: the same outcome; the listing only with --explain
    let o = cmd(&b, &nss)
        .args(["--json", "joe-prog@example.com"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["outcome"]["class"], "defer");
    assert_eq!(
        v["outcome"]["text"],
        "Uh-oh: .qmail has prog delivery but has x bit set. (#4.7.0)"
    );
    assert_eq!(v["verdict"]["verdict"], "accept");
    assert!(v["listing"].is_null(), "{v}");
    let o = cmd(&b, &nss)
        .args(["--json", "--explain", "joe-prog@example.com"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["listing"]["error"],
        "Uh-oh: .qmail has prog delivery but has x bit set. (#4.7.0)"
    );
    // --explain names the file, not aliasempty
    let o = cmd(&b, &nss)
        .args(["--explain", "joe-prog@example.com"])
        .output()
        .unwrap();
    assert!(
        text(&o).contains("explain: instructions from .qmail-prog\n"),
        "{}",
        text(&o)
    );
}

/// Prints every address of `addrs` through qtraceaddr in the §12 world and
/// returns one block (list of lines) per address.
fn section_12_blocks(addrs: &[&str]) -> Option<Vec<Vec<String>>> {
    let nss = nss_wrapper()?;
    let b0 = Sandbox::new();
    let qmail = b0.qmail_home(&files(VIRTUALDOMAINS), Some(ASSIGN));
    let passwd = b0.p("passwd");
    std::fs::write(&passwd, "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    let group = b0.p("group");
    std::fs::write(&group, "root:x:0:\n").unwrap();
    let o = qtraceaddr(&qmail, &passwd, &group, &nss)
        .args(addrs)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let t = text(&o);
    let blocks: Vec<Vec<String>> = t
        .split("\n\n")
        .filter(|b| !b.is_empty())
        .map(|b| b.lines().map(String::from).collect())
        .collect();
    assert_eq!(blocks.len(), addrs.len(), "{t}");
    Some(blocks)
}

#[test]
fn cli_section_12_rewrite_examples() {
    // resolution.md §12, rewrite table: (recipient, lines the trace must
    // contain, in this order).
    let rows: &[(&str, &[&str])] = &[
        (
            "joe",
            &[
                "after envnoathost: joe@mail.example.com",
                "after virtualdomains: catch-joe",
            ],
        ),
        (
            "JOE@EXAMPLE.COM",
            &[
                "after percenthack: JOE@EXAMPLE.COM",
                "domain exists in locals",
            ],
        ),
        (
            "a%b@example.com",
            &["after percenthack: a@b", "after virtualdomains: catch-a"],
        ),
        (
            "a@b%c@ph.net",
            &[
                "after percenthack: a@b@c",
                "after virtualdomains: catch-a@b",
            ],
        ),
        (
            "%x@ph.net",
            &["after percenthack: @x", "after virtualdomains: catch-"],
        ),
        ("x@virt.org", &["after virtualdomains: vu-x"]),
        ("X@A.B.VIRT.ORG", &["after virtualdomains: sub-X"]),
        ("x@noway.virt.org", &["accept address for remote delivery"]),
        ("x@sub.noway.virt.org", &["after virtualdomains: sub-x"]),
        ("x@q.deep.virt.org", &["after virtualdomains: deep-x"]),
        ("JOE@OTHER.NET", &["after virtualdomains: jo-JOE"]),
        ("x@example.com.", &["after virtualdomains: catch-x"]),
        ("x@", &["after virtualdomains: catch-x"]),
        ("x@dup.org", &["after virtualdomains: second-x"]),
        ("x@space.org", &["after virtualdomains:  sp-x"]),
        ("x@local.org", &["domain exists in locals"]),
        ("x@lead.example", &["after virtualdomains: catch-x"]),
        ("x@crlf.example", &["after virtualdomains: catch-x"]),
        ("x@x.example.com", &["after virtualdomains: Pre-Fix-x"]),
        (
            "",
            &[
                "after envnoathost: @mail.example.com",
                "after virtualdomains: catch-",
            ],
        ),
    ];
    let addrs: Vec<&str> = rows.iter().map(|r| r.0).collect();
    let Some(blocks) = section_12_blocks(&addrs) else {
        return;
    };
    for ((addr, want), block) in rows.iter().zip(&blocks) {
        assert_eq!(block[0], format!("input: {addr}"), "{block:?}");
        let mut at = 0;
        for w in *want {
            let Some(i) = block[at..].iter().position(|l| l == w) else {
                panic!("{addr:?}: missing {w:?} (in order) in {block:#?}");
            };
            at += i + 1;
        }
        // a remote address ends the trace right there (D.2 item 8)
        if want.contains(&"accept address for remote delivery") {
            assert_eq!(
                block.last().map(String::as_str),
                Some(want[0]),
                "{block:#?}"
            );
        }
    }
}

#[test]
fn cli_section_12_users_cdb_examples() {
    // resolution.md §12, users/cdb table, through a local domain: (local
    // part, the users/cdb line, the USER= that follows or the final line).
    let rows: &[(&str, &str, &str)] = &[
        (
            "JOE",
            "matched users/cdb entry for =joe",
            "delivering as USER=joe, UID=1001, GID=100",
        ),
        (
            "JOE.SHMOE",
            "matched users/cdb entry for =joe.shmoe",
            "delivering as USER=joe, UID=1001, GID=100",
        ),
        (
            "joe-Direct-X",
            "matched users/cdb entry for +joe-",
            "delivering as USER=joe, UID=1001, GID=100",
        ),
        (
            "joe-",
            "matched users/cdb entry for +joe-",
            "delivering as USER=joe, UID=1001, GID=100",
        ),
        (
            "list-Foo-Bar",
            "matched users/cdb entry for +list-",
            "delivering as USER=lists, UID=1003, GID=100",
        ),
        (
            "bigx",
            "matched users/cdb entry for +",
            "delivering as USER=alias, UID=7790, GID=2108",
        ),
        (
            "BIGX",
            "matched users/cdb entry for +",
            "delivering as USER=alias, UID=7790, GID=2108",
        ),
        (
            "bigE",
            "matched users/cdb entry for +",
            "delivering as USER=alias, UID=7790, GID=2108",
        ),
        (
            "bobby",
            "matched users/cdb entry for +bob",
            "delivering as USER=bob, UID=1005, GID=100",
        ),
        (
            "Bob-x",
            "matched users/cdb entry for +bob",
            "delivering as USER=bob, UID=1005, GID=100",
        ),
        (
            "mary",
            "matched users/cdb entry for =mary",
            "delivering as USER=mary, UID=1006, GID=100",
        ),
        (
            "xmary",
            "matched users/cdb entry for +",
            "delivering as USER=alias, UID=7790, GID=2108",
        ),
        (
            "root0",
            "matched users/cdb entry for =root0",
            "delivering as USER=r, UID=abc, GID=0",
        ),
        (
            "random",
            "matched users/cdb entry for +",
            "delivering as USER=alias, UID=7790, GID=2108",
        ),
    ];
    let addrs: Vec<String> = rows
        .iter()
        .map(|r| format!("{}@example.com", r.0))
        .collect();
    let mut refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
    refs.push("@example.com");
    let Some(blocks) = section_12_blocks(&refs) else {
        return;
    };
    for ((local, users, next), block) in rows.iter().zip(&blocks) {
        let i = block
            .iter()
            .position(|l| l == users)
            .unwrap_or_else(|| panic!("{local}: no {users:?} in {block:#?}"));
        assert_eq!(
            block.get(i + 1).map(String::as_str),
            Some(*next),
            "{local}: {block:#?}"
        );
    }
    // root0: uid field `abc` parses as 0 (H6): qmail defers.
    assert_eq!(
        blocks[12].last().map(String::as_str),
        Some("defer: Not allowed to perform deliveries as root."),
        "{:#?}",
        blocks[12]
    );
    // `@example.com`: the empty local part is discarded before any lookup
    // (H4; the §12 row `@d` with a local domain).
    let last = blocks.last().unwrap();
    assert!(!last.iter().any(|l| l.contains("users/cdb")), "{last:#?}");
    assert!(last.last().unwrap().starts_with("trash"), "{last:#?}");
}

/// Runs qtraceaddr with `args`, feeding `input` on standard input.
fn run_stdin(b: &Box_, nss: &Path, args: &[&str], input: &[u8]) -> Output {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut child = cmd(b, nss)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let w = std::thread::spawn(move || {
        // qtraceaddr may stop reading early (an input error)
        let _ = stdin.write_all(&input);
    });
    let o = child.wait_with_output().unwrap();
    w.join().unwrap();
    o
}

#[test]
fn cli_stdin_gives_the_same_blocks_as_arguments() {
    let Some(nss) = nss_wrapper() else { return };
    let b = setup("", None);
    b.sb.file("joe/.qmail-default", b"&elsewhere@example.net\n", 0o644);
    let addrs = ["joe-x@example.com", "a@remote.org", "nosuch@example.com"];
    let want = cmd(&b, &nss).arg("--check").args(addrs).output().unwrap();
    // nosuch@ has no .qmail-nosuch under the alias home
    assert_eq!(want.status.code(), Some(100));
    // CRLF, a blank line and an unterminated last line
    let lines = b"joe-x@example.com\r\n\na@remote.org\nnosuch@example.com";
    let o = run_stdin(&b, &nss, &["--check", "-"], lines);
    assert_eq!(o.status.code(), Some(100));
    assert_eq!(text(&o), text(&want));
    let o = run_stdin(&b, &nss, &["--check", "--stdin"], lines);
    assert_eq!(text(&o), text(&want));
    // -0: NUL-terminated; an argument comes first
    let o = run_stdin(
        &b,
        &nss,
        &["--check", "-0", "joe-x@example.com"],
        b"a@remote.org\0nosuch@example.com\0",
    );
    assert_eq!(o.status.code(), Some(100));
    assert_eq!(text(&o), text(&want));
}

#[test]
fn cli_stdin_streams_each_result_before_reading_on() {
    let Some(nss) = nss_wrapper() else { return };
    use std::io::{BufRead, Write as _};
    use std::process::Stdio;
    let b = setup("", None);
    let mut child = cmd(&b, &nss)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(stdout).lines() {
            if tx.send(l.unwrap()).is_err() {
                break;
            }
        }
    });
    stdin.write_all(b"first@remote.org\n").unwrap();
    stdin.flush().unwrap();
    // standard input stays open: the block must come anyway (the timeout
    // only guards against a hang)
    let wait = std::time::Duration::from_secs(30);
    let mut got = Vec::new();
    while got.last().map(String::as_str) != Some("") {
        got.push(
            rx.recv_timeout(wait)
                .expect("no result before end of input"),
        );
    }
    assert_eq!(got[0], "input: first@remote.org");
    assert_eq!(got[2], "accept address for remote delivery");
    drop(stdin);
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn cli_stdin_overlong_or_binary_records_exit_111_naming_the_line() {
    let Some(nss) = nss_wrapper() else { return };
    let b = setup("", None);
    let mut input = b"a@remote.org\n\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 200_000));
    input.extend_from_slice(b"@remote.org\nlater@remote.org\n");
    let o = run_stdin(&b, &nss, &["-"], &input);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "qtraceaddr: standard input line 3: longer than 131072 bytes\n"
    );
    // what came before is still traced
    assert!(
        text(&o).starts_with("input: a@remote.org\n"),
        "{}",
        text(&o)
    );
    assert!(!text(&o).contains("later@"));
    let o = run_stdin(&b, &nss, &["-"], b"a@remote.org\nb\0c\n");
    assert_eq!(o.status.code(), Some(111));
    assert!(String::from_utf8_lossy(&o.stderr).contains("line 2: NUL byte"));
}

#[test]
fn cli_help_lists_the_cache_and_a_write_error_exits_111() {
    let Some(nss) = nss_wrapper() else { return };
    let b = setup("", None);
    let o = cmd(&b, &nss).arg("--help").output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let h = text(&o);
    for flag in [
        "--qmail",
        "--break",
        "--alias",
        "--json",
        "--explain",
        "--check",
    ] {
        assert!(h.contains(flag), "{flag} missing from --help:\n{h}");
    }
    assert!(h.contains("Passwd cache"), "{h}");
    assert!(h.contains("File system snapshot"), "{h}");
    assert!(h.contains("may\nnot be seen by that run"), "{h}");
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full");
    let Ok(full) = full else { return };
    for args in [&["--help"][..], &["a@remote.org"][..]] {
        let o = cmd(&b, &nss)
            .args(args)
            .stdout(full.try_clone().unwrap())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(111), "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).starts_with("qtraceaddr: write error: "),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn cli_an_address_starting_with_a_dash_follows_double_dash() {
    let Some(nss) = nss_wrapper() else { return };
    let b = setup("", None);
    let o = cmd(&b, &nss).arg("-x@remote.org").output().unwrap();
    assert_eq!(o.status.code(), Some(111), "taken as an unknown flag");
    let o = cmd(&b, &nss)
        .args(["--json", "--", "-x@remote.org"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(
        text(&o).starts_with("{\"input\":\"-x@remote.org\""),
        "{}",
        text(&o)
    );
}

#[test]
fn cli_a_passwd_entry_longer_than_the_first_buffer_is_found() {
    // getpwnam_r starts with a 4 KiB buffer; a 5,000-byte gecos makes it
    // answer ERANGE, and the lookup must retry with a larger one.
    let Some(nss) = nss_wrapper() else { return };
    let sb = Sandbox::new();
    let home = String::from_utf8(sb.home("big")).unwrap();
    let gecos = "G".repeat(5000);
    let u = ouid();
    let b = setup(&format!("big:x:{u}:100:{gecos}:{home}:/bin/sh\n"), None);
    let o = cmd(&b, &nss).arg("big-ext@example.com").output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let t = text(&o);
    assert!(
        t.contains(&format!(
            "matched /etc/passwd entry for big\ndelivering as USER=big, UID={u}, GID=100\n"
        )),
        "{t}"
    );
}

#[test]
fn cli_json_tells_no_users_cdb_from_no_entry_in_it() {
    let Some(nss) = nss_wrapper() else { return };
    let kind = |assign: Option<&[u8]>| {
        let b = setup("", assign);
        let o = cmd(&b, &nss)
            .args(["--json", "joe@example.com"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0));
        let v: serde_json::Value = serde_json::from_str(text(&o).trim_end()).unwrap();
        assert_eq!(v["getpw"]["outcome"]["entry"]["name"], "joe", "{v}");
        // the text form says the same for both (qtraceaddr.md decision)
        let o = cmd(&b, &nss).arg("joe@example.com").output().unwrap();
        assert!(
            text(&o).contains("\nno entry in users/cdb\n"),
            "{}",
            text(&o)
        );
        v["users"]["kind"].clone()
    };
    assert_eq!(kind(None), "missing");
    assert_eq!(
        kind(Some(b"=mary:mary:1:1:/nonexistent:::\n.\n")),
        "no_entry"
    );
}

/// The fault shim (tests/c/fs-fault.c) built into `dir`, or `None`
/// (skipped) without a C compiler.
fn fault_shim(dir: &Path) -> Option<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/fs-fault.c");
    let so = dir.join("fs-fault.so");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let built = Command::new(&cc)
        .args(["-Wall", "-Wextra", "-shared", "-fPIC", "-o"])
        .arg(&so)
        .arg(&src)
        .arg("-ldl")
        .status();
    match built {
        Ok(s) if s.success() => Some(so),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{cc} cannot build {}", src.display())
        }
        _ => {
            println!("SKIPPED: no C compiler ({cc}) for the fault shim");
            None
        }
    }
}

/// A failure the fault shim makes: `call` (`STAT` or `OPEN`) of `path`
/// fails with `errno`.
struct Fault<'a> {
    shim: &'a Path,
    call: &'a str,
    path: &'a Path,
    errno: i32,
}

/// qtraceaddr `args` with the fault shim loaded: its exit code and output.
fn faulty_run(b: &Box_, nss: &Path, f: &Fault, args: &[&str]) -> (Option<i32>, String) {
    let o = cmd(b, nss)
        .env(
            "LD_PRELOAD",
            format!("{} {}", f.shim.display(), nss.display()),
        )
        .env(format!("FAULT_{}_PATH", f.call), f.path)
        .env("FAULT_ERRNO", f.errno.to_string())
        .args(args)
        .output()
        .unwrap();
    (o.status.code(), text(&o))
}

#[test]
fn cli_a_temporary_stat_error_on_the_home_defers_a_permanent_one_skips() {
    let Some(nss) = nss_wrapper() else { return };
    let b = setup("", None);
    let Some(shim) = fault_shim(b.sb.path()) else {
        return;
    };
    let home = b.sb.p("joe");
    let run = |errno| {
        let f = Fault {
            shim: &shim,
            call: "STAT",
            path: &home,
            errno,
        };
        faulty_run(&b, &nss, &f, &["--check", "joe@example.com"])
    };
    // EIO and ESTALE (an NFS server not answering): qmail-lspawn defers
    for errno in [libc::EIO, libc::ESTALE] {
        let (code, t) = run(errno);
        assert!(
            t.contains("defer: NFS failure in qmail-local.\n"),
            "{errno}: {t}"
        );
        assert!(!t.contains("matched /etc/passwd entry for joe"), "{t}");
        assert_ne!(code, Some(0), "{errno}: a deferral is not an accept: {t}");
    }
    // ENOENT is permanent: joe is skipped and the alias user takes it
    let (_, t) = run(libc::ENOENT);
    assert!(!t.contains("NFS failure"), "{t}");
    assert!(t.contains("alias"), "{t}");
}

#[test]
fn cli_a_temporary_open_error_on_a_dot_qmail_defers_instead_of_falling_through() {
    let Some(nss) = nss_wrapper() else { return };
    let b = setup("", None);
    let Some(shim) = fault_shim(b.sb.path()) else {
        return;
    };
    b.sb.file("joe/.qmail-x", b"&x@remote.org\n", 0o644);
    b.sb.file("joe/.qmail-default", b"&d@remote.org\n", 0o644);
    let path = b.sb.p("joe/.qmail-x");
    let run = |errno| {
        let f = Fault {
            shim: &shim,
            call: "OPEN",
            path: &path,
            errno,
        };
        faulty_run(&b, &nss, &f, &["--check", "joe-x@example.com"])
    };
    // EIO (a temporary error) defers: .qmail-default must not take the mail
    // (the address is still accepted at SMTP time: qmail-local defers)
    let (_, t) = run(libc::EIO);
    assert!(
        t.contains("defer: Unable to open .qmail-x: input/output error. (#4.3.0)"),
        "{t}"
    );
    assert!(!t.contains("deliver according to"), "{t}");
    // ENOENT: .qmail-x is absent, .qmail-default takes it
    let (code, t) = run(libc::ENOENT);
    assert!(t.contains("missing .qmail file:"), "{t}");
    assert!(t.contains("joe/.qmail-default\n"), "{t}");
    assert_eq!(code, Some(0), "{t}");
}

/// qtraceaddr run as a user the permission bits apply to: nobody (through
/// setpriv) when the tests run as root, else this user.
fn unprivileged_cmd(b: &Box_, nss: &Path) -> Command {
    let mut c = if is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_qtraceaddr"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_qtraceaddr"))
    };
    c.env("LD_PRELOAD", nss)
        .env("NSS_WRAPPER_PASSWD", &b.passwd)
        .env("NSS_WRAPPER_GROUP", &b.group)
        .env("QMAIL", &b.qmail);
    c
}

#[test]
fn cli_unprivileged_unreachable_home_and_unreadable_dot_qmail_are_uncertain() {
    let Some(nss) = nss_wrapper() else { return };
    let b = setup("", None);
    // a home that can be stat'ed but not searched
    let closed = b.sb.home("closed");
    b.sb.chmod("closed", 0o600);
    let u = ouid();
    let line = format!(
        "shut:x:{u}:100:S:{}:/bin/sh\n",
        String::from_utf8_lossy(&closed)
    );
    let mut pw = std::fs::read(&b.passwd).unwrap();
    pw.extend_from_slice(line.as_bytes());
    std::fs::write(&b.passwd, pw).unwrap();
    // a .qmail file that cannot be read
    b.sb.file("joe/.qmail-x", b"&x@remote.org\n", 0o000);
    let o = unprivileged_cmd(&b, &nss)
        .args(["--check", "shut@example.com", "joe-x@example.com"])
        .output()
        .unwrap();
    let t = text(&o);
    b.sb.chmod("closed", 0o755);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{t}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for want in [
        format!(
            "uncertain: cannot reach {}: access denied (realrcptto accepts)\n",
            String::from_utf8_lossy(&closed)
        ),
        format!(
            "uncertain: cannot open {}: access denied (realrcptto accepts)\n",
            b.sb.p("joe/.qmail-x").display()
        ),
    ] {
        assert!(t.contains(&want), "{want:?} missing:\n{t}");
    }
}

#[test]
fn cli_a_relative_home_in_users_cdb_bounces_with_qmail_local_usage() {
    let Some(nss) = nss_wrapper() else { return };
    let b = setup("", Some(b"=rel:rel:4242:1:relative/home:::\n.\n"));
    let o = cmd(&b, &nss).arg("rel@example.com").output().unwrap();
    let t = text(&o);
    assert!(
        t.ends_with(
            "bounce: qmail-local: usage: qmail-local [ -nN ] user homedir local dash ext domain sender aliasempty\n\n"
        ),
        "{t}"
    );
}

#[test]
fn cli_a_temporary_stat_error_on_an_owner_file_defers() {
    let Some(nss) = nss_wrapper() else { return };
    let b = setup("", None);
    let Some(shim) = fault_shim(b.sb.path()) else {
        return;
    };
    b.sb.file("joe/.qmail-list", b"&a@remote.org\n", 0o644);
    b.sb.file("joe/.qmail-list-owner", b"&o@remote.org\n", 0o644);
    let path = b.sb.p("joe/.qmail-list-owner");
    let run = |errno| {
        let f = Fault {
            shim: &shim,
            call: "STAT",
            path: &path,
            errno,
        };
        faulty_run(&b, &nss, &f, &["joe-list@example.com"]).1
    };
    // EIO: whether the list has an owner cannot be known: qmail-local defers
    let t = run(libc::EIO);
    assert!(
        t.contains("defer: Unable to open .qmail-list-owner: input/output error. (#4.3.0)"),
        "{t}"
    );
    // ENOENT: no owner, the mail goes to the list with the sender kept
    let t = run(libc::ENOENT);
    assert!(!t.contains("defer:"), "{t}");
}
