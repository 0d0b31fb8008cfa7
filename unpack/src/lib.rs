//! Safe unpacking of the upstream `.tar.gz` releases, and the
//! [`SourceTree`] every later pipeline stage works on.
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
//! [`obtain_sources`] is the entry point for later stages: it turns a
//! distfiles directory, an offline flag and optional `name=DIR` overrides
//! into one verified (or explicitly unverified) [`SourceTree`] per release.
#![warn(missing_docs)]

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

pub use qmail_fetch::FetchError;
use qmail_verify::Status;
pub use upstream_hashes::Release;

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

/// What to do when the destination already exists.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Existing {
    Refuse,
    Replace,
}

/// Unpack the `.tar.gz` at `archive` into `dest_parent/<release.top_dir>`
/// and return that path. `dest_parent` must exist; the destination must
/// not.
pub fn unpack_archive(
    archive: &Path,
    release: &Release,
    dest_parent: &Path,
) -> Result<PathBuf, UnpackError> {
    let label = archive
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| archive.display().to_string());
    let file = fs::File::open(archive).map_err(|source| UnpackError::Io {
        archive: label.clone(),
        path: archive.to_path_buf(),
        source,
    })?;
    unpack_reader(
        io::BufReader::new(file),
        &label,
        release,
        dest_parent,
        Existing::Refuse,
    )
}

/// Unpack a `.tar.gz` held in memory (named `archive_name` in messages)
/// into `dest_parent/<release.top_dir>`; like [`unpack_archive`].
pub fn unpack_bytes(
    data: &[u8],
    archive_name: &str,
    release: &Release,
    dest_parent: &Path,
) -> Result<PathBuf, UnpackError> {
    unpack_reader(data, archive_name, release, dest_parent, Existing::Refuse)
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

fn unpack_reader<R: Read>(
    reader: R,
    label: &str,
    release: &Release,
    dest_parent: &Path,
    existing: Existing,
) -> Result<PathBuf, UnpackError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| UnpackError::Io {
            archive: label.to_string(),
            path,
            source,
        }
    };
    let reject = |entry: Option<&Path>, reason: String| UnpackError::Rejected {
        archive: label.to_string(),
        entry: entry.map(|p| p.display().to_string()),
        reason,
    };

    let dest = dest_parent.join(release.top_dir);
    let dest_exists = fs::symlink_metadata(&dest).is_ok();
    if dest_exists && existing == Existing::Refuse {
        return Err(UnpackError::Exists {
            archive: label.to_string(),
            path: dest,
        });
    }
    let staging = tempfile::Builder::new()
        .prefix(".unpack-")
        .tempdir_in(dest_parent)
        .map_err(io_err(dest_parent))?;
    let stage = staging.path();

    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(reader));
    let entries = archive
        .entries()
        .map_err(|e| reject(None, format!("corrupt archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| reject(None, format!("corrupt archive: {e}")))?;
        let raw = entry
            .path()
            .map_err(|e| reject(None, format!("corrupt archive: bad path: {e}")))?
            .into_owned();
        let kind = entry.header().entry_type();
        let is_dir = match kind {
            tar::EntryType::Regular => false,
            tar::EntryType::Directory => true,
            // A pax global header (as written by `git archive`) describes
            // no file, and the tar crate does not apply it to paths.
            tar::EntryType::XGlobalHeader => continue,
            other => {
                return Err(reject(
                    Some(&raw),
                    format!("{} not allowed", entry_type_name(other)),
                ))
            }
        };
        let rel = checked_path(&raw, release.top_dir).map_err(|r| reject(Some(&raw), r))?;
        let target = stage.join(&rel);
        if is_dir {
            fs::create_dir_all(&target).map_err(io_err(&target))?;
            continue;
        }
        if rel.components().count() == 1 {
            return Err(reject(
                Some(&raw),
                format!("top directory {}/ is a file", release.top_dir),
            ));
        }
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        if fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
            return Err(reject(
                Some(&raw),
                "file and directory of the same name".into(),
            ));
        }
        let mode = entry
            .header()
            .mode()
            .map_err(|e| reject(Some(&raw), format!("corrupt header: {e}")))?;
        let mtime = entry.header().mtime().ok();
        let mut out = fs::File::create(&target).map_err(io_err(&target))?;
        let mut buf = [0u8; 64 * 1024];
        loop {
            let n = match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(reject(Some(&raw), format!("corrupt archive: {e}"))),
            };
            out.write_all(&buf[..n]).map_err(io_err(&target))?;
        }
        // Keep the archive's modification time (make relies on it); an
        // absurd one is simply not applied.
        if let Some(t) =
            mtime.and_then(|s| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(s)))
        {
            out.set_modified(t).map_err(io_err(&target))?;
        }
        drop(out);
        let mode = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
        set_mode(&target, mode).map_err(io_err(&target))?;
    }
    // Read the gzip stream to its end so its CRC and length are checked.
    let mut gz = archive.into_inner();
    io::copy(&mut gz, &mut io::sink())
        .map_err(|e| reject(None, format!("corrupt archive: {e}")))?;

    let top = stage.join(release.top_dir);
    if !fs::symlink_metadata(&top).is_ok_and(|m| m.is_dir()) {
        return Err(reject(
            None,
            format!("no {}/ directory in the archive", release.top_dir),
        ));
    }
    normalise_dirs(&top).map_err(io_err(&top))?;
    if dest_exists {
        // Move the old tree into the staging directory, which is removed
        // below together with it.
        let old = stage.join(".old");
        fs::rename(&dest, &old).map_err(io_err(&dest))?;
    }
    fs::rename(&top, &dest).map_err(io_err(&dest))?;
    let stage = staging.keep();
    force_remove(&stage).map_err(io_err(&stage))?;
    Ok(dest)
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

/// Where a [`SourceTree`] came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provenance {
    /// Unpacked from the distfile, whose size and SHA-256/SHA-512 matched
    /// `upstream-hashes`.
    Verified {
        /// SHA-256 of the tarball it was unpacked from.
        sha256: String,
    },
    /// An unpacked tree given by hand (`--source name=DIR`), used as is.
    Unverified {
        /// The directory given.
        dir: PathBuf,
    },
}

/// An unpacked source tree of one release, as later stages use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceTree {
    /// The release.
    pub release: &'static Release,
    /// The tree's top directory (the one containing e.g. `qmail-local.c`).
    pub root: PathBuf,
    /// Where it came from.
    pub provenance: Provenance,
}

impl SourceTree {
    /// Use an already unpacked tree as is (unverified). `dir` may be the
    /// tree itself or a directory containing `<release.top_dir>/`; it must
    /// contain the release's marker file (`qmail-local.c` for netqmail,
    /// `822date.c` for mess822).
    pub fn from_dir(release: &'static Release, dir: &Path) -> Result<SourceTree, SourcesError> {
        let bad = |reason: String| SourcesError::NotASourceTree {
            name: release.name.to_string(),
            dir: dir.to_path_buf(),
            top_dir: release.top_dir.to_string(),
            reason,
        };
        match fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(bad("not a directory".into())),
            Err(e) => return Err(bad(e.to_string())),
        }
        let nested = dir.join(release.top_dir);
        let root = if dir.join(release.marker_file).is_file() {
            dir.to_path_buf()
        } else if nested.join(release.marker_file).is_file() {
            nested
        } else {
            return Err(bad(format!("no {} in it", release.marker_file)));
        };
        let root = root.canonicalize().map_err(|e| bad(e.to_string()))?;
        Ok(SourceTree {
            release,
            root,
            provenance: Provenance::Unverified {
                dir: dir.to_path_buf(),
            },
        })
    }

    /// True if the tree was unpacked from a verified upstream tarball.
    pub fn is_verified(&self) -> bool {
        matches!(self.provenance, Provenance::Verified { .. })
    }

    /// One line saying where the tree came from, for every stage to print,
    /// e.g. `netqmail-1.06: unpacked from netqmail-1.06.tar.gz (SHA-256
    /// 8e7d…, verified)` or `netqmail-1.06: taken as is from /src/nq;
    /// provenance NOT verified`.
    pub fn provenance_note(&self) -> String {
        match &self.provenance {
            Provenance::Verified { sha256 } => format!(
                "{}: unpacked from {} (size and SHA-256 {} verified)",
                self.release.top_dir, self.release.file_name, sha256
            ),
            Provenance::Unverified { .. } => format!(
                "{}: taken as is from {}; provenance NOT verified",
                self.release.top_dir,
                self.root.display()
            ),
        }
    }
}

/// Errors from [`obtain_sources`].
#[derive(Debug, thiserror::Error)]
pub enum SourcesError {
    /// A release could not be fetched (the message says how to fetch it by
    /// hand).
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// A verified archive could not be unpacked.
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    /// A file-system operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
    /// An override names no known release.
    #[error("source override {name}=…: no release called {name:?} (known: {known})")]
    UnknownRelease {
        /// The name given.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },
    /// Two overrides for the same release.
    #[error("source for {name} given more than once")]
    DuplicateOverride {
        /// The release name.
        name: String,
    },
    /// An override directory is not a source tree of the release.
    #[error("source override {name}={}: does not look like {top_dir}: {reason}", dir.display())]
    NotASourceTree {
        /// The release name.
        name: String,
        /// The directory given.
        dir: PathBuf,
        /// The release's top directory name.
        top_dir: String,
        /// What is wrong.
        reason: String,
    },
    /// The distfile changed between fetching and reading it.
    #[error("{}: {status}; refusing to unpack it", path.display())]
    NotVerified {
        /// The distfile.
        path: PathBuf,
        /// What the check found.
        status: Status,
    },
}

/// Parse `NAME=DIR` (as given to `--source`).
pub fn parse_source_override(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((name, dir)) if !name.is_empty() && !dir.is_empty() => {
            Ok((name.to_string(), PathBuf::from(dir)))
        }
        _ => Err(format!(
            "expected NAME=DIR (e.g. netqmail=/src/netqmail-1.06), got {s:?}"
        )),
    }
}

/// Inputs of [`obtain_sources`].
#[derive(Debug, Clone)]
pub struct SourcesOptions {
    /// The distfiles directory (see `qmail-fetch`).
    pub distfiles: PathBuf,
    /// Never touch the network.
    pub offline: bool,
    /// `(release name, directory)`: use this unpacked tree as is instead of
    /// the verified tarball.
    pub overrides: Vec<(String, PathBuf)>,
    /// The releases wanted, in order; by default every upstream release.
    pub releases: Vec<&'static Release>,
    /// Progress and log lines on stderr.
    pub log: bool,
}

impl SourcesOptions {
    /// Every upstream release from `distfiles`, online, no overrides,
    /// logging on.
    pub fn new(distfiles: impl Into<PathBuf>) -> Self {
        Self {
            distfiles: distfiles.into(),
            offline: false,
            overrides: Vec::new(),
            releases: upstream_hashes::releases().iter().collect(),
            log: true,
        }
    }
}

/// One [`SourceTree`] per release in `opts.releases`, in that order.
///
/// A release with an override is taken as is from its directory
/// ([`Provenance::Unverified`]). Every other release is fetched into
/// `opts.distfiles` unless already there (or, offline, must already be
/// there), its bytes are checked against the size and digests, and
/// exactly those bytes are unpacked into `work_dir/<top_dir>`
/// ([`Provenance::Verified`]). `work_dir` is created if needed; a tree
/// already at `work_dir/<top_dir>` is replaced by the fresh one (only once
/// the fresh one is complete).
pub fn obtain_sources(
    opts: &SourcesOptions,
    work_dir: &Path,
) -> Result<Vec<SourceTree>, SourcesError> {
    let mut overrides: Vec<(&'static Release, &Path)> = Vec::new();
    for (name, dir) in &opts.overrides {
        let Some(release) = opts.releases.iter().copied().find(|r| r.name == name) else {
            return Err(SourcesError::UnknownRelease {
                name: name.clone(),
                known: opts
                    .releases
                    .iter()
                    .map(|r| r.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        if overrides.iter().any(|(r, _)| r.name == release.name) {
            return Err(SourcesError::DuplicateOverride { name: name.clone() });
        }
        overrides.push((release, dir));
    }
    let override_for = |r: &Release| overrides.iter().find(|(o, _)| o.name == r.name);

    // Check every override before any network or disk work.
    let mut given = Vec::new();
    for (release, dir) in &overrides {
        given.push(SourceTree::from_dir(release, dir)?);
    }

    let to_fetch: Vec<Release> = opts
        .releases
        .iter()
        .filter(|r| override_for(r).is_none())
        .map(|r| **r)
        .collect();
    if !to_fetch.is_empty() {
        let fetch_opts = qmail_fetch::FetchOptions {
            distfiles: opts.distfiles.clone(),
            offline: opts.offline,
            log: opts.log,
        };
        qmail_fetch::fetch_all(&to_fetch, &fetch_opts)?;
        fs::create_dir_all(work_dir).map_err(|source| SourcesError::Io {
            path: work_dir.to_path_buf(),
            source,
        })?;
    }

    let mut trees = Vec::new();
    for release in &opts.releases {
        if let Some(pos) = given.iter().position(|t| t.release.name == release.name) {
            trees.push(given.remove(pos));
            continue;
        }
        let path = qmail_verify::distfile_path(&opts.distfiles, release);
        let data = fs::read(&path).map_err(|source| SourcesError::Io {
            path: path.clone(),
            source,
        })?;
        let status = qmail_verify::verify_bytes(&data, release);
        if !status.is_ok() {
            return Err(SourcesError::NotVerified { path, status });
        }
        let root = unpack_reader(
            &data[..],
            release.file_name,
            release,
            work_dir,
            Existing::Replace,
        )?;
        if opts.log {
            eprintln!("{}: unpacked into {}", release.file_name, root.display());
        }
        trees.push(SourceTree {
            release,
            root,
            provenance: Provenance::Verified {
                sha256: release.sha256.to_ascii_lowercase(),
            },
        });
    }
    Ok(trees)
}
