//! Shared helpers: where the upstream trees are.
#![allow(dead_code)]

use std::path::PathBuf;

fn source(var: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(v) if !v.is_empty() => Some(PathBuf::from(v)),
        _ => {
            if upstream_hashes::source_required(var) {
                panic!("{var} is not set and QMAIL_REQUIRE_UPSTREAM=1");
            }
            println!("SKIPPED: {var} is not set (directory of the unpacked upstream tree)");
            None
        }
    }
}

/// The pristine netqmail-1.06 tree, or `None` (test skipped).
pub fn netqmail() -> Option<PathBuf> {
    source("QMAIL_SOURCE_NETQMAIL")
}

/// The pristine notqmail-1.09 tree, or `None` (test skipped).
pub fn notqmail() -> Option<PathBuf> {
    source("QMAIL_SOURCE_NOTQMAIL")
}

/// The pristine mess822-0.58 tree, or `None` (test skipped).
pub fn mess822() -> Option<PathBuf> {
    source("QMAIL_SOURCE_MESS822")
}

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use qmail_build::{BuildOptions, IdMap};
use upstream_hashes::{Release, SourceTree, MESS822, NETQMAIL, NOTQMAIL};

/// A qmail release the build tests run for, and its tree.
pub struct Qmail {
    /// The release.
    pub release: &'static Release,
    /// Its pristine tree.
    pub tree: PathBuf,
    /// The variable naming the tree (`QMAIL_SOURCE_NETQMAIL`, …).
    pub var: &'static str,
}

/// netqmail-1.06 and mess822, or `None` (skipped, with the reason).
pub fn netqmail_case() -> Option<(Qmail, PathBuf)> {
    let (q, m8) = (netqmail(), mess822());
    Some((
        Qmail {
            release: &NETQMAIL,
            tree: q?,
            var: "QMAIL_SOURCE_NETQMAIL",
        },
        m8?,
    ))
}

/// notqmail-1.09 and mess822, or `None` (skipped, with the reason).
pub fn notqmail_case() -> Option<(Qmail, PathBuf)> {
    let (q, m8) = (notqmail(), mess822());
    Some((
        Qmail {
            release: &NOTQMAIL,
            tree: q?,
            var: "QMAIL_SOURCE_NOTQMAIL",
        },
        m8?,
    ))
}

/// The case named `netqmail` or `notqmail` (for child processes).
pub fn case_named(name: &str) -> Option<(Qmail, PathBuf)> {
    match name {
        "notqmail" => notqmail_case(),
        _ => netqmail_case(),
    }
}

/// Build options for the two upstream trees, with the working patches.
pub fn options(nq: &Path, m8: &Path, prefix: &Path, work: &Path) -> BuildOptions {
    options_for(&NETQMAIL, nq, m8, prefix, work)
}

/// [`options`] for a tree of `release` (netqmail or notqmail).
pub fn options_for(
    release: &'static Release,
    q: &Path,
    m8: &Path,
    prefix: &Path,
    work: &Path,
) -> BuildOptions {
    BuildOptions {
        qmail: SourceTree::unverified(release, q),
        mess822: SourceTree::unverified(&MESS822, m8),
        prefix: prefix.to_path_buf(),
        mess822_home: None,
        destdir: None,
        cc: "cc".into(),
        cflags: None,
        // every patch of the series (the build takes those for the
        // release it builds), as `cargo xtask build` does by default
        patches: qmail_patches::select(&[]).unwrap(),
        stack: Vec::new(),
        ids: IdMap::build_user(),
        ids_source: "build-user".into(),
        work: work.to_path_buf(),
        force: false,
        allow_symlinked_prefix: false,
        extra_files: Vec::new(),
    }
}

/// Every path under `dir` (recursively) with type, mode, size, mtime and
/// owner; paths under any of `skip` are left out.
pub fn snapshot(dir: &Path, skip: &[&Path]) -> BTreeMap<String, String> {
    fn walk(d: &Path, skip: &[&Path], out: &mut BTreeMap<String, String>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if skip.iter().any(|s| p.starts_with(s)) {
                continue;
            }
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            out.insert(
                p.display().to_string(),
                format!(
                    "{:o} {} {}.{} {}:{}",
                    m.mode(),
                    m.len(),
                    m.mtime(),
                    m.mtime_nsec(),
                    m.uid(),
                    m.gid()
                ),
            );
            if m.is_dir() {
                walk(&p, skip, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, skip, &mut out);
    out
}

/// Every regular file and directory under `root`, relative, with mode
/// and contents (for byte-identity checks).
pub fn tree_contents(root: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
    fn walk(base: &Path, d: &Path, out: &mut BTreeMap<String, (u32, Vec<u8>)>) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(base).unwrap().display().to_string();
            if m.is_dir() {
                out.insert(rel, (m.mode(), Vec::new()));
                walk(base, &p, out);
            } else if m.is_file() {
                out.insert(rel, (m.mode(), std::fs::read(&p).unwrap()));
            } else {
                out.insert(rel, (m.mode(), Vec::new()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Run this test binary's ignored test `name` as uid/gid 65534 (when
/// running as root) with the extra environment `env`; panics with its
/// output if it fails. Not root: runs it as the current user.
pub fn run_child_unprivileged(name: &str, env: &[(&str, &Path)]) -> String {
    let exe = std::env::current_exe().unwrap();
    let root = unsafe { libc::geteuid() } == 0;
    let mut cmd = if root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    cmd.args([
        "--ignored",
        "--exact",
        name,
        "--nocapture",
        "--test-threads=1",
    ]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.env("HOME", "/nonexistent");
    let out = cmd.output().expect("run child test");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child {name} failed:\n{text}");
    assert!(
        text.contains("1 passed"),
        "child {name} did not run:\n{text}"
    );
    text
}

/// Make `path` owned by 65534 when running as root (for the child).
pub fn give_to_nobody(path: &Path) {
    if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::chown(path, Some(65534), Some(65534)).unwrap();
    }
}

/// Paths of `after` that are new or changed relative to `before` (other
/// processes on the machine may change /etc meanwhile, so callers filter
/// these by owner).
pub fn changed(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}
