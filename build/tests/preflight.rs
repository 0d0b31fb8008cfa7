//! What `build()` refuses before it compiles anything (no upstream trees
//! needed: the sources here are empty directories, so any error that is
//! not one of these checks would be a different one).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use qmail_build::{build, resolve_ids, BuildOptions};

/// Options with empty fake source trees under `top`.
fn fake_options(top: &Path, prefix: &Path) -> BuildOptions {
    let nq = top.join("src-netqmail");
    let m8 = top.join("src-mess822");
    for d in [&nq, &m8] {
        std::fs::create_dir_all(d).unwrap();
    }
    common::options(&nq, &m8, prefix, &top.join("work"))
}

fn build_err(o: &BuildOptions) -> String {
    build(o).unwrap_err().to_string()
}

#[test]
fn a_dot_dot_prefix_is_refused_and_nothing_is_written() {
    let t = tempfile::tempdir().unwrap();
    let mut o = fake_options(t.path(), Path::new("/../../qtk-dotdot-test"));
    let dest = t.path().join("dest");
    o.destdir = Some(dest.clone());
    let e = build_err(&o);
    assert!(
        e.starts_with("--prefix /../../qtk-dotdot-test: has a `.` or `..` component"),
        "{e}"
    );
    assert!(!dest.exists(), "the destdir was created");
    assert!(!Path::new("/qtk-dotdot-test").exists());
    assert!(!t.path().join("work").exists(), "work was used");
    o.prefix = PathBuf::from("/opt/q");
    o.destdir = Some(dest.join("a/../../.."));
    let e = build_err(&o);
    assert!(e.starts_with("--destdir "), "{e}");
}

#[test]
fn a_file_prefix_and_the_root_prefix_are_refused_before_compiling() {
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("prefix-file");
    std::fs::write(&file, "x").unwrap();
    let e = build_err(&fake_options(t.path(), &file));
    assert!(
        e.contains(&format!("{} exists and is not a directory", file.display())),
        "{e}"
    );
    let e = build_err(&fake_options(t.path(), Path::new("/")));
    assert!(
        e.contains("--prefix /: refusing to install into the root directory itself"),
        "{e}"
    );
    assert!(!e.contains("parent directory does not exist"), "{e}");
}

#[test]
fn stale_scratch_trees_in_work_are_removed_under_the_lock() {
    let t = tempfile::tempdir().unwrap();
    let prefix = t.path().join("prefix");
    let o = fake_options(t.path(), &prefix);
    let stale = o.work.join(".netqmail-1.06.tmp");
    std::fs::create_dir_all(stale.join("sub")).unwrap();
    // The fake sources make the build fail after the lock is taken.
    let _ = build(&o);
    assert!(!stale.exists(), "{} left in place", stale.display());
    assert!(o.work.join(qmail_build::lock::LOCK_FILE).is_file());
}

#[test]
fn as_build_user_as_root_is_refused() {
    if unsafe { libc::getuid() } != 0 {
        println!("SKIPPED: as_build_user_as_root_is_refused needs root");
        return;
    }
    let e = resolve_ids(None, true, false).unwrap_err().to_string();
    assert!(
        e.contains("--as-build-user run as root")
            && e.contains("setuid root")
            && e.contains("--allow-root-ids"),
        "{e}"
    );
    let (ids, _, note) = resolve_ids(None, true, true).unwrap();
    assert_eq!(ids.uids, [0; 8]);
    assert!(note.unwrap().starts_with("WARNING: "));
}

/// Runs unprivileged, started by the test below.
#[test]
#[ignore = "started by an_unwritable_destdir_is_refused_before_compiling"]
fn child_unwritable_destdir() {
    let top = PathBuf::from(std::env::var_os("QTK_TOP").unwrap());
    let mut o = fake_options(&top, Path::new("/opt/qtk-unwritable-test"));
    let dest = top.join("dest");
    o.destdir = Some(dest.clone());
    o.work = top.join("child-work");
    let e = build_err(&o);
    assert!(
        e.contains(&format!("{} is not writable by this user", dest.display())),
        "{e}"
    );
    o.destdir = Some(dest.join("new"));
    let e = build_err(&o);
    assert!(
        e.contains(&format!(
            "{} is not writable by this user (uid {}), so {} cannot be created",
            dest.display(),
            unsafe { libc::geteuid() },
            dest.join("new/opt/qtk-unwritable-test").display()
        )),
        "{e}"
    );
    assert!(!o.work.exists(), "the build went on to the work directory");
}

#[test]
fn an_unwritable_destdir_is_refused_before_compiling() {
    let t = tempfile::tempdir().unwrap();
    let top = t.path();
    std::fs::set_permissions(top, std::fs::Permissions::from_mode(0o777)).unwrap();
    for d in ["src-netqmail", "src-mess822", "dest"] {
        std::fs::create_dir(top.join(d)).unwrap();
        common::give_to_nobody(&top.join(d));
    }
    std::fs::set_permissions(top.join("dest"), std::fs::Permissions::from_mode(0o555)).unwrap();
    common::run_child_unprivileged("child_unwritable_destdir", &[("QTK_TOP", top)]);
}
