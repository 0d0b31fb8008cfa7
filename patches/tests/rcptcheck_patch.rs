//! The rcptcheck patch generator (the RCPTCHECK program
//! qmail-rcptcheck-realrcptto): on a stand-in tree (our own text with the
//! anchor lines, no upstream needed) the diff is byte-stable, applies with
//! `patch -p1` and gives the generated files, the Makefile and hier.c get
//! the program and its page, and the page renders; on the pristine
//! netqmail-1.06 tree (`QMAIL_SOURCE_NETQMAIL`) it applies after realrcptto
//! (and before it), and `make it man` builds the program and its page.

mod common;

use std::path::Path;

use common::{apply_ok, assert_files_match, copy_tree, groff_warnings, make_ok, netqmail_or_skip};
use qmail_patches::{rcptcheck, realrcptto, PatchError};
use upstream_hashes::{SourceTree, NETQMAIL};

/// A stand-in netqmail Makefile with the anchor rule (`qmail-remote:`).
const MAKEFILE: &str = "default: it\n\nit: \\\nqmail-smtpd\n\nqmail-queue.o: \\\ncompile qmail-queue.c\n\t./compile qmail-queue.c\n\nqmail-remote: \\\nload qmail-remote.o\n\t./load qmail-remote\n";

/// A stand-in hier.c with qmail-smtpd's install lines.
const HIER_C: &str = "void hier()\n{\n  c(auto_qmail,\"bin\",\"qmail-qmtpd\",auto_uido,auto_gidq,0755);\n  c(auto_qmail,\"bin\",\"qmail-smtpd\",auto_uido,auto_gidq,0755);\n\n  c(auto_qmail,\"man/man8\",\"qmail-smtpd.8\",auto_uido,auto_gidq,0644);\n  c(auto_qmail,\"man/cat8\",\"qmail-smtpd.0\",auto_uido,auto_gidq,0644);\n}\n";

fn stand_in(dir: &Path) {
    std::fs::write(dir.join("Makefile"), MAKEFILE).unwrap();
    std::fs::write(dir.join("hier.c"), HIER_C).unwrap();
    std::fs::write(dir.join("TARGETS"), "qmail-smtpd\nqmail-smtpd.0\nit\n").unwrap();
    std::fs::write(
        dir.join("FILES"),
        "qmail-qmtpd.8\nqmail-smtpd.8\nqmail-qmtpd.c\nqmail-smtpd.c\n",
    )
    .unwrap();
}

/// The files a patch changes, in its order: the program, its page, then
/// the edits (`FILES` only where the release has the list).
fn file_names(p: &qmail_patches::Patch) -> Vec<&str> {
    p.files.iter().map(|f| f.path.as_str()).collect()
}

const NEW_AND_EDITED: [&str; 5] = [
    "qmail-rcptcheck-realrcptto.c",
    "qmail-rcptcheck-realrcptto.8",
    "Makefile",
    "hier.c",
    "TARGETS",
];

fn text<'a>(p: &'a qmail_patches::Patch, path: &str) -> &'a str {
    &p.files.iter().find(|f| f.path == path).unwrap().new
}

#[test]
fn stand_in_tree_diff_is_stable_and_applies() {
    let dir = tempfile::tempdir().unwrap();
    stand_in(dir.path());
    let src = SourceTree::unverified(&NETQMAIL, dir.path());
    let a = rcptcheck::generate(&src).unwrap();
    let b = rcptcheck::generate(&src).unwrap();
    assert_eq!(a.to_diff(), b.to_diff(), "diff must be byte-stable");
    assert_eq!(a.sha256(), b.sha256());
    assert_eq!(a.file_name, "netqmail-1.06-rcptcheck.patch");
    assert_eq!(file_names(&a), [&NEW_AND_EDITED[..], &["FILES"]].concat());
    apply_ok(dir.path(), &a.to_diff(), false, "rcptcheck");
    assert_files_match(dir.path(), &a);
    // generating again on the patched tree is refused, naming the file
    let err = rcptcheck::generate(&src).unwrap_err();
    assert!(matches!(err, PatchError::AlreadyExists { .. }), "{err:?}");
    assert!(err.to_string().contains("qmail-rcptcheck-realrcptto.c"));
}

#[test]
fn makefile_and_hier_build_and_install_the_program_and_page() {
    let dir = tempfile::tempdir().unwrap();
    stand_in(dir.path());
    let p = rcptcheck::generate(&SourceTree::unverified(&NETQMAIL, dir.path())).unwrap();
    let mk = text(&p, "Makefile");
    for rule in [
        "\nqmail-rcptcheck-realrcptto: \\\nload qmail-rcptcheck-realrcptto.o realrcptto.o auto_qmail.o auto_break.o auto_usera.o auto_patrn.o\n",
        "\nqmail-rcptcheck-realrcptto.o: \\\ncompile qmail-rcptcheck-realrcptto.c realrcptto.h\n",
        "\nnroff -man qmail-rcptcheck-realrcptto.8 > qmail-rcptcheck-realrcptto.0\n".trim_start_matches('\n'),
        "\nit: qmail-rcptcheck-realrcptto\n",
        "\nman: qmail-rcptcheck-realrcptto.0\n",
    ] {
        assert!(mk.contains(rule), "Makefile lacks {rule:?}:\n{mk}");
    }
    // `default: it` stays the first rule
    assert!(mk.starts_with("default: it\n"));
    let hier = text(&p, "hier.c");
    for line in [
        "c(auto_qmail,\"bin\",\"qmail-rcptcheck-realrcptto\",auto_uido,auto_gidq,0755);",
        "c(auto_qmail,\"man/man8\",\"qmail-rcptcheck-realrcptto.8\",auto_uido,auto_gidq,0644);",
        "c(auto_qmail,\"man/cat8\",\"qmail-rcptcheck-realrcptto.0\",auto_uido,auto_gidq,0644);",
    ] {
        assert_eq!(hier.matches(line).count(), 1, "hier.c: {line}\n{hier}");
    }
    let targets = text(&p, "TARGETS");
    for t in [
        "qmail-rcptcheck-realrcptto\n",
        "qmail-rcptcheck-realrcptto.o\n",
        "qmail-rcptcheck-realrcptto.0\n",
    ] {
        assert!(targets.contains(t), "TARGETS lacks {t}");
    }
}

#[test]
fn notqmail_stand_in_gets_targets_but_no_files_list_and_applies() {
    let dir = tempfile::tempdir().unwrap();
    stand_in(dir.path());
    std::fs::remove_file(dir.path().join("FILES")).unwrap();
    let src = SourceTree::unverified(&upstream_hashes::NOTQMAIL, dir.path());
    let p = rcptcheck::generate_notqmail(&src).unwrap();
    assert_eq!(p.file_name, "notqmail-1.09-rcptcheck.patch");
    assert_eq!(file_names(&p), NEW_AND_EDITED);
    assert_eq!(
        text(&p, "TARGETS"),
        "qmail-smtpd\nqmail-smtpd.0\nqmail-rcptcheck-realrcptto.o\nqmail-rcptcheck-realrcptto\nqmail-rcptcheck-realrcptto.0\nit\n"
    );
    // notqmail's `.8.0` suffix rule formats the page: no nroff recipe
    let mk = text(&p, "Makefile");
    assert!(!mk.contains("nroff"), "{mk}");
    assert!(
        mk.contains("\t./compile -DRRT_LSPAWN_USERS qmail-rcptcheck-realrcptto.c\n"),
        "{mk}"
    );
    apply_ok(
        dir.path(),
        &p.to_diff(),
        false,
        "rcptcheck (notqmail stand-in)",
    );
    assert_files_match(dir.path(), &p);
}

#[test]
fn man_page_renders_and_documents_the_interface() {
    let page = rcptcheck::PROGRAM_8;
    if let Some(w) = groff_warnings("rcptcheck man page", "qmail-rcptcheck-realrcptto.8", page) {
        assert!(w.is_empty(), "groff warnings:\n{w}");
    }
    for must in [
        "RCPTCHECK=/var/qmail/bin/qmail-rcptcheck-realrcptto",
        ".B RECIPIENT",
        ".B SENDER",
        ".B QMAILRRTDENYALL",
        ".B PROTO",
        "\n0\n",
        "\n100\n",
        "\n111\n",
        "qmail-rcptcheck-realrcptto: unable to read controls",
        "realrcptto \\fIpid\\fP \\fIremoteip\\fP \\fIaddress\\fP",
        ".SH \"DENY-ALL MODE\"",
        "accepts (exit 0) every recipient",
    ] {
        assert!(page.contains(must), "man page lacks {must:?}");
    }
}

#[test]
fn netqmail_applies_after_realrcptto_and_builds() {
    let Some(src) = netqmail_or_skip("rcptcheck_patch") else {
        return;
    };
    let tree = SourceTree::unverified(&NETQMAIL, &src);
    let rrt = realrcptto::generate(&tree).unwrap();
    let rc = rcptcheck::generate(&tree).unwrap();
    // either order applies (dry run on the pristine tree, then the other)
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&src, dir.path());
    apply_ok(dir.path(), &rc.to_diff(), false, "rcptcheck first");
    apply_ok(
        dir.path(),
        &rrt.to_diff(),
        true,
        "realrcptto after rcptcheck",
    );
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    copy_tree(&src, root);
    apply_ok(root, &rrt.to_diff(), false, "realrcptto");
    apply_ok(root, &rc.to_diff(), false, "rcptcheck after realrcptto");
    for added in [
        "qmail-rcptcheck-realrcptto.c",
        "qmail-rcptcheck-realrcptto.8",
    ] {
        let got = std::fs::read_to_string(root.join(added)).unwrap();
        assert_eq!(got, text(&rc, added), "{added}");
    }
    std::fs::write(
        root.join("conf-qmail"),
        format!("{}/qhome\n", root.display()),
    )
    .unwrap();
    make_ok(
        root,
        &["qmail-rcptcheck-realrcptto", "qmail-rcptcheck-realrcptto.0"],
        "rcptcheck",
    );
    assert!(root.join("qmail-rcptcheck-realrcptto").is_file());
    let dry = std::process::Command::new("make")
        .args(["-n", "it", "man"])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(dry.status.success());
}

#[test]
fn notqmail_applies_and_the_program_builds() {
    let Some(src) = common::upstream_or_skip("rcptcheck_patch notqmail", "QMAIL_SOURCE_NOTQMAIL")
    else {
        return;
    };
    let tree = SourceTree::unverified(&upstream_hashes::NOTQMAIL, &src);
    let a = rcptcheck::generate_notqmail(&tree).unwrap();
    assert_eq!(
        a.to_diff(),
        rcptcheck::generate_notqmail(&tree).unwrap().to_diff()
    );
    assert_eq!(a.file_name, "notqmail-1.09-rcptcheck.patch");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    copy_tree(&src, root);
    apply_ok(root, &a.to_diff(), false, "rcptcheck (notqmail)");
    assert_files_match(root, &a);
    // what notqmail's realrcptto patch provides: the core and its rule
    let core = Path::new(env!("CARGO_MANIFEST_DIR")).join("c");
    for f in ["realrcptto.c", "realrcptto.h"] {
        std::fs::copy(core.join(f), root.join(f)).unwrap();
    }
    let mut mk = std::fs::read_to_string(root.join("Makefile")).unwrap();
    mk.push_str(
        "\nrealrcptto.o: \\\ncompile realrcptto.c realrcptto.h\n\t./compile realrcptto.c\n",
    );
    std::fs::write(root.join("Makefile"), mk).unwrap();
    std::fs::write(
        root.join("conf-qmail"),
        format!("{}/qhome\n", root.display()),
    )
    .unwrap();
    make_ok(
        root,
        &["qmail-rcptcheck-realrcptto", "qmail-rcptcheck-realrcptto.0"],
        "rcptcheck (notqmail)",
    );
    assert!(root.join("qmail-rcptcheck-realrcptto").is_file());
    assert!(root.join("qmail-rcptcheck-realrcptto.0").is_file());
}
