//! Directory-relative file operations that never follow a symbolic link
//! the build did not ask to follow.
//!
//! Every install path is reached from an *anchor* directory, opened from
//! `/` one component at a time, and then one `openat(O_NOFOLLOW)` per
//! component below it. Temporary files are created with
//! `O_CREAT|O_EXCL|O_NOFOLLOW` under random names; modes, owners and
//! times are set on open file descriptors (`fchmod`, `fchown`,
//! `futimens`), never through a path.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat, CWD};
use rustix::io::Errno;

use crate::BuildError;

/// An open directory and the path it was reached by (for messages).
#[derive(Debug)]
pub(crate) struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

fn errno_err(path: &Path, e: Errno) -> BuildError {
    BuildError::Io {
        path: path.to_path_buf(),
        error: e.into(),
    }
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::CLOEXEC)
    .union(OFlags::NOFOLLOW);

/// Open the absolute directory `path` from `/`, one component at a time.
/// With `follow`, symbolic links among its components are followed;
/// otherwise one is refused with its path and `hint`. With `create`,
/// missing components are created (mode 0755).
pub(crate) fn open_abs_dir(
    path: &Path,
    follow: bool,
    create: bool,
    hint: &str,
) -> Result<Dir, BuildError> {
    let mut comps = path.components();
    if comps.next() != Some(Component::RootDir) {
        return Err(BuildError::Invalid(format!(
            "{}: not an absolute path",
            path.display()
        )));
    }
    let root = rustix::fs::open("/", DIR_FLAGS, Mode::empty()).map_err(|e| errno_err(path, e))?;
    let mut dir = Dir {
        fd: root,
        path: PathBuf::from("/"),
    };
    for c in comps {
        let Component::Normal(name) = c else {
            return Err(BuildError::Invalid(format!(
                "{}: has a . or .. component",
                path.display()
            )));
        };
        if create && dir.lstat(name)?.is_none() {
            match rustix::fs::mkdirat(&dir.fd, name, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(errno_err(&dir.path.join(name), e)),
            }
        }
        dir = if follow {
            let flags = DIR_FLAGS.difference(OFlags::NOFOLLOW);
            let fd = rustix::fs::openat(&dir.fd, name, flags, Mode::empty())
                .map_err(|e| errno_err(&dir.path.join(name), e))?;
            Dir {
                fd,
                path: dir.path.join(name),
            }
        } else {
            dir.sub(name, hint)?
        };
    }
    Ok(dir)
}

/// A random temporary name: `.qtk-tmp.` and 16 hex digits.
fn temp_name() -> Result<OsString, BuildError> {
    let mut buf = [0u8; 8];
    rustix::rand::getrandom(&mut buf, rustix::rand::GetRandomFlags::empty())
        .map_err(|e| errno_err(Path::new("getrandom"), e))?;
    Ok(OsString::from(format!(".qtk-tmp.{}", hex::encode(buf))))
}

impl Dir {
    /// The path this directory was reached by.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// `lstat` of an entry; `None` if it does not exist.
    pub(crate) fn lstat(&self, name: &OsStr) -> Result<Option<Stat>, BuildError> {
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(errno_err(&self.path.join(name), e)),
        }
    }

    /// Why `name` could not be opened as a directory: a symbolic link
    /// (refused, with `hint`), not a directory, or the I/O error.
    fn not_a_dir(&self, name: &OsStr, e: Errno, hint: &str) -> BuildError {
        let p = self.path.join(name);
        match self.lstat(name) {
            Ok(Some(st)) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
                BuildError::Invalid(format!(
                    "{}: is a symbolic link; refusing to follow it{hint}",
                    p.display()
                ))
            }
            Ok(Some(st)) if FileType::from_raw_mode(st.st_mode) != FileType::Directory => {
                BuildError::Invalid(format!("{}: exists and is not a directory", p.display()))
            }
            _ => errno_err(&p, e),
        }
    }

    /// Open the subdirectory `name` without following a link.
    pub(crate) fn sub(&self, name: &OsStr, hint: &str) -> Result<Dir, BuildError> {
        match rustix::fs::openat(&self.fd, name, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => Ok(Dir {
                fd,
                path: self.path.join(name),
            }),
            Err(e) => Err(self.not_a_dir(name, e, hint)),
        }
    }

    /// Open the subdirectories `names` one below the other.
    pub(crate) fn walk(&self, names: &[OsString]) -> Result<Dir, BuildError> {
        let mut it = names.iter();
        let Some(first) = it.next() else {
            return self.reopen();
        };
        let mut d = self.sub(first, "")?;
        for n in it {
            d = d.sub(n, "")?;
        }
        Ok(d)
    }

    fn reopen(&self) -> Result<Dir, BuildError> {
        let fd = rustix::fs::openat(&self.fd, ".", DIR_FLAGS, Mode::empty())
            .map_err(|e| errno_err(&self.path, e))?;
        Ok(Dir {
            fd,
            path: self.path.clone(),
        })
    }

    /// Create the subdirectory `name` (mode 0700 until the caller sets
    /// it) if it is missing, and open it without following a link.
    pub(crate) fn make_dir(&self, name: &OsStr) -> Result<Dir, BuildError> {
        match rustix::fs::mkdirat(&self.fd, name, Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(errno_err(&self.path.join(name), e)),
        }
        self.sub(name, "")
    }

    /// Create a new file under a random name (`O_EXCL|O_NOFOLLOW`, mode
    /// 0600); returns it and its name.
    pub(crate) fn create_temp(&self) -> Result<(File, OsString), BuildError> {
        self.create_temp_named(temp_name)
    }

    /// [`Dir::create_temp`] with the names drawn from `next_name` (the
    /// tests give names that are taken).
    fn create_temp_named(
        &self,
        mut next_name: impl FnMut() -> Result<OsString, BuildError>,
    ) -> Result<(File, OsString), BuildError> {
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut tries = 0;
        loop {
            let name = next_name()?;
            match rustix::fs::openat(&self.fd, &name, flags, Mode::from_raw_mode(0o600)) {
                Ok(fd) => return Ok((File::from(fd), name)),
                Err(Errno::EXIST) if tries < 8 => tries += 1,
                Err(e) => return Err(errno_err(&self.path.join(&name), e)),
            }
        }
    }

    /// Rename `from` to `to`, both in this directory.
    pub(crate) fn rename(&self, from: &OsStr, to: &OsStr) -> Result<(), BuildError> {
        rustix::fs::renameat(&self.fd, from, &self.fd, to)
            .map_err(|e| errno_err(&self.path.join(to), e))
    }

    /// Remove the file `name` (errors ignored: used for cleaning up).
    pub(crate) fn remove_quietly(&self, name: &OsStr) {
        let _ = rustix::fs::unlinkat(&self.fd, name, AtFlags::empty());
    }

    /// Create a named pipe `name` (mode 0600) if nothing is there.
    pub(crate) fn make_fifo(&self, name: &OsStr) -> Result<(), BuildError> {
        match rustix::fs::mknodat(
            &self.fd,
            name,
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        ) {
            Ok(()) | Err(Errno::EXIST) => Ok(()),
            Err(e) => Err(errno_err(&self.path.join(name), e)),
        }
    }

    /// Open `name` for reading without following a link and without
    /// blocking on a FIFO; `None` if it does not exist.
    pub(crate) fn open_read(&self, name: &OsStr) -> Result<Option<(File, Stat)>, BuildError> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        match rustix::fs::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => {
                let st = rustix::fs::fstat(&fd).map_err(|e| errno_err(&self.path.join(name), e))?;
                Ok(Some((File::from(fd), st)))
            }
            Err(Errno::NOENT) => Ok(None),
            Err(Errno::LOOP) => Err(BuildError::Invalid(format!(
                "{}: is a symbolic link; refusing to follow it",
                self.path.join(name).display()
            ))),
            Err(e) => Err(errno_err(&self.path.join(name), e)),
        }
    }

    /// The directory's own descriptor.
    pub(crate) fn fd(&self) -> &OwnedFd {
        &self.fd
    }
}

/// The file type of a `stat` result.
pub(crate) fn file_type(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

/// Whether an existing path may be written to by this process (effective
/// ids, like the kernel's check).
pub(crate) fn writable(path: &Path) -> bool {
    rustix::fs::accessat(
        CWD,
        path,
        rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK,
        AtFlags::EACCESS,
    )
    .is_ok()
}

/// Whether a path (as the user wrote it) has a `.` or `..` component.
/// `Path::components` drops inner `.`s, so the bytes are split here.
pub(crate) fn has_dot_component(path: &Path) -> bool {
    path.as_os_str()
        .as_bytes()
        .split(|b| *b == b'/')
        .any(|c| c == b"." || c == b"..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_components_are_seen_even_inside() {
        for p in ["/../../x", "/a/./b", "./d", "/a/..", "..", "/a/b/."] {
            assert!(has_dot_component(Path::new(p)), "{p}");
        }
        for p in ["/a/b", "/a//b/", "/a/.b", "/a/..b/c", "d"] {
            assert!(!has_dot_component(Path::new(p)), "{p}");
        }
    }

    #[test]
    fn symlinked_components_are_refused_unless_followed() {
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, t.path().join("link")).unwrap();
        let via = t.path().join("link/sub");
        let err = open_abs_dir(&via, false, true, " (hint)")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!(
                "{}: is a symbolic link",
                t.path().join("link").display()
            )) && err.contains("(hint)"),
            "{err}"
        );
        assert!(!real.join("sub").exists(), "created through the link");
        open_abs_dir(&via, true, true, "").unwrap();
        assert!(real.join("sub").is_dir());
    }

    #[test]
    fn temp_files_are_new_and_unpredictable() {
        let t = tempfile::tempdir().unwrap();
        let d = open_abs_dir(t.path(), false, false, "").unwrap();
        let (_, a) = d.create_temp().unwrap();
        let (_, b) = d.create_temp().unwrap();
        assert_ne!(a, b);
        assert!(a.to_string_lossy().starts_with(".qtk-tmp."));
    }

    /// Names `t0`, `t1`, …; panics after 20 (a loop that never gives up).
    fn names() -> impl FnMut() -> Result<OsString, BuildError> {
        let mut i = 0;
        move || {
            assert!(i < 20, "create_temp does not give up");
            i += 1;
            Ok(OsString::from(format!("t{}", i - 1)))
        }
    }

    #[test]
    fn a_taken_temporary_name_is_skipped_never_followed_and_retried_eight_times() {
        let t = tempfile::tempdir().unwrap();
        let secret = t.path().join("secret");
        std::fs::write(&secret, "secret\n").unwrap();
        let d = open_abs_dir(&t.path().join("d"), false, true, "").unwrap();
        std::os::unix::fs::symlink(&secret, t.path().join("d/t0")).unwrap();
        let (f, name) = d.create_temp_named(names()).unwrap();
        assert_eq!(name, "t1");
        assert_eq!(std::fs::read_to_string(&secret).unwrap(), "secret\n");
        // Not inherited by the commands the build runs.
        let fd_flags = rustix::io::fcntl_getfd(&f).unwrap();
        assert!(fd_flags.contains(rustix::io::FdFlags::CLOEXEC));
        // t0 … t7 taken: t8 is used; t0 … t8 taken: an error naming t8.
        for i in 1..8 {
            std::fs::write(t.path().join(format!("d/t{i}")), "").unwrap();
        }
        assert_eq!(d.create_temp_named(names()).unwrap().1, "t8");
        let err = d.create_temp_named(names()).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}: ", t.path().join("d/t8").display())),
            "{err}"
        );
    }

    #[test]
    fn missing_components_are_created_only_when_asked_and_files_are_not_dirs() {
        let t = tempfile::tempdir().unwrap();
        let want = t.path().join("a/b");
        assert!(open_abs_dir(&want, false, false, "").is_err());
        assert!(!t.path().join("a").exists(), "created without being asked");
        open_abs_dir(&want, false, true, "").unwrap();
        assert!(want.is_dir());
        std::fs::write(want.join("f"), "").unwrap();
        let d = open_abs_dir(&want, false, false, "").unwrap();
        let err = d.sub(OsStr::new("f"), "").unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}: exists and is not a directory",
                want.join("f").display()
            )
        );
        let err = d.sub(OsStr::new("none"), "").unwrap_err();
        assert!(
            matches!(&err, BuildError::Io { error, .. } if error.kind() == std::io::ErrorKind::NotFound),
            "{err}"
        );
        crate::testutil::run_as_nobody(
            "safefs::tests::child_an_unreadable_directory_is_an_io_error",
        );
    }

    #[test]
    #[ignore = "run by missing_components_are_created_only_when_asked_and_files_are_not_dirs"]
    fn child_an_unreadable_directory_is_an_io_error() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let locked = t.path().join("locked");
        std::fs::create_dir(&locked).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
        let d = open_abs_dir(t.path(), false, false, "").unwrap();
        let err = d.sub(OsStr::new("locked"), "").unwrap_err();
        assert!(
            matches!(&err, BuildError::Io { path, error }
                if path == &locked && error.kind() == std::io::ErrorKind::PermissionDenied),
            "{err}"
        );
    }
}
