//! Reading a given source tree safely: its entries, its files, a copy of
//! it and a digest of it. Nothing in a tree is followed or opened but
//! regular files and directories: a symbolic link, FIFO, socket or device
//! is refused with its path (a FIFO is never blocked on).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::PatchError;

pub use qmail_verify::tree::{entries, MAX_DEPTH};

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PatchError + '_ {
    move |error| PatchError::Io {
        path: path.to_path_buf(),
        error,
    }
}

impl From<qmail_verify::tree::TreeError> for PatchError {
    fn from(e: qmail_verify::tree::TreeError) -> Self {
        match e {
            qmail_verify::tree::TreeError::Io { path, error } => PatchError::Io { path, error },
            qmail_verify::tree::TreeError::Refused(why) => PatchError::Refused(why),
        }
    }
}

/// Open a file of a given tree for reading: no link is followed, a FIFO
/// does not block, and anything but a regular file is refused. Returns
/// the file and its permission bits.
pub fn open_regular(path: &Path) -> Result<(std::fs::File, u32), PatchError> {
    Ok(qmail_verify::tree::open_tree_file(path)?)
}

/// Copy a directory tree: regular files with their permission bits (at
/// least `0600`, at most `0755`) and directories. A symbolic link or any
/// other kind of file (FIFO, socket, device) in it is refused with its
/// path; nothing is followed or opened but regular files. `to` is
/// created if missing; the copied entries must not exist in it yet.
pub fn copy_tree(from: &Path, to: &Path) -> Result<(), PatchError> {
    std::fs::create_dir_all(to).map_err(io_err(to))?;
    copy_dir(from, to, 0)
}

fn copy_dir(from: &Path, to: &Path, depth: usize) -> Result<(), PatchError> {
    use std::os::unix::fs::OpenOptionsExt;
    for (src, is_dir) in entries(from, depth)? {
        let Some(name) = src.file_name() else {
            continue;
        };
        let dst = to.join(name);
        if is_dir {
            std::fs::create_dir(&dst).map_err(io_err(&dst))?;
            copy_dir(&src, &dst, depth + 1)?;
            continue;
        }
        let (mut f, mode) = open_regular(&src)?;
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&dst)
            .map_err(io_err(&dst))?;
        std::io::copy(&mut f, &mut out).map_err(io_err(&dst))?;
        out.set_permissions(std::fs::Permissions::from_mode(mode & 0o755 | 0o600))
            .map_err(io_err(&dst))?;
    }
    Ok(())
}

/// SHA-256 over a directory tree ([`qmail_verify::tree::tree_sha256`]):
/// each file's relative path, executable bit and contents, in sorted
/// order. Like [`copy_tree`], it follows no link: a symbolic link or
/// special file in the tree is refused with its path.
pub fn hash_tree(dir: &Path) -> Result<String, PatchError> {
    Ok(qmail_verify::tree::tree_sha256(dir)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mkfifo(p: &Path) {
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: c is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    }

    #[test]
    fn a_symlink_in_a_given_tree_is_refused_not_copied() {
        let t = tempfile::tempdir().unwrap();
        let secret = t.path().join("secret");
        std::fs::write(&secret, "secret\n").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let src = t.path().join("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("README"), "r\n").unwrap();
        std::os::unix::fs::symlink(&secret, src.join("sub/FAQ")).unwrap();
        let err = copy_tree(&src, &t.path().join("dst"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!(
                "{}: is a symbolic link",
                src.join("sub/FAQ").display()
            )),
            "{err}"
        );
        assert!(
            !t.path().join("dst/sub/FAQ").exists(),
            "the link was copied"
        );
        let err = hash_tree(&src).unwrap_err().to_string();
        assert!(err.contains("sub/FAQ: is a symbolic link"), "{err}");
    }

    #[test]
    fn special_files_are_refused_without_blocking() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        std::fs::create_dir(&src).unwrap();
        mkfifo(&src.join("pipe"));
        let err = copy_tree(&src, &t.path().join("dst"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("{}: is a named pipe", src.join("pipe").display())),
            "{err}"
        );
        let err = hash_tree(&src).unwrap_err().to_string();
        assert!(err.contains("pipe: is a named pipe"), "{err}");
    }

    #[test]
    fn regular_trees_copy_with_modes() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        std::fs::create_dir_all(src.join("d")).unwrap();
        std::fs::write(src.join("d/x"), "x").unwrap();
        std::fs::set_permissions(src.join("d/x"), std::fs::Permissions::from_mode(0o4775)).unwrap();
        std::fs::write(src.join("y"), "y").unwrap();
        std::fs::set_permissions(src.join("y"), std::fs::Permissions::from_mode(0o400)).unwrap();
        let dst = t.path().join("dst");
        copy_tree(&src, &dst).unwrap();
        let mode = |p: &str| std::fs::metadata(dst.join(p)).unwrap().permissions().mode() & 0o7777;
        assert_eq!((mode("d/x"), mode("y")), (0o755, 0o600));
        assert_eq!(std::fs::read(dst.join("d/x")).unwrap(), b"x");
    }

    #[test]
    fn hash_tree_sees_contents_names_and_exec_bits() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("a.c"), "int a;\n").unwrap();
        std::fs::create_dir(t.path().join("sub")).unwrap();
        std::fs::write(t.path().join("sub/b"), "x").unwrap();
        let h0 = hash_tree(t.path()).unwrap();
        assert_eq!(h0, hash_tree(t.path()).unwrap());
        std::fs::write(t.path().join("a.c"), "int b;\n").unwrap();
        let h1 = hash_tree(t.path()).unwrap();
        assert_ne!(h0, h1);
        std::fs::set_permissions(
            t.path().join("sub/b"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        assert_ne!(h1, hash_tree(t.path()).unwrap());
    }
}
