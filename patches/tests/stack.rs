//! Third-party stacks (`--with-patch`) on stand-in trees made here: a
//! netqmail-shaped tree holding the realrcptto generator's anchors, and
//! stand-in "third-party" patches that shift, duplicate, remove or rewrite
//! them, conflict with each other, or are hostile. No upstream sources are
//! needed.

mod common;

use std::path::{Path, PathBuf};

use qmail_patches::{
    apply_stack, generate_on_stack, select, series_file, FileChange, Patch, PatchError,
    ThirdPartyPatch,
};
use upstream_hashes::{SourceTree, NETQMAIL};

const RCPT_ANCHOR: &str = "  if (!stralloc_cats(&rcptto,\"T\")) die_nomem();\n";

const MAN_SMTPD: &str = ".TH qmail-smtpd 8\n.SH NAME\nqmail-smtpd\n.SH \"SEE ALSO\"\ntcp-env(1),\nqmail-control(5),\nqmail-inject(8),\nqmail-newmrh(8),\nqmail-queue(8)\n";
const MAN_QMTPD: &str = ".TH qmail-qmtpd 8\n.SH NAME\nqmail-qmtpd\n.SH \"SEE ALSO\"\ntcp-env(1),\nqmail-control(5),\nqmail-queue(8)\n";

/// The files of a stand-in netqmail tree: every anchor the realrcptto
/// generator looks for, once, between filler lines.
fn stand_in_files() -> Vec<(&'static str, String)> {
    let lines = |anchors: &[&str]| -> String {
        let mut s = String::from("/* stand-in */\n");
        for (i, a) in anchors.iter().enumerate() {
            s.push_str(a);
            s.push_str(&format!("\n/* filler {i} */\n"));
        }
        s
    };
    let smtpd = lines(&[
        "#include \"commands.h\"\n",
        "void err_unimpl(arg)",
        "void straynewline()",
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
    let makefile =
        "# stand-in\n\nqmail-qmtpd: \\\nload qmail-qmtpd.o\n\t./load qmail-qmtpd rcpthosts.o x.a\n\
\nqmail-qmtpd.o: \\\ncompile qmail-qmtpd.c control.h received.h\n\t./compile qmail-qmtpd.c\n\
\nqmail-smtpd: \\\nload qmail-smtpd.o\n\t./load qmail-smtpd rcpthosts.o y.a\n\
\nqmail-smtpd.o: \\\ncompile qmail-smtpd.c commands.h\n\t./compile qmail-smtpd.c\n\
\nreceived.o: \\\ncompile received.c\n\t./compile received.c\n"
            .to_string();
    vec![
        ("qmail-smtpd.c", smtpd),
        ("qmail-qmtpd.c", qmtpd),
        ("Makefile", makefile),
        ("qmail-smtpd.8", MAN_SMTPD.into()),
        ("qmail-qmtpd.8", MAN_QMTPD.into()),
        ("TARGETS", "a.o\nrcpthosts.o\nz.o\n".into()),
        ("FILES", "a.c\nrcpthosts.c\nz.c\n".into()),
    ]
}

struct Fixture {
    dir: tempfile::TempDir,
    pristine: SourceTree,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("pristine");
        std::fs::create_dir(&root).unwrap();
        for (name, text) in stand_in_files() {
            std::fs::write(root.join(name), text).unwrap();
        }
        let pristine = SourceTree::unverified(&NETQMAIL, &root);
        Fixture { dir, pristine }
    }

    fn text(&self, file: &str) -> String {
        std::fs::read_to_string(self.pristine.root.join(file)).unwrap()
    }

    /// Write a stand-in third-party patch that changes `file` with `f`.
    fn third_party(&self, name: &str, file: &str, f: impl Fn(&str) -> String) -> PathBuf {
        let old = self.text(file);
        self.write_patch(name, file, &old, &f(&old))
    }

    fn write_patch(&self, name: &str, file: &str, old: &str, new: &str) -> PathBuf {
        let p = Patch {
            file_name: name.into(),
            release: &NETQMAIL,
            description: format!("stand-in third-party patch {name}"),
            files: vec![FileChange {
                path: file.into(),
                old: Some(old.into()),
                new: new.into(),
            }],
        };
        let path = self.dir.path().join(name);
        std::fs::write(&path, p.to_diff()).unwrap();
        path
    }

    fn stack(&self, paths: &[&Path]) -> Vec<ThirdPartyPatch> {
        paths
            .iter()
            .map(|p| ThirdPartyPatch::load(p, 1).unwrap())
            .collect()
    }

    fn generate(&self, stack: &[ThirdPartyPatch]) -> Result<(SourceTree, Vec<Patch>), PatchError> {
        let stacked = apply_stack(&self.pristine, stack, &self.dir.path().join("stacked"))?;
        let defs = select(&["realrcptto".to_string()])?;
        let scratch = self.dir.path().join("scratch");
        let ours = generate_on_stack(&self.pristine, &stacked, stack, &defs, &scratch)?;
        Ok((stacked, ours))
    }
}

#[test]
fn shifted_anchors_are_found_and_our_patch_applies_after_theirs() {
    let fx = Fixture::new();
    let tp = fx.third_party("tls.patch", "qmail-smtpd.c", |t| {
        let extra = "/* third party */\nint tls_on = 0;\n".repeat(20);
        t.replacen(RCPT_ANCHOR, &format!("{extra}{RCPT_ANCHOR}"), 1)
            .replacen("/* stand-in */\n", &format!("/* stand-in */\n{extra}"), 1)
    });
    let stack = fx.stack(&[&tp]);
    let (stacked, ours) = fx.generate(&stack).unwrap();
    assert!(fx.text("qmail-smtpd.c").find("tls_on").is_none());
    assert!(std::fs::read_to_string(stacked.root.join("qmail-smtpd.c"))
        .unwrap()
        .contains("tls_on"));
    // Theirs then ours, with plain `patch -p1`, no fuzz.
    let tree = fx.dir.path().join("final");
    std::fs::create_dir(&tree).unwrap();
    common::copy_tree(&fx.pristine.root, &tree);
    let theirs = String::from_utf8(stack[0].bytes.clone()).unwrap();
    common::apply_ok(&tree, &theirs, false, "the third-party patch");
    common::apply_ok(&tree, &ours[0].to_diff(), false, "realrcptto on the stack");
    let smtpd = std::fs::read_to_string(tree.join("qmail-smtpd.c")).unwrap();
    let hook = smtpd.find("realrcptto(addr.s,addr.len - 1)").unwrap();
    assert!(
        hook < smtpd.find(RCPT_ANCHOR).unwrap(),
        "hook before the recipient is recorded"
    );
    assert!(smtpd.contains("tls_on"));
}

fn expect_stack_anchor(err: PatchError, by: &str, count: usize) {
    let msg = err.to_string();
    match err {
        PatchError::StackAnchor(e) => {
            let qmail_patches::StackAnchor {
                ours,
                file,
                anchor,
                count: c,
                by: b,
                ..
            } = *e;
            assert_eq!(ours, "realrcptto");
            assert_eq!(file, "qmail-smtpd.c");
            assert_eq!(anchor, RCPT_ANCHOR);
            assert_eq!(c, count);
            assert!(b.as_deref().unwrap_or("").starts_with(by), "{b:?}");
        }
        other => panic!("expected a stack anchor error, got {other}"),
    }
    for part in ["realrcptto", "qmail-smtpd.c", "rcptto", by, "guessed"] {
        assert!(msg.contains(part), "{part:?} missing from: {msg}");
    }
}

#[test]
fn the_check_follows_a_relayclient_else_turned_into_a_block() {
    // smtpd-rcptcheck turns the `else` of RELAYCLIENT into a block with
    // its own check: ours must stay outside it, so that relay clients'
    // recipients are checked too (spec/realrcptto.md, kept item 6)
    let fx = Fixture::new();
    let block = "  else {\n    if (!addrallowed()) { err_nogateway(); return; }\n    if (!addrvalid()) { err_badrcpt(); return; }\n  }\n";
    let rc = fx.third_party("rcptcheck.patch", "qmail-smtpd.c", |t| {
        t.replacen(RCPT_ANCHOR, &format!("{block}{RCPT_ANCHOR}"), 1)
    });
    let stack = fx.stack(&[&rc]);
    let (_, ours) = fx.generate(&stack).unwrap();
    let tree = fx.dir.path().join("final");
    std::fs::create_dir(&tree).unwrap();
    common::copy_tree(&fx.pristine.root, &tree);
    let theirs = String::from_utf8(stack[0].bytes.clone()).unwrap();
    common::apply_ok(&tree, &theirs, false, "the third-party patch");
    common::apply_ok(&tree, &ours[0].to_diff(), false, "realrcptto on the stack");
    let smtpd = std::fs::read_to_string(tree.join("qmail-smtpd.c")).unwrap();
    let want = format!(
        "{block}  if (!rrt_ok(realrcptto(addr.s,addr.len - 1))) {{ err_nombox(); return; }}\n{RCPT_ANCHOR}"
    );
    assert!(smtpd.contains(&want), "{smtpd}");
}

#[test]
fn an_anchor_duplicated_by_a_third_party_patch_names_that_patch() {
    let fx = Fixture::new();
    let harmless = fx.third_party("first.patch", "TARGETS", |t| t.replace("z.o", "z.o\nq.o"));
    let dup = fx.third_party("dup.patch", "qmail-smtpd.c", |t| {
        t.replacen(RCPT_ANCHOR, &format!("{RCPT_ANCHOR}  {RCPT_ANCHOR}"), 1)
    });
    let err = fx.generate(&fx.stack(&[&harmless, &dup])).unwrap_err();
    expect_stack_anchor(err, "dup.patch (sha256 ", 2);
}

#[test]
fn an_anchor_removed_by_a_third_party_patch_names_that_patch() {
    let fx = Fixture::new();
    let gone = fx.third_party("auth.patch", "qmail-smtpd.c", |t| {
        t.replacen(
            RCPT_ANCHOR,
            "  if (!stralloc_cats(&rcptto,\"T\")) die();\n",
            1,
        )
    });
    let err = fx.generate(&fx.stack(&[&gone])).unwrap_err();
    expect_stack_anchor(err, "auth.patch", 0);
    // Nothing of ours was left behind in the scratch directory.
    let scratch = fx.dir.path().join("scratch");
    assert_eq!(std::fs::read_dir(scratch).unwrap().count(), 0);
}

#[test]
fn a_rewritten_dependency_list_still_gets_our_headers() {
    // SMTP AUTH appends base64.h to qmail-smtpd.o's dependency list.
    let fx = Fixture::new();
    let auth = fx.third_party("auth.patch", "Makefile", |t| {
        t.replace("commands.h\n", "commands.h base64.h\n")
    });
    let (_, ours) = fx.generate(&fx.stack(&[&auth])).unwrap();
    let diff = ours[0].to_diff();
    assert!(
        diff.contains("+qmail-smtpd.o: realrcptto.h auto_break.h auto_usera.h auto_patrn.h"),
        "{diff}"
    );
}

#[test]
fn conflicting_third_party_patches_are_refused_before_ours() {
    let fx = Fixture::new();
    let a = fx.third_party("tls.patch", "Makefile", |t| {
        t.replace(
            "\t./load qmail-smtpd rcpthosts.o y.a",
            "\t./load qmail-smtpd rcpthosts.o tls.o y.a",
        )
    });
    let b = fx.third_party("auth.patch", "Makefile", |t| {
        t.replace(
            "\t./load qmail-smtpd rcpthosts.o y.a",
            "\t./load qmail-smtpd rcpthosts.o base64.o y.a",
        )
    });
    let err = fx.generate(&fx.stack(&[&a, &b])).unwrap_err();
    let msg = err.to_string();
    match &err {
        PatchError::StackHunk {
            patch,
            on,
            file,
            hunk,
        } => {
            assert!(patch.starts_with("auth.patch (sha256 "), "{patch}");
            assert_eq!(on, "netqmail-1.06 + tls.patch");
            assert_eq!(file, "Makefile");
            assert!(hunk.starts_with("Hunk #1 FAILED at "), "{hunk}");
        }
        other => panic!("expected a hunk error, got {other}"),
    }
    assert!(
        msg.contains("without fuzz") && msg.contains("nothing of ours"),
        "{msg}"
    );
    // The stacked tree was never made; no scratch copy is left.
    let stacked = fx.dir.path().join("stacked");
    let left: Vec<_> = std::fs::read_dir(&stacked).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_patch_that_needs_fuzz_is_refused() {
    let fx = Fixture::new();
    // Made against a tree whose context lines differ slightly: patch would
    // apply it with fuzz 1; we do not.
    let old = fx.text("TARGETS").replace("a.o", "A.o");
    let new = old.replace("rcpthosts.o\n", "rcpthosts.o\nextra.o\n");
    let p = fx.write_patch("fuzzy.patch", "TARGETS", &old, &new);
    let err = fx.generate(&fx.stack(&[&p])).unwrap_err();
    assert!(
        matches!(&err, PatchError::StackHunk { file, .. } if file == "TARGETS"),
        "{err}"
    );
}

#[test]
fn strip_levels_parse_and_p0_applies() {
    let fx = Fixture::new();
    let p1 = fx.third_party("p1.patch", "FILES", |t| t.replace("z.c", "z.c\nq.c"));
    let p0_text = std::fs::read_to_string(&p1)
        .unwrap()
        .replace("--- a/FILES", "--- FILES")
        .replace("+++ b/FILES", "+++ FILES");
    let p0 = fx.dir.path().join("p0.patch");
    std::fs::write(&p0, p0_text).unwrap();
    let tp = ThirdPartyPatch::from_arg(&format!("p0:{}", p0.display())).unwrap();
    assert_eq!(tp.strip, 0);
    assert_eq!(tp.file_name, "p0.patch");
    let (stacked, _) = fx.generate(&[tp]).unwrap();
    assert!(std::fs::read_to_string(stacked.root.join("FILES"))
        .unwrap()
        .contains("q.c"));
    assert_eq!(
        ThirdPartyPatch::from_arg(p1.to_str().unwrap())
            .unwrap()
            .strip,
        1
    );
    let err = ThirdPartyPatch::from_arg("px:/x.patch")
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"px\" is not a strip level"), "{err}");
}

fn refused(fx: &Fixture, name: &str, text: &str, strip: u32, want: &str) {
    let path = fx.dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    let err = ThirdPartyPatch::load(&path, strip).unwrap_err().to_string();
    assert!(err.contains(want) && err.contains(name), "{name}: {err}");
}

#[test]
fn hostile_patch_files_are_refused_before_patch_runs() {
    let fx = Fixture::new();
    let hunk = "@@ -1 +1 @@\n-a\n+b\n";
    refused(
        &fx,
        "abs.patch",
        &format!("--- a/x\n+++ /etc/passwd\n{hunk}"),
        0,
        "absolute file name",
    );
    refused(
        &fx,
        "up.patch",
        &format!("--- a/x\n+++ b/../../x\n{hunk}"),
        1,
        "`..` component",
    );
    refused(
        &fx,
        "short.patch",
        &format!("--- x\n+++ x\n{hunk}"),
        1,
        "no component left after -p1",
    );
    refused(
        &fx,
        "link.patch",
        "diff --git a/l b/l\nnew file mode 120000\n--- /dev/null\n+++ b/l\n@@ -0,0 +1 @@\n+/etc/shadow\n",
        1,
        "only text changes",
    );
    refused(
        &fx,
        "empty.patch",
        "just some text\n",
        1,
        "not a unified diff",
    );
    let fifo = fx.dir.path().join("fifo.patch");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // on another thread: an open that blocks fails the test in 10 s
    let (tx, rx) = std::sync::mpsc::channel();
    let f = fifo.clone();
    std::thread::spawn(move || {
        let _ = tx.send(
            ThirdPartyPatch::load(&f, 1)
                .map(|_| ())
                .map_err(|e| e.to_string()),
        );
    });
    let err = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("reading a FIFO as a patch blocked")
        .unwrap_err();
    assert!(
        err.contains("not a regular file") && err.contains("fifo.patch"),
        "{err}"
    );
    let err = ThirdPartyPatch::load(&fx.dir.path().join("none.patch"), 1)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("none.patch") && err.contains("cannot read"),
        "{err}"
    );
}

#[test]
fn series_lists_third_party_patches_first_with_their_strip_level() {
    let fx = Fixture::new();
    let a = fx.third_party("tls.patch", "FILES", |t| t.replace("z.c", "z.c\nq.c"));
    let mut stack = fx.stack(&[&a]);
    let (_, ours) = fx.generate(&stack).unwrap();
    assert_eq!(
        series_file(&stack, &ours),
        "tls.patch\nnetqmail-1.06-realrcptto.patch\n"
    );
    stack[0].strip = 0;
    assert_eq!(
        series_file(&stack, &ours),
        "tls.patch -p0\nnetqmail-1.06-realrcptto.patch\n"
    );
}

#[test]
fn an_empty_stack_generates_on_the_pristine_tree() {
    let fx = Fixture::new();
    let (tree, ours) = fx.generate(&[]).unwrap();
    assert_eq!(tree.root, fx.pristine.root);
    assert_eq!(ours[0].file_name, "netqmail-1.06-realrcptto.patch");
    assert!(!fx.dir.path().join("stacked").exists());
}

#[test]
fn the_failing_hunk_is_named_not_one_that_applied_at_an_offset() {
    let fx = Fixture::new();
    let smtpd_load = "\t./load qmail-smtpd rcpthosts.o y.a";
    let a = fx.third_party("tls.patch", "Makefile", |t| {
        t.replace("# stand-in\n", "# stand-in\n# tls 1\n# tls 2\n")
            .replace(smtpd_load, "\t./load qmail-smtpd rcpthosts.o tls.o y.a")
    });
    // auth's first hunk applies 2 lines further down, its second conflicts
    let b = fx.third_party("auth.patch", "Makefile", |t| {
        t.replace(
            "\t./load qmail-qmtpd rcpthosts.o x.a",
            "\t./load qmail-qmtpd rcpthosts.o base64.o x.a",
        )
        .replace(smtpd_load, "\t./load qmail-smtpd rcpthosts.o base64.o y.a")
    });
    let diff = std::fs::read_to_string(&b).unwrap();
    assert_eq!(diff.matches("\n@@ ").count(), 2, "{diff}");
    match fx.generate(&fx.stack(&[&a, &b])).unwrap_err() {
        PatchError::StackHunk { file, hunk, .. } => {
            assert_eq!(file, "Makefile");
            assert!(hunk.starts_with("Hunk #2 FAILED at "), "{hunk}");
        }
        other => panic!("expected a hunk error, got {other}"),
    }
}
