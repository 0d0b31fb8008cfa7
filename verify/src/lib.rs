//! Stage 2 of the pipeline (fetch → verify → unpack → sources → patch →
//! build → test): check distfiles against the sizes and digests in
//! `upstream-hashes`.
//!
//! Files are streamed through SHA-256 and SHA-512 (never read whole into
//! memory by this crate); the size is checked first, so a truncated or
//! padded file is reported as `wrong size` without hashing it. The same
//! streaming [`Hasher`] is used by `qmail-fetch` while a download is in
//! flight, so a download is checked before it is ever given its real name.
//!
//! [`tree::tree_sha256`] verifies a source tree given by hand: the digest
//! of its files that `upstream-hashes` pins per release (`TREESUMS`).
//!
//! The file-safety helpers the stages around it share live here too:
//! [`open_regular`] (open without blocking, regular files only) and
//! [`lock::DirLock`] (an `flock` on a directory), used by `qmail-fetch`
//! and `qmail-unpack`.
#![warn(missing_docs)]

pub mod lock;
#[cfg(test)]
mod testutil;
pub mod tree;

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256, Sha512};
pub use upstream_hashes::Tarball;

/// What a check of one file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Size, SHA-256 and SHA-512 all match.
    Ok,
    /// There is no such file.
    Missing,
    /// The file has the wrong number of bytes.
    WrongSize {
        /// The size the release should have.
        expected: u64,
        /// The size found.
        actual: u64,
    },
    /// The size is right but a digest is not.
    WrongDigest {
        /// `"SHA-256"` or `"SHA-512"`: which digest did not match (SHA-256
        /// is checked first).
        algorithm: &'static str,
        /// The digest the release should have, lowercase hex.
        expected: String,
        /// The digest found, lowercase hex.
        actual: String,
    },
}

impl Status {
    /// True for [`Status::Ok`].
    pub fn is_ok(&self) -> bool {
        matches!(self, Status::Ok)
    }
}

/// The one-line form `cargo xtask verify` prints: `ok`, `missing`,
/// `wrong size (expected N, got M)`, `wrong digest (expected X, got Y)`.
impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Ok => f.write_str("ok"),
            Status::Missing => f.write_str("missing"),
            Status::WrongSize { expected, actual } => {
                write!(f, "wrong size (expected {expected}, got {actual})")
            }
            Status::WrongDigest {
                expected, actual, ..
            } => write!(f, "wrong digest (expected {expected}, got {actual})"),
        }
    }
}

/// Why a file could not be checked (other than the file not existing,
/// which is [`Status::Missing`]).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Something other than a regular file (after following symbolic
    /// links) is at the path: a FIFO, a device, a socket or a directory.
    /// It was not read.
    #[error("not a regular file: {} (a {kind})", path.display())]
    NotRegular {
        /// The path.
        path: PathBuf,
        /// What is there, e.g. `FIFO` or `directory`.
        kind: &'static str,
    },
    /// Opening or reading the file failed, e.g. permission denied, a
    /// component of the path is not a directory, a symbolic link loop, or
    /// a read error.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file that could not be read.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
}

impl VerifyError {
    /// The path concerned.
    pub fn path(&self) -> &Path {
        match self {
            VerifyError::NotRegular { path, .. } | VerifyError::Io { path, .. } => path,
        }
    }
}

/// Size and digests of some bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    /// Number of bytes hashed.
    pub size: u64,
    /// SHA-256, lowercase hex.
    pub sha256: String,
    /// SHA-512, lowercase hex.
    pub sha512: String,
}

impl Digests {
    /// Compare with what `release` says: size first, then SHA-256, then
    /// SHA-512.
    pub fn status(&self, release: &Tarball) -> Status {
        if self.size != release.size {
            return Status::WrongSize {
                expected: release.size,
                actual: self.size,
            };
        }
        if !self.sha256.eq_ignore_ascii_case(release.sha256) {
            return Status::WrongDigest {
                algorithm: "SHA-256",
                expected: release.sha256.to_ascii_lowercase(),
                actual: self.sha256.clone(),
            };
        }
        if !self.sha512.eq_ignore_ascii_case(release.sha512) {
            return Status::WrongDigest {
                algorithm: "SHA-512",
                expected: release.sha512.to_ascii_lowercase(),
                actual: self.sha512.clone(),
            };
        }
        Status::Ok
    }
}

/// Streaming SHA-256 + SHA-512 + byte count. Feed it with [`Hasher::update`]
/// or use it as an [`io::Write`] sink; [`Hasher::finish`] gives the
/// [`Digests`].
#[derive(Clone, Default)]
pub struct Hasher {
    sha256: Sha256,
    sha512: Sha512,
    len: u64,
}

impl Hasher {
    /// A hasher that has seen no bytes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add `data`.
    pub fn update(&mut self, data: &[u8]) {
        self.sha256.update(data);
        self.sha512.update(data);
        self.len += data.len() as u64;
    }

    /// Number of bytes added so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True if no bytes have been added.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The size and digests of everything added.
    pub fn finish(self) -> Digests {
        Digests {
            size: self.len,
            sha256: hex::encode(self.sha256.finalize()),
            sha512: hex::encode(self.sha512.finalize()),
        }
    }
}

impl io::Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Size and digests of everything `reader` yields.
pub fn hash_reader<R: Read>(mut reader: R) -> io::Result<Digests> {
    let mut hasher = Hasher::new();
    io::copy(&mut reader, &mut hasher)?;
    Ok(hasher.finish())
}

/// Check bytes held in memory against `release`.
pub fn verify_bytes(data: &[u8], release: &Tarball) -> Status {
    let mut hasher = Hasher::new();
    hasher.update(data);
    hasher.finish().status(release)
}

/// Where the distfile of `release` lives in `distfiles`.
pub fn distfile_path(distfiles: &Path, release: &Tarball) -> PathBuf {
    distfiles.join(release.file_name)
}

/// What kind of non-regular file `ft` is, for messages.
fn kind_name(ft: fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        "directory"
    } else if ft.is_fifo() {
        "FIFO"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_char_device() {
        "character device"
    } else if ft.is_block_device() {
        "block device"
    } else {
        "special file"
    }
}

/// Open `path` for reading if it is a regular file; `Ok(None)` if there
/// is nothing at `path`.
///
/// The file is opened with `O_NONBLOCK`, so a FIFO (or a device) planted
/// at the path never blocks the caller, and its type is checked with
/// `fstat` on the open descriptor before anything is read. A symbolic
/// link is followed (a distfiles directory may link to a shared cache),
/// but only a link to a regular file is accepted. `O_NONBLOCK` has no
/// effect on reading regular files.
pub fn open_regular(path: &Path) -> Result<Option<(File, fs::Metadata)>, VerifyError> {
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| VerifyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(e)),
    };
    let meta = file.metadata().map_err(err)?;
    if !meta.is_file() {
        return Err(VerifyError::NotRegular {
            path: path.to_path_buf(),
            kind: kind_name(meta.file_type()),
        });
    }
    Ok(Some((file, meta)))
}

/// Check the file at `path` against `release`.
///
/// A missing file is `Ok(Status::Missing)`; a file of the wrong size is
/// reported without being hashed. Anything but a regular file (a FIFO, a
/// device, a directory; see [`open_regular`]) is
/// [`VerifyError::NotRegular`] and is never read; any other I/O problem
/// (no permission, a file where a directory should be, a link loop, a read
/// error) is [`VerifyError::Io`], naming the file.
pub fn verify_file(path: &Path, release: &Tarball) -> Result<Status, VerifyError> {
    let Some((file, meta)) = open_regular(path)? else {
        return Ok(Status::Missing);
    };
    if meta.len() != release.size {
        return Ok(Status::WrongSize {
            expected: release.size,
            actual: meta.len(),
        });
    }
    // `take` bounds the read even if the file grows while it is hashed.
    let reader = io::BufReader::with_capacity(64 * 1024, file).take(release.size + 1);
    let digests = hash_reader(reader).map_err(|source| VerifyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(digests.status(release))
}

/// Check `release`'s distfile in the directory `distfiles`.
pub fn verify_in_dir(distfiles: &Path, release: &Tarball) -> Result<Status, VerifyError> {
    verify_file(&distfile_path(distfiles, release), release)
}

#[cfg(test)]
mod tests {
    use super::*;

    // FIPS 180-2 test vector "abc".
    const ABC_SHA256: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const ABC_SHA512: &str = "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
                              2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";

    fn abc_release() -> Tarball {
        Tarball {
            name: "abc",
            file_name: "abc-1.0.tar.gz",
            full_name: "abc-1.0",
            size: 3,
            sha256: ABC_SHA256,
            sha512: ABC_SHA512,
            mirrors: &[],
        }
    }

    #[test]
    fn hasher_matches_known_vectors_across_chunking() {
        let mut h = Hasher::new();
        assert!(h.is_empty());
        h.update(b"");
        assert!(h.is_empty(), "an empty chunk adds no bytes");
        h.update(b"a");
        h.update(b"");
        h.update(b"bc");
        assert_eq!(h.len(), 3);
        assert!(!h.is_empty());
        let d = h.finish();
        assert_eq!(d.sha256, ABC_SHA256);
        assert_eq!(d.sha512, ABC_SHA512);
        assert_eq!(hash_reader(&b"abc"[..]).unwrap(), d);
    }

    #[test]
    fn verify_file_reports_each_status() {
        let dir = tempfile::tempdir().unwrap();
        let rel = abc_release();
        let path = distfile_path(dir.path(), &rel);

        assert_eq!(verify_file(&path, &rel).unwrap(), Status::Missing);
        assert_eq!(
            verify_in_dir(dir.path(), &rel).unwrap().to_string(),
            "missing"
        );

        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(verify_file(&path, &rel).unwrap(), Status::Ok);
        assert_eq!(verify_in_dir(dir.path(), &rel).unwrap().to_string(), "ok");

        std::fs::write(&path, b"abcd").unwrap();
        let st = verify_file(&path, &rel).unwrap();
        assert_eq!(
            st,
            Status::WrongSize {
                expected: 3,
                actual: 4
            }
        );
        assert_eq!(st.to_string(), "wrong size (expected 3, got 4)");

        std::fs::write(&path, b"abd").unwrap();
        let st = verify_file(&path, &rel).unwrap();
        let actual = hash_reader(&b"abd"[..]).unwrap().sha256;
        assert_eq!(
            st.to_string(),
            format!("wrong digest (expected {ABC_SHA256}, got {actual})")
        );
        assert!(matches!(
            st,
            Status::WrongDigest {
                algorithm: "SHA-256",
                ..
            }
        ));
        assert!(!st.is_ok());
    }

    #[test]
    fn sha512_is_checked_too() {
        let mut rel = abc_release();
        let wrong512 = "0".repeat(128);
        rel.sha512 = Box::leak(wrong512.into_boxed_str());
        match verify_bytes(b"abc", &rel) {
            Status::WrongDigest {
                algorithm,
                expected,
                actual,
            } => {
                assert_eq!(algorithm, "SHA-512");
                assert_eq!(expected, "0".repeat(128));
                assert_eq!(actual, ABC_SHA512);
            }
            other => panic!("expected a SHA-512 mismatch, got {other:?}"),
        }
    }

    #[test]
    fn a_directory_in_the_way_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let rel = abc_release();
        let path = distfile_path(dir.path(), &rel);
        std::fs::create_dir(&path).unwrap();
        let err = verify_file(&path, &rel).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("not a regular file: {} (a directory)", path.display())
        );
    }

    use crate::testutil::{mkfifo, within_10s};

    #[test]
    fn a_fifo_is_reported_without_blocking_and_without_reading() {
        let dir = tempfile::tempdir().unwrap();
        let rel = abc_release();
        let path = distfile_path(dir.path(), &rel);
        mkfifo(&path);
        let p = path.clone();
        let err = within_10s(move || verify_file(&p, &abc_release())).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("not a regular file: {} (a FIFO)", path.display())
        );
        assert!(matches!(err, VerifyError::NotRegular { .. }));
        assert_eq!(err.path(), path);
    }

    #[test]
    fn a_symlink_to_a_fifo_or_device_is_refused_to_a_regular_file_followed() {
        let dir = tempfile::tempdir().unwrap();
        let rel = abc_release();
        let path = distfile_path(dir.path(), &rel);
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        std::os::unix::fs::symlink(&fifo, &path).unwrap();
        let p = path.clone();
        let err = within_10s(move || verify_file(&p, &abc_release())).unwrap_err();
        assert!(err.to_string().starts_with("not a regular file: "), "{err}");
        assert!(err.to_string().contains("abc-1.0.tar.gz"), "{err}");

        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
        let p = path.clone();
        let err = within_10s(move || verify_file(&p, &abc_release())).unwrap_err();
        assert!(err.to_string().contains("(a character device)"), "{err}");

        // A link into a shared cache holding the right bytes is fine.
        std::fs::remove_file(&path).unwrap();
        let cached = dir.path().join("cache-abc");
        std::fs::write(&cached, b"abc").unwrap();
        std::os::unix::fs::symlink(&cached, &path).unwrap();
        assert_eq!(verify_file(&path, &rel).unwrap(), Status::Ok);
    }

    #[test]
    fn open_errors_other_than_not_found_say_cannot_read() {
        let dir = tempfile::tempdir().unwrap();
        let rel = abc_release();
        // ENOTDIR: a file where the distfiles directory should be.
        let not_dir = dir.path().join("plain");
        std::fs::write(&not_dir, b"x").unwrap();
        let path = distfile_path(&not_dir, &rel);
        let err = verify_file(&path, &rel).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("cannot read {}: ", path.display())),
            "{msg}"
        );
        assert!(msg.to_lowercase().contains("not a directory"), "{msg}");
        assert!(!msg.contains("missing"), "{msg}");

        // ELOOP: a symbolic link pointing at itself.
        let path = distfile_path(dir.path(), &rel);
        std::os::unix::fs::symlink(&path, &path).unwrap();
        let msg = verify_file(&path, &rel).unwrap_err().to_string();
        assert!(
            msg.starts_with(&format!("cannot read {}: ", path.display())),
            "{msg}"
        );
        assert!(msg.to_lowercase().contains("symbolic links"), "{msg}");
    }

    #[test]
    fn permission_denied_says_cannot_read() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        if std::fs::metadata("/proc/self")
            .map(|m| m.uid())
            .unwrap_or(0)
            == 0
        {
            println!("skipped: running as root, which may read a mode 000 file");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let rel = abc_release();
        let path = distfile_path(dir.path(), &rel);
        std::fs::write(&path, b"abc").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
        let msg = verify_file(&path, &rel).unwrap_err().to_string();
        assert!(
            msg.starts_with(&format!("cannot read {}: ", path.display())),
            "{msg}"
        );
        assert!(msg.to_lowercase().contains("permission denied"), "{msg}");
    }

    #[test]
    fn a_file_longer_than_its_size_said_is_not_ok() {
        // /proc files stat as 0 bytes but read as more: like a distfile
        // that grows between the size check and the hashing, the bytes
        // past the size must count.
        let rel = Tarball {
            size: 0,
            sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            sha512: "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce\
                     47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
            ..abc_release()
        };
        assert_eq!(hash_reader(&b""[..]).unwrap().sha512, rel.sha512);
        let path = Path::new("/proc/self/status");
        if std::fs::metadata(path).ok().map(|m| m.len()) != Some(0) {
            println!("skipped: no /proc/self/status of size 0");
            return;
        }
        let st = verify_file(path, &rel).unwrap();
        assert!(
            matches!(
                st,
                Status::WrongSize {
                    expected: 0,
                    actual: 1
                }
            ),
            "{st:?}"
        );
    }

    #[test]
    fn only_ok_is_ok() {
        assert!(Status::Ok.is_ok());
        assert!(!Status::Missing.is_ok());
        assert!(!Status::WrongSize {
            expected: 3,
            actual: 4
        }
        .is_ok());
        assert!(!verify_bytes(b"abd", &abc_release()).is_ok());
        assert!(verify_bytes(b"abc", &abc_release()).is_ok());
    }
}
