//! Stage 4 of the pipeline (fetch → verify → unpack → sources → patch →
//! build → test): getting the source trees every later stage works on.
//!
//! [`obtain_sources`] turns a distfiles directory, an offline flag and
//! optional `name=DIR` overrides into one [`SourceTree`] per release:
//!
//! * a release with an override (`--source netqmail=DIR`) is taken as is
//!   from that directory, after checking that it looks like a tree of the
//!   release ([`given_tree`]); its provenance is
//!   [`Provenance::Unverified`], and [`SourceTree::provenance_note`] says so;
//! * every other release is fetched into the distfiles directory unless
//!   already there (`qmail-fetch`; offline it must already be there), its
//!   bytes are checked against the size and digests (`qmail-verify`), and
//!   exactly those bytes are unpacked (`qmail-unpack`), replacing an older
//!   tree only once the fresh one is complete
//!   ([`Provenance::Verified`]).
//!
//! Every override is checked before any network or disk work.
#![warn(missing_docs)]

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use qmail_fetch::FetchError;
use qmail_unpack::{UnpackError, UnpackLimits};
use qmail_verify::Status;
pub use upstream_hashes::{Provenance, Release, SourceTree};

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
    #[error("source override {name}={}: does not look like {full_name}: {reason}", dir.display())]
    NotASourceTree {
        /// The release name.
        name: String,
        /// The directory given.
        dir: PathBuf,
        /// The release's full name.
        full_name: String,
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

/// Use an already unpacked tree as is ([`Provenance::Unverified`]). `dir`
/// may be the tree itself or a directory containing
/// `<release.full_name>/`; it must contain the release's marker file
/// (`qmail-local.c` for netqmail, `822date.c` for mess822).
pub fn given_tree(release: &'static Release, dir: &Path) -> Result<SourceTree, SourcesError> {
    let bad = |reason: String| SourcesError::NotASourceTree {
        name: release.name.to_string(),
        dir: dir.to_path_buf(),
        full_name: release.full_name.to_string(),
        reason,
    };
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(bad("not a directory".into())),
        Err(e) => return Err(bad(e.to_string())),
    }
    let nested = dir.join(release.full_name);
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
    /// Deadline of one mirror attempt (see
    /// [`qmail_fetch::FetchOptions::download_timeout`]).
    pub download_timeout: Duration,
    /// Limits applied while unpacking.
    pub limits: UnpackLimits,
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
            download_timeout: qmail_fetch::DEFAULT_DOWNLOAD_TIMEOUT,
            limits: UnpackLimits::default(),
        }
    }
}

/// The bytes of the distfile at `path`: opened without blocking, only if
/// a regular file, and never more than one byte past the release's size
/// (so a file swapped in after fetching cannot make us read gigabytes).
fn read_distfile(path: &Path, release: &Release) -> Result<Vec<u8>, SourcesError> {
    let io_err = |source| SourcesError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = match qmail_verify::open_regular(path) {
        Ok(Some((file, _))) => file,
        Ok(None) => return Err(io_err(io::ErrorKind::NotFound.into())),
        Err(qmail_verify::VerifyError::Io { source, .. }) => return Err(io_err(source)),
        Err(e) => return Err(io_err(io::Error::other(e.to_string()))),
    };
    let mut data = Vec::new();
    file.take(release.size + 1)
        .read_to_end(&mut data)
        .map_err(io_err)?;
    Ok(data)
}

/// One [`SourceTree`] per release in `opts.releases`, in that order.
///
/// A release with an override is taken as is from its directory
/// ([`Provenance::Unverified`]). Every other release is fetched into
/// `opts.distfiles` unless already there (or, offline, must already be
/// there), its bytes are checked against the size and digests, and
/// exactly those bytes are unpacked into `work_dir/<full_name>`
/// ([`Provenance::Verified`]). `work_dir` is created if needed; a tree
/// already at `work_dir/<full_name>` is replaced by the fresh one (only once
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
        given.push(given_tree(release, dir)?);
    }

    let to_fetch: Vec<Release> = opts
        .releases
        .iter()
        .filter(|r| override_for(r).is_none())
        .map(|r| **r)
        .collect();
    if !to_fetch.is_empty() {
        let mut fetch_opts = qmail_fetch::FetchOptions::new(&opts.distfiles);
        fetch_opts.offline = opts.offline;
        fetch_opts.log = opts.log;
        fetch_opts.download_timeout = opts.download_timeout;
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
        let data = read_distfile(&path, release)?;
        let status = qmail_verify::verify_bytes(&data, release);
        if !status.is_ok() {
            return Err(SourcesError::NotVerified { path, status });
        }
        let root = qmail_unpack::unpack_bytes_replacing(
            &data,
            release.file_name,
            release,
            work_dir,
            &opts.limits,
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
