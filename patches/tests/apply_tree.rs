//! Applying patches and copying trees, on small handmade trees (no
//! upstream tree needed): `prepare_tree` / `prepare_tree_with`, the
//! scratch-tree names, the tree walk's limits and refusals, and the
//! `--with-patch` argument.

use std::path::Path;
use std::process::Command;

use qmail_patches::stack::{takes_stack, ThirdPartyPatch, MAX_PATCH_BYTES};
use qmail_patches::tree::{copy_tree, hash_tree, open_regular, MAX_DEPTH};
use qmail_patches::{
    is_scratch_tree, prepare_tree, prepare_tree_with, FileChange, Patch, PatchError, Pristine,
};
use upstream_hashes::{SourceTree, MESS822, NETQMAIL};

fn patch_available() -> bool {
    let ok = Command::new("patch").arg("--version").output().is_ok();
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "patch(1) is required in CI"
        );
        println!("SKIPPED: patch(1) not installed");
    }
    ok
}

/// A two-file "netqmail" tree in `dir/src`.
fn small_tree(dir: &Path) -> SourceTree {
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("a.c"), "one\ntwo\nthree\n").unwrap();
    std::fs::write(src.join("sub/b.c"), "b\n").unwrap();
    SourceTree::unverified(&NETQMAIL, src)
}

fn two_to_2(tree: &SourceTree) -> Patch {
    let mut ed = tree.edit("a.c").unwrap();
    ed.replace("two\n", "2\n").unwrap();
    assert_eq!(ed.text(), "one\n2\nthree\n", "the edited text so far");
    Patch {
        file_name: "netqmail-1.06-t.patch".into(),
        release: &NETQMAIL,
        description: "t".into(),
        files: vec![ed.finish(), FileChange::added("c.c", "c\n")],
    }
}

#[test]
fn prepare_tree_with_applies_into_work_release_and_replaces_an_older_one() {
    if !patch_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tree = small_tree(dir.path());
    let work = dir.path().join("work");
    let p = two_to_2(&tree);
    let out = prepare_tree_with(&tree, std::slice::from_ref(&p), &work).unwrap();
    assert_eq!(out, work.join("netqmail-1.06"));
    let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap();
    assert_eq!(read("a.c"), "one\n2\nthree\n");
    assert_eq!(read("c.c"), "c\n");
    assert_eq!(read("sub/b.c"), "b\n");
    assert!(
        !work.join(".netqmail-1.06.tmp").exists(),
        "scratch tree left"
    );
    // the pristine tree is untouched
    assert_eq!(
        std::fs::read_to_string(tree.root.join("a.c")).unwrap(),
        "one\ntwo\nthree\n"
    );
    // again, without patches: the older patched tree is replaced
    std::fs::write(out.join("stale"), "x").unwrap();
    let again = prepare_tree_with(&tree, &[], &work).unwrap();
    assert_eq!(again, out);
    assert_eq!(read("a.c"), "one\ntwo\nthree\n");
    assert!(!out.join("stale").exists() && !out.join("c.c").exists());
}

#[test]
fn prepare_tree_with_no_patches_copies_the_pristine_tree() {
    let dir = tempfile::tempdir().unwrap();
    let tree = small_tree(dir.path());
    let work = dir.path().join("work");
    let out = prepare_tree(&tree, &[], &work).unwrap();
    assert_eq!(out, work.join("netqmail-1.06"));
    assert_eq!(hash_tree(&out).unwrap(), hash_tree(&tree.root).unwrap());
}

#[test]
fn a_patch_that_does_not_apply_fails_with_patch_s_output() {
    if !patch_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tree = small_tree(dir.path());
    let p = two_to_2(&tree);
    std::fs::write(tree.root.join("a.c"), "something else entirely\n").unwrap();
    let err = prepare_tree_with(&tree, &[p], &dir.path().join("work")).unwrap_err();
    let PatchError::Command(c) = &err else {
        panic!("{err}");
    };
    assert!(c.command.contains("patch -p1 "), "{}", c.command);
    assert!(c.tail.contains("FAILED"), "{}", c.tail);
    assert!(
        err.to_string().contains("netqmail-1.06-t.patch.log"),
        "{err}"
    );
    assert!(!dir.path().join("work/netqmail-1.06").exists());
}

#[test]
fn a_missing_source_directory_is_refused_naming_the_release() {
    let dir = tempfile::tempdir().unwrap();
    let tree = SourceTree::unverified(&MESS822, dir.path().join("none"));
    let err = prepare_tree_with(&tree, &[], &dir.path().join("work"))
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with("none: no such source directory for mess822-0.58"),
        "{err}"
    );
}

#[test]
fn scratch_trees_are_dot_name_dot_tmp() {
    assert!(is_scratch_tree(".netqmail-1.06.tmp"));
    assert!(is_scratch_tree(".x.tmp"));
    for not in [
        "..tmp",
        ".tmp",
        "netqmail-1.06.tmp",
        ".netqmail-1.06",
        "x.tmp.",
        "",
    ] {
        assert!(!is_scratch_tree(not), "{not:?}");
    }
}

/// `dir/d/d/…` with `levels` directories, a file in the deepest.
fn nested(dir: &Path, levels: usize) -> std::path::PathBuf {
    let top = dir.join(format!("n{levels}"));
    let mut p = top.clone();
    for _ in 0..levels {
        p.push("d");
    }
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(p.join("f"), "x").unwrap();
    top
}

#[test]
fn trees_may_nest_max_depth_levels_not_more() {
    let dir = tempfile::tempdir().unwrap();
    let ok = nested(dir.path(), MAX_DEPTH);
    copy_tree(&ok, &dir.path().join("copy-ok")).unwrap();
    assert_eq!(
        hash_tree(&ok).unwrap(),
        hash_tree(&dir.path().join("copy-ok")).unwrap()
    );
    let deep = nested(dir.path(), MAX_DEPTH + 1);
    let want = format!("more than {MAX_DEPTH} directory levels");
    let err = copy_tree(&deep, &dir.path().join("copy-deep")).unwrap_err();
    assert!(err.to_string().contains(&want), "{err}");
    let err = hash_tree(&deep).unwrap_err();
    assert!(err.to_string().contains(&want), "{err}");
}

#[test]
fn open_regular_follows_no_link_and_does_not_block_on_a_fifo() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    assert!(open_regular(&file).is_ok());
    let err = open_regular(&link).unwrap_err().to_string();
    assert!(err.contains("link"), "{err}");
    let fifo = dir.path().join("fifo");
    let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success());
    let (tx, rx) = std::sync::mpsc::channel();
    let f = fifo.clone();
    std::thread::spawn(move || {
        let _ = tx.send(open_regular(&f).map(|_| ()).map_err(|e| e.to_string()));
    });
    let got = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("open of a FIFO blocked");
    assert!(got.unwrap_err().contains("not a regular file"));
}

#[test]
fn only_netqmail_takes_third_party_patches() {
    assert!(takes_stack(&NETQMAIL));
    assert!(!takes_stack(&MESS822));
}

const TINY: &str = "--- a/x.c\n+++ b/x.c\n@@ -1 +1 @@\n-a\n+b\n";

#[test]
fn with_patch_takes_an_optional_strip_level_p0_to_p16() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("t.patch");
    std::fs::write(&f, TINY).unwrap();
    let arg = |s: &str| ThirdPartyPatch::from_arg(s);
    let fs = f.display().to_string();
    assert_eq!(arg(&fs).unwrap().strip, 1);
    assert_eq!(arg(&format!("p0:{fs}")).unwrap().strip, 0);
    let deep = dir.path().join("deep.patch");
    let name = format!("{}x.c", "d/".repeat(16));
    std::fs::write(
        &deep,
        format!("--- {name}\n+++ {name}\n@@ -1 +1 @@\n-a\n+b\n"),
    )
    .unwrap();
    assert_eq!(arg(&format!("p16:{}", deep.display())).unwrap().strip, 16);
    let err = arg(&format!("p17:{fs}")).unwrap_err().to_string();
    assert!(err.contains("is not a strip level p0 … p16"), "{err}");
    let err = arg("p1:").unwrap_err().to_string();
    assert!(err.contains("no file name"), "{err}");
    // a colon elsewhere is part of the file name
    for name in ["p:t.patch", "ab:t.patch", "p1x:t.patch"] {
        let colon = dir.path().join(name);
        std::fs::write(&colon, TINY).unwrap();
        let p = arg(&colon.display().to_string()).unwrap();
        assert_eq!((p.file_name.as_str(), p.strip), (name, 1));
        // given relatively, `pN…:` looks like a strip level (hence `./`)
        let err = arg(name).unwrap_err().to_string();
        assert_eq!(err.contains("strip level"), name == "p1x:t.patch", "{err}");
    }
}

#[test]
fn a_hidden_patch_file_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join(".t.patch");
    std::fs::write(&f, TINY).unwrap();
    let err = ThirdPartyPatch::load(&f, 1).unwrap_err().to_string();
    assert!(err.contains("needs a plain UTF-8 name"), "{err}");
}

#[test]
fn a_patch_file_may_have_max_patch_bytes_not_one_more() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("big.patch");
    let mut text = TINY.as_bytes().to_vec();
    // one long trailing line: the size is what counts
    text.resize(MAX_PATCH_BYTES as usize, b' ');
    std::fs::write(&f, &text).unwrap();
    let p = ThirdPartyPatch::load(&f, 1).unwrap();
    assert_eq!(p.bytes.len() as u64, MAX_PATCH_BYTES);
    text.push(b' ');
    std::fs::write(&f, &text).unwrap();
    let err = ThirdPartyPatch::load(&f, 1).unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "{} bytes, more than the {MAX_PATCH_BYTES}",
            MAX_PATCH_BYTES + 1
        )),
        "{err}"
    );
}
