//! The mess822 nonroot and errno patches: byte-stable, exactly the intended
//! change, apply with `patch -p1`, and a changed upstream file is reported
//! by name.

mod common;

use std::path::PathBuf;

use common::{apply_ok, assert_files_match, copy_tree as copy};
use qmail_patches::{nonroot, portability, select};
use upstream_hashes::{SourceTree, MESS822};

fn mess822() -> Option<PathBuf> {
    common::mess822_or_skip("nonroot_patch")
}

#[test]
fn nonroot_removes_only_the_etc_entry_and_is_byte_stable() {
    let Some(dir) = mess822() else { return };
    let src = SourceTree::unverified(&MESS822, &dir);
    let p = nonroot::generate(&src).unwrap();
    assert_eq!(p.file_name, "mess822-0.58-nonroot.patch");
    let diff = p.to_diff();
    assert_eq!(
        diff,
        nonroot::generate(&src).unwrap().to_diff(),
        "not byte-stable"
    );
    assert_eq!(p.files.len(), 1);
    assert_eq!(p.files[0].path, "hier.c");
    let changed: Vec<&str> = diff
        .lines()
        .filter(|l| {
            (l.starts_with('+') || l.starts_with('-'))
                && !l.starts_with("+++")
                && !l.starts_with("---")
        })
        .collect();
    assert_eq!(
        changed,
        vec!["-  c(\"/etc\",\".\",\"leapsecs.dat\",-1,-1,0644);"]
    );
    let new = &p.files[0].new;
    assert!(!new.contains("/etc"));
    assert_eq!(
        new.matches("\n  c(").count() + 1,
        p.files[0].old.as_ref().unwrap().matches("\n  c(").count()
    );
}

#[test]
fn mess822_patches_apply_with_patch_p1() {
    let Some(dir) = mess822() else { return };
    let t = tempfile::tempdir().unwrap();
    copy(&dir, t.path());
    let src = SourceTree::unverified(&MESS822, &dir);
    for def in select(&["errno".into(), "nonroot".into()]).unwrap() {
        let p = (def.generate)(&src).unwrap();
        assert_eq!(p.file_name, qmail_patches::file_name(def));
        let diff = p.to_diff();
        apply_ok(t.path(), &diff, true, &p.file_name);
        apply_ok(t.path(), &diff, false, &p.file_name);
        assert_files_match(t.path(), &p);
    }
    let errno_h = std::fs::read_to_string(t.path().join("error.h")).unwrap();
    assert!(errno_h.contains("#include <errno.h>") && !errno_h.contains("extern int errno;"));
}

#[test]
fn missing_anchor_names_the_file() {
    let Some(dir) = mess822() else { return };
    let t = tempfile::tempdir().unwrap();
    copy(&dir, t.path());
    // An already-patched tree: the /etc entry is gone.
    let hier = t.path().join("hier.c");
    let text = std::fs::read_to_string(&hier).unwrap();
    std::fs::write(&hier, text.replace(nonroot::ETC_ENTRY, "")).unwrap();
    let err = nonroot::generate(&SourceTree::unverified(&MESS822, t.path()))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("hier.c: anchor"), "{err}");
    assert!(err.contains("found 0 times"), "{err}");
    let h = t.path().join("error.h");
    std::fs::write(&h, "#include <errno.h>\n").unwrap();
    let err = portability::generate_mess822(&SourceTree::unverified(&MESS822, t.path()))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("error.h: anchor"), "{err}");
}
