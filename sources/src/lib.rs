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
pub use upstream_hashes::{Provenance, Release, SourceTree, Tarball};
use upstream_hashes::{NETQMAIL, NOTQMAIL};

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
    /// A release without a tarball (notqmail-1.09) was wanted but not
    /// given.
    #[error("{full_name} has no tarball to fetch; give its tree with --source {name}=DIR")]
    NoTarball {
        /// The release name.
        name: String,
        /// The release's full name.
        full_name: String,
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

/// Use an already unpacked tree as is. `dir` may be the tree itself or a
/// directory containing `<release.full_name>/`; it must contain the
/// release's marker file (`qmail-local.c` for netqmail and notqmail,
/// `822date.c` for mess822). Its tree digest
/// ([`qmail_verify::tree::tree_sha256`]) is compared with the release's
/// pinned one: equal, the provenance is [`Provenance::TreeMatched`];
/// otherwise [`Provenance::Unverified`] (still accepted: a packager's own
/// tree is theirs to use). A tree holding a symbolic link, FIFO or device
/// is refused here, with its path.
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
    let digest = qmail_verify::tree::tree_sha256(&root).map_err(|e| bad(e.to_string()))?;
    let provenance = if release.tree_sha256 == Some(digest.as_str()) {
        Provenance::TreeMatched {
            dir: dir.to_path_buf(),
            tree_sha256: digest,
        }
    } else {
        Provenance::Unverified {
            dir: dir.to_path_buf(),
        }
    };
    Ok(SourceTree {
        release,
        root,
        provenance,
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
    /// The releases wanted, in order; by default those with a tarball
    /// (netqmail, mess822). An override may name any upstream release:
    /// `notqmail` given takes the place of `netqmail` (both are qmail; the
    /// netqmail tarball is then not fetched) unless `netqmail` is given
    /// too.
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
            releases: upstream_hashes::default_releases().collect(),
            log: true,
            download_timeout: qmail_fetch::DEFAULT_DOWNLOAD_TIMEOUT,
            limits: UnpackLimits::default(),
        }
    }
}

/// The bytes of the distfile at `path`: opened without blocking, only if
/// a regular file, and never more than one byte past the release's size
/// (so a file swapped in after fetching cannot make us read gigabytes).
fn read_distfile(path: &Path, release: &Tarball) -> Result<Vec<u8>, SourcesError> {
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

/// The releases named by the overrides, each checked to be known (in
/// `opts.releases` or an upstream release) and given once.
fn override_releases(
    opts: &SourcesOptions,
) -> Result<Vec<(&'static Release, &Path)>, SourcesError> {
    let mut overrides: Vec<(&'static Release, &Path)> = Vec::new();
    for (name, dir) in &opts.overrides {
        let found = opts.releases.iter().copied().find(|r| r.name == name);
        let Some(release) = found.or_else(|| upstream_hashes::release(name)) else {
            let mut known: Vec<&str> = opts.releases.iter().map(|r| r.name).collect();
            for r in upstream_hashes::releases() {
                if !known.contains(&r.name) {
                    known.push(r.name);
                }
            }
            return Err(SourcesError::UnknownRelease {
                name: name.clone(),
                known: known.join(", "),
            });
        };
        if overrides.iter().any(|(r, _)| r.name == release.name) {
            return Err(SourcesError::DuplicateOverride { name: name.clone() });
        }
        overrides.push((release, dir));
    }
    Ok(overrides)
}

/// The releases to obtain, in order: `opts.releases`, where a given
/// notqmail tree takes netqmail's place (unless netqmail is given too),
/// and any other given release not wanted yet appended.
fn wanted_releases(opts: &SourcesOptions, given: &[SourceTree]) -> Vec<&'static Release> {
    let is_given = |name: &str| given.iter().any(|t| t.release.name == name);
    let mut wanted = opts.releases.clone();
    if is_given(NOTQMAIL.name) && !is_given(NETQMAIL.name) {
        if let Some(pos) = wanted.iter().position(|r| r.name == NETQMAIL.name) {
            wanted[pos] = &NOTQMAIL;
        }
    }
    for t in given {
        if !wanted.iter().any(|r| r.name == t.release.name) {
            wanted.push(t.release);
        }
    }
    wanted
}

/// Fetch (or, offline, find) the tarballs of the releases that were not
/// given; a release without a tarball must be given.
fn fetch_missing(
    opts: &SourcesOptions,
    wanted: &[&'static Release],
    given: &[SourceTree],
) -> Result<Vec<Tarball>, SourcesError> {
    let mut to_fetch = Vec::new();
    for r in wanted {
        if given.iter().any(|t| t.release.name == r.name) {
            continue;
        }
        let Some(tarball) = r.tarball else {
            return Err(SourcesError::NoTarball {
                name: r.name.to_string(),
                full_name: r.full_name.to_string(),
            });
        };
        to_fetch.push(tarball);
    }
    if !to_fetch.is_empty() {
        let mut fetch_opts = qmail_fetch::FetchOptions::new(&opts.distfiles);
        fetch_opts.offline = opts.offline;
        fetch_opts.log = opts.log;
        fetch_opts.download_timeout = opts.download_timeout;
        qmail_fetch::fetch_all(&to_fetch, &fetch_opts)?;
    }
    Ok(to_fetch)
}

/// Check the fetched bytes of `tarball` once more and unpack exactly them.
fn unpack_verified(
    opts: &SourcesOptions,
    release: &'static Release,
    tarball: &Tarball,
    work_dir: &Path,
) -> Result<SourceTree, SourcesError> {
    let path = qmail_verify::distfile_path(&opts.distfiles, tarball);
    let data = read_distfile(&path, tarball)?;
    let status = qmail_verify::verify_bytes(&data, tarball);
    if !status.is_ok() {
        return Err(SourcesError::NotVerified { path, status });
    }
    let root = qmail_unpack::unpack_bytes_replacing(
        &data,
        tarball.file_name,
        tarball,
        work_dir,
        &opts.limits,
    )?;
    if opts.log {
        eprintln!("{}: unpacked into {}", tarball.file_name, root.display());
    }
    Ok(SourceTree {
        release,
        root,
        provenance: Provenance::Verified {
            sha256: tarball.sha256.to_ascii_lowercase(),
        },
    })
}

/// One [`SourceTree`] per release in `opts.releases`, in that order (a
/// given notqmail tree in netqmail's place, see
/// [`SourcesOptions::releases`]).
///
/// A release with an override is taken as is from its directory
/// ([`given_tree`]: [`Provenance::TreeMatched`] when its tree digest is
/// the pinned one, else [`Provenance::Unverified`]). Every other release is
/// fetched into `opts.distfiles` unless already there (or, offline, must
/// already be there), its bytes are checked against the size and digests,
/// and exactly those bytes are unpacked into `work_dir/<full_name>`
/// ([`Provenance::Verified`]). `work_dir` is created if needed; a tree
/// already at `work_dir/<full_name>` is replaced by the fresh one (only once
/// the fresh one is complete).
pub fn obtain_sources(
    opts: &SourcesOptions,
    work_dir: &Path,
) -> Result<Vec<SourceTree>, SourcesError> {
    // Check every override before any network or disk work.
    let mut given = Vec::new();
    for (release, dir) in override_releases(opts)? {
        given.push(given_tree(release, dir)?);
    }
    let wanted = wanted_releases(opts, &given);
    let fetched = fetch_missing(opts, &wanted, &given)?;
    if !fetched.is_empty() {
        fs::create_dir_all(work_dir).map_err(|source| SourcesError::Io {
            path: work_dir.to_path_buf(),
            source,
        })?;
    }
    let mut trees = Vec::new();
    for release in wanted {
        if let Some(pos) = given.iter().position(|t| t.release.name == release.name) {
            trees.push(given.remove(pos));
        } else if let Some(tarball) = fetched.iter().find(|t| t.name == release.name) {
            trees.push(unpack_verified(opts, release, tarball, work_dir)?);
        }
    }
    Ok(trees)
}
