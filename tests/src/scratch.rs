//! Where the worlds and the shared builds go (the bottom layer, with
//! `options.rs`): a scratch directory every test uid can reach,
//! copies of programs published into it, and one fresh world directory per
//! scenario or known case.

use std::path::{Path, PathBuf};

/// Whether every directory from `/` down to `p` lets other users search it
/// (so that qmaild, qmailp and the test users can reach what is inside).
pub fn reachable_by_others(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Ok(p) = p.canonicalize() else {
        return false;
    };
    p.ancestors().all(|a| {
        std::fs::metadata(a)
            .map(|m| m.permissions().mode() & 0o001 != 0)
            .unwrap_or(false)
    })
}

/// Where the scenario worlds and the G build go: under `out_dir` when
/// every test uid can reach it, else `qmail-difftest-<euid>` under the
/// system temp directory when that is reachable, else under `/tmp` (a
/// checkout in a 0700 home, or a 0700 `$TMPDIR`, would otherwise hide every
/// world from the unprivileged oracles and make every comparison
/// meaningless). A directory in a shared temp dir must be ours and not a
/// symlink ([`crate::cc::ensure_private_dir`]).
pub fn scratch_dir(out_dir: &Path) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(out_dir)?;
    if reachable_by_others(out_dir) {
        let d = out_dir.join("scratch");
        std::fs::create_dir_all(&d)?;
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755))?;
        return Ok(d);
    }
    let name = format!("qmail-difftest-{}", unsafe { libc::geteuid() });
    let tmp = std::env::temp_dir();
    let parent = if reachable_by_others(&tmp) {
        tmp
    } else if reachable_by_others(Path::new("/tmp")) {
        PathBuf::from("/tmp")
    } else {
        tmp
    };
    let d = parent.join(name);
    crate::cc::ensure_private_dir(&d)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::PermissionDenied, e.to_string()))?;
    Ok(d)
}

/// `src` itself when every uid can reach it ([`reachable_by_others`]),
/// else a copy (mode 0755) in `scratch/sub` named `stem-<content digest>`,
/// made through [`crate::cc::publish_copy`] so that concurrent runs never
/// share a temporary name.
pub fn reachable_copy(
    src: &Path,
    scratch: &Path,
    sub: &str,
    stem: &str,
) -> Result<PathBuf, crate::cc::CcError> {
    if reachable_by_others(src) {
        return Ok(src.to_path_buf());
    }
    let dir = scratch.join(sub);
    crate::cc::ensure_private_dir(&dir)?;
    crate::cc::publish_copy(src, &dir, stem)
}

/// Makes a fresh world directory `PREFIX…` under `scratch/work`.
pub fn world_dir(scratch: &Path, prefix: &str) -> std::io::Result<tempfile::TempDir> {
    let w = scratch.join("work");
    std::fs::create_dir_all(&w)?;
    tempfile::Builder::new().prefix(prefix).tempdir_in(&w)
}
