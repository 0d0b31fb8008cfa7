//! Scratch copies of pristine trees, with the generated patches applied.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use qmail_patches::{Patch, PatchDef, Source};

use crate::{io_err, run_logged, BuildError};

/// How deep a given source tree may nest (upstream trees are flat).
pub const MAX_DEPTH: usize = 64;

/// What a non-regular, non-directory entry is, for messages.
fn kind_name(ty: &std::fs::FileType) -> &'static str {
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
/// checked to be a regular file or a directory (a symbolic link, FIFO,
/// device or socket is refused with its path: it is never followed or
/// opened). `depth` is the directory's depth below the tree's top.
pub(crate) fn tree_entries(dir: &Path, depth: usize) -> Result<Vec<(PathBuf, bool)>, BuildError> {
    if depth > MAX_DEPTH {
        return Err(BuildError::Invalid(format!(
            "{}: more than {MAX_DEPTH} directory levels in a source tree",
            dir.display()
        )));
    }
    let mut entries: Vec<_> = std::fs::read_dir(dir)
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
                Err(BuildError::Invalid(format!(
                    "{}: is a {}; a source tree may hold only regular files and directories (refusing it)",
                    p.display(),
                    kind_name(&ty)
                )))
            }
        })
        .collect()
}

/// Open a file of a given tree for reading: no link is followed, a FIFO
/// does not block, and anything but a regular file is refused.
pub(crate) fn open_regular(path: &Path) -> Result<(std::fs::File, u32), BuildError> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(io_err(path))?;
    let meta = f.metadata().map_err(io_err(path))?;
    if !meta.is_file() {
        return Err(BuildError::Invalid(format!(
            "{}: not a regular file (refusing it)",
            path.display()
        )));
    }
    Ok((f, meta.permissions().mode()))
}

/// Copy a directory tree: regular files with their permission bits (at
/// least `0600`, at most `0755`) and directories. A symbolic link or any
/// other kind of file (FIFO, socket, device) in it is refused with its
/// path; nothing is followed or opened but regular files. `to` is
/// created if missing; the copied entries must not exist in it yet.
pub fn copy_tree(from: &Path, to: &Path) -> Result<(), BuildError> {
    std::fs::create_dir_all(to).map_err(io_err(to))?;
    copy_dir(from, to, 0)
}

fn copy_dir(from: &Path, to: &Path, depth: usize) -> Result<(), BuildError> {
    use std::os::unix::fs::OpenOptionsExt;
    for (src, is_dir) in tree_entries(from, depth)? {
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

/// Generate the patches `defs` that apply to `release`, from the pristine
/// tree `src`, in series order. Patches for other releases are skipped.
pub fn generate_patches(
    src: &Path,
    release: &'static str,
    defs: &[&PatchDef],
) -> Result<Vec<Patch>, BuildError> {
    let source = Source::new(src, release);
    defs.iter()
        .filter(|d| d.release == release)
        .map(|d| {
            (d.generate)(&source).map_err(|source| BuildError::Patch {
                name: d.name.to_string(),
                source,
            })
        })
        .collect()
}

/// Apply patches to `tree` with `patch -p1` (their `to_diff()` text, the
/// same bytes `cargo xtask patch --emit` writes).
pub fn apply_patches(tree: &Path, patches: &[Patch]) -> Result<(), BuildError> {
    for p in patches {
        let file = tree.join(format!(".qtk-{}", p.file_name));
        std::fs::write(&file, p.to_diff()).map_err(io_err(&file))?;
        let mut cmd = Command::new("patch");
        cmd.args([
            "-p1",
            "--batch",
            "--forward",
            "--no-backup-if-mismatch",
            "-i",
        ])
        .arg(&file)
        .current_dir(tree);
        run_logged(cmd, &tree.join(format!(".qtk-{}.log", p.file_name)))?;
    }
    Ok(())
}

/// Copy the pristine tree `src` of `release` to `work/<release>` and apply
/// the generated patches of `patches` that belong to `release` with
/// `patch -p1`. The copy is made under a temporary name and renamed into
/// place when complete; an older `work/<release>` is replaced. Returns the
/// patched tree.
pub fn prepare_tree(
    src: &Path,
    release: &'static str,
    patches: &[&PatchDef],
    work: &Path,
) -> Result<PathBuf, BuildError> {
    let generated = generate_patches(src, release, patches)?;
    prepare_tree_with(src, release, &generated, work)
}

/// [`prepare_tree`] with already generated patches.
pub fn prepare_tree_with(
    src: &Path,
    release: &str,
    patches: &[Patch],
    work: &Path,
) -> Result<PathBuf, BuildError> {
    if !src.is_dir() {
        return Err(BuildError::Invalid(format!(
            "{}: no such source directory for {release}",
            src.display()
        )));
    }
    std::fs::create_dir_all(work).map_err(io_err(work))?;
    let final_dir = work.join(release);
    let tmp = work.join(format!(".{release}.tmp"));
    for d in [&tmp, &final_dir] {
        if d.exists() {
            std::fs::remove_dir_all(d).map_err(io_err(d))?;
        }
    }
    copy_tree(src, &tmp)?;
    apply_patches(&tmp, patches)?;
    std::fs::rename(&tmp, &final_dir).map_err(io_err(&final_dir))?;
    Ok(final_dir)
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
        let err = crate::hash_tree(&src).unwrap_err().to_string();
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
        let err = crate::hash_tree(&src).unwrap_err().to_string();
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
}
