//! The scenario generator: reproducible, complete worlds that cover the
//! edge cases of resolution.md §13.

use qmail_difftest::scenario::{self, CdbState, Scenario};
use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

fn no_compile(_: &[u8]) -> Result<Vec<u8>, String> {
    Err("not compiled in this test".into())
}

/// (relative path, type, mode, uid, content or link target) of every
/// object under `root`, scenario.json excepted.
fn tree(root: &Path) -> Vec<(String, u32, u32, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if rel == "scenario.json" {
                continue;
            }
            let m = std::fs::symlink_metadata(&p).unwrap();
            let content = if m.file_type().is_symlink() {
                std::fs::read_link(&p)
                    .unwrap()
                    .display()
                    .to_string()
                    .replace(&root.display().to_string(), "{ROOT}")
                    .into_bytes()
            } else if m.is_file() {
                String::from_utf8_lossy(&std::fs::read(&p).unwrap_or_default())
                    .replace(&root.display().to_string(), "{ROOT}")
                    .into_bytes()
            } else {
                Vec::new()
            };
            out.push((rel, m.mode(), m.uid(), content));
            if m.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_same_seed_materialises_the_same_world() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for i in 0..5 {
        let s1 = scenario::generate(99, i);
        let s2 = scenario::generate(99, i);
        let (ra, rb) = (
            a.path().join(format!("w{i}")),
            b.path().join(format!("w{i}")),
        );
        s1.materialize(&ra, &no_compile).unwrap();
        s2.materialize(&rb, &no_compile).unwrap();
        let (ta, tb) = (tree(&ra), tree(&rb));
        assert!(ta.len() > 10, "world {i} is too small: {ta:?}");
        assert_eq!(ta, tb, "world {i} differs between two materialisations");
    }
    assert_ne!(
        scenario::generate(99, 0).to_json(),
        scenario::generate(100, 0).to_json(),
        "another seed must give another scenario"
    );
}

#[test]
fn a_saved_scenario_loads_back_identically() {
    let d = tempfile::tempdir().unwrap();
    let s = scenario::generate(5, 17);
    let p = d.path().join("scenario.json");
    s.save(&p).unwrap();
    let back = Scenario::load(&p).unwrap();
    assert_eq!(back.to_json(), s.to_json());
    assert_eq!(back.addresses, s.addresses);
    std::fs::write(&p, "{not json").unwrap();
    let err = Scenario::load(&p).unwrap_err().to_string();
    assert!(
        err.contains("scenario.json"),
        "error must name the file: {err}"
    );
}

#[test]
fn two_hundred_scenarios_cover_the_section_13_checklist() {
    let mut kinds = BTreeSet::new();
    let mut cdb = BTreeSet::new();
    let (mut env_missing, mut env_empty, mut locals_missing, mut locals_empty) = (0, 0, 0, 0);
    let (mut catchall, mut crlf_vd, mut me_missing, mut assign_errors) = (0, 0, 0, 0);
    let (mut addrs, mut no_at, mut empty, mut long_ext, mut pct, mut trailing_dot) =
        (0, 0, 0, 0, 0, 0);
    let mut homes = BTreeSet::new();
    for i in 0..200 {
        let s = scenario::generate(7, i);
        for q in &s.qmail_files {
            kinds.insert(q.kind.clone());
        }
        cdb.insert(format!("{:?}", s.cdb));
        let c = &s.control;
        env_missing += c.envnoathost.is_none() as u32;
        env_empty += c.envnoathost.as_ref().is_some_and(|e| e.0 == b"\n") as u32;
        locals_missing += c.locals.is_none() as u32;
        locals_empty += c.locals.as_ref().is_some_and(|e| e.0.is_empty()) as u32;
        me_missing += c.me.is_none() as u32;
        if let Some(v) = &c.virtualdomains {
            catchall += v.0.split(|&b| b == b'\n').any(|l| l.first() == Some(&b':')) as u32;
            crlf_vd += v.0.windows(2).any(|w| w == b"\r\n") as u32;
        }
        if let Some(a) = &s.assign {
            assign_errors += (!a.0.windows(3).any(|w| w == b"\n.\n")
                || a.0.windows(2).any(|w| w == b"\n\n")) as u32;
        }
        for n in &s.nodes {
            if n.path.0.starts_with(b"home/")
                || n.path.0.starts_with(b"hidden/")
                || n.path.0.starts_with(b"priv-")
            {
                homes.insert(format!("{:o}", n.mode));
            }
        }
        for a in &s.addresses {
            addrs += 1;
            no_at += (!a.0.contains(&b'@')) as u32;
            empty += a.0.is_empty() as u32;
            long_ext += (a.0.len() > 255) as u32;
            pct += a.0.contains(&b'%') as u32;
            trailing_dot += a.0.ends_with(b".") as u32;
        }
    }
    for k in [
        "file",
        "file group-writable",
        "empty file",
        "empty file, x bit",
        "directory",
        "fifo",
        "symlink to file",
        "symlink to world-writable file",
        "dangling symlink",
        "symlink to directory",
        "unreadable file",
        "world-writable file",
        "x bit, forwards",
        "x bit, file delivery",
    ] {
        assert!(
            kinds.contains(k),
            "no .qmail object of kind {k:?} in 200 scenarios: {kinds:?}"
        );
    }
    for c in [
        CdbState::FromAssign,
        CdbState::Missing,
        CdbState::Directory,
        CdbState::Empty,
        CdbState::NoWildchars,
    ] {
        assert!(
            cdb.contains(&format!("{c:?}")),
            "users/cdb state {c:?} never generated"
        );
    }
    for m in ["755", "775", "777", "1755", "0", "700"] {
        assert!(
            homes.contains(m),
            "no home/parent directory with mode {m}: {homes:?}"
        );
    }
    for (what, n) in [
        ("envnoathost missing", env_missing),
        ("envnoathost empty", env_empty),
        ("locals missing", locals_missing),
        ("locals empty", locals_empty),
        ("me missing", me_missing),
        ("virtualdomains catch-all", catchall),
        ("virtualdomains CRLF", crlf_vd),
        ("users/assign format errors", assign_errors),
        ("addresses without @", no_at),
        ("empty address", empty),
        ("ext over 255 bytes", long_ext),
        ("percent hack addresses", pct),
        ("trailing-dot domains", trailing_dot),
    ] {
        assert!(n > 0, "no scenario with {what}");
    }
    assert!(
        addrs >= 200 * 20,
        "only {addrs} addresses in 200 scenarios (need ≥ 20 each on average)"
    );
}

#[test]
fn some_scenarios_have_a_user_with_an_empty_home_owning_the_qmail_home() {
    // The CI run: seed 1, 500 scenarios (xtask's DEFAULT_SEED and
    // CI_SCENARIOS).
    let mut with = Vec::new();
    for i in 0..500 {
        let s = scenario::generate(1, i);
        let Some(a) = s
            .passwd
            .iter()
            .find(|a| a.name.0 == scenario::EMPTY_HOME_USER.as_bytes())
        else {
            continue;
        };
        assert!(a.home.0.is_empty(), "{:?}", a.home);
        assert!(a.uid >= scenario::UID_FIRST_USER);
        let q = s
            .nodes
            .iter()
            .rev()
            .find(|n| n.path.0 == b"qmail")
            .expect("the qmail home node");
        assert_eq!((q.uid, q.mode), (a.uid, 0o755));
        assert!(s.addresses.iter().any(|x| x.0 == b"nohome@example.com"));
        with.push(i);
    }
    assert!(!with.is_empty(), "no empty-home scenario in the CI run");
    assert!(
        with.len() <= 40,
        "too many empty-home scenarios: {}",
        with.len()
    );
    // exactly one account with an empty home
    let s = scenario::generate(1, with[0]);
    let n = s.passwd.iter().filter(|a| a.home.0.is_empty()).count();
    assert_eq!(n, 1);
    // materialised: the passwd line has an empty home field, and the
    // qmail home belongs to the user (as root)
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("w");
    s.materialize(&root, &no_compile).unwrap();
    let pw = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    let uid = s.passwd.iter().find(|a| a.home.0.is_empty()).unwrap().uid;
    assert!(
        pw.contains(&format!(
            "nohome:x:{uid}:{}:test::/bin/sh\n",
            scenario::GID_USERS
        )),
        "{pw}"
    );
    if unsafe { libc::geteuid() } == 0 {
        assert_eq!(std::fs::metadata(root.join("qmail")).unwrap().uid(), uid);
    }
}
