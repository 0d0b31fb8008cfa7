//! The realrcptto patch generator against the pristine netqmail-1.06 tree
//! (`QMAIL_SOURCE_NETQMAIL`): byte-stable output, `patch -p1` applies it,
//! the patched qmail-smtpd and qmail-qmtpd build, and a changed upstream
//! file gives an error that names the file and the anchor.

mod common;

use std::process::Command;

use common::{apply_ok, assert_files_match, copy_tree, make_ok, netqmail_or_skip};
use qmail_patches::{realrcptto, PatchError};
use upstream_hashes::{SourceTree, NETQMAIL};

#[test]
fn diff_is_byte_identical_across_runs() {
    let Some(src) = netqmail_or_skip("realrcptto_patch") else {
        return;
    };
    let a = realrcptto::generate(&SourceTree::unverified(&NETQMAIL, &src)).unwrap();
    let b = realrcptto::generate(&SourceTree::unverified(&NETQMAIL, &src)).unwrap();
    assert_eq!(a.to_diff(), b.to_diff());
    assert_eq!(a.sha256(), b.sha256());
    assert_eq!(a.file_name, "netqmail-1.06-realrcptto.patch");
    let diff = a.to_diff();
    for f in [
        "qmail-smtpd.c",
        "qmail-qmtpd.c",
        "Makefile",
        "realrcptto.c",
        "realrcptto.h",
    ] {
        assert!(diff.contains(&format!("+++ b/{f}\n")), "diff lacks {f}");
    }
    assert!(diff.contains("550 sorry, no mailbox here by that name. (#5.1.1)"));
    assert!(diff.contains("554 sorry, no mailbox here by that name. (#5.1.1)"));
    assert!(diff.contains("46:Dsorry, no mailbox here by that name. (#5.1.1),"));
}

#[test]
fn patch_applies_to_pristine_tree_and_programs_build() {
    let Some(src) = netqmail_or_skip("realrcptto_patch") else {
        return;
    };
    let p = realrcptto::generate(&SourceTree::unverified(&NETQMAIL, &src)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join(NETQMAIL.full_name);
    std::fs::create_dir(&root).unwrap();
    copy_tree(&src, &root);
    let diff = p.to_diff();
    apply_ok(&root, &diff, true, "realrcptto");
    apply_ok(&root, &diff, false, "realrcptto");
    // patch(1) gives exactly the generated files
    assert_files_match(&root, &p);
    make_ok(&root, &["qmail-smtpd", "qmail-qmtpd"], "realrcptto");
    assert!(root.join("qmail-smtpd").is_file());
    assert!(root.join("qmail-qmtpd").is_file());
    assert!(root.join("realrcptto.o").is_file());
    // the new object is linked in
    let nm = Command::new("nm").arg(root.join("qmail-smtpd.o")).output();
    if let Ok(nm) = nm {
        assert!(String::from_utf8_lossy(&nm.stdout).contains("realrcptto_init"));
    }
}

fn anchor_error(content_change: impl Fn(&str) -> String, anchor: &str, count: usize) {
    let Some(src) = netqmail_or_skip("realrcptto_patch") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&src, dir.path());
    let f = dir.path().join("qmail-smtpd.c");
    let text = std::fs::read_to_string(&f).unwrap();
    std::fs::write(&f, content_change(&text)).unwrap();
    let err = realrcptto::generate(&SourceTree::unverified(&NETQMAIL, dir.path())).unwrap_err();
    match &err {
        PatchError::Anchor {
            file,
            anchor: a,
            count: c,
            ..
        } => {
            assert_eq!(file, "qmail-smtpd.c");
            assert_eq!(a, anchor);
            assert_eq!(*c, count);
        }
        other => panic!("expected an anchor error, got {other}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("qmail-smtpd.c") && msg.contains("rcptto"),
        "{msg}"
    );
}

const RCPT_ANCHOR: &str = "  if (!stralloc_cats(&rcptto,\"T\")) die_nomem();\n";

#[test]
fn duplicated_anchor_is_an_error_naming_file_and_anchor() {
    anchor_error(
        |t| t.replacen(RCPT_ANCHOR, &format!("{RCPT_ANCHOR}  {RCPT_ANCHOR}"), 1),
        RCPT_ANCHOR,
        2,
    );
}

#[test]
fn missing_anchor_is_an_error_naming_file_and_anchor() {
    anchor_error(
        |t| {
            t.replacen(
                RCPT_ANCHOR,
                "  if (!stralloc_cats(&rcptto,\"T\")) die();\n",
                1,
            )
        },
        RCPT_ANCHOR,
        0,
    );
}

#[test]
fn already_patched_tree_is_refused() {
    let Some(src) = netqmail_or_skip("realrcptto_patch") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&src, dir.path());
    std::fs::write(dir.path().join("realrcptto.c"), "x").unwrap();
    let err = realrcptto::generate(&SourceTree::unverified(&NETQMAIL, dir.path())).unwrap_err();
    assert!(matches!(err, PatchError::AlreadyExists { .. }), "{err}");
}
