//! Applying patches: `patch -p1` on a scratch copy of a pristine tree,
//! renamed into place when complete. The one place a patch is applied;
//! `cargo xtask patch`, the build and the differential oracles all call
//! [`prepare_tree`] or [`prepare_tree_with`].

use std::path::{Path, PathBuf};
use std::process::Command;

use upstream_hashes::SourceTree;

use crate::tree::{copy_tree, io_err};
use crate::{generate, CommandFailed, Patch, PatchDef, PatchError};

/// Apply patches to `tree` with `patch -p1` (their `to_diff()` text, the
/// same bytes `cargo xtask patch --emit` writes).
pub fn apply(tree: &Path, patches: &[Patch]) -> Result<(), PatchError> {
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

/// Copy the pristine tree `src` to `work/<full name>` (e.g.
/// `work/netqmail-1.06`) with [`copy_tree`] and apply the patches of
/// `patches` that belong to its release with `patch -p1`. The copy is made
/// under a temporary name (`work/.<full name>.tmp`, see
/// [`is_scratch_tree`]) and renamed into place when complete; an older
/// `work/<full name>` is replaced. Returns the patched tree.
pub fn prepare_tree(
    src: &SourceTree,
    patches: &[&PatchDef],
    work: &Path,
) -> Result<PathBuf, PatchError> {
    let generated = generate(src, patches)?;
    prepare_tree_with(src, &generated, work)
}

/// [`prepare_tree`] with already generated patches.
pub fn prepare_tree_with(
    tree: &SourceTree,
    patches: &[Patch],
    work: &Path,
) -> Result<PathBuf, PatchError> {
    let (src, release) = (tree.root.as_path(), tree.release.full_name);
    if !src.is_dir() {
        return Err(PatchError::Refused(format!(
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
    apply(&tmp, patches)?;
    std::fs::rename(&tmp, &final_dir).map_err(io_err(&final_dir))?;
    Ok(final_dir)
}

/// The names of the scratch trees [`prepare_tree_with`] builds before
/// renaming them into place: `.NAME.tmp`.
pub fn is_scratch_tree(name: &str) -> bool {
    name.len() > ".tmp".len() + 1 && name.starts_with('.') && name.ends_with(".tmp")
}

/// Run a command (`patch` here; `make` and the compilers in the build
/// stage) with stdout and stderr going to `log`; fail with the log's last
/// lines.
pub fn run_logged(mut cmd: Command, log: &Path) -> Result<(), PatchError> {
    let file = std::fs::File::create(log).map_err(io_err(log))?;
    let file2 = file.try_clone().map_err(io_err(log))?;
    let dir = cmd
        .get_current_dir()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let command = format!("{cmd:?}").replace('"', "");
    let status = cmd.stdout(file).stderr(file2).status().map_err(|e| {
        PatchError::Command(Box::new(CommandFailed {
            command: command.clone(),
            dir: dir.clone(),
            status: format!("cannot start: {e}"),
            log: log.to_path_buf(),
            tail: String::new(),
        }))
    })?;
    if status.success() {
        return Ok(());
    }
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(15)..].join("\n");
    Err(PatchError::Command(Box::new(CommandFailed {
        command,
        dir,
        status: status.to_string(),
        log: log.to_path_buf(),
        tail,
    })))
}
