//! The branch patch: generated from a pristine netqmail-1.06 tree, byte
//! stable, accepted by `patch -p1`, and the patched qmail-local compiles.
//! Needs `QMAIL_SOURCE_NETQMAIL` (else prints SKIPPED), except the anchor
//! error test, which runs on a synthetic tree.

mod common;

use std::path::Path;

use common::{
    assert_files_match, copy_tree, make_ok, netqmail_or_skip as netqmail, patch_p1 as apply,
};
use qmail_patches::{branch, PatchError};
use upstream_hashes::{SourceTree, NETQMAIL};

#[test]
fn branch_diff_is_byte_stable_and_touches_the_right_files() {
    let Some(tree) = netqmail("branch_patch") else {
        return;
    };
    let src = SourceTree::unverified(&NETQMAIL, &tree);
    let a = branch::generate(&src).unwrap();
    let b = branch::generate(&src).unwrap();
    assert_eq!(a.to_diff(), b.to_diff());
    assert_eq!(a.sha256(), b.sha256());
    assert_eq!(a.file_name, "netqmail-1.06-branch.patch");
    let diff = a.to_diff();
    for f in [
        "+++ b/qmail-local.c",
        "+++ b/Makefile",
        "+++ b/dot-qmail.9",
        "--- /dev/null\n+++ b/qbranch.c",
        "--- /dev/null\n+++ b/qbranch.h",
    ] {
        assert!(diff.contains(f), "diff lacks {f:?}");
    }
    assert!(diff.contains("+       case '?':\n"));
    assert!(diff.contains("+(6) branch; (7) label.\n"));
}

#[test]
fn branch_patch_applies_to_pristine_tree_and_qmail_local_compiles() {
    let Some(tree) = netqmail("branch_patch") else {
        return;
    };
    let patch = branch::generate(&SourceTree::unverified(&NETQMAIL, &tree)).unwrap();
    let diff = patch.to_diff();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    copy_tree(&tree, dir);
    let out = apply(dir, &diff, true);
    assert!(
        out.status.success(),
        "patch --dry-run failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = apply(dir, &diff, false);
    assert!(out.status.success(), "patch failed");
    // patch(1) gives the same files as the generator.
    assert_files_match(dir, &patch);
    std::fs::write(dir.join("conf-qmail"), format!("{}/qhome\n", dir.display())).unwrap();
    make_ok(dir, &["qmail-local"], "branch");
    assert!(dir.join("qmail-local").is_file());
    assert!(dir.join("qbranch.o").is_file(), "qbranch.o was not built");
    // The patch applies once: a second application is refused.
    let again = apply(dir, &diff, true);
    assert!(!again.status.success(), "patch applied twice");
}

#[test]
fn anchor_error_names_file_and_anchor() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // A tree where qmail-local.c lacks the loop the patch hooks into.
    std::fs::write(
        dir.join("qmail-local.c"),
        "#include \"auto_patrn.h\"\n int flagforwardonly;\n",
    )
    .unwrap();
    let err = branch::generate(&SourceTree::unverified(&NETQMAIL, dir)).unwrap_err();
    match &err {
        PatchError::Anchor {
            file,
            anchor,
            count,
            ..
        } => {
            assert_eq!(file, "qmail-local.c");
            assert_eq!(anchor, " flag99 = 0;\n");
            assert_eq!(*count, 0);
        }
        other => panic!("expected an anchor error, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("qmail-local.c") && msg.contains("flag99 = 0;"),
        "{msg}"
    );
}

#[test]
fn generating_on_an_already_patched_tree_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("qbranch.c"), "int x;\n").unwrap();
    let err = branch::generate(&SourceTree::unverified(&NETQMAIL, tmp.path())).unwrap_err();
    assert!(matches!(err, PatchError::AlreadyExists { .. }), "{err:?}");
    assert!(err.to_string().contains("qbranch.c"));
}

/// Apply the netqmail patches of the series (or the given order) with
/// `patch -p1`; patches whose generator is not written yet are left out
/// with a note. Returns the names applied.
fn apply_series(tree: &Path, dir: &Path, order: &[&str]) -> Vec<String> {
    let src = SourceTree::unverified(&NETQMAIL, tree);
    let mut applied = Vec::new();
    for name in order {
        let Some(def) = qmail_patches::series().iter().find(|d| d.name == *name) else {
            println!("note: no patch {name} in the series; left out");
            continue;
        };
        let patch = match (def.generate)(&src) {
            Ok(p) => p,
            Err(e) if *name != "branch" => {
                println!("note: {name} not generated ({e}); left out");
                continue;
            }
            Err(e) => panic!("branch: {e}"),
        };
        let out = apply(dir, &patch.to_diff(), false);
        assert!(
            out.status.success(),
            "{name} does not apply after {applied:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        applied.push(name.to_string());
    }
    applied
}

#[test]
fn branch_applies_with_the_other_netqmail_patches_in_either_order() {
    let Some(tree) = netqmail("branch_patch series") else {
        return;
    };
    // the series order, and the reverse
    let forward: Vec<&str> = qmail_patches::series()
        .iter()
        .filter(|d| *d.release == NETQMAIL)
        .map(|d| d.name)
        .collect();
    let mut backward = forward.clone();
    backward.reverse();
    for order in [forward, backward] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        copy_tree(&tree, dir);
        let applied = apply_series(&tree, dir, &order);
        assert!(applied.iter().any(|n| n == "branch"));
        std::fs::write(dir.join("conf-qmail"), format!("{}/qhome\n", dir.display())).unwrap();
        make_ok(dir, &["qmail-local"], &format!("after {applied:?}"));
        println!("applied in order {applied:?}; qmail-local builds");
    }
}
