//! Performing the installs `hier()` lists, as the invoking user.
//!
//! Files are written to a new file under a random name (`O_EXCL`,
//! `O_NOFOLLOW`) in the destination directory, their mode, owner and
//! modification time set on the open descriptor, and renamed into place.
//! Every directory is reached from the prefix's parent one
//! `openat(O_NOFOLLOW)` at a time: a symbolic link
//! where the installer wants a directory, file or fifo is refused with its
//! path, never followed, and nothing is ever `chmod`ed or `chown`ed
//! through a link. The prefix's own components (and the destdir's) may be
//! links only with [`Target::follow_symlinked_prefix`].
//!
//! Ownership is applied only when running as root without a destdir.
//! Otherwise every path keeps the installing user as owner and the
//! intended owner is only recorded in the manifest, with one exception:
//! a directory's group is changed to the intended group when the user
//! belongs to it, and a setgid directory (mess822's `02755`) whose
//! inherited group is not one of the user's gets the user's group, so
//! that the kernel does not silently drop the setgid bit on `chmod` and
//! `instcheck` has nothing to warn about.

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{FileType, Mode, Timespec, Timestamps, UTIME_OMIT};
use sha2::{Digest, Sha256};

use crate::hier::{EntryKind, HierEntry};
use crate::manifest::{FileRecord, Owner};
use crate::safefs::{self, open_abs_dir, Dir};
use crate::{BuildError, IdMap};

/// Appended to the message refusing a symbolic link among the prefix's
/// or destdir's own components.
pub const SYMLINK_HINT: &str =
    " (it is a component of the prefix or destdir; give --allow-symlinked-prefix if that link is intended)";

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
    /// Follow symbolic links among the components of the prefix (or of a
    /// home outside it) and of the destdir (`--allow-symlinked-prefix`).
    /// Links below the prefix are never followed.
    pub follow_symlinked_prefix: bool,
    /// The modification time given to every installed path, in seconds
    /// since the epoch (`SOURCE_DATE_EPOCH`, default 0).
    pub mtime: i64,
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

    /// The anchor directory (the parent of the prefix, or of `home` when
    /// it is outside the prefix, under the destdir) opened from `/`, and
    /// the components from there to `home/rel`.
    fn locate(&self, home: &Path, rel: &str) -> Result<(Dir, Vec<OsString>), BuildError> {
        let root = if home.starts_with(&self.prefix) {
            self.prefix.as_path()
        } else {
            home
        };
        let (Some(parent), Some(name)) = (root.parent(), root.file_name()) else {
            return Err(BuildError::Invalid(format!(
                "{}: cannot install into the root directory",
                root.display()
            )));
        };
        let mut comps = vec![name.to_os_string()];
        let below = home.strip_prefix(root).unwrap_or(Path::new(""));
        for c in below.components().chain(Path::new(rel).components()) {
            match c {
                Component::Normal(n) => comps.push(n.to_os_string()),
                _ => {
                    return Err(BuildError::Invalid(format!(
                        "{}/{rel}: not a plain path below {}",
                        home.display(),
                        root.display()
                    )))
                }
            }
        }
        let anchor = open_abs_dir(
            &self.dest(parent, ""),
            self.follow_symlinked_prefix,
            self.destdir.is_some(),
            SYMLINK_HINT,
        )?;
        Ok((anchor, comps))
    }

    /// The directory holding `home/rel` (opened without following links)
    /// and the last component's name.
    fn parent_of(&self, home: &Path, rel: &str) -> Result<(Dir, OsString), BuildError> {
        let (anchor, mut comps) = self.locate(home, rel)?;
        let name = comps.pop().unwrap_or_default();
        Ok((anchor.walk(&comps)?, name))
    }

    /// Open `home/rel` for reading without following links (and without
    /// blocking if it is a FIFO); `None` if it or a directory above it
    /// does not exist.
    pub(crate) fn open_read(
        &self,
        home: &Path,
        rel: &str,
    ) -> Result<Option<(std::fs::File, rustix::fs::Stat)>, BuildError> {
        let (dir, name) = match self.parent_of(home, rel) {
            Ok(x) => x,
            Err(BuildError::Io { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        dir.open_read(&name)
    }

    fn times(&self) -> Timestamps {
        Timestamps {
            last_access: Timespec {
                tv_sec: 0,
                tv_nsec: UTIME_OMIT,
            },
            last_modification: Timespec {
                tv_sec: self.mtime,
                tv_nsec: 0,
            },
        }
    }
}

fn fd_err(path: &Path) -> impl FnOnce(rustix::io::Errno) -> BuildError + '_ {
    move |e| BuildError::Io {
        path: path.to_path_buf(),
        error: e.into(),
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

/// Set ownership and mode of the open file or directory `fd` (reached
/// as `path`) as described in the module docs.
pub fn set_owner_mode(
    fd: impl AsFd,
    path: &Path,
    uid: Option<u32>,
    gid: Option<u32>,
    mode: u32,
    apply_owner: bool,
) -> Result<(), BuildError> {
    let fd = fd.as_fd();
    let st = rustix::fs::fstat(fd).map_err(fd_err(path))?;
    let (set_uid, set_gid) = if apply_owner {
        (uid, gid)
    } else {
        let groups = my_groups();
        let is_dir = safefs::file_type(&st) == FileType::Directory;
        let want = match gid {
            Some(g) if g != st.st_gid && groups.contains(&g) => Some(g),
            _ if is_dir && mode & 0o2000 != 0 && !groups.contains(&st.st_gid) => {
                // SAFETY: getegid cannot fail.
                Some(unsafe { libc::getegid() })
            }
            _ => None,
        };
        (None, want)
    };
    if set_uid.is_some() || set_gid.is_some() {
        rustix::fs::fchown(
            fd,
            set_uid.map(rustix::fs::Uid::from_raw),
            set_gid.map(rustix::fs::Gid::from_raw),
        )
        .map_err(fd_err(path))?;
    }
    rustix::fs::fchmod(fd, Mode::from_raw_mode(mode)).map_err(fd_err(path))?;
    let got = rustix::fs::fstat(fd).map_err(fd_err(path))?.st_mode & 0o7777;
    if got != mode {
        return Err(BuildError::Invalid(format!(
            "{}: mode is 0{got:o} after chmod 0{mode:o}",
            path.display()
        )));
    }
    Ok(())
}

/// Write `bytes` to `home/rel` through a new temporary file in the same
/// directory, with owner, mode and mtime set before the rename. A
/// symbolic link at `home/rel` (or above it) is refused.
pub fn put_file(
    target: &Target,
    home: &Path,
    rel: &str,
    bytes: &[u8],
    uid: Option<u32>,
    gid: Option<u32>,
    mode: u32,
) -> Result<(), BuildError> {
    let (dir, name) = target.parent_of(home, rel)?;
    let dest = dir.path().join(&name);
    if let Some(st) = dir.lstat(&name)? {
        if safefs::file_type(&st) == FileType::Symlink {
            return Err(BuildError::Invalid(format!(
                "{}: is a symbolic link; refusing to replace it",
                dest.display()
            )));
        }
    }
    let (mut f, tmp) = dir.create_temp()?;
    let tmp_path = dir.path().join(&tmp);
    let res = f
        .write_all(bytes)
        .map_err(crate::io_err(&tmp_path))
        .and_then(|()| set_owner_mode(&f, &dest, uid, gid, mode, target.apply_owner))
        .and_then(|()| rustix::fs::futimens(&f, &target.times()).map_err(fd_err(&dest)))
        .and_then(|()| dir.rename(&tmp, &name));
    if res.is_err() {
        dir.remove_quietly(&tmp);
    }
    res
}

/// Create the directory `home/rel` (if missing) with its owner and mode;
/// a symbolic link or other non-directory there is refused.
pub fn put_dir(
    target: &Target,
    home: &Path,
    rel: &str,
    uid: Option<u32>,
    gid: Option<u32>,
    mode: u32,
) -> Result<(), BuildError> {
    let (dir, name) = target.parent_of(home, rel)?;
    let d = dir.make_dir(&name)?;
    set_owner_mode(d.fd(), d.path(), uid, gid, mode, target.apply_owner)
}

/// Create the named pipe `home/rel` (if missing) with its owner, mode and
/// mtime; anything else there is refused.
fn put_fifo(
    target: &Target,
    home: &Path,
    rel: &str,
    uid: Option<u32>,
    gid: Option<u32>,
    mode: u32,
) -> Result<(), BuildError> {
    let (dir, name) = target.parent_of(home, rel)?;
    let dest = dir.path().join(&name);
    dir.make_fifo(&name)?;
    let not_fifo = || {
        BuildError::Invalid(format!(
            "{}: exists and is not a named pipe",
            dest.display()
        ))
    };
    let (f, st) = dir.open_read(&name)?.ok_or_else(not_fifo)?;
    if safefs::file_type(&st) != FileType::Fifo {
        return Err(not_fifo());
    }
    set_owner_mode(&f, &dest, uid, gid, mode, target.apply_owner)?;
    rustix::fs::futimens(&f, &target.times()).map_err(fd_err(&dest))
}

/// Set the modification time of the installed directories `home/rel`
/// to [`Target::mtime`]; done last, once nothing more is added to them.
pub fn stamp_dirs<'a>(
    target: &Target,
    home: &Path,
    rels: impl IntoIterator<Item = &'a str>,
) -> Result<(), BuildError> {
    for rel in rels {
        let (anchor, comps) = target.locate(home, rel)?;
        let d = anchor.walk(&comps)?;
        rustix::fs::futimens(d.fd(), &target.times()).map_err(fd_err(d.path()))?;
    }
    Ok(())
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
        let uid = e.uid(&target.ids);
        let gid = e.gid(&target.ids);
        let (kind, sha) = match &e.kind {
            EntryKind::Dir => {
                // Staging creates DESTDIR/…/parent; without a destdir the
                // prefix's parent must exist and nothing outside the
                // prefix is created (see `Target::locate`).
                put_dir(target, home, &e.path, uid, gid, e.mode)?;
                ("dir", None)
            }
            EntryKind::File { source } => {
                let bytes = read_built(&tree.join(source))?;
                put_file(target, home, &e.path, &bytes, uid, gid, e.mode)?;
                ("file", Some(hex::encode(Sha256::digest(&bytes))))
            }
            EntryKind::Zeros { len } => {
                if *len > 1 << 20 {
                    return Err(BuildError::Invalid(format!(
                        "hier() entry {}: {len} zero bytes is more than 1 MiB",
                        e.path
                    )));
                }
                let bytes = vec![0u8; *len as usize];
                put_file(target, home, &e.path, &bytes, uid, gid, e.mode)?;
                ("file", Some(hex::encode(Sha256::digest(&bytes))))
            }
            EntryKind::Fifo => {
                put_fifo(target, home, &e.path, uid, gid, e.mode)?;
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
        put_dir(target, home, d, None, None, 0o755)?;
        out.push(FileRecord::build_dir(format!("{base}/{d}")));
    }
    put_file(target, home, rel, bytes, None, None, mode)?;
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

/// The manifest's `package` of the files [`install_extra_files`]
/// installs (the toolkit's own programs and pages, such as qtraceaddr).
pub const EXTRA_PACKAGE: &str = "qmail-toolkit";

/// A file from outside the two upstream trees that the build installs
/// under the prefix, e.g. `bin/qtraceaddr` (built by the caller: this
/// crate knows nothing about how it was made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraFile {
    /// The file to install (a regular file; a link is refused).
    pub src: PathBuf,
    /// Where it goes, relative to the prefix, e.g. `man/man1/qtraceaddr.1`.
    pub dest_rel: String,
    /// Its permission bits, e.g. `0o755`.
    pub mode: u32,
}

/// An [`ExtraFile`] read into memory, with its digest.
#[derive(Debug, Clone)]
pub struct ExtraContents {
    /// The file.
    pub file: ExtraFile,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
}

impl ExtraFile {
    /// Read the file (no link followed, no FIFO blocking) and digest it.
    /// A `dest_rel` that is not a plain relative path is refused.
    pub fn read(&self) -> Result<ExtraContents, BuildError> {
        let plain = !self.dest_rel.is_empty()
            && Path::new(&self.dest_rel)
                .components()
                .all(|c| matches!(c, Component::Normal(_)));
        if !plain {
            return Err(BuildError::Invalid(format!(
                "{}: install path {:?} is not a plain path below the prefix",
                self.src.display(),
                self.dest_rel
            )));
        }
        let bytes = read_built(&self.src)?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        Ok(ExtraContents {
            file: self.clone(),
            bytes,
            sha256,
        })
    }
}

/// Install extra files under `home` (the prefix) the way netqmail installs
/// its own programs and pages: intended owner qmail's `root`, group
/// `qmail` (applied only as root without a destdir, like every other
/// path), the file's mode, through a temporary name and a rename. A
/// directory above a file that `installed` does not list yet is created
/// (mode 0755) and recorded. Returns the new manifest records.
pub fn install_extra_files(
    target: &Target,
    home: &Path,
    files: &[ExtraContents],
    installed: &[FileRecord],
) -> Result<Vec<FileRecord>, BuildError> {
    let base = home.to_string_lossy().trim_end_matches('/').to_string();
    let (uid, gid) = (target.ids.uid("root"), target.ids.gid("qmail"));
    let mut out: Vec<FileRecord> = Vec::new();
    for c in files {
        let rel = c.file.dest_rel.as_str();
        let mut dir = String::new();
        for comp in Path::new(rel).parent().into_iter().flat_map(Path::iter) {
            if !dir.is_empty() {
                dir.push('/');
            }
            dir.push_str(&comp.to_string_lossy());
            let path = format!("{base}/{dir}");
            if !installed.iter().chain(&out).any(|f| f.path == path) {
                put_dir(target, home, &dir, None, None, 0o755)?;
                out.push(FileRecord::build_dir(path));
            }
        }
        put_file(target, home, rel, &c.bytes, uid, gid, c.file.mode)?;
        out.push(FileRecord {
            path: format!("{base}/{rel}"),
            package: EXTRA_PACKAGE.into(),
            kind: "file".into(),
            mode: crate::manifest::mode_string(c.file.mode),
            user: owner(Some("root"), uid),
            group: owner(Some("qmail"), gid),
            sha256: Some(c.sha256.clone()),
        });
    }
    Ok(out)
}

/// Read a file the build made, refusing anything but a regular file
/// (no link is followed, no FIFO blocks).
pub(crate) fn read_built(path: &Path) -> Result<Vec<u8>, BuildError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(crate::io_err(path))?;
    if !f.metadata().map_err(crate::io_err(path))?.is_file() {
        return Err(BuildError::Invalid(format!(
            "{}: not a regular file",
            path.display()
        )));
    }
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).map_err(crate::io_err(path))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn entry(kind: EntryKind, home: &Path, path: &str, mode: u32) -> HierEntry {
        HierEntry {
            kind,
            home: home.to_string_lossy().into_owned(),
            path: path.to_string(),
            user: None,
            group: None,
            mode,
        }
    }

    /// A fake compiled tree with one file, and a hier() for it.
    fn fake(top: &Path, prefix: &Path) -> (PathBuf, Vec<HierEntry>) {
        let tree = top.join("tree");
        std::fs::create_dir(&tree).unwrap();
        std::fs::write(tree.join("FAQ"), "questions\n").unwrap();
        let faq = EntryKind::File {
            source: "FAQ".into(),
        };
        let entries = vec![
            entry(EntryKind::Dir, prefix, "", 0o755),
            entry(EntryKind::Dir, prefix, "doc", 0o755),
            entry(faq, prefix, "doc/FAQ", 0o644),
            entry(EntryKind::Dir, prefix, "man", 0o755),
            entry(EntryKind::Dir, prefix, "man/man1", 0o755),
            entry(EntryKind::Zeros { len: 16 }, prefix, "man/zeros", 0o600),
            entry(EntryKind::Fifo, prefix, "man/fifo", 0o622),
        ];
        (tree, entries)
    }

    fn target(prefix: &Path) -> Target {
        Target {
            prefix: prefix.to_path_buf(),
            destdir: None,
            ids: IdMap::uniform(7000, 7000),
            apply_owner: false,
            follow_symlinked_prefix: false,
            mtime: 1_000_000_000,
        }
    }

    /// A secret outside the prefix: a 0600 file.
    fn secret(top: &Path) -> PathBuf {
        let s = top.join("secret");
        std::fs::write(&s, "secret\n").unwrap();
        std::fs::set_permissions(&s, std::fs::Permissions::from_mode(0o600)).unwrap();
        s
    }

    fn assert_secret_untouched(s: &Path) {
        assert_eq!(std::fs::read_to_string(s).unwrap(), "secret\n");
        let mode = std::fs::metadata(s).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o600, "the secret outside the prefix was chmod'ed");
    }

    #[test]
    fn installs_with_modes_and_the_source_date_mtime() {
        let t = tempfile::tempdir().unwrap();
        let prefix = t.path().join("q");
        let (tree, entries) = fake(t.path(), &prefix);
        let tg = target(&prefix);
        let recs = install(&tree, "pkg", &prefix, &entries, &tg).unwrap();
        assert_eq!(recs.len(), entries.len());
        let dirs: Vec<&str> = entries
            .iter()
            .filter(|e| e.kind == EntryKind::Dir)
            .map(|e| e.path.as_str())
            .collect();
        stamp_dirs(&tg, &prefix, dirs).unwrap();
        for (rel, mode) in [
            ("", 0o755),
            ("doc", 0o755),
            ("doc/FAQ", 0o644),
            ("man/zeros", 0o600),
            ("man/fifo", 0o622),
        ] {
            let m = std::fs::symlink_metadata(prefix.join(rel)).unwrap();
            assert_eq!(m.mode() & 0o7777, mode, "{rel}");
            assert_eq!(m.mtime(), 1_000_000_000, "{rel}: mtime");
        }
        assert_eq!(
            std::fs::read_to_string(prefix.join("doc/FAQ")).unwrap(),
            "questions\n"
        );
        // Nothing but the installed names is left (no temporaries).
        let mut names: Vec<_> = std::fs::read_dir(prefix.join("doc"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["FAQ"]);
        // Installing again over the existing tree works.
        install(&tree, "pkg", &prefix, &entries, &tg).unwrap();
    }

    #[test]
    fn a_link_at_the_old_temporary_name_is_not_written_through() {
        let t = tempfile::tempdir().unwrap();
        let prefix = t.path().join("q");
        let s = secret(t.path());
        std::fs::create_dir_all(prefix.join("doc")).unwrap();
        std::os::unix::fs::symlink(&s, prefix.join("doc/.FAQ.qtk-tmp")).unwrap();
        let (tree, entries) = fake(t.path(), &prefix);
        install(&tree, "pkg", &prefix, &entries, &target(&prefix)).unwrap();
        assert_secret_untouched(&s);
        assert_eq!(
            std::fs::read_to_string(prefix.join("doc/FAQ")).unwrap(),
            "questions\n"
        );
    }

    #[test]
    fn links_where_the_installer_wants_a_dir_file_or_fifo_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o700)).unwrap();
        let s = secret(t.path());
        for (rel, to) in [("man", &outside), ("doc/FAQ", &s), ("man/fifo", &s)] {
            let top = t.path().join(rel.replace('/', "-"));
            std::fs::create_dir(&top).unwrap();
            let prefix = top.join("q");
            std::fs::create_dir_all(prefix.join("doc")).unwrap();
            if rel == "man/fifo" {
                std::fs::create_dir_all(prefix.join("man")).unwrap();
            }
            std::os::unix::fs::symlink(to, prefix.join(rel)).unwrap();
            let (tree, entries) = fake(&top, &prefix);
            let err = install(&tree, "pkg", &prefix, &entries, &target(&prefix))
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with(&format!(
                    "{}: is a symbolic link",
                    prefix.join(rel).display()
                )),
                "{rel}: {err}"
            );
            assert_secret_untouched(&s);
            let mode = std::fs::metadata(&outside).unwrap().mode() & 0o7777;
            assert_eq!(mode, 0o700, "the directory outside was chmod'ed");
            assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        }
    }

    #[test]
    fn a_symlinked_prefix_component_needs_the_flag() {
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, t.path().join("link")).unwrap();
        let prefix = t.path().join("link/q");
        let (tree, entries) = fake(t.path(), &prefix);
        let mut tg = target(&prefix);
        let err = install(&tree, "pkg", &prefix, &entries, &tg)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!(
                "{}: is a symbolic link",
                t.path().join("link").display()
            )) && err.contains("--allow-symlinked-prefix"),
            "{err}"
        );
        assert!(!real.join("q").exists());
        tg.follow_symlinked_prefix = true;
        install(&tree, "pkg", &prefix, &entries, &tg).unwrap();
        assert!(real.join("q/doc/FAQ").is_file());
    }

    #[test]
    fn staging_creates_the_destdir_and_stays_inside_it() {
        let t = tempfile::tempdir().unwrap();
        let prefix = PathBuf::from("/opt/qtk-install-unit-test");
        let (tree, entries) = fake(t.path(), &prefix);
        let mut tg = target(&prefix);
        let dest = t.path().join("dest/sub");
        tg.destdir = Some(dest.clone());
        install(&tree, "pkg", &prefix, &entries, &tg).unwrap();
        assert!(dest.join("opt/qtk-install-unit-test/doc/FAQ").is_file());
        assert!(!prefix.exists());
    }

    fn ugm(p: &Path) -> (u32, u32, u32) {
        let m = std::fs::metadata(p).unwrap();
        (m.uid(), m.gid(), m.mode() & 0o7777)
    }

    /// Owner and mode without `apply_owner`, for root and for others: a
    /// group the user is not in is left alone; as root (who can give
    /// paths foreign groups) the user's own group is applied, and a
    /// setgid directory of a foreign group gets the user's group.
    fn check_owner_mode() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f");
        let f = std::fs::File::create(&p).unwrap();
        let (uid0, gid0, _) = ugm(&p);
        let root = crate::testutil::euid_is_root();
        let foreign = if root { 4243 } else { 0 };
        set_owner_mode(&f, &p, Some(4242), Some(foreign), 0o640, false).unwrap();
        assert_eq!(ugm(&p), (uid0, gid0, 0o640));
        let d = t.path().join("d");
        std::fs::create_dir(&d).unwrap();
        let dir = std::fs::File::open(&d).unwrap();
        set_owner_mode(&dir, &d, None, None, 0o2755, false).unwrap();
        assert_eq!(ugm(&d), (uid0, gid0, 0o2755));
        if !root {
            return;
        }
        std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
        set_owner_mode(&f, &p, None, None, 0o2755, false).unwrap();
        assert_eq!(ugm(&p), (65534, 65534, 0o2755), "a setgid file got a group");
        set_owner_mode(&f, &p, Some(1), Some(gid0), 0o644, false).unwrap();
        assert_eq!(ugm(&p), (65534, gid0, 0o644), "our group was not applied");
        set_owner_mode(&f, &p, Some(4242), None, 0o600, true).unwrap();
        assert_eq!(ugm(&p), (4242, gid0, 0o600), "the owner was not applied");
        std::os::unix::fs::chown(&d, None, Some(65534)).unwrap();
        set_owner_mode(&dir, &d, None, None, 0o755, false).unwrap();
        assert_eq!(
            ugm(&d),
            (uid0, 65534, 0o755),
            "a plain directory got a group"
        );
        set_owner_mode(&dir, &d, None, None, 0o2755, false).unwrap();
        assert_eq!(
            ugm(&d),
            (uid0, gid0, 0o2755),
            "setgid directory kept a foreign group"
        );
    }

    #[test]
    fn groups_are_set_only_where_the_user_may_and_should() {
        check_owner_mode();
        crate::testutil::run_as_nobody("install::tests::child_owner_mode");
    }

    #[test]
    #[ignore = "run by groups_are_set_only_where_the_user_may_and_should"]
    fn child_owner_mode() {
        check_owner_mode();
        // An unreadable directory on the way is an error, not "missing".
        let t = tempfile::tempdir().unwrap();
        let prefix = t.path().join("q");
        std::fs::create_dir_all(prefix.join("locked")).unwrap();
        std::fs::set_permissions(
            prefix.join("locked"),
            std::fs::Permissions::from_mode(0o000),
        )
        .unwrap();
        let err = target(&prefix).open_read(&prefix, "locked/x").unwrap_err();
        assert!(err.to_string().contains("locked"), "{err}");
    }

    #[test]
    fn open_read_finds_installed_files_and_not_missing_ones() {
        let t = tempfile::tempdir().unwrap();
        let prefix = t.path().join("q");
        let (tree, entries) = fake(t.path(), &prefix);
        let tg = target(&prefix);
        install(&tree, "pkg", &prefix, &entries, &tg).unwrap();
        let (_, st) = tg.open_read(&prefix, "doc/FAQ").unwrap().unwrap();
        assert_eq!(st.st_size, 10);
        assert!(tg.open_read(&prefix, "doc/none").unwrap().is_none());
        assert!(tg.open_read(&prefix, "nodir/none").unwrap().is_none());
    }

    #[test]
    fn zero_files_up_to_one_mib_are_installed() {
        let t = tempfile::tempdir().unwrap();
        let prefix = t.path().join("q");
        let (tree, mut entries) = fake(t.path(), &prefix);
        entries.push(entry(
            EntryKind::Zeros { len: 1 << 20 },
            &prefix,
            "big",
            0o644,
        ));
        install(&tree, "pkg", &prefix, &entries, &target(&prefix)).unwrap();
        assert_eq!(
            std::fs::metadata(prefix.join("big")).unwrap().len(),
            1 << 20
        );
        entries.push(entry(
            EntryKind::Zeros { len: (1 << 20) + 1 },
            &prefix,
            "big2",
            0o644,
        ));
        let err = install(&tree, "pkg", &prefix, &entries, &target(&prefix))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "hier() entry big2: 1048577 zero bytes is more than 1 MiB"
        );
    }

    #[test]
    fn an_extra_file_is_installed_with_its_directories_and_recorded() {
        let t = tempfile::tempdir().unwrap();
        let prefix = t.path().join("q");
        std::fs::create_dir(&prefix).unwrap();
        let tg = target(&prefix);
        let recs = install_extra(&prefix, &["etc"], "etc/leap", b"leap\n", 0o644, &tg).unwrap();
        let base = prefix.display().to_string();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0], FileRecord::build_dir(format!("{base}/etc")));
        assert_eq!(recs[1].path, format!("{base}/etc/leap"));
        assert_eq!(
            (recs[1].kind.as_str(), recs[1].mode.as_str()),
            ("file", "0644")
        );
        assert_eq!(recs[1].sha256, Some(hex::encode(Sha256::digest(b"leap\n"))));
        assert_eq!(std::fs::read(prefix.join("etc/leap")).unwrap(), b"leap\n");
        assert_eq!(ugm(&prefix.join("etc/leap")).2, 0o644);
        assert_eq!(ugm(&prefix.join("etc")).2, 0o755);
    }

    #[test]
    fn a_failed_install_of_a_file_leaves_no_temporary_behind() {
        let t = tempfile::tempdir().unwrap();
        let prefix = t.path().join("q");
        let (tree, entries) = fake(t.path(), &prefix);
        // A non-empty directory where the file goes: the rename fails.
        std::fs::create_dir_all(prefix.join("doc/FAQ/sub")).unwrap();
        let err = install(&tree, "pkg", &prefix, &entries, &target(&prefix))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&prefix.join("doc/FAQ").display().to_string()),
            "{err}"
        );
        let names: Vec<_> = std::fs::read_dir(prefix.join("doc"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["FAQ"]);
    }

    #[test]
    fn records_name_the_intended_owner_by_name_and_id() {
        let t = tempfile::tempdir().unwrap();
        let prefix = t.path().join("q");
        let (tree, mut entries) = fake(t.path(), &prefix);
        entries[2].user = Some("alias");
        entries[2].group = Some("nofiles");
        let mut tg = target(&prefix);
        tg.ids = IdMap {
            uids: [7001, 7002, 7003, 0, 7005, 7006, 7007, 7008],
            gids: [7100, 7101],
        };
        let recs = install(&tree, "pkg", &prefix, &entries, &tg).unwrap();
        let faq = &recs[2];
        assert_eq!(faq.path, format!("{}/doc/FAQ", prefix.display()));
        assert_eq!((faq.kind.as_str(), faq.mode.as_str()), ("file", "0644"));
        let owner = |name: &str, id| {
            Some(Owner {
                name: name.into(),
                id,
            })
        };
        assert_eq!(
            (&faq.user, &faq.group),
            (&owner("alias", 7001), &owner("nofiles", 7101))
        );
        assert_eq!((&recs[1].user, &recs[1].group), (&None, &None));
    }

    #[test]
    fn only_regular_files_are_read_and_installed_below_the_prefix() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("prog");
        std::fs::write(&src, "binary").unwrap();
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&src, &link).unwrap();
        assert_eq!(read_built(&src).unwrap(), b"binary");
        let err = read_built(&link).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}: ", link.display())), "{err}");
        let err = read_built(t.path()).unwrap_err().to_string();
        assert_eq!(err, format!("{}: not a regular file", t.path().display()));
        for rel in ["", "../bin/prog", "/bin/prog"] {
            let f = ExtraFile {
                src: src.clone(),
                dest_rel: rel.into(),
                mode: 0o755,
            };
            let err = f.read().unwrap_err().to_string();
            assert!(
                err.contains("is not a plain path below the prefix"),
                "{rel:?}: {err}"
            );
        }
        let f = ExtraFile {
            src,
            dest_rel: "bin/prog".into(),
            mode: 0o755,
        };
        let c = f.read().unwrap();
        assert_eq!(c.sha256, hex::encode(Sha256::digest(b"binary")));
    }
}
