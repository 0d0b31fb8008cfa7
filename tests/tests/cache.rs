//! The build cache shared by the tests (`cc::cached_artifact_in`): many
//! threads asking for the same artefact in a cold cache all get it, it is
//! built once, and nothing is left behind but the artefact and its lock.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use qmail_difftest::cc::{self, CcError};

const THREADS: usize = 8;

/// Runs `f` on [`THREADS`] threads released together; returns the results.
fn race<T: Send + 'static>(f: impl Fn() -> T + Send + Sync + 'static) -> Vec<T> {
    let f = Arc::new(f);
    let start = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (f, start) = (Arc::clone(&f), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                f()
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn the_errno_shim_builds_from_many_threads_in_a_cold_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    cc::ensure_private_dir(&cache).unwrap();
    let c = cache.clone();
    let results = race(move || cc::errno_shim_in(&c).map_err(|e| e.to_string()));
    let paths: Vec<PathBuf> = results
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("a concurrent build failed: {e}")))
        .collect();
    assert!(paths.iter().all(|p| p == &paths[0]), "{paths:?}");
    // the shim loads: a preloaded /bin/true still runs and says nothing
    let out = std::process::Command::new("/bin/true")
        .env("LD_PRELOAD", &paths[0])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let name = paths[0].file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(names(&cache), vec![format!(".{name}.lock"), name]);
}

#[test]
fn concurrent_builders_of_one_artefact_build_it_once_and_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().to_path_buf();
    let builds = Arc::new(AtomicUsize::new(0));
    let (c, b) = (cache.clone(), Arc::clone(&builds));
    let results = race(move || {
        cc::cached_artifact_in(&c, "hello", |tmp| {
            b.fetch_add(1, Ordering::SeqCst);
            // a slow build, so that the threads really overlap
            std::thread::sleep(std::time::Duration::from_millis(200));
            std::fs::write(tmp, "#!/bin/sh\necho built\n").unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
            Ok(())
        })
        .map_err(|e| e.to_string())
    });
    for r in &results {
        assert_eq!(r.as_deref(), Ok(cache.join("hello").as_path()));
    }
    assert_eq!(builds.load(Ordering::SeqCst), 1, "built more than once");
    let out = std::process::Command::new(cache.join("hello"))
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"built\n");
    assert_eq!(names(&cache), vec![".hello.lock", "hello"]);
}

#[test]
fn a_failed_build_leaves_no_scratch_and_a_later_build_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let err = cc::cached_artifact_in(dir.path(), "x", |tmp| {
        std::fs::write(tmp, "half").unwrap();
        Err(CcError::Failed {
            cc: "cc".into(),
            args: String::new(),
            stderr: "boom".into(),
        })
    })
    .unwrap_err();
    assert!(err.to_string().contains("boom"), "{err}");
    assert_eq!(names(dir.path()), vec![".x.lock"]);
    // a build that forgets to create its output is an error naming it
    let err = cc::cached_artifact_in(dir.path(), "x", |_| Ok(())).unwrap_err();
    assert!(err.to_string().contains("did not create"), "{err}");
    let p = cc::cached_artifact_in(dir.path(), "x", |tmp| {
        std::fs::write(tmp, "whole").map_err(|source| CcError::Io {
            what: "w".into(),
            source,
        })
    })
    .unwrap();
    assert_eq!(std::fs::read(p).unwrap(), b"whole");
}

#[test]
fn copies_for_the_test_uids_are_published_concurrently_by_content() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("prog");
    std::fs::write(&src, "#!/bin/sh\necho one\n").unwrap();
    let pub_dir = dir.path().join("bin");
    cc::ensure_private_dir(&pub_dir).unwrap();
    let (s, d) = (src.clone(), pub_dir.clone());
    let results = race(move || cc::publish_copy(&s, &d, "prog").map_err(|e| e.to_string()));
    let first = results[0].clone().unwrap();
    assert!(results.iter().all(|r| r.as_ref() == Ok(&first)));
    assert_eq!(std::fs::read(&first).unwrap(), b"#!/bin/sh\necho one\n");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&first).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
    }
    // new content, new name: a stale copy is never reused
    std::fs::write(&src, "#!/bin/sh\necho two\n").unwrap();
    let second = cc::publish_copy(&src, &pub_dir, "prog").unwrap();
    assert_ne!(first, second);
    assert_eq!(std::fs::read(&second).unwrap(), b"#!/bin/sh\necho two\n");
}

#[test]
fn a_symlinked_or_foreign_cache_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let err = cc::ensure_private_dir(&link).unwrap_err().to_string();
    assert!(err.contains(&link.display().to_string()), "{err}");
    assert!(err.contains("symlink"), "{err}");
    if unsafe { libc::geteuid() } == 0 {
        let foreign = dir.path().join("foreign");
        std::fs::create_dir(&foreign).unwrap();
        std::os::unix::fs::lchown(&foreign, Some(65534), None).unwrap();
        let err = cc::ensure_private_dir(&foreign).unwrap_err().to_string();
        assert!(err.contains("owned by uid 65534"), "{err}");
    } else {
        println!("SKIPPED: the foreign-owner case needs root to chown");
    }
    // an entry name that is not a plain file name is refused
    let err = cc::cached_artifact_in(&real, "../x", |_| Ok(())).unwrap_err();
    assert!(err.to_string().contains("\"../x\""), "{err}");
}
