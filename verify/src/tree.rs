//! Verifying a source tree given by hand: [`tree_sha256`], the digest of
//! a tree that `upstream-hashes` pins for each release (`TREESUMS`) and
//! that the build manifest records as `tree_sha256`, and the safe walk it
//! is built on ([`entries`], [`open_tree_file`]), which the patch stage
//! uses to copy trees too.
//!
//! Nothing in a tree is followed or opened but regular files and
//! directories: a symbolic link, FIFO, socket or device is refused with
//! its path (a FIFO is never blocked on).

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// How deep a given source tree may nest (upstream trees are flat).
pub const MAX_DEPTH: usize = 64;

/// Why a tree could not be walked.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// Reading an entry failed.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        error: io::Error,
    },
    /// The tree holds something it may not (a symbolic link, a FIFO, too
    /// deep a nesting); the message names it.
    #[error("{0}")]
    Refused(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> TreeError + '_ {
    move |error| TreeError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// What a non-regular, non-directory entry is, for messages.
fn kind_name(ty: &fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ty.is_symlink() {
        "symbolic link"
    } else if ty.is_fifo() {
        "named pipe"
    } else if ty.is_socket() {
        "socket"
    } else if ty.is_block_device() {
        "block device"
    } else if ty.is_char_device() {
        "character device"
    } else {
        "special file"
    }
}

/// The entries of a directory of a given tree, sorted by name, each
/// checked to be a regular file or a directory (`true` for a directory);
/// a symbolic link, FIFO, device or socket is refused with its path: it is
/// never followed or opened. `depth` is the directory's depth below the
/// tree's top.
pub fn entries(dir: &Path, depth: usize) -> Result<Vec<(PathBuf, bool)>, TreeError> {
    if depth > MAX_DEPTH {
        return Err(TreeError::Refused(format!(
            "{}: more than {MAX_DEPTH} directory levels in a source tree",
            dir.display()
        )));
    }
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(io_err(dir))?
        .collect::<Result<_, _>>()
        .map_err(io_err(dir))?;
    entries.sort_by_key(|e| e.file_name());
    entries
        .into_iter()
        .map(|e| {
            let p = e.path();
            let ty = e.file_type().map_err(io_err(&p))?;
            if ty.is_dir() || ty.is_file() {
                Ok((p, ty.is_dir()))
            } else {
                Err(TreeError::Refused(format!(
                    "{}: is a {}; a source tree may hold only regular files and directories (refusing it)",
                    p.display(),
                    kind_name(&ty)
                )))
            }
        })
        .collect()
}

/// Open a file of a given tree for reading: no link is followed, a FIFO
/// does not block, and anything but a regular file is refused. Returns
/// the file and its permission bits.
pub fn open_tree_file(path: &Path) -> Result<(File, u32), TreeError> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(io_err(path))?;
    let meta = f.metadata().map_err(io_err(path))?;
    if !meta.is_file() {
        return Err(TreeError::Refused(format!(
            "{}: not a regular file (refusing it)",
            path.display()
        )));
    }
    Ok((f, meta.permissions().mode()))
}

/// SHA-256 over a directory tree, lowercase hex: for each entry in sorted
/// order, `D PATH` for a directory, or `F PATH EXEC LEN` (EXEC `true` if
/// any executable bit is set) followed by the file's bytes, PATH relative
/// to `dir`. It follows no link: a symbolic link or special file in the
/// tree is refused with its path.
pub fn tree_sha256(dir: &Path) -> Result<String, TreeError> {
    fn walk(base: &Path, dir: &Path, depth: usize, h: &mut Sha256) -> Result<(), TreeError> {
        for (p, is_dir) in entries(dir, depth)? {
            let rel = p
                .strip_prefix(base)
                .unwrap_or(&p)
                .to_string_lossy()
                .into_owned();
            if is_dir {
                h.update(format!("D {rel}\n"));
                walk(base, &p, depth + 1, h)?;
            } else {
                let (mut f, mode) = open_tree_file(&p)?;
                let len = f.metadata().map_err(io_err(&p))?.len();
                h.update(format!("F {rel} {} {len}\n", mode & 0o111 != 0));
                io::copy(&mut f, h).map_err(io_err(&p))?;
            }
        }
        Ok(())
    }
    let mut h = Sha256::new();
    walk(dir, dir, 0, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_the_documented_format() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("b"), "xy").unwrap();
        fs::set_permissions(t.path().join("b"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::create_dir(t.path().join("a")).unwrap();
        fs::write(t.path().join("a/c"), "").unwrap();
        let want = Sha256::digest(b"D a\nF a/c false 0\nF b true 2\nxy");
        assert_eq!(tree_sha256(t.path()).unwrap(), hex::encode(want));
    }

    /// A chain of `levels` directories `d/d/…` under `top`.
    fn nest(top: &Path, levels: usize) -> PathBuf {
        let deepest = (0..levels).fold(top.to_path_buf(), |p, _| p.join("d"));
        fs::create_dir_all(&deepest).unwrap();
        deepest
    }

    #[test]
    fn a_tree_nested_max_depth_deep_is_walked_one_level_more_is_refused() {
        let t = tempfile::tempdir().unwrap();
        nest(t.path(), MAX_DEPTH);
        assert!(tree_sha256(t.path()).is_ok());
        let deeper = tempfile::tempdir().unwrap();
        let deepest = nest(deeper.path(), MAX_DEPTH + 1);
        let err = tree_sha256(deeper.path()).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}: more than {MAX_DEPTH} directory levels in a source tree",
                deepest.display()
            )
        );
        assert!(entries(t.path(), MAX_DEPTH + 1).is_err());
        assert!(entries(t.path(), MAX_DEPTH).is_ok());
    }

    #[test]
    fn open_tree_file_does_not_follow_a_link_to_a_regular_file() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("f"), "x").unwrap();
        std::os::unix::fs::symlink("f", t.path().join("l")).unwrap();
        let err = open_tree_file(&t.path().join("l")).unwrap_err();
        assert!(
            matches!(&err, TreeError::Io { error, .. } if error.raw_os_error() == Some(libc::ELOOP)),
            "{err}"
        );
        fs::set_permissions(t.path().join("f"), fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(
            open_tree_file(&t.path().join("f")).unwrap().1 & 0o7777,
            0o640
        );
    }

    #[test]
    fn open_tree_file_refuses_a_fifo_without_blocking_on_it() {
        let t = tempfile::tempdir().unwrap();
        let fifo = t.path().join("p");
        crate::testutil::mkfifo(&fifo);
        // A watchdog, not a speed check: an open without O_NONBLOCK waits
        // for a writer for good.
        let p = fifo.clone();
        let got = crate::testutil::within_10s(move || {
            open_tree_file(&p).map(drop).map_err(|e| e.to_string())
        });
        assert_eq!(
            got,
            Err(format!(
                "{}: not a regular file (refusing it)",
                fifo.display()
            ))
        );
    }

    #[test]
    fn a_symlink_is_refused_with_its_path() {
        let t = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/passwd", t.path().join("l")).unwrap();
        let err = tree_sha256(t.path()).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "{}: is a symbolic link",
                t.path().join("l").display()
            )),
            "{err}"
        );
    }
}
