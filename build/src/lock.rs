//! An exclusive lock on a work directory, so that two builds (or a build
//! and `cargo xtask patch`) sharing one do not replace each other's trees.
//!
//! The lock is `flock(LOCK_EX)` on `WORK/.qtk-lock`, held for as long as
//! the [`WorkLock`] lives and released by the kernel when the process
//! ends, however it ends. A second run waits for the first (after saying
//! so, with the holder's pid) rather than failing. Under the lock, scratch
//! left by runs that died (for instance `WORK/.netqmail-1.06.tmp`) can be
//! removed safely: no live run is using it.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;
use rustix::io::Errno;

use crate::{io_err, BuildError};

/// The lock file's name inside the work directory.
pub const LOCK_FILE: &str = ".qtk-lock";

/// A held lock on a work directory (released on drop).
#[derive(Debug)]
pub struct WorkLock {
    _file: File,
    path: PathBuf,
}

impl WorkLock {
    /// Lock the work directory `dir` (created if missing). If another
    /// process holds the lock, `on_wait` is called once with a message
    /// naming the lock file and the holder, then this waits for it.
    pub fn acquire(dir: &Path, on_wait: impl FnOnce(&str)) -> Result<WorkLock, BuildError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let path = dir.join(LOCK_FILE);
        let open = |write: bool| {
            std::fs::OpenOptions::new()
                .read(true)
                .write(write)
                .create(write)
                .truncate(false)
                .mode(0o644)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open(&path)
        };
        let mut file = match open(true) {
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => open(false),
            other => other,
        }
        .map_err(io_err(&path))?;
        if !file.metadata().map_err(io_err(&path))?.is_file() {
            return Err(BuildError::Invalid(format!(
                "{}: the lock file is not a regular file",
                path.display()
            )));
        }
        match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(Errno::WOULDBLOCK) => {
                let mut holder = String::new();
                let _ = (&file).take(64).read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => "another process".to_string(),
                    h => h.to_string(),
                };
                on_wait(&format!(
                    "{} is locked by {holder} (another build or patch using this work directory); waiting for it to finish",
                    path.display()
                ));
                rustix::fs::flock(&file, FlockOperation::LockExclusive).map_err(|e| {
                    BuildError::Io {
                        path: path.clone(),
                        error: e.into(),
                    }
                })?;
            }
            Err(e) => {
                return Err(BuildError::Io {
                    path,
                    error: e.into(),
                })
            }
        }
        // Say who holds it, for the message above (best effort: the file
        // may be read-only to us).
        let _ = file.set_len(0).and_then(|()| {
            file.rewind()?;
            write!(file, "pid {}", std::process::id())
        });
        Ok(WorkLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Remove the entries of `dir` whose names satisfy `stale` (scratch of
    /// runs that died: call this only for directories this lock guards);
    /// symbolic links are removed, not followed. Returns what was removed.
    pub fn remove_stale(
        &self,
        dir: &Path,
        stale: impl Fn(&str) -> bool,
    ) -> Result<Vec<PathBuf>, BuildError> {
        let rd = match std::fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(dir)(e)),
        };
        let mut removed = Vec::new();
        for e in rd {
            let e = e.map_err(io_err(dir))?;
            let name = e.file_name();
            if !name.to_str().is_some_and(&stale) {
                continue;
            }
            let p = e.path();
            let is_dir = e.file_type().map_err(io_err(&p))?.is_dir();
            if is_dir {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            }
            .map_err(io_err(&p))?;
            removed.push(p);
        }
        removed.sort();
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qmail_patches::is_scratch_tree;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn a_second_lock_waits_for_the_first() {
        let t = tempfile::tempdir().unwrap();
        let work = t.path().join("work");
        let first = WorkLock::acquire(&work, |_| panic!("nobody holds it yet")).unwrap();
        let (tx, rx) = mpsc::channel();
        let w = work.clone();
        let h = std::thread::spawn(move || {
            let tx2 = tx.clone();
            let l = WorkLock::acquire(&w, move |m| tx2.send(format!("wait: {m}")).unwrap());
            tx.send("got it".to_string()).unwrap();
            l.map(|_| ())
        });
        let msg = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(
            msg.starts_with("wait: ")
                && msg.contains(&work.join(LOCK_FILE).display().to_string())
                && msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        assert!(
            rx.recv_timeout(Duration::from_millis(300)).is_err(),
            "the second lock did not wait"
        );
        drop(first);
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), "got it");
        h.join().unwrap().unwrap();
    }

    #[test]
    fn stale_scratch_is_removed_and_links_not_followed() {
        let t = tempfile::tempdir().unwrap();
        let work = t.path().join("work");
        std::fs::create_dir_all(work.join(".netqmail-1.06.tmp/sub")).unwrap();
        std::fs::write(work.join(".netqmail-1.06.tmp/sub/f"), "x").unwrap();
        let outside = t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), "keep").unwrap();
        std::os::unix::fs::symlink(&outside, work.join(".evil.tmp")).unwrap();
        std::fs::create_dir(work.join("netqmail-1.06")).unwrap();
        let lock = WorkLock::acquire(&work, |_| {}).unwrap();
        let removed = lock.remove_stale(&work, is_scratch_tree).unwrap();
        assert_eq!(
            removed,
            [work.join(".evil.tmp"), work.join(".netqmail-1.06.tmp")]
        );
        assert!(outside.join("keep").is_file(), "followed a link");
        assert!(work.join("netqmail-1.06").is_dir());
        assert!(work.join(LOCK_FILE).is_file());
    }

    #[test]
    fn a_link_or_a_directory_at_the_lock_file_is_refused_by_name() {
        let t = tempfile::tempdir().unwrap();
        let work = t.path().join("work");
        std::fs::create_dir(&work).unwrap();
        let outside = t.path().join("outside");
        std::fs::write(&outside, "keep").unwrap();
        std::os::unix::fs::symlink(&outside, work.join(LOCK_FILE)).unwrap();
        let err = WorkLock::acquire(&work, |_| {}).unwrap_err().to_string();
        let lock = work.join(LOCK_FILE);
        assert!(err.starts_with(&format!("{}: ", lock.display())), "{err}");
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
        std::fs::remove_file(&lock).unwrap();
        std::fs::create_dir(&lock).unwrap();
        let err = WorkLock::acquire(&work, |_| {}).unwrap_err();
        match &err {
            BuildError::Io { path, error } => {
                assert_eq!(path, &lock);
                assert_eq!(error.kind(), std::io::ErrorKind::IsADirectory, "{err}");
            }
            _ => panic!("{err}"),
        }
    }

    /// A lock file this user may only read still locks (a work directory
    /// shared with the user who made it).
    fn check_read_only_lock_file() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let lock = t.path().join(LOCK_FILE);
        std::fs::write(&lock, "").unwrap();
        std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o444)).unwrap();
        let l = WorkLock::acquire(t.path(), |_| panic!("nobody holds it")).unwrap();
        assert_eq!(l.path(), lock);
        // Not inherited by make and the compilers: a build that dies
        // while they run leaves the lock free.
        let fd_flags = rustix::io::fcntl_getfd(&l._file).unwrap();
        assert!(fd_flags.contains(rustix::io::FdFlags::CLOEXEC));
    }

    #[test]
    fn a_read_only_lock_file_still_locks() {
        check_read_only_lock_file();
        // Not in the child: with the lock file opened blocking, the child
        // would hang on the FIFO (a timeout, hiding other failures) and
        // outlive the test.
        let t2 = tempfile::tempdir().unwrap();
        let fifo = t2.path().join(LOCK_FILE);
        let mode = rustix::fs::Mode::from_raw_mode(0o444);
        rustix::fs::mknodat(rustix::fs::CWD, &fifo, rustix::fs::FileType::Fifo, mode, 0).unwrap();
        let err = WorkLock::acquire(t2.path(), |_| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("the lock file is not a regular file"), "{err}");
        crate::testutil::run_as_nobody("lock::tests::child_read_only_lock_file");
    }

    #[test]
    #[ignore = "run by a_read_only_lock_file_still_locks"]
    fn child_read_only_lock_file() {
        check_read_only_lock_file();
    }

    #[test]
    fn stale_scratch_of_a_missing_dir_is_nothing_and_of_a_file_an_error() {
        let t = tempfile::tempdir().unwrap();
        let lock = WorkLock::acquire(t.path(), |_| {}).unwrap();
        let none = lock
            .remove_stale(&t.path().join("missing"), |_| true)
            .unwrap();
        assert!(none.is_empty());
        let file = t.path().join("file");
        std::fs::write(&file, "").unwrap();
        let err = lock.remove_stale(&file, |_| true).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}: ", file.display())), "{err}");
        assert!(file.is_file());
    }
}
