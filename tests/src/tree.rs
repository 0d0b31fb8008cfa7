//! Creating a scenario's file tree without ever following a symlink.
//!
//! Every node is reached from an open descriptor of the world root, one
//! component at a time, with `openat(…, O_DIRECTORY | O_NOFOLLOW)`; the
//! leaf is made with `mkdirat`, `openat(O_CREAT | O_EXCL | O_NOFOLLOW)`,
//! `mkfifoat` or `symlinkat`, and owners and modes are set with `fchown`
//! and `fchmod` on a descriptor opened with `O_NOFOLLOW` (or `fchownat(…,
//! AT_SYMLINK_NOFOLLOW)` for a symlink) — never by path. So even a
//! scenario that slipped past `Scenario::validate` (in the scenario module above)
//! cannot make or change anything outside the root.

use std::ffi::CString;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// What to make at a path.
#[derive(Debug, Clone, Copy)]
pub enum Make<'a> {
    /// A directory (missing parents are made too, mode 0755).
    Dir,
    /// A regular file with this content (must not exist).
    File(&'a [u8]),
    /// A FIFO (must not exist).
    Fifo,
    /// A symlink with this target (must not exist; never followed).
    Symlink(&'a [u8]),
}

/// An open world root.
pub struct Root {
    fd: OwnedFd,
    path: std::path::PathBuf,
}

fn cstr(b: &[u8]) -> io::Result<CString> {
    CString::new(b).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "contains a NUL byte"))
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn open_dir_at(dir: libc::c_int, name: &[u8]) -> io::Result<OwnedFd> {
    let c = cstr(name)?;
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    let fd = check(unsafe { libc::openat(dir, c.as_ptr(), flags) })?;
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The file type bits of `fd`.
fn file_type(fd: &OwnedFd) -> io::Result<libc::mode_t> {
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    check(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok(st.st_mode & libc::S_IFMT)
}

impl Root {
    /// Opens the existing directory `path` (not through a final symlink).
    pub fn open(path: &Path) -> io::Result<Root> {
        let fd = open_dir_at(libc::AT_FDCWD, path.as_os_str().as_bytes())
            .map_err(|e| with_path(e, "cannot open the world root", path))?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
        })
    }

    fn named(&self, rel: &[u8], what: &str, e: io::Error) -> io::Error {
        with_path(e, what, &self.path.join(std::ffi::OsStr::from_bytes(rel)))
    }

    /// Opens the parent directory of `rel` (components separated by `/`,
    /// already validated: relative, no empty, `.` or `..` component),
    /// making missing directories when `make_missing`; returns it and the
    /// last component.
    fn parent<'r>(&self, rel: &'r [u8], make_missing: bool) -> io::Result<(OwnedFd, &'r [u8])> {
        let mut comps: Vec<&[u8]> = rel.split(|&c| c == b'/').collect();
        let leaf = comps.pop().unwrap_or_default();
        let mut cur = open_dir_at(self.fd.as_raw_fd(), b".")?;
        for c in comps {
            cur = match open_dir_at(cur.as_raw_fd(), c) {
                Err(e) if make_missing && e.raw_os_error() == Some(libc::ENOENT) => {
                    let name = cstr(c)?;
                    match check(unsafe { libc::mkdirat(cur.as_raw_fd(), name.as_ptr(), 0o755) }) {
                        Ok(_) => {}
                        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                        Err(e) => return Err(e),
                    }
                    open_dir_at(cur.as_raw_fd(), c)?
                }
                r => r.map_err(not_a_dir)?,
            };
        }
        Ok((cur, leaf))
    }

    /// Makes `rel` (permissive modes; see [`Root::own`] for the final
    /// ones). A directory that already exists is kept; anything else that
    /// exists is an error.
    pub fn make(&self, rel: &[u8], what: Make<'_>) -> io::Result<()> {
        self.make_inner(rel, what)
            .map_err(|e| self.named(rel, "cannot create", e))
    }

    fn make_inner(&self, rel: &[u8], what: Make<'_>) -> io::Result<()> {
        let (dir, leaf) = self.parent(rel, matches!(what, Make::Dir))?;
        let d = dir.as_raw_fd();
        let name = cstr(leaf)?;
        match what {
            Make::Dir => match check(unsafe { libc::mkdirat(d, name.as_ptr(), 0o755) }) {
                Ok(_) => Ok(()),
                // only a real directory may already be there
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                    open_dir_at(d, leaf).map_err(not_a_dir).map(drop)
                }
                Err(e) => Err(e),
            },
            Make::File(content) => {
                let flags = libc::O_WRONLY
                    | libc::O_CREAT
                    | libc::O_EXCL
                    | libc::O_NOFOLLOW
                    | libc::O_CLOEXEC;
                let fd = check(unsafe { libc::openat(d, name.as_ptr(), flags, 0o600) })?;
                let mut f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
                f.write_all(content)
            }
            Make::Fifo => check(unsafe { libc::mkfifoat(d, name.as_ptr(), 0o600) }).map(drop),
            Make::Symlink(target) => {
                let t = cstr(target)?;
                check(unsafe { libc::symlinkat(t.as_ptr(), d, name.as_ptr()) }).map(drop)
            }
        }
    }

    /// Sets the owner (when `owner` is given) and the mode of `rel`, which
    /// [`Root::make`] made as `what`: by descriptor, after checking that
    /// the object there is still of that kind. A symlink gets its owner
    /// only (its mode means nothing).
    pub fn own(
        &self,
        rel: &[u8],
        what: Make<'_>,
        owner: Option<(u32, u32)>,
        mode: u32,
    ) -> io::Result<()> {
        self.own_inner(rel, what, owner, mode)
            .map_err(|e| self.named(rel, "cannot set owner and mode of", e))
    }

    fn own_inner(
        &self,
        rel: &[u8],
        what: Make<'_>,
        owner: Option<(u32, u32)>,
        mode: u32,
    ) -> io::Result<()> {
        let (dir, leaf) = self.parent(rel, false)?;
        let name = cstr(leaf)?;
        if let Make::Symlink(_) = what {
            if let Some((uid, gid)) = owner {
                let flags = libc::AT_SYMLINK_NOFOLLOW;
                check(unsafe { libc::fchownat(dir.as_raw_fd(), name.as_ptr(), uid, gid, flags) })?;
            }
            return Ok(());
        }
        // O_NONBLOCK: opening a FIFO must not wait for a writer.
        let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
        let fd = check(unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags) })?;
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let want = match what {
            Make::Dir => libc::S_IFDIR,
            Make::File(_) => libc::S_IFREG,
            Make::Fifo => libc::S_IFIFO,
            Make::Symlink(_) => libc::S_IFLNK,
        };
        if file_type(&fd)? != want {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "is no longer the kind of object that was made",
            ));
        }
        if let Some((uid, gid)) = owner {
            check(unsafe { libc::fchown(fd.as_raw_fd(), uid, gid) })?;
        }
        check(unsafe { libc::fchmod(fd.as_raw_fd(), mode as libc::mode_t) }).map(drop)
    }
}

/// ELOOP (a symlink, under O_NOFOLLOW) and ENOTDIR, said plainly.
fn not_a_dir(e: io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(libc::ELOOP) | Some(libc::ENOTDIR) => io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a path component is a symlink or not a directory ({e})"),
        ),
        _ => e,
    }
}

fn with_path(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}
