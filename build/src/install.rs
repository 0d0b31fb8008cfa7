//! Performing the installs `hier()` lists, as the invoking user.
//!
//! Files are copied (temporary name, then rename), modes set exactly, and
//! ownership applied only when running as root without a destdir.
//! Otherwise every path keeps the installing user as owner and the
//! intended owner is only recorded in the manifest, with one exception:
//! a directory's group is changed to the intended group when the user
//! belongs to it, and a setgid directory (mess822's `02755`) whose
//! inherited group is not one of the user's gets the user's group, so
//! that the kernel does not silently drop the setgid bit on `chmod` and
//! `instcheck` has nothing to warn about.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::hier::{EntryKind, HierEntry};
use crate::manifest::{FileRecord, Owner};
use crate::{io_err, BuildError, IdMap};

/// Where and how to install.
#[derive(Debug, Clone)]
pub struct Target {
    /// The prefix the programs were compiled for.
    pub prefix: PathBuf,
    /// Stage under `destdir/prefix` instead of `prefix`.
    pub destdir: Option<PathBuf>,
    /// The ids to record (and to apply, if `apply_owner`).
    pub ids: IdMap,
    /// chown to the intended owner (root, no destdir).
    pub apply_owner: bool,
}

impl Target {
    /// Where a path under the prefix is written: `destdir/prefix/rel` or
    /// `prefix/rel`.
    pub fn dest(&self, home: &Path, rel: &str) -> PathBuf {
        let base = match &self.destdir {
            Some(d) => d.join(home.strip_prefix("/").unwrap_or(home)),
            None => home.to_path_buf(),
        };
        if rel.is_empty() {
            base
        } else {
            base.join(rel)
        }
    }
}

/// The groups this process belongs to (effective gid and supplementary).
fn my_groups() -> Vec<u32> {
    // SAFETY: getgroups with a correctly sized buffer.
    unsafe {
        let n = libc::getgroups(0, std::ptr::null_mut());
        let mut v = vec![0 as libc::gid_t; n.max(0) as usize];
        let n = libc::getgroups(n, v.as_mut_ptr());
        v.truncate(n.max(0) as usize);
        v.push(libc::getegid());
        v
    }
}

fn owner(name: Option<&'static str>, id: Option<u32>) -> Option<Owner> {
    match (name, id) {
        (Some(n), Some(id)) => Some(Owner {
            name: n.to_string(),
            id,
        }),
        _ => None,
    }
}

/// Set ownership and mode of `path` as described in the module docs.
pub fn set_owner_mode(
    path: &Path,
    uid: Option<u32>,
    gid: Option<u32>,
    mode: u32,
    apply_owner: bool,
) -> Result<(), BuildError> {
    if apply_owner {
        if uid.is_some() || gid.is_some() {
            std::os::unix::fs::lchown(path, uid, gid).map_err(io_err(path))?;
        }
    } else {
        let meta = std::fs::symlink_metadata(path).map_err(io_err(path))?;
        let groups = my_groups();
        let want = match gid {
            Some(g) if g != meta.gid() && groups.contains(&g) => Some(g),
            _ if meta.is_dir() && mode & 0o2000 != 0 && !groups.contains(&meta.gid()) => {
                // SAFETY: getegid cannot fail.
                Some(unsafe { libc::getegid() })
            }
            _ => None,
        };
        if want.is_some() {
            std::os::unix::fs::lchown(path, None, want).map_err(io_err(path))?;
        }
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io_err(path))?;
    let got = std::fs::symlink_metadata(path)
        .map_err(io_err(path))?
        .mode()
        & 0o7777;
    if got != mode {
        return Err(BuildError::Invalid(format!(
            "{}: mode is 0{got:o} after chmod 0{mode:o}",
            path.display()
        )));
    }
    Ok(())
}

/// Write `bytes` to `dest` through a temporary file in the same
/// directory, with owner and mode set before the rename.
fn put_file(
    dest: &Path,
    bytes: &[u8],
    uid: Option<u32>,
    gid: Option<u32>,
    mode: u32,
    apply_owner: bool,
) -> Result<(), BuildError> {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dest.with_file_name(format!(".{name}.qtk-tmp"));
    let mut f = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(bytes).map_err(io_err(&tmp))?;
    drop(f);
    let res = set_owner_mode(&tmp, uid, gid, mode, apply_owner)
        .and_then(|()| std::fs::rename(&tmp, dest).map_err(io_err(dest)));
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// Create a directory (if missing) with its owner and mode.
pub fn put_dir(
    dest: &Path,
    uid: Option<u32>,
    gid: Option<u32>,
    mode: u32,
    apply_owner: bool,
) -> Result<(), BuildError> {
    match std::fs::create_dir(dest) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dest.is_dir() => {}
        Err(e) => {
            return Err(BuildError::Io {
                path: dest.to_path_buf(),
                error: e,
            })
        }
    }
    set_owner_mode(dest, uid, gid, mode, apply_owner)
}

/// Install the `hier()` entries of one package from the compiled `tree`.
/// Every entry's home must be `home` (the prefix); anything else (such as
/// pristine mess822's `/etc/leapsecs.dat`) is refused before anything is
/// written. Returns the manifest records, in entry order.
pub fn install(
    tree: &Path,
    package: &str,
    home: &Path,
    entries: &[HierEntry],
    target: &Target,
) -> Result<Vec<FileRecord>, BuildError> {
    let home_s = home.to_string_lossy();
    if let Some(e) = entries
        .iter()
        .find(|e| e.home != home_s.trim_end_matches('/'))
    {
        return Err(BuildError::Invalid(format!(
            "{package}: hier() installs {}/{} outside {}; refusing (for mess822, apply the nonroot patch)",
            e.home, e.path, home_s
        )));
    }
    let mut records = Vec::with_capacity(entries.len());
    for e in entries {
        let dest = target.dest(home, &e.path);
        let uid = e.uid(&target.ids);
        let gid = e.gid(&target.ids);
        let apply = target.apply_owner;
        let (kind, sha) = match &e.kind {
            EntryKind::Dir => {
                if e.path.is_empty() && target.destdir.is_some() {
                    // Staging: create DESTDIR/…/parent. Without a destdir the
                    // prefix's parent must exist; nothing outside the prefix
                    // is created.
                    if let Some(parent) = dest.parent() {
                        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
                    }
                }
                put_dir(&dest, uid, gid, e.mode, apply)?;
                ("dir", None)
            }
            EntryKind::File { source } => {
                let src = tree.join(source);
                let bytes = std::fs::read(&src).map_err(io_err(&src))?;
                put_file(&dest, &bytes, uid, gid, e.mode, apply)?;
                ("file", Some(hex::encode(Sha256::digest(&bytes))))
            }
            EntryKind::Zeros { len } => {
                let bytes = vec![0u8; *len as usize];
                put_file(&dest, &bytes, uid, gid, e.mode, apply)?;
                ("file", Some(hex::encode(Sha256::digest(&bytes))))
            }
            EntryKind::Fifo => {
                if std::fs::symlink_metadata(&dest).is_err() {
                    let c = std::ffi::CString::new(dest.as_os_str().as_encoded_bytes()).map_err(
                        |_| BuildError::Invalid(format!("{}: bad path", dest.display())),
                    )?;
                    // SAFETY: c is a valid NUL-terminated path.
                    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } == -1 {
                        return Err(BuildError::Io {
                            path: dest,
                            error: std::io::Error::last_os_error(),
                        });
                    }
                }
                set_owner_mode(&dest, uid, gid, e.mode, apply)?;
                ("fifo", None)
            }
        };
        records.push(FileRecord {
            path: if e.path.is_empty() {
                home_s.trim_end_matches('/').to_string()
            } else {
                format!("{}/{}", home_s.trim_end_matches('/'), e.path)
            },
            package: package.to_string(),
            kind: kind.to_string(),
            mode: crate::manifest::mode_string(e.mode),
            user: owner(e.user, uid),
            group: owner(e.group, gid),
            sha256: sha,
        });
    }
    Ok(records)
}

/// Install one extra file that no `hier()` lists (leapsecs.dat), creating
/// the directories `dirs` (relative to `home`, mode 0755) first; returns
/// their records and the file's.
pub fn install_extra(
    home: &Path,
    dirs: &[&str],
    rel: &str,
    bytes: &[u8],
    mode: u32,
    target: &Target,
) -> Result<Vec<FileRecord>, BuildError> {
    let base = home.to_string_lossy().trim_end_matches('/').to_string();
    let mut out = Vec::new();
    for d in dirs {
        put_dir(&target.dest(home, d), None, None, 0o755, target.apply_owner)?;
        out.push(FileRecord::build_dir(format!("{base}/{d}")));
    }
    put_file(
        &target.dest(home, rel),
        bytes,
        None,
        None,
        mode,
        target.apply_owner,
    )?;
    out.push(FileRecord {
        path: format!("{base}/{rel}"),
        package: "qmail-build".into(),
        kind: "file".into(),
        mode: crate::manifest::mode_string(mode),
        user: None,
        group: None,
        sha256: Some(hex::encode(Sha256::digest(bytes))),
    });
    Ok(out)
}
