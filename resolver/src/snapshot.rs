//! The filesystem probes the resolver makes (stat of a path, `access`
//! X_OK of a home, the open + fstat + bounded read of a `.qmail` file),
//! made with real system calls each time or, opt-in, through a per-run
//! [`FsSnapshot`] that makes each probe once and remembers its result,
//! errno included, by the exact path bytes.
//!
//! Decision (snapshot): off by default ([`crate::Resolver::new`]), so a
//! single check (realrcptto's point of view) and the differential suite
//! see the filesystem as it is at every probe. qtraceaddr turns it on
//! ([`crate::Resolver::with_fs_snapshot`]): an edit made to the
//! filesystem during a run may not be seen by that run. Memory is bounded:
//! at most [`SNAPSHOT_MAX_ENTRIES`] probes and [`SNAPSHOT_MAX_BYTES`] of
//! file contents are kept; when either is full the snapshot starts over
//! (as [`crate::CachedPasswd`] does).

use crate::bytes::{last_errno, with_cstr};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Result of `stat` on a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StatResult {
    /// stat succeeded.
    Ok {
        /// st_uid
        uid: u32,
        /// st_mode
        mode: u32,
    },
    /// stat failed.
    Err {
        /// errno
        errno: i32,
    },
}

/// `stat(path)` (follows symlinks), a real system call. A path holding a
/// NUL byte is ENOENT.
pub fn stat_path(path: &[u8]) -> StatResult {
    // SAFETY: all-zero is a valid stat buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: c is NUL-terminated, st is a valid out pointer.
    let Some(r) = with_cstr(path, |c| unsafe { libc::stat(c.as_ptr(), &mut st) }) else {
        return StatResult::Err {
            errno: libc::ENOENT,
        };
    };
    if r == -1 {
        StatResult::Err {
            errno: last_errno(),
        }
    } else {
        StatResult::Ok {
            uid: st.st_uid,
            mode: st.st_mode,
        }
    }
}

/// `access(path, X_OK)`, a real system call: `Err(errno)` when refused. A
/// path holding a NUL byte is allowed (it was never stat'ed either).
pub fn access_x(path: &[u8]) -> Result<(), i32> {
    // SAFETY: c is NUL-terminated.
    match with_cstr(path, |c| unsafe { libc::access(c.as_ptr(), libc::X_OK) }) {
        Some(-1) => Err(last_errno()),
        _ => Ok(()),
    }
}

/// The contents of a file opened by [`open_probe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Not asked for (or not a file to read).
    NotRead,
    /// The bytes, shared with the snapshot that keeps them.
    Read(Arc<[u8]>),
    /// More than the limit was read (the file grew since fstat).
    TooLarge,
    /// read failed with this errno.
    Failed {
        /// errno
        errno: i32,
    },
}

/// What `open(path, O_RDONLY|O_NONBLOCK)`, `fstat` and a bounded read
/// gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenResult {
    /// open failed (a path holding a NUL byte is ENOENT).
    OpenFailed {
        /// errno
        errno: i32,
    },
    /// fstat failed.
    FstatFailed {
        /// errno
        errno: i32,
    },
    /// Opened.
    Opened {
        /// st_mode
        mode: u32,
        /// st_size
        size: u64,
        /// The contents, when `read` asked for them.
        content: Content,
    },
}

/// `open(path, O_RDONLY|O_NONBLOCK|O_CLOEXEC)` (never blocks on a FIFO),
/// `fstat`, and, when `read(mode, size)` says so, a read of at most
/// `limit + 1` bytes (more than `limit` is [`Content::TooLarge`]). Real
/// system calls.
pub fn open_probe(path: &[u8], limit: u64, read: impl Fn(u32, u64) -> bool) -> OpenResult {
    // SAFETY: c is NUL-terminated.
    let fd = with_cstr(path, |c| unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    });
    let fd = match fd {
        None => {
            return OpenResult::OpenFailed {
                errno: libc::ENOENT,
            }
        }
        Some(-1) => {
            return OpenResult::OpenFailed {
                errno: last_errno(),
            }
        }
        Some(fd) => fd,
    };
    use std::os::fd::FromRawFd;
    // SAFETY: fd is ours; File takes ownership and closes it.
    let f = unsafe { std::fs::File::from_raw_fd(fd) };
    // SAFETY: all-zero is a valid stat buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is open, st is a valid out pointer.
    if unsafe { libc::fstat(fd, &mut st) } == -1 {
        return OpenResult::FstatFailed {
            errno: last_errno(),
        };
    }
    let (mode, size) = (st.st_mode, st.st_size as u64);
    let content = if read(mode, size) {
        use std::io::Read;
        let mut buf = Vec::with_capacity(size.min(limit) as usize);
        match f.take(limit + 1).read_to_end(&mut buf) {
            Ok(_) if buf.len() as u64 > limit => Content::TooLarge,
            Ok(_) => Content::Read(Arc::from(buf)),
            Err(e) => Content::Failed {
                errno: e.raw_os_error().unwrap_or(libc::EIO),
            },
        }
    } else {
        Content::NotRead
    };
    OpenResult::Opened {
        mode,
        size,
        content,
    }
}

/// The most probes an [`FsSnapshot`] keeps (then it starts over).
pub const SNAPSHOT_MAX_ENTRIES: usize = 1_000_000;
/// The most bytes of file contents (paths included) an [`FsSnapshot`]
/// keeps (then it starts over): 64 MiB.
pub const SNAPSHOT_MAX_BYTES: usize = 64 << 20;

/// The probes by exact path. std's default (randomly keyed SipHash) hasher:
/// the paths come from the addresses traced, which an audit takes from
/// logs that anyone who sends mail writes into, so a hash an outsider
/// could aim collisions at is not used.
type Map<V> = HashMap<Box<[u8]>, V>;

struct Entries {
    stats: Map<StatResult>,
    access: Map<Result<(), i32>>,
    opens: Map<OpenResult>,
    bytes: usize,
    counts: SnapshotCounts,
    /// [`SNAPSHOT_MAX_ENTRIES`] and [`SNAPSHOT_MAX_BYTES`] (smaller in
    /// tests).
    max_entries: usize,
    max_bytes: usize,
}

impl Default for Entries {
    fn default() -> Self {
        Entries {
            stats: Map::default(),
            access: Map::default(),
            opens: Map::default(),
            bytes: 0,
            counts: SnapshotCounts::default(),
            max_entries: SNAPSHOT_MAX_ENTRIES,
            max_bytes: SNAPSHOT_MAX_BYTES,
        }
    }
}

impl Entries {
    /// Room for one more entry of `bytes` bytes, or start over.
    fn make_room(&mut self, bytes: usize) {
        let n = self.stats.len() + self.access.len() + self.opens.len();
        if n >= self.max_entries || self.bytes + bytes > self.max_bytes {
            self.stats.clear();
            self.access.clear();
            self.opens.clear();
            self.bytes = 0;
            self.counts.restarts += 1;
        }
        self.bytes += bytes;
    }
}

/// How much work an [`FsSnapshot`] saved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnapshotCounts {
    /// Probes made with system calls.
    pub probes: u64,
    /// Probes answered from the snapshot.
    pub hits: u64,
    /// Times the snapshot was full and started over.
    pub restarts: u64,
}

/// A per-run snapshot of the filesystem probes: each is made once and its
/// result (errno included) remembered by the exact path bytes. See the
/// module's decision.
#[derive(Default)]
pub struct FsSnapshot {
    entries: Mutex<Entries>,
}

impl std::fmt::Debug for FsSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FsSnapshot")
            .field("counts", &self.counts())
            .finish()
    }
}

impl FsSnapshot {
    /// An empty snapshot.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // a panic elsewhere cannot leave a half-made entry: keep going
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The probes made and saved so far.
    pub fn counts(&self) -> SnapshotCounts {
        self.lock().counts
    }

    fn stat(&self, path: &[u8]) -> StatResult {
        let mut e = self.lock();
        if let Some(&r) = e.stats.get(path) {
            e.counts.hits += 1;
            return r;
        }
        let r = stat_path(path);
        e.counts.probes += 1;
        e.make_room(path.len());
        e.stats.insert(path.into(), r);
        r
    }

    fn access_x(&self, path: &[u8]) -> Result<(), i32> {
        let mut e = self.lock();
        if let Some(&r) = e.access.get(path) {
            e.counts.hits += 1;
            return r;
        }
        let r = access_x(path);
        e.counts.probes += 1;
        e.make_room(path.len());
        e.access.insert(path.into(), r);
        r
    }

    /// An entry made without the contents is made again when they are
    /// asked for.
    fn open(&self, path: &[u8], limit: u64, read: impl Fn(u32, u64) -> bool) -> OpenResult {
        let mut e = self.lock();
        if let Some(r) = e.opens.get(path) {
            let stale = match r {
                OpenResult::Opened {
                    mode,
                    size,
                    content: Content::NotRead,
                } => read(*mode, *size),
                _ => false,
            };
            if !stale {
                let r = r.clone();
                e.counts.hits += 1;
                return r;
            }
        }
        let r = open_probe(path, limit, read);
        e.counts.probes += 1;
        let len = match &r {
            OpenResult::Opened {
                content: Content::Read(c),
                ..
            } => c.len(),
            _ => 0,
        };
        e.make_room(path.len() + len);
        e.opens.insert(path.into(), r.clone());
        r
    }
}

/// How the resolver reaches the filesystem: real system calls, or through
/// a snapshot.
#[derive(Debug, Clone, Copy)]
pub struct Fs<'a> {
    snapshot: Option<&'a FsSnapshot>,
}

impl<'a> Fs<'a> {
    /// Real system calls for every probe.
    pub fn direct() -> Self {
        Fs { snapshot: None }
    }
    /// Through `snapshot`.
    pub fn with(snapshot: &'a FsSnapshot) -> Self {
        Fs {
            snapshot: Some(snapshot),
        }
    }
    /// [`stat_path`].
    pub fn stat(&self, path: &[u8]) -> StatResult {
        match self.snapshot {
            Some(s) => s.stat(path),
            None => stat_path(path),
        }
    }
    /// [`access_x`].
    pub fn access_x(&self, path: &[u8]) -> Result<(), i32> {
        match self.snapshot {
            Some(s) => s.access_x(path),
            None => access_x(path),
        }
    }
    /// [`open_probe`].
    pub fn open(&self, path: &[u8], limit: u64, read: impl Fn(u32, u64) -> bool) -> OpenResult {
        match self.snapshot {
            Some(s) => s.open(path, limit, read),
            None => open_probe(path, limit, read),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file longer than its size says (a /proc file says 0 bytes; a
    /// `.qmail` may also grow between fstat and the read) is too large,
    /// not cut short.
    #[test]
    fn a_file_longer_than_its_fstat_size_is_too_large() {
        let r = open_probe(b"/proc/self/status", 10, |_, _| true);
        assert!(
            matches!(
                r,
                OpenResult::Opened {
                    size: 0,
                    content: Content::TooLarge,
                    ..
                }
            ),
            "{r:?}"
        );
        let r = open_probe(b"/proc/self/status", 1 << 20, |_, _| true);
        assert!(
            matches!(&r, OpenResult::Opened { content: Content::Read(c), .. } if c.starts_with(b"Name:")),
            "{r:?}"
        );
    }

    /// A snapshot that keeps at most `entries` probes and `bytes` bytes.
    fn small(entries: usize, bytes: usize) -> FsSnapshot {
        FsSnapshot {
            entries: Mutex::new(Entries {
                max_entries: entries,
                max_bytes: bytes,
                ..Default::default()
            }),
        }
    }

    #[test]
    fn the_entry_limit_counts_every_kind_of_probe() {
        let s = small(3, 1 << 20);
        let fs = Fs::with(&s);
        fs.stat(b"/");
        let _ = fs.access_x(b"/");
        fs.open(b"/nonexistent", 10, |_, _| false);
        assert_eq!(s.counts().restarts, 0, "three entries fit");
        fs.stat(b"/tmp");
        assert_eq!(s.counts().restarts, 1, "the fourth starts over");
        // the earlier probes were dropped: made again
        fs.stat(b"/");
        assert_eq!(s.counts().probes, 5);
    }

    #[test]
    fn every_kind_of_probe_counts_once_made_and_once_answered() {
        let s = FsSnapshot::new();
        let fs = Fs::with(&s);
        for _ in 0..2 {
            fs.stat(b"/");
            let _ = fs.access_x(b"/");
            fs.open(b"/nonexistent", 10, |_, _| false);
        }
        let c = s.counts();
        assert_eq!((c.probes, c.hits, c.restarts), (3, 3, 0));
    }

    #[test]
    fn the_byte_limit_is_reached_exactly_then_passed() {
        // paths of 4 + 4 bytes fill 8 exactly; one more byte starts over
        let s = small(100, 8);
        let fs = Fs::with(&s);
        fs.stat(b"/aaa");
        fs.stat(b"/bbb");
        assert_eq!(s.counts().restarts, 0);
        assert_eq!(s.lock().bytes, 8);
        fs.stat(b"/");
        assert_eq!(s.counts().restarts, 1);
        assert_eq!(s.lock().bytes, 1, "only the new entry's bytes");
        // a file's contents count with its path
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"0123456789").unwrap();
        let path = p.to_str().unwrap().as_bytes().to_vec();
        let s = small(100, 1 << 20);
        Fs::with(&s).open(&path, 100, |_, _| true);
        assert_eq!(s.lock().bytes, path.len() + 10);
    }

    #[test]
    fn a_full_snapshot_starts_over_and_probes_again() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        let path = p.to_str().unwrap().as_bytes().to_vec();
        let s = FsSnapshot::new();
        let fs = Fs::with(&s);
        let r = fs.open(&path, 10, |_, _| true);
        assert!(matches!(
            &r,
            OpenResult::Opened { content: Content::Read(c), .. } if &c[..] == b"abc"
        ));
        assert_eq!(fs.open(&path, 10, |_, _| true), r);
        assert_eq!(s.counts().probes, 1);
        // full of contents: the next new probe empties it
        s.lock().bytes = SNAPSHOT_MAX_BYTES;
        fs.stat(b"/");
        assert_eq!(s.counts().restarts, 1);
        assert!(s.lock().bytes < 100, "memory given back");
        std::fs::write(&p, b"xyz").unwrap();
        assert!(matches!(
            fs.open(&path, 10, |_, _| true),
            OpenResult::Opened { content: Content::Read(c), .. } if &c[..] == b"xyz"
        ));
        assert_eq!(s.counts().probes, 3);
        assert_eq!(
            format!("{s:?}"),
            "FsSnapshot { counts: SnapshotCounts { probes: 3, hits: 1, restarts: 1 } }"
        );
    }
}
