//! The diff format itself: what `Patch::to_diff` writes must apply with
//! `patch -p1` and give exactly the generated files, including added files
//! and files whose last line has trailing blanks or no newline.

mod common;

use std::process::Command;

use common::{apply_ok, assert_files_match};
use qmail_patches::{FileChange, Patch, Pristine};
use upstream_hashes::{SourceTree, NETQMAIL};

fn patch_available() -> bool {
    Command::new("patch").arg("--version").output().is_ok()
}

#[test]
fn diff_applies_with_patch_p1_and_reproduces_the_files() {
    if !patch_available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "patch(1) is required in CI"
        );
        println!("SKIPPED: patch(1) not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let pristine = "one\ntwo \nthree\nfour\nfive\nsix\nseven\neight\nnine\nlast line no newline ";
    std::fs::write(root.join("file.c"), pristine).unwrap();
    std::fs::write(root.join("Makefile"), "a: \\\nb c \n\tcc -o a b c \n").unwrap();

    let src = SourceTree::unverified(&NETQMAIL, root);
    let mut ed = src.edit("file.c").unwrap();
    ed.insert_after("two \n", "inserted\n").unwrap();
    ed.replace("last line no newline ", "last line changed\n")
        .unwrap();
    let mut mk = src.edit("Makefile").unwrap();
    mk.insert_before("\tcc", "\t@echo hi\n").unwrap();
    let patch = Patch {
        file_name: "netqmail-1.06-test.patch".into(),
        release: &NETQMAIL,
        description: "A test patch.\nSecond line.".into(),
        files: vec![
            ed.finish(),
            mk.finish(),
            FileChange::added("new.c", "int x;\n"),
        ],
    };
    let diff = patch.to_diff();
    assert_eq!(diff, patch.to_diff(), "diff must be byte-stable");
    assert!(diff.starts_with("A test patch.\nSecond line.\n\n"));
    assert!(diff.contains("--- /dev/null\n+++ b/new.c\n"));

    apply_ok(root, &diff, false, "test patch");
    assert_files_match(root, &patch);
}

#[test]
fn anchor_must_match_exactly_once_and_error_names_file_and_anchor() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.c"), "foo\nfoo\nbar\n").unwrap();
    let src = SourceTree::unverified(&NETQMAIL, dir.path());
    let mut ed = src.edit("x.c").unwrap();
    let err = ed.insert_after("foo\n", "z").unwrap_err().to_string();
    assert!(
        err.contains("x.c") && err.contains("\"foo\\n\"") && err.contains("2 times"),
        "{err}"
    );
    let err = ed.insert_after("nothere", "z").unwrap_err().to_string();
    assert!(
        err.contains("x.c") && err.contains("nothere") && err.contains("0 times"),
        "{err}"
    );
    assert!(ed.insert_after("bar\n", "baz\n").is_ok());
    let missing = src.edit("missing.c").unwrap_err().to_string();
    assert!(missing.contains("missing.c"), "{missing}");
}
