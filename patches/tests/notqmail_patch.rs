//! The notqmail-1.09 realrcptto and branch generators on a stand-in
//! notqmail tree made here (its files hold only the anchor lines the
//! generators look for, between filler lines; no `FILES`, as in
//! notqmail): names, `series`, byte stability, `patch -p1 --fuzz=0`, the
//! release differences, anchor errors naming the file, and a
//! STARTTLS-shaped git-format stack whose `.github` change is left out.
//! No upstream sources are needed (`notqmail_upstream.rs` runs the same
//! on the real tree).

mod common;

use std::path::Path;

use common::{apply_no_fuzz, assert_files_match, copy_tree, new_text};
use qmail_patches::{
    apply_stack, branch, generate, generate_on_stack, qmail_release::NOTQMAIL, realrcptto, select,
    series_file, stack::left_out, Patch, PatchError, ThirdPartyPatch,
};
use upstream_hashes::{SourceTree, MESS822, NETQMAIL};

const RCPT_ANCHOR: &str = "  if (!stralloc_cats(&rcptto,\"T\")) die_nomem();\n";
const FLAG99: &str = " flag99 = 0;\n";

/// `anchors`, each followed by a filler line.
fn lines(anchors: &[&str]) -> String {
    let mut s = String::from("/* stand-in */\n");
    for (i, a) in anchors.iter().enumerate() {
        s.push_str(a);
        s.push_str(&format!("\n/* filler {i} */\n"));
    }
    s
}

/// The files of a stand-in notqmail tree.
fn stand_in_files() -> Vec<(&'static str, String)> {
    let smtpd = lines(&[
        "#include \"commands.h\"\n",
        "void straynewline()",
        "void err_unimpl(arg)",
        "if (!constmap_init(&mapbmf,bmf.s,bmf.len,0)) die_nomem();\n",
        "if (!stralloc_0(&mailfrom)) die_nomem();\n",
        RCPT_ANCHOR,
        "if (!rcptto.len) { err_wantrcpt(); return; }\n",
    ]);
    let qmtpd = lines(&[
        "#include \"received.h\"\n",
        "relayclientlen = relayclient ? str_len(relayclient) : 0;\n",
        "if (!stralloc_copys(&failure,\"\")) resources();\n",
        "case 0: failure.s[failure.len - 1] = 'D';\n          }\n",
        "    if (!flagbother) qmail_fail(&qq);\n",
        "result = \"Dsorry, that message size exceeds my databytes limit (#5.3.4)\";\n",
        "        case 'D':\n",
    ]);
    let local = lines(&[
        "#include \"auto_patrn.h\"\n",
        " int flagforwardonly;\n",
        FLAG99,
        "     cmds.s[j] = 0;\n",
        "       case '+':\n",
    ]);
    let makefile = "# stand-in\n\nqmail-local: \\\nload qmail-local.o qmail.o quote.o x.a\n\
\t./load qmail-local qmail.o quote.o x.a\n\
\nqmail-local.o: \\\ncompile qmail-local.c myctime.h gfrom.h auto_patrn.h\n\t./compile qmail-local.c\n\
\nqmail-qmtpd: \\\nload qmail-qmtpd.o\n\t./load qmail-qmtpd rcpthosts.o x.a\n\
\nqmail-qmtpd.o: \\\ncompile qmail-qmtpd.c received.h\n\t./compile qmail-qmtpd.c\n\
\nqmail-smtpd: \\\nload qmail-smtpd.o\n\t./load qmail-smtpd rcpthosts.o y.a\n\
\nqmail-smtpd.o: \\\ncompile qmail-smtpd.c commands.h\n\t./compile qmail-smtpd.c\n\
\nreceived.o: \\\ncompile received.c\n\t./compile received.c\n\
\nfiller.o: \\\ncompile filler.c\n\t./compile filler.c\n\
\nqmail-remote: \\\nload qmail-remote.o\n\t./load qmail-remote x.a\n"
        .to_string();
    let hier = lines(&[
        "  c(auto_qmail,\"bin\",\"qmail-smtpd\",auto_uido,auto_gidq,0755);\n",
        "  c(auto_qmail,\"man/cat8\",\"qmail-smtpd.0\",auto_uido,auto_gidq,0644);\n",
    ]);
    let dot_qmail = "There are five types of delivery instructions:\n\
(1) comment; (2) program; (3) forward; (4) mbox; (5) maildir.\n\
.TP 5\nfiller\nfor more details.\nfiller\nprogram lines,\n.I mbox\nfiller\n\
but it still pays attention to previous forward lines.\nfiller\n";
    vec![
        ("qmail-smtpd.c", smtpd),
        ("qmail-qmtpd.c", qmtpd),
        ("qmail-local.c", local),
        ("Makefile", makefile),
        ("hier.c", hier),
        (
            "TARGETS",
            "a.o\nqmail-local.o\nm.o\nn.o\no.o\nrcpthosts.o\nz.o\nw.o\nv.o\nu.o\nt.o\nqmail-smtpd.0\ny.o\n".into(),
        ),
        (
            "qmail-smtpd.8",
            ".TH qmail-smtpd 8\n.SH \"SEE ALSO\"\ntcp-env(1),\nqmail-control(5),\nqmail-inject(8),\nqmail-newmrh(8),\nqmail-queue(8)\n".into(),
        ),
        (
            "qmail-qmtpd.8",
            ".TH qmail-qmtpd 8\n.SH \"SEE ALSO\"\ntcp-env(1),\nqmail-control(5),\nqmail-queue(8)\n".into(),
        ),
        ("dot-qmail.9", dot_qmail.into()),
        (
            "qmail-local.8",
            "filler\ncan read it more than once.\nfiller\nprint a description of the delivery instructions.\nfiller\n".into(),
        ),
    ]
}

/// A stand-in notqmail tree in `dir/name`, with `change` applied to the
/// text of each file.
fn stand_in(dir: &Path, name: &str, change: impl Fn(&str, String) -> String) -> SourceTree {
    let root = dir.join(name);
    std::fs::create_dir(&root).unwrap();
    for (f, text) in stand_in_files() {
        std::fs::write(root.join(f), change(f, text)).unwrap();
    }
    SourceTree::unverified(&NOTQMAIL, root)
}

fn notqmail_patches(tree: &SourceTree) -> Result<Vec<Patch>, PatchError> {
    generate(tree, &select(&[]).unwrap())
}

/// A copy of `tree` under `dir/name`.
fn copy_to(tree: &SourceTree, dir: &Path, name: &str) -> std::path::PathBuf {
    let root = dir.join(name);
    std::fs::create_dir(&root).unwrap();
    copy_tree(&tree.root, &root);
    root
}

#[test]
fn notqmail_patches_are_named_for_notqmail_and_byte_stable() {
    let tmp = tempfile::tempdir().unwrap();
    let a = notqmail_patches(&stand_in(tmp.path(), "one", |_, t| t)).unwrap();
    let b = notqmail_patches(&stand_in(tmp.path(), "two", |_, t| t)).unwrap();
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
        assert_eq!(*x.release, NOTQMAIL);
        assert_eq!(x.to_diff(), y.to_diff(), "{} differs by tree", x.file_name);
        assert_eq!(x.sha256(), y.sha256());
        let diff = x.to_diff();
        assert!(diff.contains("notqmail-1.09"), "{}", x.file_name);
        assert!(
            !diff.contains("netqmail"),
            "{} mentions netqmail",
            x.file_name
        );
    }
}

#[test]
fn notqmail_patches_apply_without_fuzz_alone_and_in_either_order() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = stand_in(tmp.path(), "pristine", |_, t| t);
    let patches = notqmail_patches(&tree).unwrap();
    for p in &patches {
        let root = copy_to(&tree, tmp.path(), &format!("alone-{}", p.file_name));
        apply_no_fuzz(&root, &p.to_diff(), &p.file_name);
        assert_files_match(&root, p);
    }
    for (name, order) in [("forward", [0, 1, 2]), ("backward", [2, 1, 0])] {
        let root = copy_to(&tree, tmp.path(), name);
        for i in order {
            apply_no_fuzz(&root, &patches[i].to_diff(), name);
        }
        let mk = std::fs::read_to_string(root.join("Makefile")).unwrap();
        assert!(
            mk.contains("./load qmail-local qbranch.o qmail.o"),
            "{name}"
        );
        assert!(mk.contains("./load qmail-smtpd realrcptto.o"), "{name}");
        assert!(mk.contains("\nqmail-rcptcheck-realrcptto: \\\n"), "{name}");
        let hier = std::fs::read_to_string(root.join("hier.c")).unwrap();
        assert!(hier.contains("\"qmail-rcptcheck-realrcptto\""), "{name}");
        let local = std::fs::read_to_string(root.join("qmail-local.c")).unwrap();
        assert!(local.contains("qbranch_parse("), "{name}");
    }
}

#[test]
fn notqmail_differences_from_netqmail_are_the_files_list_and_users_header() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = stand_in(tmp.path(), "pristine", |_, t| t);
    let rrt = realrcptto::generate(&tree).unwrap();
    assert!(rrt.files.iter().all(|f| f.path != "FILES"));
    let smtpd = new_text(&rrt, "qmail-smtpd.c");
    assert!(smtpd.contains("#include \"auto_users.h\"\n"));
    assert!(!smtpd.contains("auto_usera.h"));
    assert!(new_text(&rrt, "Makefile")
        .contains("\nqmail-smtpd.o: realrcptto.h auto_break.h auto_users.h auto_patrn.h\n"));
    assert!(new_text(&rrt, "qmail-qmtpd.c").contains("#include \"auto_users.h\"\n"));
    let br = branch::generate(&tree).unwrap();
    assert!(br.files.iter().all(|f| f.path != "FILES"));
    // The netqmail generators need FILES, which notqmail does not have.
    let as_netqmail = SourceTree::unverified(&NETQMAIL, &tree.root);
    for err in [
        realrcptto::generate(&as_netqmail).unwrap_err(),
        branch::generate(&as_netqmail).unwrap_err(),
    ] {
        assert!(matches!(err, PatchError::Read { .. }), "{err}");
        assert!(err.to_string().contains("FILES"), "{err}");
    }
}

#[test]
fn notqmail_checks_the_users_its_qmail_lspawn_looks_up_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = stand_in(tmp.path(), "pristine", |_, t| t);
    let rrt = realrcptto::generate(&tree).unwrap();
    for file in ["qmail-smtpd.c", "qmail-qmtpd.c"] {
        assert!(
            new_text(&rrt, file)
                .contains("realrcptto_lspawn_users(auto_userp,auto_userq,auto_groupn)"),
            "{file}"
        );
    }
    let said = "looks up when it starts, is missing\n(every local delivery is then put off);";
    assert!(new_text(&rrt, "qmail-smtpd.8").contains(said));
    // netqmail's qmail-lspawn has them compiled in: its page does not say it
    let as_netqmail = SourceTree::unverified(&NETQMAIL, &tree.root);
    let pages = realrcptto::man_pages(&as_netqmail).unwrap();
    let page = &pages[0].new;
    assert!(page.contains("MAILBOX CHECK") && !page.contains(said));
}

/// Generating from a stand-in tree whose `file` has `anchor` removed
/// fails naming the patch, the file, the anchor and notqmail-1.09.
fn assert_missing_anchor(patch: &str, file: &'static str, anchor: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let tree = stand_in(tmp.path(), "changed", |f, t| {
        if f == file {
            t.replacen(anchor, "/* changed upstream */\n", 1)
        } else {
            t
        }
    });
    let err = notqmail_patches(&tree).unwrap_err();
    let msg = err.to_string();
    match err {
        PatchError::Generate { name, source } => {
            assert_eq!(name, patch);
            match *source {
                PatchError::Anchor {
                    file: f,
                    anchor: a,
                    count,
                    release,
                } => {
                    assert_eq!((f.as_str(), a.as_str(), count), (file, anchor, 0));
                    assert_eq!(release, "notqmail-1.09");
                }
                other => panic!("expected an anchor error, got {other}"),
            }
        }
        other => panic!("expected a generate error, got {other}"),
    }
    for part in [patch, file, "notqmail-1.09"] {
        assert!(msg.contains(part), "{part:?} missing from: {msg}");
    }
}

#[test]
fn a_missing_anchor_names_the_patch_and_the_file() {
    assert_missing_anchor("realrcptto", "qmail-smtpd.c", RCPT_ANCHOR);
    assert_missing_anchor(
        "realrcptto",
        "qmail-qmtpd.c",
        "    if (!flagbother) qmail_fail(&qq);\n",
    );
    assert_missing_anchor("realrcptto", "Makefile", "\t./load qmail-qmtpd rcpthosts.o");
    assert_missing_anchor("realrcptto", "TARGETS", "\nrcpthosts.o\n");
    // realrcptto comes first in the series, so branch's anchors are
    // only reached when realrcptto's are all there.
    assert_missing_anchor("branch", "qmail-local.c", FLAG99);
    assert_missing_anchor("branch", "Makefile", "./load qmail-local qmail.o quote.o");
}

#[test]
fn a_duplicated_anchor_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = stand_in(tmp.path(), "dup", |f, t| {
        if f == "qmail-local.c" {
            t.replacen(FLAG99, &format!("{FLAG99}{FLAG99}"), 1)
        } else {
            t
        }
    });
    let err = branch::generate(&tree).unwrap_err();
    assert!(
        matches!(&err, PatchError::Anchor { file, count: 2, .. } if file == "qmail-local.c"),
        "{err}"
    );
}

#[test]
fn a_release_that_is_not_qmail_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = stand_in(tmp.path(), "pristine", |_, t| t);
    let mess = SourceTree::unverified(&MESS822, &tree.root);
    for err in [
        realrcptto::generate(&mess).unwrap_err(),
        branch::generate(&mess).unwrap_err(),
    ] {
        let msg = err.to_string();
        assert!(matches!(err, PatchError::Refused(_)), "{msg}");
        assert!(
            msg.contains("mess822-0.58") && msg.contains("notqmail-1.09"),
            "{msg}"
        );
    }
}

/// A git-format third-party patch (as `git diff` between branches makes
/// them) changing `.github/workflows/ci.yml`, which release trees made
/// by `git archive` do not have, and qmail-smtpd.c with `smtpd`.
fn git_format_patch(tree: &SourceTree, smtpd: impl Fn(&str) -> String, extra: &str) -> String {
    let old = std::fs::read_to_string(tree.root.join("qmail-smtpd.c")).unwrap();
    let ours = Patch {
        file_name: "x".into(),
        release: &NOTQMAIL,
        description: String::new(),
        files: vec![qmail_patches::FileChange {
            path: "qmail-smtpd.c".into(),
            old: Some(old.clone()),
            new: smtpd(&old),
        }],
    }
    .to_diff();
    let body = ours
        .trim_start_matches('\n')
        .replacen("diff -u ", "diff --git ", 1);
    format!(
        "From: someone\nSubject: STARTTLS\n\n\
diff --git a/.github/workflows/ci.yml b/.github/workflows/ci.yml\n\
index 1111111..2222222 100644\n--- a/.github/workflows/ci.yml\n+++ b/.github/workflows/ci.yml\n\
@@ -1,1 +1,1 @@\n-packages: check\n+packages: check openssl\n{body}{extra}"
    )
}

fn load(dir: &Path, name: &str, text: &str) -> ThirdPartyPatch {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    ThirdPartyPatch::load(&path, 1).unwrap()
}

#[test]
fn a_stack_change_to_an_absent_dot_directory_is_left_out_and_ours_go_on_top() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = stand_in(tmp.path(), "pristine", |_, t| t);
    let created = "diff --git a/.tls-note b/.tls-note\nnew file mode 100644\n--- /dev/null\n+++ b/.tls-note\n@@ -0,0 +1 @@\n+tls\n";
    let text = git_format_patch(
        &tree,
        |t| {
            t.replacen(
                "#include \"commands.h\"\n",
                "#include \"tls.h\"\n#include \"commands.h\"\n",
                1,
            )
        },
        created,
    );
    let tls = load(tmp.path(), "tls.patch", &text);
    assert_eq!(left_out(&tls, &tree.root), [".github/workflows/ci.yml"]);
    let stack = [tls];
    let stacked = apply_stack(&tree, &stack, &tmp.path().join("stacked")).unwrap();
    let smtpd = std::fs::read_to_string(stacked.root.join("qmail-smtpd.c")).unwrap();
    assert!(smtpd.contains("#include \"tls.h\"\n"));
    // A dot file the patch creates is created; the absent one is not.
    assert!(stacked.root.join(".tls-note").is_file());
    assert!(!stacked.root.join(".github").exists());
    let defs = select(&[]).unwrap();
    let ours = generate_on_stack(&tree, &stacked, &stack, &defs, tmp.path()).unwrap();
    assert_eq!(ours.len(), 3);
    let root = copy_to(&stacked, tmp.path(), "final");
    for p in &ours {
        apply_no_fuzz(&root, &p.to_diff(), &p.file_name);
    }
    let smtpd = std::fs::read_to_string(root.join("qmail-smtpd.c")).unwrap();
    assert!(smtpd.contains("#include \"tls.h\"\n") && smtpd.contains("realrcptto_init"));
}

#[test]
fn a_stack_change_to_a_dot_file_the_tree_has_is_applied() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = stand_in(tmp.path(), "pristine", |_, t| t);
    std::fs::create_dir_all(tree.root.join(".github/workflows")).unwrap();
    std::fs::write(
        tree.root.join(".github/workflows/ci.yml"),
        "packages: check\n",
    )
    .unwrap();
    let tls = load(
        tmp.path(),
        "tls.patch",
        &git_format_patch(&tree, |t| t.to_string() + "int tls;\n", ""),
    );
    assert!(left_out(&tls, &tree.root).is_empty());
    let stacked = apply_stack(&tree, &[tls], &tmp.path().join("stacked")).unwrap();
    let ci = std::fs::read_to_string(stacked.root.join(".github/workflows/ci.yml")).unwrap();
    assert_eq!(ci, "packages: check openssl\n");
}

#[test]
fn a_stack_change_to_another_absent_file_is_still_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = stand_in(tmp.path(), "pristine", |_, t| t);
    let missing = "diff --git a/tls.c b/tls.c\n--- a/tls.c\n+++ b/tls.c\n@@ -1 +1 @@\n-a\n+b\n";
    let tls = load(
        tmp.path(),
        "tls.patch",
        &git_format_patch(&tree, |t| t.to_string(), missing),
    );
    assert_eq!(left_out(&tls, &tree.root), [".github/workflows/ci.yml"]);
    let err = apply_stack(&tree, &[tls], &tmp.path().join("stacked")).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, PatchError::StackApply { .. }), "{msg}");
    assert!(
        msg.contains("tls.patch") && msg.contains("notqmail-1.09"),
        "{msg}"
    );
}

#[test]
fn an_anchor_moved_by_the_stack_names_the_third_party_patch() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = stand_in(tmp.path(), "pristine", |_, t| t);
    let text = git_format_patch(
        &tree,
        |t| {
            t.replacen(
                RCPT_ANCHOR,
                "  if (!stralloc_cats(&rcptto,\"T\")) tls_nomem();\n",
                1,
            )
        },
        "",
    );
    let stack = [load(tmp.path(), "tls.patch", &text)];
    let stacked = apply_stack(&tree, &stack, &tmp.path().join("stacked")).unwrap();
    let defs = select(&[]).unwrap();
    let err = generate_on_stack(&tree, &stacked, &stack, &defs, tmp.path()).unwrap_err();
    let msg = err.to_string();
    match err {
        PatchError::StackAnchor(e) => {
            assert_eq!(e.ours, "realrcptto");
            assert_eq!(e.file, "qmail-smtpd.c");
            assert_eq!(e.release, "notqmail-1.09");
            assert!(e
                .by
                .as_deref()
                .unwrap_or("")
                .starts_with("tls.patch (sha256 "));
        }
        other => panic!("expected a stack anchor error, got {other}"),
    }
    assert!(msg.contains("rcptto") && msg.contains("tls.patch"), "{msg}");
}
