//! A temporary directory that every uid can traverse, for the tests.
//!
//! Several tests run programs as other users (`setpriv` to nobody, qmaild,
//! the scenario users) on worlds made under `$TMPDIR`. `mktemp -d` makes a
//! 0700 directory, so with `TMPDIR=$(mktemp -d)` those programs could not
//! reach their worlds. When some directory on the way to `$TMPDIR` is not
//! searchable by others, `cargo xtask test` makes a fresh directory under
//! `/tmp` for the run (mode 0755; every cache in it starts cold, as in the
//! given `$TMPDIR`), passes it on as `TMPDIR`, says so, and removes it at
//! the end.

use anyhow::{Context, Result};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Whether every directory from `/` down to `dir` can be searched by
/// other users (the x bit for others).
pub fn reachable_by_others(dir: &Path) -> bool {
    dir.ancestors().all(|a| {
        std::fs::metadata(a)
            .map(|m| m.is_dir() && m.permissions().mode() & 0o001 != 0)
            .unwrap_or(false)
    })
}

/// The `TMPDIR` for the tests: `None` when `$TMPDIR` (or `/tmp`) is fine
/// as it is, else a fresh directory under `/tmp`, removed when dropped.
pub fn for_tests() -> Result<Option<tempfile::TempDir>> {
    let current = std::env::temp_dir();
    if reachable_by_others(&current) {
        return Ok(None);
    }
    let base = PathBuf::from("/tmp");
    let dir = tempfile::Builder::new()
        .prefix("qmail-toolkit-test.")
        .tempdir_in(&base)
        .with_context(|| format!("cannot make a temporary directory in {}", base.display()))?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("cannot chmod {}", dir.path().display()))?;
    eprintln!(
        "note: TMPDIR {} is not searchable by other users, which the tests that \
         run as other uids need; using the fresh directory {} for this run",
        current.display(),
        dir.path().display()
    );
    Ok(Some(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_0700_directory_is_not_reachable() {
        let t = tempfile::tempdir().unwrap();
        let inner = t.path().join("inner");
        std::fs::create_dir(&inner).unwrap();
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o755)).unwrap();
        let reachable_before = reachable_by_others(&inner);
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(!reachable_by_others(&inner));
        // Only meaningful when the test's own TMPDIR is reachable.
        if reachable_by_others(&std::env::temp_dir()) {
            assert!(reachable_before);
        }
    }
}
