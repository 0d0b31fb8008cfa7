//! Oracle C: the realrcptto C core on its own (through the driver), one
//! named test per "kept" item and per "deliberate change" of
//! spec/realrcptto.md Part 1, plus sizes/byte values under ASan+UBSan.

mod rrt_common;

use std::process::Command;

use qmail_difftest::oracle::c::{CError, COutcome};
use rrt_common::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect()
}

/// A world with joe (uid 1001): `.qmail-foo` and `.qmail-list-default`.
fn joe_world() -> World {
    let mut w = World::new();
    w.user("joe", 1001);
    w.dotqmail("joe", ".qmail-foo");
    w.dotqmail("joe", ".qmail-list-default");
    w
}

// ------------------------------------------------------------------
// the verdict rule, basic cases

#[test]
fn verdict_basic_local_remote_and_extensions() {
    let w = joe_world();
    let v = w.check(&[
        "joe@example.com",        // dash "" -> default delivery
        "joe-foo@example.com",    // .qmail-foo
        "joe-list-x@example.com", // .qmail-list-default
        "joe-bar@example.com",    // no file -> reject
        "JOE-FOO@EXAMPLE.COM",    // folded
        "nobody@example.com",     // alias, no .qmail-nobody, no .qmail-default
        "someone@remote.example", // remote
        "joe",                    // envnoathost = me = example.com
    ]);
    let got: Vec<COutcome> = v.iter().map(|x| x.outcome).collect();
    use COutcome::*;
    assert_eq!(
        got,
        [Accept, Accept, Accept, Reject, Accept, Reject, Accept, Accept],
        "{v:#?}"
    );
}

#[test]
fn verdict_alias_default_file_accepts_everything_local() {
    let w = joe_world();
    w.dotqmail("alias", ".qmail-default");
    let v = w.check(&["nobody@example.com", "joe-bar@example.com"]);
    assert!(accept(&v[0]), "{v:?}");
    // joe-bar goes to joe (dash -), not to alias: still no mailbox
    assert!(reject(&v[1]), "{v:?}");
}

#[test]
fn verdict_rewrite_percenthack_and_virtualdomains() {
    let w = joe_world();
    w.control("percenthack", "ph.example\n");
    w.control(
        "virtualdomains",
        "virt.example:joe-list\nnoway.virt.example:\n.virt.example:joe\n:catchall-never\n",
    );
    w.control("locals", "example.com\n");
    let v = w.check(&[
        "x@virt.example",                 // joe-list-x -> .qmail-list-default
        "x@noway.virt.example",           // exception -> remote
        "foo@a.virt.example",             // joe-foo -> .qmail-foo
        "bar@a.virt.example",             // joe-bar -> reject
        "joe-bar%example.com@ph.example", // percent hack -> joe-bar@example.com
        "x@elsewhere.example",            // catch-all -> catchall-never-x: alias, no file
    ]);
    use COutcome::*;
    let got: Vec<COutcome> = v.iter().map(|x| x.outcome).collect();
    assert_eq!(
        got,
        [Accept, Accept, Accept, Reject, Reject, Reject],
        "{v:#?}"
    );
}

// ------------------------------------------------------------------
// kept items

#[test]
fn kept_1_hooks_init_start_check_deny_cycle() {
    // every address its own transaction: start resets the denial
    let w = joe_world();
    let mut o = w.opts();
    o.env = env(&[("QMAILRRTDENYALL", "1")]);
    let v = w.check_with(&[b"nobody@example.com", b"joe@example.com"], &o);
    assert!(
        v[0].deny && !v[1].deny,
        "start must reset the transaction: {v:?}"
    );
    // one transaction: the denial stays
    o.one_transaction = true;
    let v = w.check_with(&[b"nobody@example.com", b"joe@example.com"], &o);
    assert!(v[0].deny && v[1].deny, "{v:?}");
}

#[test]
fn kept_2_users_cdb_trouble_is_tempfail_cdb() {
    let w = joe_world();
    std::fs::create_dir_all(w.home.join("users/cdb")).unwrap(); // a directory: EISDIR on read
    assert_eq!(w.one("joe@example.com").outcome, COutcome::TempCdb);
    // a valid cdb without the "" key is trouble too (U9)
    std::fs::remove_dir(w.home.join("users/cdb")).unwrap();
    let f = std::fs::File::create(w.home.join("users/cdb")).unwrap();
    let mut c = cdb::CDBMake::new(f).unwrap();
    c.add(b"!joe\0", b"joe\x001001\x001001\x00/x\x00\x00")
        .unwrap();
    c.finish().unwrap();
    assert_eq!(w.one("joe@example.com").outcome, COutcome::TempCdb);
    // and so is an empty file
    std::fs::write(w.home.join("users/cdb"), b"").unwrap();
    assert_eq!(w.one("joe@example.com").outcome, COutcome::TempCdb);
    // remote addresses never reach users/cdb
    assert_eq!(w.one("x@remote.example").outcome, COutcome::Accept);
}

/// users/cdb as qmail-newu leaves it after `lines`, built next to the
/// current one as `users/cdb.NAME` (the current users/cdb is kept).
fn newu_into(w: &World, lines: &[&str], name: &str) -> std::path::PathBuf {
    let cur = w.home.join("users/cdb");
    let keep = w.home.join("users/cdb.keep");
    let had = cur.exists();
    if had {
        std::fs::rename(&cur, &keep).unwrap();
    }
    w.assign(lines);
    let out = w.home.join(format!("users/cdb.{name}"));
    std::fs::rename(&cur, &out).unwrap();
    if had {
        std::fs::rename(&keep, &cur).unwrap();
    }
    out
}

#[test]
fn users_cdb_renamed_into_place_counts_from_the_next_transaction() {
    // the core keeps users/cdb open (mapped) for the life of the process;
    // qmail-newu renames a new file over it: the RCPTs of one transaction
    // are judged against one version, the next transaction sees the new one
    let mut w = joe_world();
    let fred = w.user("fred", 1002);
    w.assign(&[&format!("=fred:fred:1002:1002:{}:-:x:", fred.display())]);
    let next = newu_into(&w, &[], "next");
    let cur = w.home.join("users/cdb");
    let addrs: [&[u8]; 2] = [b"fred@example.com", b"fred@example.com"];
    // fred's record says ext "x": no .qmail-x, so the old file rejects;
    // without the record fred is a passwd user with a default delivery
    let mut o = w.opts();
    o.one_transaction = true;
    o.rename_after = Some((1, next.clone(), cur.clone()));
    let v = w.check_with(&addrs, &o);
    assert!(
        reject(&v[0]) && reject(&v[1]),
        "one transaction, one users/cdb: {v:?}"
    );
    // each address its own transaction: the second sees the new file
    let next = newu_into(&w, &[], "next");
    let old = newu_into(
        &w,
        &[&format!("=fred:fred:1002:1002:{}:-:x:", fred.display())],
        "old",
    );
    std::fs::rename(&old, &cur).unwrap();
    let mut o = w.opts();
    o.rename_after = Some((1, next, cur.clone()));
    let v = w.check_with(&addrs, &o);
    assert!(reject(&v[0]), "{v:?}");
    assert!(accept(&v[1]), "new transaction, new users/cdb: {v:?}");
    // a users/cdb that disappears is gone from the next transaction on,
    // and one that appears is used from the next transaction on
    let fred_cdb = &format!("=fred:fred:1002:1002:{}:-:x:", fred.display());
    std::fs::rename(newu_into(&w, &[fred_cdb], "old"), &cur).unwrap();
    let gone = w.home.join("users/gone");
    let mut o = w.opts();
    o.rename_after = Some((1, cur.clone(), gone.clone()));
    let v = w.check_with(&addrs, &o);
    assert!(reject(&v[0]) && accept(&v[1]), "{v:?}");
    let mut o = w.opts();
    o.rename_after = Some((1, gone, cur));
    let v = w.check_with(&addrs, &o);
    assert!(accept(&v[0]) && reject(&v[1]), "{v:?}");
}

#[test]
fn dot_qmail_created_during_a_transaction_counts_from_the_next_one() {
    // the core remembers, for one transaction, which .qmail names exist
    // and which homes are usable: one stat() each per transaction
    let w = joe_world();
    let made = w.dotqmail("alias", ".qmail-default.new");
    let dest = w.homedir("alias").join(".qmail-default");
    let addrs: [&[u8]; 2] = [b"nobody1@example.com", b"nobody2@example.com"];
    let mut o = w.opts();
    o.one_transaction = true;
    o.rename_after = Some((1, made.clone(), dest.clone()));
    let v = w.check_with(&addrs, &o);
    assert!(reject(&v[0]) && reject(&v[1]), "same transaction: {v:?}");
    assert_eq!(v[1].why, "no mailbox (no .qmail file)");
    std::fs::rename(&dest, &made).unwrap();
    let mut o = w.opts();
    o.rename_after = Some((1, made, dest));
    let v = w.check_with(&addrs, &o);
    assert!(reject(&v[0]), "{v:?}");
    assert!(accept(&v[1]), "next transaction sees .qmail-default: {v:?}");
}

#[test]
fn users_cdb_record_past_the_end_is_tempfail_cdb_without_allocating_it() {
    // a users/cdb whose "!joe\0" record claims 0xf0000000 data bytes in a
    // 2 KB file: qmail's cdb_bread would hit EOF (QLX_CDB); the core must
    // say so without first allocating 4 GB (found by cargo xtask fuzz)
    let w = joe_world();
    std::fs::create_dir_all(w.home.join("users")).unwrap();
    let p = w.home.join("users/cdb");
    let f = std::fs::File::create(&p).unwrap();
    let mut c = cdb::CDBMake::new(f).unwrap();
    c.add(b"", b"").unwrap();
    c.add(b"!joe\0", b"joe\x001001\x001001\x00/x\x00\x00\x00")
        .unwrap();
    c.finish().unwrap();
    let mut b = std::fs::read(&p).unwrap();
    // records start at 2048: "" (8 bytes of lengths), then "!joe\0"
    assert_eq!(&b[2056..2060], &5u32.to_le_bytes());
    b[2060..2064].copy_from_slice(&0xf000_0000u32.to_le_bytes());
    std::fs::write(&p, &b).unwrap();
    assert_eq!(w.one("joe@example.com").outcome, COutcome::TempCdb);
    // the same with 256 MB of address space: still cdb trouble, not
    // "out of memory"
    let o = w.opts();
    let out = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 262144 && exec \"$0\" \"$@\"")
        .arg(driver().exe())
        .arg(&w.home)
        .arg("45")
        .arg("alias")
        .env_clear()
        .envs(qmail_difftest::procenv::nss_vars(
            o.passwd.as_ref().unwrap(),
            o.group.as_ref().unwrap(),
            &[],
        ))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"joe@example.com\n")?;
            c.wait_with_output()
        })
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.first(), Some(&"init ok"), "{text}");
    assert!(
        lines.get(1).is_some_and(|l| l.starts_with("cdb 0 ")),
        "{text}"
    );
}

#[test]
fn kept_2_getpwnam_etxtbsy_is_tempfail_sys() {
    let w = joe_world();
    let mut o = w.opts();
    o.preload = vec![shim().to_path_buf()];
    o.env = env(&[("RRT_SHIM_TXTBSY", "joe")]);
    assert_eq!(
        w.one_with("joe-bar@example.com", &o).outcome,
        COutcome::TempSys
    );
    o.env = env(&[("RRT_SHIM_TXTBSY", "nosuchname")]);
    assert_eq!(
        w.one_with("joe-bar@example.com", &o).outcome,
        COutcome::Reject
    );
}

/// The error asking about joe@example.com gives in `w` (the check must
/// fail).
fn init_error(w: &World) -> CError {
    driver()
        .check(
            &w.home,
            b'-',
            b"alias",
            &[b"joe@example.com".to_vec()],
            &w.opts(),
        )
        .unwrap_err()
}

#[test]
fn kept_2_missing_locals_and_me_is_tempfail_control() {
    let w = joe_world();
    w.rm_control("locals");
    w.rm_control("me");
    let err = init_error(&w);
    assert!(matches!(err, CError::Init(COutcome::TempControl)), "{err}");
    // a control file that cannot be read (a directory) is fatal as well
    let w = joe_world();
    std::fs::create_dir(w.home.join("control/virtualdomains")).unwrap();
    let err = init_error(&w);
    assert!(matches!(err, CError::Init(COutcome::TempControl)), "{err}");
}

#[test]
fn kept_3_control_files_are_read_once_at_init() {
    let w = joe_world();
    w.control("locals.next", "other.example\n");
    let mut o = w.opts();
    o.after_init_rename = Some((
        w.home.join("control/locals.next"),
        w.home.join("control/locals"),
    ));
    let v = w.check_with(&[b"nobody@example.com", b"nobody@other.example"], &o);
    assert!(reject(&v[0]), "old locals still in force: {v:?}");
    assert!(accept(&v[1]) && v[1].why == "remote", "{v:?}");
    // the next process (connection) sees the new file
    let v = w.check(&["nobody@example.com", "nobody@other.example"]);
    assert!(accept(&v[0]) && v[0].why == "remote", "{v:?}");
    assert!(reject(&v[1]), "{v:?}");
}

#[test]
fn kept_3_locals_missing_falls_back_to_me_and_envnoathost_rules() {
    let w = joe_world();
    w.rm_control("locals");
    w.control("me", "me.example\n");
    assert!(reject(&w.one("nobody@me.example")));
    assert!(accept(&w.one("nobody@example.com")));
    // envnoathost: file, else me
    assert!(reject(&w.one("nobody")));
    w.control("envnoathost", "elsewhere.example\n");
    assert_eq!(w.one("nobody").why, "remote");
    // an empty locals file: no local domains at all
    w.control("locals", "");
    assert_eq!(w.one("nobody@me.example").why, "remote");
}

#[test]
fn kept_4_denyall_accepts_every_rcpt_and_denies_the_transaction() {
    let w = joe_world();
    let mut o = w.opts();
    o.env = env(&[
        ("QMAILRRTDENYALL", "1"),
        ("PROTO", "TCP"),
        ("TCPREMOTEIP", "192.0.2.9"),
    ]);
    o.one_transaction = true;
    let v = w.check_with(
        &[
            b"joe@example.com",
            b"nobody@example.com",
            b"joe-bar@example.com",
            b"x@remote.example",
        ],
        &o,
    );
    assert!(v.iter().all(accept), "every RCPT is accepted: {v:?}");
    assert!(!v[0].deny && v[1].deny && v[2].deny && v[3].deny, "{v:?}");
    // only the first bad recipient is logged; later ones short-circuit
    assert_eq!(v[1].log_lines().len(), 1, "{v:?}");
    assert!(v[2].log.is_empty() && v[3].log.is_empty(), "{v:?}");
}

#[test]
fn kept_4_denyall_only_when_exactly_1() {
    let w = joe_world();
    for val in ["0", "", "yes", "11", "1 ", " 1"] {
        let mut o = w.opts();
        o.env = env(&[("QMAILRRTDENYALL", val)]);
        let v = w.one_with("nobody@example.com", &o);
        assert!(reject(&v) && !v.deny, "QMAILRRTDENYALL={val:?}: {v:?}");
    }
}

#[test]
fn kept_5_one_log_line_per_rejected_recipient() {
    let w = joe_world();
    let mut o = w.opts();
    o.env = env(&[("PROTO", "TCP"), ("TCPREMOTEIP", "192.0.2.7")]);
    o.one_transaction = true;
    let v = w.check_with(
        &[
            b"nobody@example.com",
            b"joe@example.com",
            b"Other-X@example.com",
        ],
        &o,
    );
    let l0 = v[0].log_lines();
    assert_eq!(l0.len(), 1);
    let f: Vec<&str> = l0[0].split(' ').collect();
    assert_eq!(f.len(), 4, "{l0:?}");
    assert_eq!(f[0], "realrcptto");
    assert!(f[1].parse::<u32>().is_ok(), "pid field: {l0:?}");
    assert_eq!(&f[2..], ["192.0.2.7", "nobody@example.com"]);
    assert!(v[1].log.is_empty());
    // the address as given, original case
    assert!(
        v[2].log_lines()[0].ends_with(" 192.0.2.7 Other-X@example.com"),
        "{v:?}"
    );
}

#[test]
fn kept_6_check_applies_to_the_address_with_relayclient_suffix() {
    // qmail-smtpd appends $RELAYCLIENT before the check: the core judges
    // (and logs) the suffixed address
    let w = joe_world();
    let mut o = w.opts();
    o.env = env(&[("PROTO", "TCP"), ("TCPREMOTEIP", "10.0.0.1")]);
    let v = w.check_with(
        &[
            b"nobody@example.com".as_slice(),
            b"nobody@example".as_slice(),
        ],
        &o,
    );
    assert!(reject(&v[0]));
    assert_eq!(v[1].why, "remote");
    let suffixed = [b"nobody@example".as_slice(), b".com"].concat();
    let v = w.check_with(&[&suffixed], &o);
    assert!(reject(&v[0]));
    assert!(v[0].log_lines()[0].ends_with(" 10.0.0.1 nobody@example.com"));
}

// ------------------------------------------------------------------
// deliberate changes

#[test]
fn deliberate_1_directory_fifo_dangling_symlink_count_as_absent() {
    let w = joe_world();
    let h = w.homedir("joe");
    std::fs::create_dir(h.join(".qmail-dir")).unwrap();
    assert!(Command::new("mkfifo")
        .arg(h.join(".qmail-fifo"))
        .status()
        .unwrap()
        .success());
    std::os::unix::fs::symlink(h.join("nonexistent"), h.join(".qmail-dangling")).unwrap();
    for a in [
        "joe-dir@example.com",
        "joe-fifo@example.com",
        "joe-dangling@example.com",
    ] {
        let v = w.one(a);
        assert!(reject(&v), "{a}: {v:?}");
        assert!(
            v.log_lines().len() == 1 && v.log_lines()[0].starts_with("realrcptto "),
            "{v:?}"
        );
    }
    // and the walk goes on to -default files
    w.dotqmail("joe", ".qmail-default");
    for a in [
        "joe-dir@example.com",
        "joe-fifo@example.com",
        "joe-dangling@example.com",
    ] {
        assert!(accept(&w.one(a)), "{a}");
    }
}

#[test]
fn deliberate_1_symlink_to_regular_file_is_found() {
    let w = joe_world();
    let h = w.homedir("joe");
    std::os::unix::fs::symlink(h.join(".qmail-foo"), h.join(".qmail-link")).unwrap();
    assert!(accept(&w.one("joe-link@example.com")));
    // a symlink to a directory is not a file
    std::os::unix::fs::symlink(&h, h.join(".qmail-dirlink")).unwrap();
    assert!(reject(&w.one("joe-dirlink@example.com")));
}

#[test]
fn deliberate_1_enotdir_eloop_enametoolong_count_as_absent() {
    let w = joe_world();
    let h = w.homedir("joe");
    // .qmail-foo is a file, so .qmail-foo/x is ENOTDIR
    std::os::unix::fs::symlink(h.join(".qmail-loop"), h.join(".qmail-loop")).unwrap();
    let long = format!("joe-{}@example.com", "a".repeat(300));
    for a in [
        "joe-foo/x@example.com",
        "joe-loop@example.com",
        long.as_str(),
    ] {
        let v = w.one(a);
        assert!(reject(&v), "{a}: {v:?}");
        assert_eq!(
            v.log_lines().len(),
            1,
            "only the rejection is logged: {v:?}"
        );
    }
    w.dotqmail("joe", ".qmail-default");
    for a in [
        "joe-foo/x@example.com",
        "joe-loop@example.com",
        long.as_str(),
    ] {
        assert!(accept(&w.one(a)), "{a}");
    }
}

#[test]
fn deliberate_1_long_names_relative_to_the_home() {
    let w = joe_world();
    let h = w.homedir("joe");
    // one component over NAME_MAX: qmail-local's relative name fails with
    // ENAMETOOLONG for sure, even where our absolute name is over PATH_MAX
    let long = format!("joe-{}@example.com", "b".repeat(4070));
    let v = w.one(&long);
    assert!(reject(&v), "{v:?}");
    assert_eq!(v.log_lines().len(), 1, "{v:?}");
    // short components, relative name under PATH_MAX, absolute name over
    // it: the process cannot know, so it accepts and logs
    let rel_len = 4088; // ".qmail-" + ext, plus NUL, fits in 4096
    let mut ext = String::new();
    while ext.len() < rel_len - 7 {
        if !ext.is_empty() {
            ext.push('/');
        }
        let n = (rel_len - 7 - ext.len()).min(200);
        ext.push_str(&"c".repeat(n));
    }
    assert!(h.display().to_string().len() + 1 + rel_len >= 4096);
    let v = w.one(&format!("joe-{ext}@example.com"));
    assert!(accept(&v), "{v:?}");
    let l = v.log_lines();
    assert_eq!(l.len(), 1, "{l:?}");
    assert!(
        l[0].starts_with(&format!(
            "realrcptto: unable to stat {}/.qmail-ccc",
            h.display()
        )) && l[0].ends_with(": File name too long"),
        "{l:?}"
    );
}

#[test]
fn deliberate_1_eacces_accepts_and_logs() {
    let w = joe_world();
    let h = w.homedir("joe");
    // .qmail-sub is a directory the unprivileged uid cannot search
    let sub = h.join(".qmail-sub");
    std::fs::create_dir(&sub).unwrap();
    chmod(&sub, 0o700);
    let mut o = w.opts();
    o.run_as = Some(NOBODY);
    let v = w.one_with("joe-sub/x@example.com", &o);
    assert!(accept(&v), "{v:?}");
    assert_eq!(
        v.log_lines(),
        [format!(
            "realrcptto: unable to stat {}/.qmail-sub/x: Permission denied",
            h.display()
        )]
    );
    // as root the same name is simply absent
    let v = w.one("joe-sub/x@example.com");
    assert!(reject(&v), "{v:?}");
}

#[test]
fn deliberate_1_temporary_errno_accepts_and_logs() {
    let w = joe_world();
    let mut o = w.opts();
    o.preload = vec![shim().to_path_buf()];
    // ext "x/EIO-y": the probe .qmail-x/eio-y fails with EIO
    let v = w.one_with("joe-x/EIO-y@example.com", &o);
    assert!(accept(&v), "{v:?}");
    let h = w.homedir("joe");
    assert_eq!(
        v.log_lines(),
        [format!(
            "realrcptto: unable to stat {}/.qmail-x/eio-y: Input/output error",
            h.display()
        )]
    );
    // without the injected error it is simply absent
    assert!(reject(&w.one("joe-x/EIO-y@example.com")));
}

#[test]
fn deliberate_2_missing_home_accepts() {
    let mut w = World::new();
    w.assign(&["=ghost:ghost:1005:1005:/nonexistent/ghost:-::"]);
    let v = w.one("ghost@example.com");
    assert!(accept(&v), "{v:?}");
    assert_eq!(
        v.log_lines(),
        ["realrcptto: unable to stat /nonexistent/ghost: No such file or directory"]
    );
    // the same user with an existing but empty home is rejected
    let h = w.user("real", 1006);
    w.assign(&[&format!("=ghost:ghost:1005:1005:{}:-::", h.display())]);
    assert!(reject(&w.one("ghost@example.com")));
}

#[test]
fn deliberate_2_unusable_home_accepts() {
    let mut w = World::new();
    let file = w.root().join("afile");
    write(&file, "x");
    let ww = w.user("ww", 1010);
    let sticky = w.user("sticky", 1011);
    let gw = w.user("gw", 1012);
    chmod(&ww, 0o777);
    chmod(&sticky, 0o1755);
    chmod(&gw, 0o775);
    w.assign(&[
        &format!("=notdir:x:1009:1009:{}:-::", file.display()),
        &format!("=ww:x:1010:1010:{}:-::", ww.display()),
        &format!("=sticky:x:1011:1011:{}:-::", sticky.display()),
        &format!("=gw:x:1012:1012:{}:-::", gw.display()),
        "=relative:x:1013:1013:relative/home:-::",
    ]);
    let v = w.check(&[
        "notdir@example.com",
        "ww@example.com",
        "sticky@example.com",
        "gw@example.com",
        "relative@example.com",
    ]);
    assert!(
        accept(&v[0]) && v[0].why.contains("not a directory"),
        "{v:?}"
    );
    assert!(accept(&v[1]) && v[1].why.contains("writable"), "{v:?}");
    assert!(accept(&v[2]) && v[2].why.contains("sticky"), "{v:?}");
    assert!(
        reject(&v[3]),
        "group-writable is fine with auto_patrn 002: {v:?}"
    );
    assert!(accept(&v[4]) && v[4].why.contains("relative"), "{v:?}");
    // with conf-patrn 022 a group-writable home defers too
    let mut o = w.opts();
    o.patrn = 0o022;
    assert!(accept(&w.one_with("gw@example.com", &o)));
}

#[test]
fn deliberate_3_getpw_candidate_check_fails_open() {
    let mut w = World::new();
    // bob's home is inside a directory the unprivileged uid cannot search
    let bob = w.unsearchable_home("bob", 1003);
    // gone: home missing -> skipped (G4) -> alias -> no .qmail-gone-x
    w.pw("gone", 1004, "/nonexistent/gone");
    let mut o = w.opts();
    o.run_as = Some(NOBODY);
    let v = w.check_with(&[b"bob-x@example.com", b"gone-x@example.com"], &o);
    assert!(accept(&v[0]), "EACCES on a passwd home: cannot know: {v:?}");
    assert_eq!(
        v[0].log_lines(),
        [format!(
            "realrcptto: unable to stat {}: Permission denied",
            bob.display()
        )]
    );
    assert!(reject(&v[1]), "ENOENT skips the candidate: {v:?}");
    // as root bob is found and has no .qmail-x
    assert!(reject(&w.one("bob-x@example.com")));
    // a temporary errno gives the system-database tempfail
    let eio = w.root().join("EIO-home");
    w.pw("flaky", 1020, &eio.display().to_string());
    let mut o = w.opts();
    o.preload = vec![shim().to_path_buf()];
    assert_eq!(
        w.one_with("flaky-x@example.com", &o).outcome,
        COutcome::TempSys
    );
}

#[test]
fn deliberate_11_empty_passwd_home_is_skipped_not_the_qmail_home() {
    // qmail-getpw stat()s pw_dir as given, in the qmail home: an empty
    // pw_dir fails with ENOENT, so the account is skipped and the alias
    // user gets the address, even when the qmail home itself belongs to
    // that account's uid
    let mut w = World::new();
    w.pw("hollow", 1090, "");
    chown(&w.home, 1090);
    let v = w.check(&["hollow@example.com", "hollow-x@example.com"]);
    for x in &v {
        assert!(
            reject(x) && x.why == "no mailbox (no .qmail file)",
            "the alias user takes it and has no .qmail-hollow*: {v:?}"
        );
    }
    // the alias user's .qmail-hollow-default is what delivers them
    w.dotqmail("alias", ".qmail-hollow-default");
    let v = w.check(&["hollow-x@example.com", "hollow@example.com"]);
    assert!(
        accept(&v[0]) && v[0].why == "found .qmail default file",
        "{v:?}"
    );
    assert!(reject(&v[1]), "\"hollow\" alone needs .qmail-hollow: {v:?}");
}

#[test]
fn shim_eio_variable_names_one_exact_path() {
    // With RRT_SHIM_EIO the shim fails only that path (the difftest
    // generator's errno faults), not other paths with an EIO- component.
    let mut w = joe_world();
    let flaky = w.root().join("flaky-home");
    std::fs::create_dir_all(&flaky).unwrap();
    w.pw("flaky", 1020, &flaky.display().to_string());
    let mut o = w.opts();
    o.preload = vec![shim().to_path_buf()];
    o.env = env(&[("RRT_SHIM_EIO", &flaky.display().to_string())]);
    assert_eq!(
        w.one_with("flaky-x@example.com", &o).outcome,
        COutcome::TempSys
    );
    let v = w.one_with("joe-x/EIO-y@example.com", &o);
    assert!(reject(&v), "{v:?}");
    assert!(
        !v.log_lines().iter().any(|l| l.contains("unable to stat")),
        "{:?}",
        v.log_lines()
    );
    // without the variable the path is fine
    o.env = Vec::new();
    assert!(reject(&w.one_with("flaky-x@example.com", &o)));
}

#[test]
fn deliberate_4_missing_alias_user_accepts() {
    let mut w = World::new();
    w.alias = "nosuchalias".into();
    let v = w.one("nobody@example.com");
    assert!(accept(&v) && v.why.contains("alias"), "{v:?}");
    assert!(v.log.is_empty());
    // with the alias user present the same address is rejected
    w.alias = "alias".into();
    assert!(reject(&w.one("nobody@example.com")));
}

#[test]
fn deliberate_5_empty_local_part_accepts() {
    let w = joe_world();
    w.control("percenthack", "ph.example\n");
    w.control("locals", "example.com\nph2.example\n");
    // "" -> "@example.com"; "%ph2.example@ph.example" -> "@ph2.example"
    let v = w.check(&["@example.com", "", "%ph2.example@ph.example"]);
    for x in &v {
        assert!(accept(x) && x.why.contains("empty local part"), "{v:?}");
        assert!(x.log.is_empty());
    }
}

#[test]
fn deliberate_6_rejection_is_distinct_from_other_failures() {
    // the QMTP hook maps RRT_REJECT (and only it) to
    // "Dsorry, no mailbox here by that name. (#5.1.1)"; every other
    // outcome of the core is accept or a 421-class code
    let w = joe_world();
    let v = w.check(&["nobody@example.com", "joe@example.com", "x@remote.example"]);
    assert_eq!(v[0].outcome, COutcome::Reject);
    assert!(!v[0].outcome.is_temp());
    assert!(v[1..].iter().all(accept));
}

#[test]
fn deliberate_7_denyall_flags_the_transaction_for_the_queue_abort() {
    // the QMTP hook aborts the queue write when realrcptto_deny() is true
    // after the recipients: true iff deny-all and a recipient was bad
    let w = joe_world();
    let mut o = w.opts();
    o.one_transaction = true;
    o.env = env(&[("QMAILRRTDENYALL", "1")]);
    let v = w.check_with(&[b"joe@example.com", b"joe-foo@example.com"], &o);
    assert!(!v[1].deny, "{v:?}");
    let v = w.check_with(
        &[
            b"joe@example.com",
            b"joe-nope@example.com",
            b"joe@example.com",
        ],
        &o,
    );
    assert!(v[2].deny, "{v:?}");
    o.env = Vec::new();
    let v = w.check_with(&[b"joe-nope@example.com"], &o);
    assert!(
        !v[0].deny && reject(&v[0]),
        "no deny-all: plain rejection: {v:?}"
    );
}

#[test]
fn deliberate_8_logging_never_crashes_unknown_fields() {
    let w = joe_world();
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[], "unknown"),
        (&[("PROTO", "TCP")], "unknown"),
        (&[("TCPREMOTEIP", "192.0.2.1")], "unknown"),
        (
            &[("PROTO", "TCP"), ("TCPREMOTEIP", "192.0.2.1")],
            "192.0.2.1",
        ),
    ];
    for (e, ip) in cases {
        let mut o = w.opts();
        o.env = env(e);
        let v = w.one_with("nobody@example.com", &o);
        let l = v.log_lines();
        assert_eq!(l.len(), 1, "{e:?}: {v:?}");
        assert!(l[0].starts_with("realrcptto "), "{l:?}");
        assert!(
            l[0].ends_with(&format!(" {ip} nobody@example.com")),
            "{e:?}: {l:?}"
        );
    }
    let mut o = w.opts();
    o.env = env(&[("PROTO", "QMTP"), ("QMTPREMOTEIP", "2001:db8::1")]);
    let l = w.one_with("nobody@example.com", &o).log_lines();
    assert!(l[0].ends_with(" 2001:db8::1 nobody@example.com"), "{l:?}");
}

#[test]
fn deliberate_9_bytes_not_c_strings() {
    let w = joe_world();
    let o = w.opts();
    // bytes after a NUL are not part of the address (qmail-queue never
    // sees them); nothing past the given length is read
    let v = w.check_with(
        &[
            b"nobody@example.com\0joe@example.com",
            b"joe@example.com\0nobody@example.com",
            b"\0",
        ],
        &o,
    );
    assert!(reject(&v[0]), "{v:?}");
    assert_eq!(
        v[0].log_lines()[0].rsplit(' ').next(),
        Some("nobody@example.com")
    );
    assert!(accept(&v[1]), "{v:?}");
    assert!(
        accept(&v[2]) && v[2].why.contains("empty local part"),
        "{v:?}"
    );
    // a newline inside an address does not split the log line
    let v = w.check_with(&[b"no\nbody@example.com"], &o);
    assert!(reject(&v[0]));
    assert_eq!(v[0].log_lines().len(), 1, "{v:?}");
    assert!(
        v[0].log_lines()[0].ends_with(" no_body@example.com"),
        "{v:?}"
    );
}

// ------------------------------------------------------------------
// users/cdb (resolution.md section 12 assign examples) and getpw rules

#[test]
fn users_cdb_worked_examples() {
    let mut w = World::new();
    let joe = w.user("joe", 1001);
    let lists = w.user("lists", 1003);
    let bob = w.user("bob", 1005);
    let mary = w.user("mary", 1006);
    let alias = w.homedir("alias");
    w.assign(&[
        &format!("=joe:joe:1001:100:{}:::", joe.display()),
        &format!("=Joe.Shmoe:joe:1001:100:{}:-:shmoe:", joe.display()),
        "=joe:dupe:1002:100:/nonexistent/dupe:-::",
        &format!("+joe-:joe:1001:100:{}:-::", joe.display()),
        &format!("+list-:lists:1003:100:{}:-:list-:", lists.display()),
        "+BIG:big:1004:100:/nonexistent/big:-:b-:",
        &format!("+bob:bob:1005:100:{}:-::", bob.display()),
        &format!("xmary:mary:1006:100:{}:-::", mary.display()),
        "=root0:r:abc:0:/root:-::",
        &format!("+:alias:7790:2108:{}:-::", alias.display()),
    ]);
    w.dotqmail("joe", ".qmail-shmoe");
    w.dotqmail("joe", ".qmail-direct-default");
    w.dotqmail("lists", ".qmail-list-foo-default");
    w.dotqmail("bob", ".qmail-by");
    w.dotqmail("alias", ".qmail-bigx");
    let v = w.check(&[
        "JOE@example.com",          // first =joe: dash "" -> accept
        "JOE.SHMOE@example.com",    // .qmail-shmoe
        "joe-Direct-X@example.com", // .qmail-direct-default
        "joe-other@example.com",    // no file
        "list-Foo-Bar@example.com", // ext list-Foo-Bar -> .qmail-list-foo-default
        "bigx@example.com",         // +BIG never matches -> alias .qmail-bigx
        "bobby@example.com",        // +bob -> ext "by"
        "bobcat@example.com",       // +bob -> ext "cat": none
        "mary@example.com",         // xmary acts as =mary: dash "-", ext "": none
        "root0@example.com",        // uid "abc" -> 0 -> qmail defers
        "random@example.com",       // alias, no file
    ]);
    use COutcome::*;
    let got: Vec<COutcome> = v.iter().map(|x| x.outcome).collect();
    assert_eq!(
        got,
        [Accept, Accept, Accept, Reject, Accept, Accept, Accept, Reject, Reject, Accept, Reject],
        "{v:#?}"
    );
    // mary's record has dash "-" and ext "": .qmail- is the exact name
    w.dotqmail("mary", ".qmail-");
    assert!(accept(&w.one("mary@example.com")));
}

#[test]
fn getpw_break_length_and_uid_rules() {
    let mut w = World::new();
    w.user("joe", 1001);
    w.user("joe-foo", 1002);
    let long = "a".repeat(31);
    w.user(&long, 1003);
    w.user("rootish", 0);
    w.dotqmail("joe-foo", ".qmail-bar");
    w.dotqmail(&long, ".qmail-x");
    w.dotqmail("alias", ".qmail-rootish-x");
    let v = w.check(&[
        "joe-foo-bar@example.com",         // longest account wins: joe-foo, ext bar
        "JOE-FOO@example.com",             // joe-foo, dash "" -> accept
        &format!("{long}-x@example.com"),  // 31 bytes: found
        &format!("{long}b-x@example.com"), // 32 bytes: skipped -> alias
        "rootish-x@example.com",           // uid 0 skipped -> alias .qmail-rootish-x
    ]);
    use COutcome::*;
    let got: Vec<COutcome> = v.iter().map(|x| x.outcome).collect();
    assert_eq!(got, [Accept, Accept, Accept, Reject, Accept], "{v:#?}");
    // a home owned by someone else makes the account invisible
    let mut w2 = World::new();
    let h = w2.user("carl", 1001);
    chown(&h, 1002);
    w2.dotqmail("alias", ".qmail-carl");
    assert!(
        accept(&w2.one("carl@example.com")),
        "carl -> alias .qmail-carl"
    );
    std::fs::remove_file(w2.homedir("alias").join(".qmail-carl")).unwrap();
    assert!(reject(&w2.one("carl@example.com")));
}

#[test]
fn non_default_conf_break() {
    let mut w = World::new();
    w.brk = b'+';
    w.user("joe", 1001);
    w.dotqmail("joe", ".qmail-a-default");
    // getpw splits on '+', the .qmail walk on '-'
    let v = w.check(&[
        "joe+a-b@example.com",
        "joe+b@example.com",
        "joe-a-b@example.com",
    ]);
    assert!(accept(&v[0]), "{v:?}");
    assert!(reject(&v[1]), "{v:?}");
    assert!(
        reject(&v[2]),
        "joe-a-b is not a joe address with break '+': {v:?}"
    );
}

// ------------------------------------------------------------------
// sanitizers

fn byte_corpus() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = Vec::new();
    for n in [0usize, 1, 255, 256, 4096, 100_000] {
        v.push(vec![b'a'; n]);
        let mut x = b"joe-".to_vec();
        x.extend_from_slice(&vec![b'-'; n]);
        x.extend_from_slice(b"@example.com");
        v.push(x);
        let mut y = vec![b'x'; n];
        y.push(b'@');
        y.extend_from_slice(&vec![b'd'; n]);
        v.push(y);
        let mut z = b"nobody@".to_vec();
        z.extend_from_slice(&vec![b'.'; n]);
        v.push(z);
        let mut p = vec![b'%'; n];
        p.extend_from_slice(b"@ph.example");
        v.push(p);
    }
    for b in 0..=255u8 {
        v.push([b"jo".as_slice(), &[b], b"e-x@example.com"].concat());
        v.push([b"joe-".as_slice(), &[b], b"@example.com"].concat());
        v.push([b"nobody@exa".as_slice(), &[b], b"mple.com"].concat());
        v.push([b"x@".as_slice(), &[b]].concat());
        v.push(vec![b]);
    }
    v
}

#[test]
fn asan_ubsan_sizes_and_every_byte_value() {
    let mut w = joe_world();
    w.control("percenthack", "ph.example\n");
    w.control(
        "virtualdomains",
        "virt.example:joe\n.sub.example:joe-list\n:catch\n",
    );
    w.user("catch", 1050);
    w.assign(&[
        "+joe-:joe:1001:1001:/nonexistent:-::",
        "=catch-x:catch:1050:1050:/tmp:-::",
    ]);
    let corpus = byte_corpus();
    let mut o = w.opts();
    o.env = env(&[("PROTO", "TCP"), ("TCPREMOTEIP", "192.0.2.3")]);
    let v = asan_driver()
        .check(&w.home, b'-', b"alias", &corpus, &o)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v.len(), corpus.len());
    // the plain build gives the same answers
    let p = driver()
        .check(&w.home, b'-', b"alias", &corpus, &o)
        .unwrap();
    let a: Vec<(COutcome, &str)> = v.iter().map(|x| (x.outcome, x.why.as_str())).collect();
    let b: Vec<(COutcome, &str)> = p.iter().map(|x| (x.outcome, x.why.as_str())).collect();
    assert_eq!(a, b);
    // every address got a definite answer, and every rejection one log line
    let mut rejected = 0;
    for (x, addr) in v.iter().zip(&corpus) {
        assert!(
            !x.outcome.is_temp(),
            "{:?}: {x:?}",
            String::from_utf8_lossy(addr)
        );
        if x.outcome == COutcome::Reject {
            rejected += 1;
            assert_eq!(x.log.iter().filter(|&&c| c == b'\n').count(), 1, "{x:?}");
        }
    }
    assert!(
        rejected > 0 && rejected < corpus.len(),
        "{rejected} of {}",
        corpus.len()
    );
    // the same under deny-all, as one transaction, as the unprivileged uid
    o.env.push(("QMAILRRTDENYALL".into(), "1".into()));
    o.one_transaction = true;
    o.run_as = Some(NOBODY);
    let v = asan_driver()
        .check(&w.home, b'-', b"alias", &corpus, &o)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(v.iter().all(accept));
    assert!(v.last().unwrap().deny);
}

#[test]
fn asan_ubsan_scenario_corpus() {
    let w = joe_world();
    w.control(
        "virtualdomains",
        "virt.example:joe-list\nnoway.virt.example:\n",
    );
    w.control("percenthack", "ph.example\n");
    let h = w.homedir("joe");
    std::fs::create_dir(h.join(".qmail-dir")).unwrap();
    std::os::unix::fs::symlink(h.join(".qmail-loop"), h.join(".qmail-loop")).unwrap();
    let addrs: Vec<Vec<u8>> = [
        "joe@example.com",
        "joe-foo@example.com",
        "joe-dir@example.com",
        "joe-loop@example.com",
        "x@virt.example",
        "x@noway.virt.example",
        "nobody@example.com",
        "joe",
        "",
        "@",
        "@@@",
        "a%b%c@ph.example",
        "joe-foo/x@example.com",
        "JOE-LIST-X@EXAMPLE.COM",
        "joe-x/EIO-y@example.com",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let mut o = w.opts();
    o.preload = vec![shim().to_path_buf()];
    let v = asan_driver()
        .check(&w.home, b'-', b"alias", &addrs, &o)
        .unwrap_or_else(|e| panic!("{e}"));
    let p = driver().check(&w.home, b'-', b"alias", &addrs, &o).unwrap();
    let a: Vec<(COutcome, &str)> = v.iter().map(|x| (x.outcome, x.why.as_str())).collect();
    let b: Vec<(COutcome, &str)> = p.iter().map(|x| (x.outcome, x.why.as_str())).collect();
    assert_eq!(a, b);
    assert!(v.iter().any(reject) && v.iter().any(accept));
}

#[test]
fn driver_line_mode_matches_netstring_mode() {
    // the driver's line mode (for humans) gives the same verdicts
    let w = joe_world();
    let o = w.opts();
    let out = std::process::Command::new(driver().exe())
        .env_clear()
        .envs(qmail_difftest::procenv::nss_vars(
            o.passwd.as_ref().unwrap(),
            o.group.as_ref().unwrap(),
            &[],
        ))
        .arg(&w.home)
        .arg("45")
        .arg("alias")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(b"joe@example.com\nnobody@example.com\n")?;
            c.wait_with_output()
        })
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "init ok");
    assert!(lines[1].starts_with("accept 0 "), "{text}");
    assert!(lines[2].starts_with("reject 0 "), "{text}");
    assert_eq!(*lines.last().unwrap(), "end");
}

// ------------------------------------------------------------------
// the fuzz harness (tests/c/fuzz-realrcptto.c) and its seed corpus

/// The realrcptto fuzz harness built with clang into `dir`, or None (with
/// a printed SKIPPED line) when clang or its libFuzzer runtime is missing.
fn fuzz_harness(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    use qmail_difftest::cc::{core_dir, driver_dir};
    let exe = dir.join("fuzz-realrcptto");
    let out = Command::new("clang")
        .args([
            "-g",
            "-O1",
            "-fsanitize=fuzzer,address,undefined",
            "-fno-sanitize-recover=all",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-Dgetpwnam=rrt_fuzz_getpwnam",
        ])
        .arg(format!("-I{}", core_dir().display()))
        .arg(driver_dir().join("fuzz-realrcptto.c"))
        .arg(core_dir().join("realrcptto.c"))
        .arg("-o")
        .arg(&exe)
        .output();
    match out {
        Ok(o) if o.status.success() => Some(exe),
        Ok(o) => {
            println!(
                "SKIPPED: clang cannot build the libFuzzer harness (libclang-rt-14-dev missing?): {}",
                String::from_utf8_lossy(&o.stderr)
            );
            None
        }
        Err(e) => {
            println!("SKIPPED: no clang for the libFuzzer harness: {e}");
            None
        }
    }
}

#[test]
fn fuzz_harness_agrees_with_the_driver_on_scenario_seeds() {
    use qmail_difftest::corpus::{write_seeds, Target};
    use qmail_difftest::scenario::{self, ErrnoFault, Scenario};
    let work = tempfile::tempdir().unwrap();
    let Some(harness) = fuzz_harness(work.path()) else {
        return;
    };
    const N: u64 = 24;
    let seeds = work.path().join("seeds");
    assert_eq!(write_seeds(Target::Realrcptto, 1, N, &seeds).unwrap(), N);
    let mut compared = 0;
    for index in 0..N {
        let sc = scenario::generate(1, index);
        if matches!(sc.errno_fault, Some(ErrnoFault::Eio { .. })) {
            continue; // the harness cannot make stat() fail with EIO
        }
        let seed = seeds.join(format!("seed-1-{index}"));
        let out = Command::new(&harness)
            .env_clear()
            .env("RRT_FUZZ_TRACE", "1")
            .env("TMPDIR", work.path())
            .arg("-close_fd_mask=2")
            // else libFuzzer runs an input a second time when it kept
            // memory (the harness keeps a copy of the world), tracing twice
            .arg("-detect_leaks=0")
            .arg(&seed)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            seed.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        // the same scenario through the driver (as root, like the harness)
        let root = tempfile::tempdir().unwrap();
        sc.materialize(root.path(), &qmail_difftest::oracle::r::compile_assign_cdb)
            .unwrap();
        let addrs: Vec<Vec<u8>> = sc
            .addresses
            .iter()
            .map(|a| a.0.clone())
            .filter(|a| !a.contains(&b'\n'))
            .take(64)
            .collect();
        let mut o = qmail_difftest::oracle::c::CheckOptions {
            passwd: Some(root.path().join(scenario::layout::PASSWD)),
            group: Some(root.path().join(scenario::layout::GROUP)),
            one_transaction: true,
            ..Default::default()
        };
        if index % 8 == 7 {
            o.env.push(("QMAILRRTDENYALL".into(), "1".into()));
        }
        if let Some(f) = &sc.errno_fault {
            o.preload = vec![shim().to_path_buf()];
            o.env.extend(f.shim_env(root.path()));
        }
        let home = Scenario::qmail_home(root.path());
        let mut want = Vec::new();
        match driver().check(&home, sc.conf_break, b"alias", &addrs, &o) {
            Ok(v) => {
                for (x, a) in v.iter().zip(&addrs) {
                    want.extend_from_slice(
                        format!("{} {}: ", x.outcome.verdict(), x.why).as_bytes(),
                    );
                    want.extend_from_slice(a);
                    want.push(b'\n');
                }
            }
            Err(CError::Init(c)) => {
                want.extend_from_slice(format!("init {}\n", c.verdict()).as_bytes())
            }
            Err(e) => panic!("scenario {index}: {e}"),
        }
        let got: Vec<&[u8]> = out.stdout.split(|&c| c == b'\n').collect();
        let exp: Vec<&[u8]> = want.split(|&c| c == b'\n').collect();
        for (i, (g, w)) in got.iter().zip(&exp).enumerate() {
            assert_eq!(
                String::from_utf8_lossy(g),
                String::from_utf8_lossy(w),
                "scenario {index} of seed 1, line {i}: harness (left) vs driver (right)"
            );
        }
        assert_eq!(got.len(), exp.len(), "scenario {index}: number of lines");
        compared += 1;
    }
    assert!(compared >= N / 2, "{compared}");
    // the harness removed its scratch directory
    let left: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("rrt-fuzz."))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
