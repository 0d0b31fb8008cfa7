//! Stage 3 of the pipeline (fetch → verify → unpack → sources → patch →
//! build → test): safe unpacking of the upstream `.tar.gz` releases.
//!
//! [`unpack_archive`] accepts only regular files and directories, all under
//! the release's single top directory. Absolute paths, `..` components,
//! symbolic and hard links, device and FIFO nodes, entries outside the top
//! directory and corrupt gzip or tar data are rejected. Permissions are
//! normalised (directories 0755; files 0755 if the archive gave them any
//! execute bit, 0644 otherwise; modification times are kept, since `make`
//! depends on them). Everything is unpacked into a temporary directory
//! beside the destination and renamed into place only on success; on error
//! nothing is left behind.
//!
//! Limits ([`UnpackLimits`]): the decompressed tar stream may be at most
//! [`DEFAULT_MAX_UNPACKED_BYTES`] (256 MiB) and hold at most
//! [`DEFAULT_MAX_ENTRIES`] (20,000) members, unless configured otherwise.
//! After the tar end-of-archive only zero padding may follow; after the
//! (single) gzip member only zero bytes. Anything else is refused with an
//! error naming the archive. The archive file is opened without blocking
//! and must be a regular file.
//!
//! The staging directory is `DEST_PARENT/.unpack-XXXXXX`; a run holds an
//! `flock` on it while it exists. Staging directories nobody holds a lock
//! on were left by a run that died (killed, power loss); they are removed,
//! with a line on stderr, by the next unpack into the same parent (under a
//! short lock on the parent directory itself).
//!
//! Getting the source trees (fetch, verify, unpack or a tree given by
//! hand) is the next stage, `qmail-sources`.
#![warn(missing_docs)]

use std::cell::Cell;
use std::fs;
use std::io::{self, BufRead, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use qmail_verify::lock::DirLock;
pub use upstream_hashes::Tarball;

/// Errors from unpacking an archive.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The archive is corrupt or contains something this unpacker refuses.
    #[error("{archive}: {}{reason}", entry.as_ref().map(|e| format!("entry {e:?}: ")).unwrap_or_default())]
    Rejected {
        /// The archive's name (usually its file name).
        archive: String,
        /// The offending member's path as stored in the archive, if the
        /// problem is with one member.
        entry: Option<String>,
        /// What is wrong.
        reason: String,
    },
    /// The destination directory already exists.
    #[error("{archive}: destination {} already exists", path.display())]
    Exists {
        /// The archive's name.
        archive: String,
        /// The existing destination.
        path: PathBuf,
    },
    /// A file-system operation failed.
    #[error("{archive}: {}: {source}", path.display())]
    Io {
        /// The archive's name.
        archive: String,
        /// The file or directory concerned.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
}

/// Limits applied while unpacking, so that a hostile archive (a gzip
/// bomb, millions of tiny entries) cannot fill the disk or run for hours.
/// The defaults are far above what the qmail releases need (netqmail-1.06
/// unpacks to under 1 MB in under 500 entries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackLimits {
    /// Most bytes the decompressed tar stream may have, headers and padding
    /// included (so also the most file contents written). Default
    /// [`DEFAULT_MAX_UNPACKED_BYTES`].
    pub max_bytes: u64,
    /// Most members the archive may have (files, directories, and
    /// metadata records such as a pax global header). Default
    /// [`DEFAULT_MAX_ENTRIES`].
    pub max_entries: u64,
}

/// Default of [`UnpackLimits::max_bytes`]: 256 MiB.
pub const DEFAULT_MAX_UNPACKED_BYTES: u64 = 256 * 1024 * 1024;

/// Default of [`UnpackLimits::max_entries`]: 20,000.
pub const DEFAULT_MAX_ENTRIES: u64 = 20_000;

impl Default for UnpackLimits {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_MAX_UNPACKED_BYTES,
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }
}

/// What to do when the destination already exists.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Existing {
    Refuse,
    Replace,
}

/// Unpack the `.tar.gz` at `archive` into `dest_parent/<release.full_name>`
/// and return that path. `dest_parent` must exist; the destination must
/// not. Uses the default [`UnpackLimits`].
pub fn unpack_archive(
    archive: &Path,
    release: &Tarball,
    dest_parent: &Path,
) -> Result<PathBuf, UnpackError> {
    unpack_archive_limited(archive, release, dest_parent, &UnpackLimits::default())
}

/// [`unpack_archive`] with the given limits. The archive is opened without
/// blocking (a FIFO in its place is refused, not waited on).
pub fn unpack_archive_limited(
    archive: &Path,
    release: &Tarball,
    dest_parent: &Path,
    limits: &UnpackLimits,
) -> Result<PathBuf, UnpackError> {
    let label = archive
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| archive.display().to_string());
    let io_error = |source| UnpackError::Io {
        archive: label.clone(),
        path: archive.to_path_buf(),
        source,
    };
    let file = match qmail_verify::open_regular(archive) {
        Ok(Some((file, _))) => file,
        Ok(None) => return Err(io_error(io::ErrorKind::NotFound.into())),
        Err(qmail_verify::VerifyError::Io { source, .. }) => return Err(io_error(source)),
        Err(e @ qmail_verify::VerifyError::NotRegular { .. }) => {
            return Err(UnpackError::Rejected {
                archive: label.clone(),
                entry: None,
                reason: e.to_string(),
            })
        }
    };
    let job = Job {
        label: &label,
        release,
        dest_parent,
        existing: Existing::Refuse,
        limits,
    };
    job.run(io::BufReader::new(file))
}

/// Unpack a `.tar.gz` held in memory (named `archive_name` in messages)
/// into `dest_parent/<release.full_name>`; like [`unpack_archive`].
pub fn unpack_bytes(
    data: &[u8],
    archive_name: &str,
    release: &Tarball,
    dest_parent: &Path,
) -> Result<PathBuf, UnpackError> {
    unpack_bytes_limited(
        data,
        archive_name,
        release,
        dest_parent,
        &UnpackLimits::default(),
    )
}

/// [`unpack_bytes`] with the given limits.
pub fn unpack_bytes_limited(
    data: &[u8],
    archive_name: &str,
    release: &Tarball,
    dest_parent: &Path,
    limits: &UnpackLimits,
) -> Result<PathBuf, UnpackError> {
    let job = Job {
        label: archive_name,
        release,
        dest_parent,
        existing: Existing::Refuse,
        limits,
    };
    job.run(data)
}

/// [`unpack_bytes_limited`], except that a tree already at
/// `dest_parent/<release.full_name>` is replaced by the fresh one, and only
/// once the fresh one is complete (the old tree is moved into the staging
/// directory and removed with it).
pub fn unpack_bytes_replacing(
    data: &[u8],
    archive_name: &str,
    release: &Tarball,
    dest_parent: &Path,
    limits: &UnpackLimits,
) -> Result<PathBuf, UnpackError> {
    let job = Job {
        label: archive_name,
        release,
        dest_parent,
        existing: Existing::Replace,
        limits,
    };
    job.run(data)
}

fn entry_type_name(t: tar::EntryType) -> String {
    use tar::EntryType::*;
    match t {
        Symlink => "symbolic link".into(),
        Link => "hard link".into(),
        Char => "character device".into(),
        Block => "block device".into(),
        Fifo => "FIFO".into(),
        Continuous => "contiguous file".into(),
        GNUSparse => "sparse file".into(),
        other => format!("entry of type {:?}", other.as_byte() as char),
    }
}

/// The path of a member relative to the top directory's parent, if it is
/// acceptable.
fn checked_path(path: &Path, top_dir: &str) -> Result<PathBuf, String> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::Normal(part) => out.push(part),
            Component::ParentDir => return Err("path contains \"..\"".into()),
            Component::RootDir | Component::Prefix(_) => {
                return Err("absolute path".into());
            }
        }
    }
    match out.components().next() {
        None => Err("empty path".into()),
        Some(Component::Normal(first)) if first == top_dir => Ok(out),
        Some(_) => Err(format!("outside the top directory {top_dir}/")),
    }
}

fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}

/// Set every directory under (and including) `dir` to 0755.
fn normalise_dirs(dir: &Path) -> io::Result<()> {
    set_mode(dir, 0o755)?;
    for e in fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            normalise_dirs(&e.path())?;
        }
    }
    Ok(())
}

/// A reader that fails once more than `left` bytes have been read through
/// it, and remembers that it did (so the error can be reported as the
/// limit, whatever the tar crate makes of it).
struct Limited<R> {
    inner: R,
    left: u64,
    exceeded: Rc<Cell<bool>>,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Ask for one byte more than allowed, to notice going over.
        let want = buf
            .len()
            .min(usize::try_from(self.left + 1).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.left {
            self.exceeded.set(true);
            return Err(io::Error::other("unpacked size limit exceeded"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// The staging directory of one unpack, `DEST_PARENT/.unpack-XXXXXX`,
/// holding a lock on itself for as long as it exists, so that another run
/// can tell it from one left by a run that died.
struct Staging {
    dir: tempfile::TempDir,
    _lock: DirLock,
}

/// Remove `.unpack-*` directories in `parent` whose lock nobody holds
/// (their run died). The caller holds the lock on `parent`.
fn remove_stale_staging(parent: &Path, label: &str) -> io::Result<()> {
    for entry in fs::read_dir(parent)? {
        let entry = entry?;
        let name = entry.file_name();
        // file_type does not follow symbolic links.
        if !name.to_string_lossy().starts_with(".unpack-") || !entry.file_type()?.is_dir() {
            continue;
        }
        let path = entry.path();
        let Some(lock) = DirLock::try_exclusive(&path)? else {
            continue; // a live run's
        };
        force_remove(&path)?;
        drop(lock);
        eprintln!(
            "{label}: removed {}, left by an interrupted unpack",
            path.display()
        );
    }
    Ok(())
}

impl Staging {
    /// Under a short lock on `parent`: clear stale staging directories,
    /// then create and lock a new one.
    fn create(parent: &Path, label: &str) -> io::Result<Staging> {
        let _parent_lock = DirLock::exclusive(parent, || {})?;
        remove_stale_staging(parent, label)?;
        let dir = tempfile::Builder::new()
            .prefix(".unpack-")
            .tempdir_in(parent)?;
        let lock = DirLock::try_exclusive(dir.path())?
            .ok_or_else(|| io::Error::other("new staging directory already locked"))?;
        Ok(Staging { dir, _lock: lock })
    }
}

/// One unpack: what to unpack where, and how.
struct Job<'a> {
    label: &'a str,
    release: &'a Tarball,
    dest_parent: &'a Path,
    existing: Existing,
    limits: &'a UnpackLimits,
}

impl Job<'_> {
    fn io_err(&self, path: &Path) -> impl FnOnce(io::Error) -> UnpackError {
        let (archive, path) = (self.label.to_string(), path.to_path_buf());
        move |source| UnpackError::Io {
            archive,
            path,
            source,
        }
    }

    fn reject(&self, entry: Option<&Path>, reason: String) -> UnpackError {
        UnpackError::Rejected {
            archive: self.label.to_string(),
            entry: entry.map(|p| p.display().to_string()),
            reason,
        }
    }

    fn too_big(&self) -> UnpackError {
        self.reject(
            None,
            format!(
                "unpacks to more than {} bytes, the limit",
                self.limits.max_bytes
            ),
        )
    }

    /// "corrupt archive", or the size limit if that is what the error is.
    fn corrupt(&self, exceeded: &Cell<bool>, entry: Option<&Path>, e: io::Error) -> UnpackError {
        if exceeded.get() {
            self.too_big()
        } else {
            self.reject(entry, format!("corrupt archive: {e}"))
        }
    }

    fn run<R: BufRead>(&self, reader: R) -> Result<PathBuf, UnpackError> {
        let dest = self.dest_parent.join(self.release.full_name);
        let dest_exists = fs::symlink_metadata(&dest).is_ok();
        if dest_exists && self.existing == Existing::Refuse {
            return Err(UnpackError::Exists {
                archive: self.label.to_string(),
                path: dest,
            });
        }
        let staging =
            Staging::create(self.dest_parent, self.label).map_err(self.io_err(self.dest_parent))?;
        let stage = staging.dir.path();
        let exceeded = Rc::new(Cell::new(false));
        let limited = Limited {
            inner: flate2::bufread::GzDecoder::new(reader),
            left: self.limits.max_bytes,
            exceeded: Rc::clone(&exceeded),
        };
        let mut archive = tar::Archive::new(limited);
        self.extract_all(&mut archive, stage, &exceeded)?;
        self.check_trailing(archive.into_inner(), &exceeded)?;

        let top = stage.join(self.release.full_name);
        if !fs::symlink_metadata(&top).is_ok_and(|m| m.is_dir()) {
            return Err(self.reject(
                None,
                format!("no {}/ directory in the archive", self.release.full_name),
            ));
        }
        normalise_dirs(&top).map_err(self.io_err(&top))?;
        if dest_exists {
            // Move the old tree into the staging directory, which is removed
            // below together with it.
            let old = stage.join(".old");
            fs::rename(&dest, &old).map_err(self.io_err(&dest))?;
        }
        fs::rename(&top, &dest).map_err(self.io_err(&dest))?;
        let Staging { dir, _lock } = staging;
        let stage = dir.keep();
        force_remove(&stage).map_err(self.io_err(&stage))?;
        Ok(dest)
    }

    /// Every member of `archive` into `stage`, within the limits.
    fn extract_all<R: Read>(
        &self,
        archive: &mut tar::Archive<R>,
        stage: &Path,
        exceeded: &Cell<bool>,
    ) -> Result<(), UnpackError> {
        let entries = archive
            .entries()
            .map_err(|e| self.corrupt(exceeded, None, e))?;
        let (mut count, mut content) = (0u64, 0u64);
        for entry in entries {
            let entry = entry.map_err(|e| self.corrupt(exceeded, None, e))?;
            count += 1;
            if count > self.limits.max_entries {
                return Err(self.reject(
                    None,
                    format!("more than {} entries, the limit", self.limits.max_entries),
                ));
            }
            content = content.saturating_add(entry.header().size().unwrap_or(u64::MAX));
            if content > self.limits.max_bytes {
                let raw = entry.path().ok().map(|p| p.into_owned());
                return Err(self.reject(
                    raw.as_deref(),
                    format!(
                        "archive would unpack to more than {} bytes, the limit",
                        self.limits.max_bytes
                    ),
                ));
            }
            self.extract(entry, stage, exceeded)?;
        }
        Ok(())
    }

    /// One member into `stage`.
    fn extract<R: Read>(
        &self,
        mut entry: tar::Entry<'_, R>,
        stage: &Path,
        exceeded: &Cell<bool>,
    ) -> Result<(), UnpackError> {
        let raw = entry
            .path()
            .map_err(|e| self.reject(None, format!("corrupt archive: bad path: {e}")))?
            .into_owned();
        let kind = entry.header().entry_type();
        let is_dir = match kind {
            tar::EntryType::Regular => false,
            tar::EntryType::Directory => true,
            // A pax global header (as written by `git archive`) describes
            // no file, and the tar crate does not apply it to paths.
            tar::EntryType::XGlobalHeader => return Ok(()),
            other => {
                return Err(self.reject(
                    Some(&raw),
                    format!("{} not allowed", entry_type_name(other)),
                ))
            }
        };
        let top_dir = self.release.full_name;
        let rel = checked_path(&raw, top_dir).map_err(|r| self.reject(Some(&raw), r))?;
        let target = stage.join(&rel);
        if is_dir {
            return fs::create_dir_all(&target).map_err(self.io_err(&target));
        }
        if rel.components().count() == 1 {
            return Err(self.reject(Some(&raw), format!("top directory {top_dir}/ is a file")));
        }
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(self.io_err(parent))?;
        }
        if fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
            return Err(self.reject(Some(&raw), "file and directory of the same name".into()));
        }
        let mode = entry
            .header()
            .mode()
            .map_err(|e| self.reject(Some(&raw), format!("corrupt header: {e}")))?;
        let mtime = entry.header().mtime().ok();
        let mut out = fs::File::create(&target).map_err(self.io_err(&target))?;
        let mut buf = [0u8; 64 * 1024];
        loop {
            let n = match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.corrupt(exceeded, Some(&raw), e)),
            };
            out.write_all(&buf[..n]).map_err(self.io_err(&target))?;
        }
        // Keep the archive's modification time (make relies on it); an
        // absurd one is simply not applied.
        if let Some(t) =
            mtime.and_then(|s| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(s)))
        {
            out.set_modified(t).map_err(self.io_err(&target))?;
        }
        drop(out);
        let mode = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
        set_mode(&target, mode).map_err(self.io_err(&target))
    }

    /// After the tar end: only zero padding may follow in the tar stream,
    /// the gzip stream must end (its CRC and length are checked then), and
    /// only zero bytes may follow the gzip member.
    fn check_trailing<R: BufRead>(
        &self,
        mut rest: Limited<flate2::bufread::GzDecoder<R>>,
        exceeded: &Cell<bool>,
    ) -> Result<(), UnpackError> {
        let mut buf = [0u8; 64 * 1024];
        loop {
            let n = match rest.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.corrupt(exceeded, None, e)),
            };
            if buf[..n].iter().any(|&b| b != 0) {
                return Err(self.reject(None, "data after the end of the tar archive".into()));
            }
        }
        // Zero bytes after the gzip member (tape-style padding) are
        // tolerated, as gzip(1) does; anything else, including a second
        // gzip member, is refused.
        let mut raw = rest.inner.into_inner().take(self.limits.max_bytes);
        loop {
            let n = match raw.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.reject(None, format!("corrupt archive: {e}"))),
            };
            if buf[..n].iter().any(|&b| b != 0) {
                return Err(self.reject(
                    None,
                    "data after the end of the gzip stream (only one gzip member is allowed)"
                        .into(),
                ));
            }
        }
        Ok(())
    }
}

/// Remove a directory tree, making its directories writable first if a
/// plain removal fails (a replaced work tree may have read-only parts).
fn force_remove(dir: &Path) -> io::Result<()> {
    if fs::remove_dir_all(dir).is_ok() {
        return Ok(());
    }
    normalise_dirs(dir)?;
    fs::remove_dir_all(dir)
}
