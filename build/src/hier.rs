//! What upstream `hier()` installs, read by running it.
//!
//! netqmail's and mess822's `install` and `instcheck` (notqmail's
//! `instpackage`, `instchown` and `instcheck`) are `hier.o` linked with
//! other implementations of `h()`, `d()`, `c()`, `z()` and `p()`. We link
//! `hier.o` with one more, `build/c/qtk-hier.c`, that prints each call;
//! the qmail ids come from sentinel `auto_uid*` variables (netqmail's
//! `auto_uids.c`, what notqmail's `instuidgid.c` fills in at run time) so
//! that every entry's user and group are known by name even when several
//! users share an id. For notqmail this is the list `instchown` walks.

use std::path::Path;
use std::process::Command;

use crate::ids::{GROUPS, SENTINEL_GROUP, SENTINEL_USER, USERS};
use crate::{io_err, run_logged, BuildError, IdMap};

/// The recorder's C source (this project's code, not upstream's).
pub const RECORDER_C: &str = include_str!("../c/qtk-hier.c");

/// What a `hier()` entry creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// `h()` (the top directory, `path` is empty) or `d()`.
    Dir,
    /// `c()`: a copy of the tree's file `source`.
    File {
        /// The file name in the build tree.
        source: String,
    },
    /// `z()`: a file of `len` zero bytes.
    Zeros {
        /// Its length.
        len: u64,
    },
    /// `p()`: a named pipe.
    Fifo,
}

/// One `hier()` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HierEntry {
    /// What it creates.
    pub kind: EntryKind,
    /// The home it was called with (must be the prefix).
    pub home: String,
    /// The path below the home (`""` for the home itself), without `./`.
    pub path: String,
    /// The qmail user that owns it ([`USERS`]), or `None` for uid -1.
    pub user: Option<&'static str>,
    /// The qmail group that owns it ([`GROUPS`]), or `None` for gid -1.
    pub group: Option<&'static str>,
    /// Permission bits (including setgid).
    pub mode: u32,
}

impl HierEntry {
    /// The entry's uid under `ids` (`None`: leave unchanged).
    pub fn uid(&self, ids: &IdMap) -> Option<u32> {
        self.user.and_then(|u| ids.uid(u))
    }
    /// The entry's gid under `ids` (`None`: leave unchanged).
    pub fn gid(&self, ids: &IdMap) -> Option<u32> {
        self.group.and_then(|g| ids.gid(g))
    }
}

/// Which package a tree is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Package {
    /// netqmail-1.06 (`hier.c` uses `auto_qmail`, `auto_split`, `auto_uids`).
    Netqmail,
    /// mess822-0.58 (`hier.c` uses `auto_home`).
    Mess822,
    /// notqmail-1.09 (`hier.c` uses `auto_qmail`, `auto_split` and the
    /// `uid_t`/`gid_t` variables `instuidgid.c` or `instfiles.c` define).
    Notqmail,
}

/// Build the recorder in a compiled `tree` and return the entries of its
/// `hier()`, in call order. The tree must have been compiled (its
/// `compile` and `load` scripts and `hier.o` exist or can be made).
pub fn record(tree: &Path, package: Package) -> Result<Vec<HierEntry>, BuildError> {
    let src = tree.join("qtk-hier.c");
    std::fs::write(&src, RECORDER_C).map_err(io_err(&src))?;
    let objs: &[&str] = match package {
        Package::Netqmail | Package::Notqmail => {
            let u = tree.join("qtk-uids.c");
            std::fs::write(&u, IdMap::sentinel_c()).map_err(io_err(&u))?;
            &["hier.o", "auto_qmail.o", "auto_split.o", "fs.a", "str.a"]
        }
        Package::Mess822 => &["hier.o", "auto_home.o"],
    };
    let log = tree.join(".qtk-hier.log");
    let mut make = Command::new("make");
    make.args(["-o", "auto_uids.c", "compile", "load"])
        .args(objs)
        .current_dir(tree);
    crate::reproducible_env(&mut make);
    run_logged(make, &log)?;
    let mut compile = Command::new("sh");
    compile.args(["./compile", "qtk-hier.c"]).current_dir(tree);
    run_logged(compile, &log)?;
    let mut load = Command::new("sh");
    load.args(["./load", "qtk-hier"]).current_dir(tree);
    if package != Package::Mess822 {
        let mut c = Command::new("sh");
        c.args(["./compile", "qtk-uids.c"]).current_dir(tree);
        run_logged(c, &log)?;
        load.args([
            "hier.o",
            "auto_qmail.o",
            "auto_split.o",
            "qtk-uids.o",
            "fs.a",
            "str.a",
        ]);
    } else {
        load.args(["hier.o", "auto_home.o"]);
    }
    run_logged(load, &log)?;
    let out = Command::new(tree.join("qtk-hier"))
        .current_dir(tree)
        .output()
        .map_err(io_err(&tree.join("qtk-hier")))?;
    if !out.status.success() {
        return Err(BuildError::Invalid(format!(
            "{}: qtk-hier failed ({}): {}",
            tree.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let text = String::from_utf8(out.stdout)
        .map_err(|_| BuildError::Invalid("qtk-hier printed non-UTF-8 paths".into()))?;
    text.lines().map(parse_line).collect()
}

fn join(a: &str, b: &str) -> String {
    let parts: Vec<&str> = a
        .split('/')
        .chain(b.split('/'))
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    parts.join("/")
}

fn parse_line(line: &str) -> Result<HierEntry, BuildError> {
    let bad = || BuildError::Invalid(format!("qtk-hier: cannot parse line {line:?}"));
    let f: Vec<&str> = line.split('\t').collect();
    if f.len() != 8 {
        return Err(bad());
    }
    let uid: i64 = f[5].parse().map_err(|_| bad())?;
    let gid: i64 = f[6].parse().map_err(|_| bad())?;
    let mode = u32::from_str_radix(f[7], 8).map_err(|_| bad())?;
    let user = match uid {
        -1 => None,
        n if (SENTINEL_USER..SENTINEL_USER + 8).contains(&n) => {
            Some(USERS[(n - SENTINEL_USER) as usize])
        }
        _ => {
            return Err(BuildError::Invalid(format!(
                "hier() entry {line:?} has uid {uid}, which is neither -1 nor a qmail user"
            )))
        }
    };
    let group = match gid {
        -1 => None,
        n if (SENTINEL_GROUP..SENTINEL_GROUP + 2).contains(&n) => {
            Some(GROUPS[(n - SENTINEL_GROUP) as usize])
        }
        _ => {
            return Err(BuildError::Invalid(format!(
                "hier() entry {line:?} has gid {gid}, which is neither -1 nor a qmail group"
            )))
        }
    };
    let (kind, path) = match f[0] {
        "h" => (EntryKind::Dir, String::new()),
        "d" => (EntryKind::Dir, join(f[2], "")),
        "c" => (
            EntryKind::File {
                source: f[3].to_string(),
            },
            join(f[2], f[3]),
        ),
        "z" => (
            EntryKind::Zeros {
                len: f[4].parse().map_err(|_| bad())?,
            },
            join("", f[3]),
        ),
        "p" => (EntryKind::Fifo, join("", f[3])),
        _ => return Err(bad()),
    };
    if path.split('/').any(|p| p == "..") {
        return Err(BuildError::Invalid(format!(
            "hier() entry {line:?} leaves its home"
        )));
    }
    Ok(HierEntry {
        kind,
        home: f[1].trim_end_matches('/').to_string(),
        path,
        user,
        group,
        mode,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_recorder_lines() {
        let e =
            parse_line("c\t/var/qmail\tman/man8\tqmail-local.8\t-\t1000003\t2000000\t644").unwrap();
        assert_eq!(e.path, "man/man8/qmail-local.8");
        assert_eq!(e.user, Some("root"));
        assert_eq!(e.group, Some("qmail"));
        assert_eq!(e.mode, 0o644);
        let e = parse_line("c\t/etc\t.\tleapsecs.dat\t-\t-1\t-1\t644").unwrap();
        assert_eq!((e.home.as_str(), e.path.as_str()), ("/etc", "leapsecs.dat"));
        assert_eq!(e.user, None);
        let e = parse_line("z\t/q\t-\tqueue/lock/tcpto\t1024\t1000006\t2000000\t644").unwrap();
        assert_eq!(e.kind, EntryKind::Zeros { len: 1024 });
        assert!(parse_line("d\t/q\talias\t-\t-\t7\t2000000\t2755").is_err());
        assert!(parse_line("garbage").is_err());
    }

    #[test]
    fn every_kind_of_recorder_line_and_the_sentinel_ranges() {
        let e = parse_line("h\t/q/\t-\t-\t-\t1000003\t2000000\t755").unwrap();
        assert_eq!(
            (e.kind, e.home.as_str(), e.path.as_str()),
            (EntryKind::Dir, "/q", "")
        );
        let e = parse_line("d\t/q\t./alias/\t-\t-\t1000000\t2000001\t2755").unwrap();
        assert_eq!((e.kind, e.path.as_str()), (EntryKind::Dir, "alias"));
        assert_eq!(
            (e.user, e.group, e.mode),
            (Some("alias"), Some("nofiles"), 0o2755)
        );
        let e = parse_line("p\t/q\t-\tqueue/lock/trigger\t-\t1000007\t-1\t622").unwrap();
        assert_eq!(
            (e.kind, e.path.as_str()),
            (EntryKind::Fifo, "queue/lock/trigger")
        );
        assert_eq!((e.user, e.group), (Some("qmails"), None));
        // Just past the eight users and two groups: refused.
        for line in [
            "d\t/q\tx\t-\t-\t1000008\t-1\t755",
            "d\t/q\tx\t-\t-\t-1\t2000002\t755",
            "d\t/q\tx\t-\t-\t-1\t5\t755",
            "d\t/q\t../x\t-\t-\t-1\t-1\t755",
            "x\t/q\tx\t-\t-\t-1\t-1\t755",
        ] {
            assert!(parse_line(line).is_err(), "{line}");
        }
        let ids = IdMap {
            uids: [7001, 7002, 7003, 0, 7005, 7006, 7007, 7008],
            gids: [7100, 7101],
        };
        let e = parse_line("d\t/q\tx\t-\t-\t1000001\t2000001\t755").unwrap();
        assert_eq!((e.uid(&ids), e.gid(&ids)), (Some(7002), Some(7101)));
        let e = parse_line("d\t/q\tx\t-\t-\t-1\t-1\t755").unwrap();
        assert_eq!((e.uid(&ids), e.gid(&ids)), (None, None));
    }

    /// A fake compiled tree: its Makefile, `compile` and `load` record
    /// their calls, and the "linked" qtk-hier prints `hier-out`.
    fn fake_tree(top: &Path) -> std::path::PathBuf {
        let tree = top.join("tree");
        std::fs::create_dir(&tree).unwrap();
        let mk = ".NOTPARALLEL:\ncompile load hier.o auto_qmail.o auto_split.o fs.a str.a auto_home.o:\n\
                  \techo \"make $@ $$LC_ALL\" >> got-calls\n";
        std::fs::write(tree.join("Makefile"), mk).unwrap();
        crate::testutil::script(&tree.join("compile"), "echo \"compile $*\" >> got-calls\n");
        let load = "echo \"load $*\" >> got-calls\n\
                    printf '#!/bin/sh\\ncat hier-out\\n[ ! -f hier-fail ] || { echo broken >&2; exit 1; }\\n' > qtk-hier\n\
                    chmod 755 qtk-hier\n";
        crate::testutil::script(&tree.join("load"), load);
        let out = "h\t/q\t-\t-\t-\t1000003\t2000000\t755\n\
                   c\t/q\tbin\tqmail-smtpd\t-\t1000003\t2000000\t755\n";
        std::fs::write(tree.join("hier-out"), out).unwrap();
        tree
    }

    #[test]
    fn record_links_the_recorder_with_the_sentinel_ids_and_parses_its_output() {
        let t = tempfile::tempdir().unwrap();
        let tree = fake_tree(t.path());
        let entries = record(&tree, Package::Netqmail).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].path, "bin/qmail-smtpd");
        assert_eq!(
            (entries[1].user, entries[1].group),
            (Some("root"), Some("qmail"))
        );
        let read = |n: &str| std::fs::read_to_string(tree.join(n)).unwrap();
        assert_eq!(read("qtk-hier.c"), RECORDER_C);
        let uids = read("qtk-uids.c");
        assert!(uids.starts_with("int auto_uida = 1000000;\n"), "{uids}");
        assert!(uids.contains("int auto_uids = 1000007;\n"), "{uids}");
        assert!(uids.ends_with("int auto_gidq = 2000000;\nint auto_gidn = 2000001;\n"));
        let calls = read("got-calls");
        // (compile and load exist, so make has nothing to do for them.)
        assert!(
            calls.starts_with("make hier.o C\nmake auto_qmail.o C\n"),
            "{calls}"
        );
        assert!(
            calls.ends_with(
                "compile qtk-hier.c\ncompile qtk-uids.c\n\
                 load qtk-hier hier.o auto_qmail.o auto_split.o qtk-uids.o fs.a str.a\n"
            ),
            "{calls}"
        );
        std::fs::write(tree.join("got-calls"), "").unwrap();
        record(&tree, Package::Mess822).unwrap();
        assert_eq!(
            read("got-calls"),
            "make hier.o C\nmake auto_home.o C\n\
             compile qtk-hier.c\nload qtk-hier hier.o auto_home.o\n"
        );
        std::fs::write(tree.join("hier-fail"), "").unwrap();
        let err = record(&tree, Package::Notqmail).unwrap_err().to_string();
        assert!(
            err.contains("qtk-hier failed") && err.contains("broken"),
            "{err}"
        );
        std::fs::remove_file(tree.join("compile")).unwrap();
        let err = record(&tree, Package::Notqmail).unwrap_err().to_string();
        assert!(err.contains(".qtk-hier.log"), "{err}");
    }
}
