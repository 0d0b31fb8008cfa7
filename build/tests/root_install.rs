//! As root without a destdir, the build applies the owners `hier()` lists
//! (for notqmail: what its `instchown` would do, without the qmail users
//! existing), every installed path's owner and group are the manifest's,
//! and the instchecks are silent. Skipped (and said so) when not root.

mod common;

use std::os::unix::fs::MetadataExt;

use qmail_build::{build, IdMap};

const IDS: &str = "alias=7790,qmaild=7791,qmaill=7792,root=0,qmailp=7794,qmailq=7795,qmailr=7796,qmails=7797,qmail=7800,nofiles=7801";

fn root_install(q: &common::Qmail, m8: &std::path::Path) {
    if unsafe { libc::geteuid() } != 0 {
        println!("SKIPPED: not root (ownership is only applied as root)");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let prefix = t.path().join("qmail");
    std::fs::create_dir(&prefix).unwrap();
    let mut o = common::options_for(q.release, &q.tree, m8, &prefix, &t.path().join("work"));
    o.ids = IdMap::parse(IDS).unwrap();
    o.ids_source = "uid-map".into();
    let out = build(&o).unwrap();
    assert!(out.manifest.ownership_applied);
    assert!(
        out.instcheck_warnings.is_empty(),
        "instcheck warned: {:?}",
        out.instcheck_warnings
    );
    let mut checked = 0;
    for f in &out.manifest.files {
        let m = std::fs::symlink_metadata(&f.path).unwrap();
        if let Some(u) = &f.user {
            assert_eq!(m.uid(), u.id, "{}: owner", f.path);
            checked += 1;
        }
        if let Some(g) = &f.group {
            assert_eq!(m.gid(), g.id, "{}: group", f.path);
        }
    }
    assert!(checked > 200, "only {checked} owned paths");
    let queue = prefix.join("bin/qmail-queue");
    let m = std::fs::metadata(&queue).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (7795, 7800, 0o4711));
    let m = std::fs::metadata(prefix.join("queue/lock/tcpto")).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o7777), (7796, 0o644));
}

#[test]
fn as_root_the_owners_of_hier_are_applied() {
    if let Some((q, m8)) = common::netqmail_case() {
        root_install(&q, &m8);
    }
}

#[test]
fn notqmail_as_root_the_owners_of_hier_are_applied() {
    if let Some((q, m8)) = common::notqmail_case() {
        root_install(&q, &m8);
    }
}
