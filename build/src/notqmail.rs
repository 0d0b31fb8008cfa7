//! What the notqmail-1.09 build does differently from netqmail's.
//!
//! notqmail compiles the qmail user and group *names* in (`conf-users`,
//! `conf-groups`) and looks their ids up when its programs start, so no
//! ids are compiled in and nothing like netqmail's `auto_uids.c` is
//! written ([`crate::compile_notqmail`]). Its install is split in two
//! programs built from the same `hier()`: `instpackage` (with
//! `instfiles.c`: makes the directories, files and fifo with their modes,
//! ignores owners, honours `DESTDIR`, needs no root) and `instchown` (with
//! `instuidgid.c`: looks the users up with `getpwnam` and applies the
//! owners, so needs root and the users).
//!
//! The build uses `instpackage` as notqmail's packagers do, but into a
//! private stage in the work directory ([`instpackage`]), checks what it
//! made against the `hier()` list ([`reconcile`]) and installs from the
//! stage with this crate's installer. `instpackage` is not pointed at the
//! prefix (or destdir) itself because it follows symbolic links there
//! (`open_trunc`, `chmod` by path), creates missing parents of the prefix
//! (`mkdir -p`) and leaves the time of the install as every mtime.
//! `instchown` is not run: the owners it would apply are the `hier()`
//! list's ([`crate::hier::record`]), recorded in the manifest and applied
//! by the installer only as root without a destdir, exactly as for
//! netqmail. `instcheck` needs the users too; [`instcheck`] links
//! notqmail's `instcheck.o` with ids given here instead.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::hier::{EntryKind, HierEntry};
use crate::{io_err, run_logged, BuildError, IdMap};

/// Run the compiled tree's `instpackage` with `DESTDIR=stage` (a fresh
/// directory: an old one is removed first) and return where it put the
/// prefix: `stage/prefix`.
pub(crate) fn instpackage(tree: &Path, stage: &Path, prefix: &Path) -> Result<PathBuf, BuildError> {
    if stage.symlink_metadata().is_ok() {
        std::fs::remove_dir_all(stage).map_err(io_err(stage))?;
    }
    std::fs::create_dir_all(stage).map_err(io_err(stage))?;
    let dest = stage
        .to_str()
        .ok_or_else(|| BuildError::Invalid(format!("{}: not UTF-8", stage.display())))?;
    let mut cmd = Command::new(tree.join("instpackage"));
    cmd.current_dir(tree).env("DESTDIR", dest);
    crate::reproducible_env(&mut cmd);
    run_logged(cmd, &tree.join(".qtk-instpackage.log"))?;
    Ok(stage.join(prefix.strip_prefix("/").unwrap_or(prefix)))
}

/// What one staged path is: `dir`, `file`, `fifo` or `other`, and its
/// permission bits.
fn staged(stage_home: &Path) -> Result<BTreeMap<String, (&'static str, u32)>, BuildError> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    fn walk(
        base: &Path,
        dir: &Path,
        out: &mut BTreeMap<String, (&'static str, u32)>,
    ) -> Result<(), BuildError> {
        for e in std::fs::read_dir(dir).map_err(io_err(dir))? {
            let p = e.map_err(io_err(dir))?.path();
            let m = p.symlink_metadata().map_err(io_err(&p))?;
            let t = m.file_type();
            let kind = if t.is_dir() {
                "dir"
            } else if t.is_file() {
                "file"
            } else if t.is_fifo() {
                "fifo"
            } else {
                "other"
            };
            let rel = p.strip_prefix(base).unwrap_or(&p).to_string_lossy();
            out.insert(rel.into_owned(), (kind, m.permissions().mode() & 0o7777));
            if kind == "dir" {
                walk(base, &p, out)?;
            }
        }
        Ok(())
    }
    let mut out = BTreeMap::new();
    let m = stage_home.symlink_metadata().map_err(io_err(stage_home))?;
    if !m.is_dir() {
        return Err(BuildError::Invalid(format!(
            "instpackage made no directory {}",
            stage_home.display()
        )));
    }
    out.insert(String::new(), ("dir", m.permissions().mode() & 0o7777));
    walk(stage_home, stage_home, &mut out)?;
    Ok(out)
}

/// Check what `instpackage` staged under `stage_home` against the
/// `hier()` list `entries` and return the entries to install, each
/// file's `source` now its path below `stage_home`. Every entry must have
/// been staged with its type and mode (the setgid bit aside: the kernel
/// may drop it on a directory of a foreign group), except the `man/cat*`
/// pages `instpackage` skips when they are missing or empty, which are
/// left out; and everything staged must be listed.
pub fn reconcile(entries: &[HierEntry], stage_home: &Path) -> Result<Vec<HierEntry>, BuildError> {
    let mut on_disk = staged(stage_home)?;
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let want = match e.kind {
            EntryKind::Dir => "dir",
            EntryKind::File { .. } | EntryKind::Zeros { .. } => "file",
            EntryKind::Fifo => "fifo",
        };
        let Some((kind, mode)) = on_disk.remove(&e.path) else {
            if want == "file" && e.path.starts_with("man/cat") {
                continue;
            }
            return Err(BuildError::Invalid(format!(
                "instpackage did not make {} ({want}), which hier() lists",
                stage_home.join(&e.path).display()
            )));
        };
        if kind != want || (mode ^ e.mode) & !0o2000 != 0 {
            return Err(BuildError::Invalid(format!(
                "instpackage made {} a {kind} of mode 0{mode:o}; hier() lists a {want} of mode 0{:o}",
                stage_home.join(&e.path).display(),
                e.mode
            )));
        }
        let mut e = e.clone();
        if let EntryKind::File { source } = &mut e.kind {
            source.clone_from(&e.path);
        }
        out.push(e);
    }
    if let Some((extra, (kind, _))) = on_disk.into_iter().next() {
        return Err(BuildError::Invalid(format!(
            "instpackage made {} (a {kind}), which hier() does not list",
            stage_home.join(extra).display()
        )));
    }
    Ok(out)
}

/// The C source defining what notqmail's `instuidgid.c` defines: the
/// owner variables `hier()` reads and `init_uidgid()`, here without any
/// user lookup: the ids of `ids`, or `-1` (not checked) for all.
pub(crate) fn uidgid_c(ids: Option<&IdMap>) -> String {
    let mut s = String::from(
        "/* qtk-uidgid.c: instuidgid.c without getpwnam (qmail-build) */\n#include <sys/types.h>\n",
    );
    for (var, user) in [
        ("auto_uida", "alias"),
        ("auto_uido", "root"),
        ("auto_uidq", "qmailq"),
        ("auto_uidr", "qmailr"),
        ("auto_uids", "qmails"),
    ] {
        match ids.and_then(|i| i.uid(user)) {
            Some(id) => s.push_str(&format!("uid_t {var} = {id};\n")),
            None => s.push_str(&format!("uid_t {var} = (uid_t) -1;\n")),
        }
    }
    match ids.and_then(|i| i.gid("qmail")) {
        Some(id) => s.push_str(&format!("gid_t auto_gidq = {id};\n")),
        None => s.push_str("gid_t auto_gidq = (gid_t) -1;\n"),
    }
    s.push_str("void init_uidgid(void) {}\n");
    s
}

/// Run notqmail's `instcheck` checks on the installed prefix: its
/// `instcheck.o` and `hier.o` linked (as `qtk-instcheck`) with
/// [`uidgid_c`] of `ids` (the ids applied, when ownership was), so that
/// it neither needs the qmail users to exist nor warns about owners that
/// were only recorded. Returns what it printed.
pub(crate) fn instcheck(tree: &Path, ids: Option<&IdMap>) -> Result<Vec<String>, BuildError> {
    let log = tree.join(".qtk-instcheck.log");
    let src = tree.join("qtk-uidgid.c");
    std::fs::write(&src, uidgid_c(ids)).map_err(io_err(&src))?;
    let objs = [
        "instcheck.o",
        "fifo.o",
        "hier.o",
        "auto_qmail.o",
        "auto_split.o",
        "strerr.a",
        "substdio.a",
        "error.a",
        "str.a",
        "fs.a",
    ];
    let mut make = Command::new("make");
    make.args(["compile", "load"]).args(objs).current_dir(tree);
    crate::reproducible_env(&mut make);
    run_logged(make, &log)?;
    let mut compile = Command::new("sh");
    compile
        .args(["./compile", "qtk-uidgid.c"])
        .current_dir(tree);
    run_logged(compile, &log)?;
    // `load NAME …` links NAME.o first.
    let (obj, copy) = (tree.join("instcheck.o"), tree.join("qtk-instcheck.o"));
    std::fs::copy(&obj, &copy).map_err(io_err(&copy))?;
    let mut load = Command::new("sh");
    load.args(["./load", "qtk-instcheck", "qtk-uidgid.o"])
        .args(&objs[1..])
        .current_dir(tree);
    run_logged(load, &log)?;
    let exe = tree.join("qtk-instcheck");
    let out = Command::new(&exe)
        .current_dir(tree)
        .output()
        .map_err(io_err(&exe))?;
    Ok(String::from_utf8_lossy(&out.stderr)
        .lines()
        .chain(String::from_utf8_lossy(&out.stdout).lines())
        .map(str::to_string)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: EntryKind, path: &str, mode: u32) -> HierEntry {
        HierEntry {
            kind,
            home: "/var/qmail".into(),
            path: path.into(),
            user: Some("root"),
            group: Some("qmail"),
            mode,
        }
    }

    fn file(name: &str) -> EntryKind {
        EntryKind::File {
            source: name.into(),
        }
    }

    /// A stage as instpackage leaves it, and the hier() list it was made
    /// from (a cat page that was not formatted is missing).
    fn stage(top: &Path) -> (PathBuf, Vec<HierEntry>) {
        use std::os::unix::fs::PermissionsExt;
        let home = top.join("var/qmail");
        std::fs::create_dir_all(home.join("bin")).unwrap();
        std::fs::create_dir_all(home.join("man/cat8")).unwrap();
        std::fs::create_dir_all(home.join("alias")).unwrap();
        std::fs::write(home.join("bin/qmail-queue"), "elf").unwrap();
        std::fs::write(home.join("man/cat8/qmail-send.0"), "page").unwrap();
        for (p, m) in [
            ("", 0o755),
            ("bin", 0o755),
            ("man", 0o755),
            ("man/cat8", 0o755),
            ("alias", 0o2755),
            ("bin/qmail-queue", 0o4711),
            ("man/cat8/qmail-send.0", 0o644),
        ] {
            let perm = std::fs::Permissions::from_mode(m);
            std::fs::set_permissions(home.join(p), perm).unwrap();
        }
        let entries = vec![
            entry(EntryKind::Dir, "", 0o755),
            entry(EntryKind::Dir, "bin", 0o755),
            entry(EntryKind::Dir, "man", 0o755),
            entry(EntryKind::Dir, "man/cat8", 0o755),
            entry(EntryKind::Dir, "alias", 0o2755),
            entry(file("qmail-queue"), "bin/qmail-queue", 0o4711),
            entry(file("qmail-send.0"), "man/cat8/qmail-send.0", 0o644),
            entry(file("qmail-smtpd.0"), "man/cat8/qmail-smtpd.0", 0o644),
        ];
        (home, entries)
    }

    #[test]
    fn staged_files_are_installed_from_the_stage_and_skipped_cat_pages_left_out() {
        let t = tempfile::tempdir().unwrap();
        let (home, entries) = stage(t.path());
        let got = reconcile(&entries, &home).unwrap();
        let paths: Vec<&str> = got.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "",
                "bin",
                "man",
                "man/cat8",
                "alias",
                "bin/qmail-queue",
                "man/cat8/qmail-send.0"
            ]
        );
        assert_eq!(got[5].kind, file("bin/qmail-queue"));
        assert_eq!((got[5].user, got[5].mode), (Some("root"), 0o4711));
    }

    #[test]
    fn a_missing_program_an_unlisted_file_or_a_wrong_mode_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let (home, mut entries) = stage(t.path());
        entries.push(entry(file("qmail-smtpd"), "bin/qmail-smtpd", 0o755));
        let err = reconcile(&entries, &home).unwrap_err().to_string();
        assert!(
            err.contains("bin/qmail-smtpd (file), which hier() lists"),
            "{err}"
        );
        entries.pop();
        std::fs::write(home.join("bin/surprise"), "x").unwrap();
        let err = reconcile(&entries, &home).unwrap_err().to_string();
        assert!(
            err.contains("bin/surprise (a file), which hier() does not list"),
            "{err}"
        );
        std::fs::remove_file(home.join("bin/surprise")).unwrap();
        let perm = std::fs::Permissions::from_mode(0o755);
        std::fs::set_permissions(home.join("bin/qmail-queue"), perm).unwrap();
        let err = reconcile(&entries, &home).unwrap_err().to_string();
        assert!(
            err.contains("mode 0755; hier() lists a file of mode 04711"),
            "{err}"
        );
    }

    #[test]
    fn instuidgid_replacement_has_the_ids_or_minus_one() {
        let ids = IdMap {
            uids: [1, 2, 3, 0, 5, 6, 7, 8],
            gids: [9, 10],
        };
        let c = uidgid_c(Some(&ids));
        for line in [
            "uid_t auto_uida = 1;",
            "uid_t auto_uido = 0;",
            "uid_t auto_uidq = 6;",
            "uid_t auto_uidr = 7;",
            "uid_t auto_uids = 8;",
            "gid_t auto_gidq = 9;",
            "void init_uidgid(void) {}",
        ] {
            assert!(c.contains(line), "{line} missing from\n{c}");
        }
        let c = uidgid_c(None);
        assert_eq!(c.matches("= (uid_t) -1;").count(), 5);
        assert!(c.contains("gid_t auto_gidq = (gid_t) -1;"));
    }

    #[test]
    fn instpackage_stages_into_a_fresh_directory_and_returns_the_prefix_there() {
        let t = tempfile::tempdir().unwrap();
        let tree = t.path().join("tree");
        std::fs::create_dir(&tree).unwrap();
        let body = "#!/bin/sh\nmkdir -p \"$DESTDIR/var/qmail/bin\"\n\
                    echo \"$LC_ALL\" > \"$DESTDIR/var/qmail/bin/env\"\n";
        crate::testutil::script(&tree.join("instpackage"), body);
        let stage = t.path().join("stage");
        std::fs::create_dir_all(stage.join("old")).unwrap();
        let home = instpackage(&tree, &stage, Path::new("/var/qmail")).unwrap();
        assert_eq!(home, stage.join("var/qmail"));
        assert_eq!(
            std::fs::read_to_string(home.join("bin/env")).unwrap(),
            "C\n"
        );
        assert!(!stage.join("old").exists(), "the old stage was kept");
        crate::testutil::script(&tree.join("instpackage"), "#!/bin/sh\necho nope; exit 1\n");
        let err = instpackage(&tree, &stage, Path::new("/var/qmail"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(".qtk-instpackage.log") && err.contains("nope"),
            "{err}"
        );
    }

    #[test]
    fn instcheck_links_our_ids_and_returns_what_it_printed() {
        let t = tempfile::tempdir().unwrap();
        let tree = t.path().join("tree");
        std::fs::create_dir(&tree).unwrap();
        let mk = ".NOTPARALLEL:\ncompile load instcheck.o fifo.o hier.o auto_qmail.o auto_split.o \
                  strerr.a substdio.a error.a str.a fs.a:\n\ttouch $@\n";
        std::fs::write(tree.join("Makefile"), mk).unwrap();
        crate::testutil::script(&tree.join("compile"), "echo \"compile $*\" >> calls\n");
        let load = "echo \"load $*\" >> calls\n\
                    printf '#!/bin/sh\\necho warning-out\\necho warning-err >&2\\n' > qtk-instcheck\n\
                    chmod 755 qtk-instcheck\n";
        crate::testutil::script(&tree.join("load"), load);
        let ids = IdMap::uniform(7, 8);
        let out = instcheck(&tree, Some(&ids)).unwrap();
        assert_eq!(out, ["warning-err", "warning-out"]);
        let src = std::fs::read_to_string(tree.join("qtk-uidgid.c")).unwrap();
        assert_eq!(src, uidgid_c(Some(&ids)));
        assert!(tree.join("qtk-instcheck.o").is_file());
        let calls = std::fs::read_to_string(tree.join("calls")).unwrap();
        assert!(
            calls.ends_with(
                "compile qtk-uidgid.c\nload qtk-instcheck qtk-uidgid.o fifo.o hier.o auto_qmail.o \
                 auto_split.o strerr.a substdio.a error.a str.a fs.a\n"
            ),
            "{calls}"
        );
    }
}
