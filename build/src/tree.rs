//! Scratch copies of pristine trees, with the generated patches applied.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use qmail_patches::{Patch, PatchDef, Source};

use crate::{io_err, run_logged, BuildError};

/// Copy a directory tree: regular files with their permission bits,
/// directories, and symbolic links as links.
pub fn copy_tree(from: &Path, to: &Path) -> Result<(), BuildError> {
    std::fs::create_dir_all(to).map_err(io_err(to))?;
    let mut entries: Vec<_> = std::fs::read_dir(from)
        .map_err(io_err(from))?
        .collect::<Result<_, _>>()
        .map_err(io_err(from))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let src = e.path();
        let dst = to.join(e.file_name());
        let ty = e.file_type().map_err(io_err(&src))?;
        if ty.is_dir() {
            copy_tree(&src, &dst)?;
        } else if ty.is_symlink() {
            let target = std::fs::read_link(&src).map_err(io_err(&src))?;
            std::os::unix::fs::symlink(target, &dst).map_err(io_err(&dst))?;
        } else if ty.is_file() {
            std::fs::copy(&src, &dst).map_err(io_err(&dst))?;
            let mode = e.metadata().map_err(io_err(&src))?.permissions().mode();
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(mode & 0o755 | 0o600))
                .map_err(io_err(&dst))?;
        }
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
