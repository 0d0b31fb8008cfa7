//! Compiling a (patched or pristine) netqmail, notqmail or mess822 tree in
//! place with the machine's C compiler, without the qmail users existing.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::ids::IdMap;
use crate::release::Qmail;
use crate::{io_err, run_logged, BuildError};

/// Which C compiler `--cc` is, and the flags it needs for 1990s C.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Compiler {
    /// The command as given (`cc`, `gcc`, `clang-16`, …).
    pub cc: String,
    /// The first line of `cc --version`.
    pub version: String,
    /// `gcc`, `clang` or `unknown`.
    pub family: String,
    /// The major version, if it could be read.
    pub major: Option<u32>,
}

impl Compiler {
    /// Ask `cc --version` what this compiler is.
    pub fn detect(cc: &str) -> Result<Self, BuildError> {
        let words: Vec<&str> = cc.split_whitespace().collect();
        let (prog, args) = words
            .split_first()
            .ok_or_else(|| BuildError::Invalid("--cc is empty".into()))?;
        let out = Command::new(prog)
            .args(args)
            .arg("--version")
            .output()
            .map_err(|e| BuildError::Invalid(format!("--cc {cc:?}: cannot run {prog}: {e}")))?;
        if !out.status.success() {
            return Err(BuildError::Invalid(format!(
                "--cc {cc:?}: `{cc} --version` failed ({})",
                out.status
            )));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let version = text.lines().next().unwrap_or("").trim().to_string();
        let lower = text.to_lowercase();
        let family = if lower.contains("clang") {
            "clang"
        } else if lower.contains("gcc") || lower.contains("free software foundation") {
            "gcc"
        } else {
            "unknown"
        };
        let major = parse_major(&version, family);
        Ok(Compiler {
            cc: cc.to_string(),
            version,
            family: family.to_string(),
            major,
        })
    }

    /// Flags added after `-O2` in `conf-cc` so that K&R-era C still builds
    /// with warnings only:
    /// * gcc ≥ 14 turns implicit declarations into errors and gcc ≥ 15
    ///   defaults to C23: `-std=gnu17 -fpermissive` (Gentoo uses
    ///   `-std=gnu17`);
    /// * clang ≥ 16 makes implicit declarations errors:
    ///   `-std=gnu17 -Wno-error=…`;
    /// * older compilers (gcc 12 on Debian 12) need nothing.
    pub fn compat_flags(&self) -> Vec<&'static str> {
        match (self.family.as_str(), self.major) {
            ("gcc", Some(m)) if m >= 14 => vec!["-std=gnu17", "-fpermissive"],
            ("clang", Some(m)) if m >= 16 => vec![
                "-std=gnu17",
                "-Wno-error=implicit-function-declaration",
                "-Wno-error=implicit-int",
                "-Wno-error=int-conversion",
                "-Wno-error=incompatible-function-pointer-types",
            ],
            _ => vec![],
        }
    }
}

fn parse_major(version: &str, family: &str) -> Option<u32> {
    // "gcc (Debian 12.2.0-14) 12.2.0", "Debian clang version 14.0.6",
    // "clang version 17.0.1 (…)": take the first dotted number after the
    // last ')' for gcc, after "version" for clang.
    let tail = match family {
        "clang" => version.split("version").nth(1)?,
        _ => version.rsplit(')').next()?,
    };
    tail.split(|c: char| !c.is_ascii_digit() && c != '.')
        .find(|w| w.contains('.'))
        .and_then(|w| w.split('.').next())
        .and_then(|m| m.parse().ok())
}

/// How to compile a tree.
#[derive(Debug, Clone)]
pub struct CompileOptions {
    /// The C compiler command (`cc`), written into `conf-cc` and `conf-ld`.
    pub cc: String,
    /// Flags after `-O2` in `conf-cc`; `None` = [`Compiler::compat_flags`].
    pub cflags: Option<String>,
    /// netqmail's `conf-qmail` / mess822's `conf-home`: the directory the
    /// programs are compiled to live in.
    pub conf_qmail: PathBuf,
    /// The qmail ids compiled into netqmail (ignored for mess822).
    pub ids: IdMap,
    /// `make` targets; `None` = everything the install needs (netqmail:
    /// `it man`; mess822: `it instcheck`).
    pub targets: Option<Vec<String>>,
}

impl CompileOptions {
    /// Options with the default compiler `cc`, automatic flags and all
    /// targets.
    pub fn new(conf_qmail: impl Into<PathBuf>, ids: IdMap) -> Self {
        CompileOptions {
            cc: "cc".to_string(),
            cflags: None,
            conf_qmail: conf_qmail.into(),
            ids,
            targets: None,
        }
    }

    /// The `conf-cc` and `conf-ld` first lines these options give.
    pub fn conf_lines(&self) -> Result<(String, String), BuildError> {
        let flags = match &self.cflags {
            Some(f) => f.clone(),
            None => Compiler::detect(&self.cc)?.compat_flags().join(" "),
        };
        let cc = format!("{} -O2 {}", self.cc, flags).trim_end().to_string();
        Ok((cc, format!("{} -s", self.cc)))
    }
}

fn check_dir(d: &Path, what: &str) -> Result<String, BuildError> {
    let s = d
        .to_str()
        .ok_or_else(|| BuildError::Invalid(format!("{what} {}: not UTF-8", d.display())))?;
    if !d.is_absolute() || s.contains(['\n', '\t', ' ', '"', '\\']) {
        return Err(BuildError::Invalid(format!(
            "{what} {s:?}: must be an absolute path without blanks, quotes or backslashes"
        )));
    }
    Ok(s.trim_end_matches('/').to_string())
}

/// Replace the first line of a `conf-*` file, keeping its explanation.
/// Does not touch the file (nor its mtime) if nothing changes, so that
/// make rebuilds nothing needlessly.
pub(crate) fn set_conf(tree: &Path, name: &str, first: &str) -> Result<(), BuildError> {
    let path = tree.join(name);
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let rest = old.split_once('\n').map(|(_, r)| r).unwrap_or("");
    let new = format!("{first}\n{rest}");
    if new != old {
        write_file(&path, new.as_bytes())?;
    }
    Ok(())
}

pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), BuildError> {
    let tmp = path.with_extension("qtk-tmp");
    std::fs::write(&tmp, bytes).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

fn make(tree: &Path, targets: &[String], extra: &[&str]) -> Result<(), BuildError> {
    let mut cmd = Command::new("make");
    cmd.args(extra).args(targets).current_dir(tree);
    crate::reproducible_env(&mut cmd);
    run_logged(cmd, &tree.join(".qtk-make.log"))
}

/// Compile a netqmail-1.06 tree in place: `conf-cc`, `conf-ld` and
/// `conf-qmail` from `opts`, `auto_uids.c` written from `opts.ids` (no
/// qmail user needs to exist on this machine), then `make` of the targets.
///
/// `auto_uids.c` is written by this function and make is run with
/// `-o auto_uids.c` (GNU make: "assume old"), so make's rule that runs
/// `auto-uid`/`auto-gid` (getpwnam) never runs. When the ids change,
/// `auto_uids.o` is removed so that make recompiles it and relinks every
/// program that uses it. Calling it again with the same options does
/// nothing (make finds everything up to date).
pub fn compile_netqmail(tree: &Path, opts: &CompileOptions) -> Result<(), BuildError> {
    let home = check_dir(&opts.conf_qmail, "conf-qmail")?;
    compile_netqmail_home(tree, opts, &home)
}

/// [`compile_netqmail`] with `conf-qmail` set to `.` (`opts.conf_qmail` is
/// not used): the programs' `chdir(auto_qmail)` keeps the directory they
/// are started in, so each run picks its qmail home by its working
/// directory. For test harnesses, not for installation.
pub fn compile_netqmail_cwd_home(tree: &Path, opts: &CompileOptions) -> Result<(), BuildError> {
    compile_netqmail_home(tree, opts, ".")
}

fn compile_netqmail_home(tree: &Path, opts: &CompileOptions, home: &str) -> Result<(), BuildError> {
    if !tree.join("qmail-smtpd.c").is_file() {
        return Err(BuildError::Invalid(format!(
            "{}: not a netqmail tree (no qmail-smtpd.c)",
            tree.display()
        )));
    }
    let (cc, ld) = opts.conf_lines()?;
    set_conf(tree, "conf-cc", &cc)?;
    set_conf(tree, "conf-ld", &ld)?;
    set_conf(tree, "conf-qmail", home)?;
    let uids = opts.ids.auto_uids_c();
    let path = tree.join("auto_uids.c");
    if std::fs::read_to_string(&path).ok().as_deref() != Some(uids.as_str()) {
        write_file(&path, uids.as_bytes())?;
        let obj = tree.join("auto_uids.o");
        if obj.exists() {
            std::fs::remove_file(&obj).map_err(io_err(&obj))?;
        }
    }
    let targets = opts
        .targets
        .clone()
        .unwrap_or_else(|| vec!["it".into(), "man".into()]);
    let mut extra = vec!["-o", "auto_uids.c"];
    if shsgr_check_would_stop() {
        // netqmail's `hasshsgr.h` rule first runs `chkshsgr`, which stops
        // the build ("Please either make as root or make while you're in
        // one or more supplementary groups") for a non-root user without
        // supplementary groups. Its real test, `tryshsgr`, cannot succeed
        // for such a user either (setgroups needs root), so the rule would
        // write an empty `hasshsgr.h` (no short setgroups; also what every
        // Linux gets). Write that answer ourselves.
        let h = tree.join("hasshsgr.h");
        if !h.exists() {
            write_file(&h, b"")?;
        }
        extra.extend(["-o", "hasshsgr.h"]);
    }
    make(tree, &targets, &extra)
}

/// Compile a notqmail-1.09 tree in place: `conf-cc`, `conf-ld` and
/// `conf-qmail` from `opts`, then `make` of the targets (default `it
/// man`). notqmail compiles the qmail user and group *names* of
/// `conf-users` and `conf-groups` in and looks their ids up when the
/// programs start, so `opts.ids` is not used and nothing needs the qmail
/// users to exist (nor root: notqmail has no `chkshsgr` step). Calling it
/// again with the same options does nothing.
pub fn compile_notqmail(tree: &Path, opts: &CompileOptions) -> Result<(), BuildError> {
    let home = check_dir(&opts.conf_qmail, "conf-qmail")?;
    compile_notqmail_home(tree, opts, &home)
}

/// [`compile_notqmail`] with `conf-qmail` set to `.`, as
/// [`compile_netqmail_cwd_home`] does for netqmail. For test harnesses.
pub fn compile_notqmail_cwd_home(tree: &Path, opts: &CompileOptions) -> Result<(), BuildError> {
    compile_notqmail_home(tree, opts, ".")
}

/// Compile the tree of `qmail` in place ([`compile_netqmail`] or
/// [`compile_notqmail`]).
pub fn compile_qmail(qmail: Qmail, tree: &Path, opts: &CompileOptions) -> Result<(), BuildError> {
    match qmail {
        Qmail::Netqmail => compile_netqmail(tree, opts),
        Qmail::Notqmail => compile_notqmail(tree, opts),
    }
}

/// [`compile_qmail`] with `conf-qmail` set to `.` (the programs use the
/// directory they are started in as their qmail home). For test harnesses.
pub fn compile_qmail_cwd_home(
    qmail: Qmail,
    tree: &Path,
    opts: &CompileOptions,
) -> Result<(), BuildError> {
    match qmail {
        Qmail::Netqmail => compile_netqmail_cwd_home(tree, opts),
        Qmail::Notqmail => compile_notqmail_cwd_home(tree, opts),
    }
}

fn compile_notqmail_home(tree: &Path, opts: &CompileOptions, home: &str) -> Result<(), BuildError> {
    if !tree.join("instpackage.c").is_file() || !tree.join("qmail-smtpd.c").is_file() {
        return Err(BuildError::Invalid(format!(
            "{}: not a notqmail tree (no instpackage.c or qmail-smtpd.c)",
            tree.display()
        )));
    }
    let (cc, ld) = opts.conf_lines()?;
    set_conf(tree, "conf-cc", &cc)?;
    set_conf(tree, "conf-ld", &ld)?;
    set_conf(tree, "conf-qmail", home)?;
    let targets = opts
        .targets
        .clone()
        .unwrap_or_else(|| vec!["it".into(), "man".into()]);
    make(tree, &targets, &[])
}

/// Whether netqmail's `chkshsgr` would stop the build: not root and no
/// supplementary groups.
fn shsgr_check_would_stop() -> bool {
    // SAFETY: getgroups(0, NULL) only returns the count.
    !crate::running_as_root() && unsafe { libc::getgroups(0, std::ptr::null_mut()) } == 0
}

/// Compile a mess822-0.58 tree in place: `conf-cc`, `conf-ld` and
/// `conf-home` (= `opts.conf_qmail`), then `make` of the targets.
/// Pristine mess822 does not link with current glibc; apply the `errno`
/// patch first ([`qmail_patches::prepare_tree`]).
pub fn compile_mess822(tree: &Path, opts: &CompileOptions) -> Result<(), BuildError> {
    let home = check_dir(&opts.conf_qmail, "conf-home")?;
    if !tree.join("mess822.h").is_file() {
        return Err(BuildError::Invalid(format!(
            "{}: not a mess822 tree (no mess822.h)",
            tree.display()
        )));
    }
    let (cc, ld) = opts.conf_lines()?;
    set_conf(tree, "conf-cc", &cc)?;
    set_conf(tree, "conf-ld", &ld)?;
    set_conf(tree, "conf-home", &home)?;
    let targets = opts
        .targets
        .clone()
        .unwrap_or_else(|| vec!["it".into(), "instcheck".into()]);
    make(tree, &targets, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn major_versions() {
        assert_eq!(
            parse_major("gcc (Debian 12.2.0-14+deb12u1) 12.2.0", "gcc"),
            Some(12)
        );
        assert_eq!(
            parse_major("Debian clang version 14.0.6", "clang"),
            Some(14)
        );
        assert_eq!(
            parse_major("clang version 17.0.1 (https://x 1.2)", "clang"),
            Some(17)
        );
        let c = |f: &str, m| Compiler {
            cc: "cc".into(),
            version: String::new(),
            family: f.into(),
            major: Some(m),
        };
        assert!(c("gcc", 12).compat_flags().is_empty());
        assert!(c("gcc", 14).compat_flags().contains(&"-std=gnu17"));
        assert!(c("clang", 16).compat_flags().contains(&"-std=gnu17"));
    }

    #[test]
    fn conf_dirs_are_checked() {
        assert!(check_dir(Path::new("relative/dir"), "conf-qmail").is_err());
        assert!(check_dir(Path::new("/a b"), "conf-qmail").is_err());
        assert_eq!(
            check_dir(Path::new("/var/qmail/"), "x").unwrap(),
            "/var/qmail"
        );
    }
}

#[cfg(test)]
mod fake_tree_tests {
    use super::*;
    use crate::testutil::{euid_is_root, fake_cc, supplementary_groups};

    const GCC14: &str = "gcc (GCC) 14.2.0\nCopyright (C) 2024 Free Software Foundation, Inc.";

    #[test]
    fn the_compiler_is_detected_from_its_version_text() {
        let t = tempfile::tempdir().unwrap();
        let d = |name: &str, text: &str| Compiler::detect(&fake_cc(t.path(), name, text));
        let c = d("gcc14", GCC14).unwrap();
        assert_eq!((c.family.as_str(), c.major), ("gcc", Some(14)));
        assert_eq!(c.version, "gcc (GCC) 14.2.0");
        assert_eq!(c.compat_flags(), ["-std=gnu17", "-fpermissive"]);
        // Debian's `cc` does not say gcc, only who wrote it.
        let c = d(
            "cc12",
            "cc (Debian 12.2.0-14) 12.2.0\nCopyright (C) 2022 Free Software Foundation, Inc.",
        )
        .unwrap();
        assert_eq!((c.family.as_str(), c.major), ("gcc", Some(12)));
        assert!(c.compat_flags().is_empty());
        let c = d(
            "clang17",
            "clang version 17.0.1 (https://x 1.2)\nTarget: x86_64",
        )
        .unwrap();
        assert_eq!((c.family.as_str(), c.major), ("clang", Some(17)));
        assert!(c.compat_flags().contains(&"-Wno-error=implicit-int"));
        let c = d("clang15", "Ubuntu clang version 15.0.7").unwrap();
        assert_eq!((c.family.as_str(), c.major), ("clang", Some(15)));
        assert!(c.compat_flags().is_empty(), "clang 15 needs no flags");
        let c = d("tcc", "tcc version 0.9.27 (x86_64 Linux)").unwrap();
        assert_eq!(c.family, "unknown");
        assert!(c.compat_flags().is_empty());
        let err = d("broken", "").unwrap_err().to_string();
        assert!(err.contains("--version` failed"), "{err}");
        let err = Compiler::detect(" ").unwrap_err().to_string();
        assert_eq!(err, "--cc is empty");
        let err = Compiler::detect("/nonexistent/qtk-cc")
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot run /nonexistent/qtk-cc"), "{err}");
    }

    #[test]
    fn conf_lines_follow_the_compiler_or_the_given_flags() {
        let t = tempfile::tempdir().unwrap();
        let cc = fake_cc(t.path(), "gcc14", GCC14);
        let mut o = CompileOptions::new("/opt/q", IdMap::uniform(1, 2));
        o.cc = cc.clone();
        let (ccl, ld) = o.conf_lines().unwrap();
        assert_eq!(ccl, format!("{cc} -O2 -std=gnu17 -fpermissive"));
        assert_eq!(ld, format!("{cc} -s"));
        o.cflags = Some(String::new());
        assert_eq!(o.conf_lines().unwrap().0, format!("{cc} -O2"));
        o.cflags = Some("-g -Wall".into());
        assert_eq!(o.conf_lines().unwrap().0, format!("{cc} -O2 -g -Wall"));
        o.cc = fake_cc(t.path(), "broken", "");
        o.cflags = None;
        assert!(o.conf_lines().is_err());
    }

    /// A fake netqmail/notqmail tree whose Makefile records what it was
    /// given; `auto_uids.c` and `hasshsgr.h` have rules that mark the
    /// file as made by make.
    fn fake_qmail(top: &Path, notqmail: bool) -> PathBuf {
        let tree = top.join(if notqmail { "nq" } else { "net" });
        std::fs::create_dir(&tree).unwrap();
        std::fs::write(tree.join("qmail-smtpd.c"), "").unwrap();
        if notqmail {
            std::fs::write(tree.join("instpackage.c"), "").unwrap();
        }
        for conf in ["conf-cc", "conf-ld", "conf-qmail"] {
            std::fs::write(tree.join(conf), "old\n\nThis is the explanation.\n").unwrap();
        }
        let mk = ".NOTPARALLEL:\nit: auto_uids.c hasshsgr.h\n\
            \tcat conf-cc conf-ld conf-qmail > got-conf\n\
            \techo \"$$LC_ALL $$TZ $$SOURCE_DATE_EPOCH $${LANG-unset}\" > got-env\n\
            \techo it >> got-targets\n\
            man:\n\techo man >> got-targets\n\
            other:\n\techo other >> got-targets\n\
            fail:\n\t@echo the compiler says boom; exit 3\n\
            auto_uids.c: auto-uid\n\techo from-make > auto_uids.c\n\
            auto-uid:\n\ttouch auto-uid\n\
            hasshsgr.h: chkshsgr\n\techo from-make > hasshsgr.h\n\
            chkshsgr:\n\ttouch chkshsgr\n";
        std::fs::write(tree.join("Makefile"), mk).unwrap();
        tree
    }

    fn opts(top: &Path, ids: IdMap) -> CompileOptions {
        let mut o = CompileOptions::new("/opt/qtk-fake", ids);
        o.cc = fake_cc(top, "gcc14", GCC14);
        o
    }

    fn read(tree: &Path, name: &str) -> String {
        std::fs::read_to_string(tree.join(name)).unwrap()
    }

    fn expected_env() -> String {
        let sde = std::env::var("SOURCE_DATE_EPOCH").unwrap_or_else(|_| "0".into());
        format!("C UTC {sde} unset\n")
    }

    #[test]
    fn netqmail_gets_conf_files_our_auto_uids_and_the_default_targets() {
        let t = tempfile::tempdir().unwrap();
        let tree = fake_qmail(t.path(), false);
        let ids = IdMap::uniform(7001, 7100);
        let o = opts(t.path(), ids);
        compile_netqmail(&tree, &o).unwrap();
        let (cc, ld) = o.conf_lines().unwrap();
        let expl = "\nThis is the explanation.\n";
        assert_eq!(
            read(&tree, "got-conf"),
            format!("{cc}\n{expl}{ld}\n{expl}/opt/qtk-fake\n{expl}")
        );
        assert_eq!(read(&tree, "got-targets"), "it\nman\n");
        assert_eq!(read(&tree, "got-env"), expected_env());
        // auto_uids.c is ours, and make was told not to remake it.
        assert_eq!(read(&tree, "auto_uids.c"), ids.auto_uids_c());
        assert!(!tree.join("auto-uid").exists(), "make ran auto-uid");
        // The same ids again: auto_uids.o stays; other ids: it is removed.
        std::fs::write(tree.join("auto_uids.o"), "obj").unwrap();
        compile_netqmail(&tree, &o).unwrap();
        assert!(tree.join("auto_uids.o").exists(), "removed for nothing");
        let ids2 = IdMap::uniform(4242, 4343);
        compile_netqmail(&tree, &opts(t.path(), ids2)).unwrap();
        assert!(!tree.join("auto_uids.o").exists(), "stale auto_uids.o kept");
        assert_eq!(read(&tree, "auto_uids.c"), ids2.auto_uids_c());
        // For test harnesses: conf-qmail is `.`; chosen targets only.
        let mut o = opts(t.path(), ids2);
        o.targets = Some(vec!["other".into()]);
        compile_netqmail_cwd_home(&tree, &o).unwrap();
        assert_eq!(read(&tree, "conf-qmail"), ".\n\nThis is the explanation.\n");
        assert!(read(&tree, "got-targets").ends_with("man\nother\n"));
    }

    /// Whether `hasshsgr.h` was answered by us (empty, make's rule not
    /// run) exactly when netqmail's chkshsgr would stop the build.
    fn check_hasshsgr() {
        let t = tempfile::tempdir().unwrap();
        let tree = fake_qmail(t.path(), false);
        compile_netqmail(&tree, &opts(t.path(), IdMap::uniform(1, 2))).unwrap();
        let would_stop = !euid_is_root() && supplementary_groups().is_empty();
        let got = read(&tree, "hasshsgr.h");
        if would_stop {
            assert_eq!(got, "", "hasshsgr.h not written by us");
            assert!(!tree.join("chkshsgr").exists(), "make ran chkshsgr");
            // An existing answer is kept.
            std::fs::write(tree.join("hasshsgr.h"), "kept\n").unwrap();
            compile_netqmail(&tree, &opts(t.path(), IdMap::uniform(1, 2))).unwrap();
            assert_eq!(read(&tree, "hasshsgr.h"), "kept\n");
        } else {
            assert_eq!(got, "from-make\n", "make's own rule did not run");
        }
    }

    #[test]
    fn hasshsgr_h_is_written_only_where_chkshsgr_would_stop() {
        check_hasshsgr();
        crate::testutil::run_as_nobody("compile::fake_tree_tests::child_hasshsgr");
    }

    #[test]
    #[ignore = "run by hasshsgr_h_is_written_only_where_chkshsgr_would_stop"]
    fn child_hasshsgr() {
        check_hasshsgr();
    }

    #[test]
    fn notqmail_and_compile_qmail_pick_the_right_tree_kind() {
        let t = tempfile::tempdir().unwrap();
        let nq = fake_qmail(t.path(), true);
        let o = opts(t.path(), IdMap::uniform(1, 2));
        compile_qmail(Qmail::Notqmail, &nq, &o).unwrap();
        assert_eq!(read(&nq, "got-targets"), "it\nman\n");
        assert_eq!(read(&nq, "got-env"), expected_env());
        assert!(read(&nq, "got-conf").contains("/opt/qtk-fake\n"));
        // notqmail: make's own rules run (no ids compiled in).
        assert_eq!(read(&nq, "auto_uids.c"), "from-make\n");
        compile_qmail_cwd_home(Qmail::Notqmail, &nq, &o).unwrap();
        assert!(read(&nq, "conf-qmail").starts_with(".\n"));
        compile_notqmail_cwd_home(&nq, &o).unwrap();
        let net = fake_qmail(t.path(), false);
        compile_qmail(Qmail::Netqmail, &net, &o).unwrap();
        assert_eq!(
            read(&net, "auto_uids.c"),
            IdMap::uniform(1, 2).auto_uids_c()
        );
        compile_qmail_cwd_home(Qmail::Netqmail, &net, &o).unwrap();
        assert!(read(&net, "conf-qmail").starts_with(".\n"));
        // A netqmail tree is not a notqmail tree, nor is half of one.
        let err = compile_qmail(Qmail::Notqmail, &net, &o)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a notqmail tree"), "{err}");
        std::fs::remove_file(nq.join("qmail-smtpd.c")).unwrap();
        let err = compile_notqmail(&nq, &o).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}: not a notqmail tree (no instpackage.c or qmail-smtpd.c)",
                nq.display()
            )
        );
        let err = compile_netqmail(&nq, &o).unwrap_err().to_string();
        assert!(err.contains("not a netqmail tree"), "{err}");
        let err = compile_netqmail_cwd_home(&nq, &o).unwrap_err().to_string();
        assert!(err.contains("not a netqmail tree"), "{err}");
        let err = compile_qmail_cwd_home(Qmail::Netqmail, &nq, &o)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a netqmail tree"), "{err}");
    }

    #[test]
    fn a_failing_make_names_its_log_and_shows_the_tail() {
        let t = tempfile::tempdir().unwrap();
        let tree = fake_qmail(t.path(), true);
        let mut o = opts(t.path(), IdMap::uniform(1, 2));
        o.targets = Some(vec!["fail".into()]);
        let err = compile_notqmail(&tree, &o).unwrap_err();
        let BuildError::Command { log, tail, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!(log, &tree.join(".qtk-make.log"));
        assert!(tail.contains("the compiler says boom"), "{tail}");
        assert!(read(&tree, ".qtk-make.log").contains("boom"));
    }

    #[test]
    fn mess822_gets_conf_home_and_its_default_targets() {
        let t = tempfile::tempdir().unwrap();
        let tree = t.path().join("m8");
        std::fs::create_dir(&tree).unwrap();
        let mk = ".NOTPARALLEL:\nit:\n\tcat conf-cc conf-ld conf-home > got-conf\n\techo it >> got-targets\n\
                  instcheck:\n\techo instcheck >> got-targets\n";
        std::fs::write(tree.join("Makefile"), mk).unwrap();
        let mut o = opts(t.path(), IdMap::uniform(1, 2));
        o.conf_qmail = "/opt/qtk-m8/".into();
        let err = compile_mess822(&tree, &o).unwrap_err().to_string();
        assert!(err.contains("not a mess822 tree (no mess822.h)"), "{err}");
        std::fs::write(tree.join("mess822.h"), "").unwrap();
        compile_mess822(&tree, &o).unwrap();
        let (cc, ld) = o.conf_lines().unwrap();
        assert_eq!(
            read(&tree, "got-conf"),
            format!("{cc}\n{ld}\n/opt/qtk-m8\n")
        );
        assert_eq!(read(&tree, "got-targets"), "it\ninstcheck\n");
    }
}
