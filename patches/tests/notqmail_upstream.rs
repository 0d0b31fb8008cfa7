//! The notqmail-1.09 patches against the pristine notqmail-1.09 tree
//! (`QMAIL_SOURCE_NOTQMAIL`, else every test prints SKIPPED): byte-stable
//! output, the series applies with `patch -p1 --fuzz=0`, the patched
//! qmail-smtpd, qmail-qmtpd and qmail-local build; and on the notqmail
//! STARTTLS stack (`QMAIL_PATCH_NOTQMAIL_TLS`, the file
//! `smtp-tls-20231230-1.09.patch`) our patches are generated on top and
//! the stacked programs build too.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{apply_no_fuzz, assert_files_match, copy_tree, make_ok, notqmail_or_skip};
use qmail_patches::{
    apply_stack, generate, generate_on_stack, qmail_release::NOTQMAIL, select, series_file, Patch,
    ThirdPartyPatch,
};
use upstream_hashes::SourceTree;

fn notqmail_patches(tree: &Path) -> Vec<Patch> {
    let defs = select(&[]).unwrap();
    generate(&SourceTree::unverified(&NOTQMAIL, tree), &defs).unwrap()
}

/// A copy of `tree` in a new temporary directory, as `notqmail-1.09/`.
fn copy_of(tree: &Path) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join(NOTQMAIL.full_name);
    std::fs::create_dir(&root).unwrap();
    copy_tree(tree, &root);
    (tmp, root)
}

/// Each patch, applied alone to a copy of `tree` with `patch -p1
/// --fuzz=0`, gives exactly the files its generator made.
fn assert_each_gives_its_files(tree: &Path, patches: &[Patch]) {
    for p in patches {
        let (_tmp, root) = copy_of(tree);
        apply_no_fuzz(&root, &p.to_diff(), &p.file_name);
        assert_files_match(&root, p);
    }
}

/// `nm` of `obj` lists `symbol` (skipped when there is no `nm`).
fn assert_defines(obj: &Path, symbol: &str) {
    if let Ok(nm) = Command::new("nm").arg(obj).output() {
        let syms = String::from_utf8_lossy(&nm.stdout);
        assert!(syms.contains(symbol), "{}: no {symbol}", obj.display());
    }
}

#[test]
fn notqmail_upstream_series_is_byte_stable_and_named_for_notqmail() {
    let Some(tree) = notqmail_or_skip("notqmail_upstream series") else {
        return;
    };
    let a = notqmail_patches(&tree);
    let (_tmp, copy) = copy_of(&tree);
    let b = notqmail_patches(&copy);
    let names: Vec<&str> = a.iter().map(|p| p.file_name.as_str()).collect();
    assert_eq!(
        names,
        [
            "notqmail-1.09-realrcptto.patch",
            "notqmail-1.09-rcptcheck.patch",
            "notqmail-1.09-branch.patch"
        ]
    );
    assert_eq!(
        series_file(&[], &a),
        "notqmail-1.09-realrcptto.patch\nnotqmail-1.09-rcptcheck.patch\nnotqmail-1.09-branch.patch\n"
    );
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.to_diff(), y.to_diff(), "{}", x.file_name);
        let diff = x.to_diff();
        assert!(
            !diff.contains("+++ b/FILES"),
            "{}: notqmail has no FILES",
            x.file_name
        );
        assert!(
            !diff.contains("netqmail"),
            "{}: mentions netqmail",
            x.file_name
        );
    }
    let rrt = a[0].to_diff();
    assert!(rrt
        .contains("+  if (!rrt_ok(realrcptto(addr.s,addr.len - 1))) { err_nombox(); return; }\n"));
    assert!(rrt.contains("46:Dsorry, no mailbox here by that name. (#5.1.1),"));
    // notqmail's qmail-lspawn looks its users up: the hooks pass their names
    assert!(
        rrt.contains("+  rrt_ok(realrcptto_lspawn_users(auto_userp,auto_userq,auto_groupn));\n")
    );
    assert!(a[1]
        .to_diff()
        .contains("+\t./compile -DRRT_LSPAWN_USERS qmail-rcptcheck-realrcptto.c\n"));
    assert!(a[2].to_diff().contains("+       case '?':\n"));
}

#[test]
fn notqmail_upstream_series_applies_without_fuzz_and_programs_build() {
    let Some(tree) = notqmail_or_skip("notqmail_upstream build") else {
        return;
    };
    let patches = notqmail_patches(&tree);
    assert_each_gives_its_files(&tree, &patches);
    let (_tmp, root) = copy_of(&tree);
    for p in &patches {
        apply_no_fuzz(&root, &p.to_diff(), &p.file_name);
    }
    make_ok(
        &root,
        &[
            "qmail-smtpd",
            "qmail-qmtpd",
            "qmail-local",
            "qmail-rcptcheck-realrcptto",
        ],
        "notqmail-1.09 + realrcptto + rcptcheck + branch",
    );
    for f in [
        "qmail-smtpd",
        "qmail-qmtpd",
        "qmail-local",
        "qmail-rcptcheck-realrcptto",
        "realrcptto.o",
        "qbranch.o",
    ] {
        assert!(root.join(f).is_file(), "{f} not built");
    }
    assert_defines(&root.join("qmail-smtpd.o"), "realrcptto_init");
    assert_defines(&root.join("qmail-qmtpd.o"), "realrcptto_init");
    assert_defines(&root.join("qmail-local.o"), "qbranch_parse");
}

#[test]
fn notqmail_upstream_branch_applies_before_realrcptto_too() {
    let Some(tree) = notqmail_or_skip("notqmail_upstream reverse") else {
        return;
    };
    let patches = notqmail_patches(&tree);
    let (_tmp, root) = copy_of(&tree);
    for p in patches.iter().rev() {
        apply_no_fuzz(&root, &p.to_diff(), &p.file_name);
    }
    make_ok(
        &root,
        &["qmail-smtpd", "qmail-local"],
        "branch, then realrcptto",
    );
}

/// The notqmail STARTTLS patch, or `None` (skipped).
fn tls_patch_or_skip(test: &str) -> Option<ThirdPartyPatch> {
    let path = common::upstream_or_skip(test, "QMAIL_PATCH_NOTQMAIL_TLS")?;
    Some(ThirdPartyPatch::load(&path, 1).unwrap())
}

#[test]
fn notqmail_upstream_tls_stack_takes_our_patches_on_top() {
    let Some(tree) = notqmail_or_skip("notqmail_upstream tls") else {
        return;
    };
    let Some(tls) = tls_patch_or_skip("notqmail_upstream tls") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let pristine = SourceTree::unverified(&NOTQMAIL, &tree);
    let stack = [tls];
    let stacked = apply_stack(&pristine, &stack, &tmp.path().join("stacked")).unwrap();
    let defs = select(&[]).unwrap();
    let ours = generate_on_stack(&pristine, &stacked, &stack, &defs, tmp.path()).unwrap();
    assert_eq!(ours.len(), 3);
    let smtpd = std::fs::read_to_string(stacked.root.join("qmail-smtpd.c")).unwrap();
    assert!(smtpd.contains("tls_smtpd.h"), "the stack was not applied");
    assert_each_gives_its_files(&stacked.root, &ours);
    let (_t2, root) = copy_of(&stacked.root);
    for p in &ours {
        apply_no_fuzz(&root, &p.to_diff(), &p.file_name);
    }
    let smtpd = std::fs::read_to_string(root.join("qmail-smtpd.c")).unwrap();
    assert!(smtpd.contains("tls_nogateway") && smtpd.contains("realrcptto_init"));
    if Command::new("pkg-config")
        .args(["--exists", "openssl"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
    {
        make_ok(&root, &["qmail-smtpd", "qmail-local"], "TLS stack + ours");
        assert_defines(&root.join("qmail-smtpd.o"), "realrcptto_init");
    } else {
        println!("SKIPPED: notqmail_upstream tls: no OpenSSL headers, stacked tree not built");
    }
}
