//! Advisory locks on directories (`flock(2)` on the directory itself), so
//! that runs writing into the same directory do not trip over each other
//! and a run can tell the scratch files of dead runs from live ones.
//!
//! The lock is taken on an `O_RDONLY | O_DIRECTORY` descriptor of the
//! directory: no lock file is created, a read-only directory can be locked,
//! and the kernel drops the lock when the process dies, however it dies.

use std::fs::File;
use std::io;
use std::path::Path;

use rustix::fs::{FlockOperation, Mode, OFlags};

/// An exclusive `flock` on a directory, held until dropped.
#[derive(Debug)]
pub struct DirLock {
    _dir: File,
}

fn open_dir(dir: &Path) -> io::Result<File> {
    let fd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    )?;
    Ok(File::from(fd))
}

impl DirLock {
    /// Lock `dir`, waiting for another holder to release it; `waiting` is
    /// called once, before waiting, if the lock is held elsewhere.
    pub fn exclusive(dir: &Path, waiting: impl FnOnce()) -> io::Result<DirLock> {
        let file = open_dir(dir)?;
        match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(DirLock { _dir: file }),
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => waiting(),
            Err(e) => return Err(e.into()),
        }
        rustix::fs::flock(&file, FlockOperation::LockExclusive)?;
        Ok(DirLock { _dir: file })
    }

    /// Lock `dir` if nobody else holds it; `Ok(None)` if somebody does.
    pub fn try_exclusive(dir: &Path) -> io::Result<Option<DirLock>> {
        let file = open_dir(dir)?;
        match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(DirLock { _dir: file })),
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_seen_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let held = DirLock::try_exclusive(dir.path()).unwrap();
        assert!(held.is_some());
        // flock locks belong to the open file description: a second open
        // in the same process conflicts, as another process would.
        assert!(DirLock::try_exclusive(dir.path()).unwrap().is_none());
        drop(held);
        assert!(DirLock::try_exclusive(dir.path()).unwrap().is_some());
        let mut waited = false;
        let _l = DirLock::exclusive(dir.path(), || waited = true).unwrap();
        assert!(!waited);
    }

    #[test]
    fn a_lock_held_elsewhere_is_waited_for_and_announced_once() {
        let dir = tempfile::tempdir().unwrap();
        let held = DirLock::try_exclusive(dir.path()).unwrap().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let releaser = std::thread::spawn(move || {
            // release only once the waiter has announced that it waits
            rx.recv().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(50));
            drop(held);
        });
        let mut calls = 0;
        let lock = DirLock::exclusive(dir.path(), || {
            calls += 1;
            tx.send(()).unwrap();
        })
        .unwrap();
        releaser.join().unwrap();
        assert_eq!(calls, 1);
        assert!(DirLock::try_exclusive(dir.path()).unwrap().is_none());
        drop(lock);
    }

    #[test]
    fn the_directory_is_opened_close_on_exec_and_non_blocking() {
        use std::os::fd::AsRawFd;
        let dir = tempfile::tempdir().unwrap();
        let f = open_dir(dir.path()).unwrap();
        // SAFETY: fcntl on a descriptor this test owns.
        let (fd_flags, fl_flags) = unsafe {
            (
                libc::fcntl(f.as_raw_fd(), libc::F_GETFD),
                libc::fcntl(f.as_raw_fd(), libc::F_GETFL),
            )
        };
        assert_ne!(fd_flags & libc::FD_CLOEXEC, 0, "not inherited by children");
        assert_ne!(
            fl_flags & libc::O_NONBLOCK,
            0,
            "a FIFO in the way never blocks"
        );
        assert_ne!(fl_flags & libc::O_DIRECTORY, 0);
        assert_eq!(fl_flags & libc::O_ACCMODE, libc::O_RDONLY);
    }

    #[test]
    fn a_file_is_not_a_directory_to_lock() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"").unwrap();
        assert!(DirLock::try_exclusive(&f).is_err());
    }
}
