//! Compiling the C cores and their drivers with the system C compiler.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Why a compilation failed.
#[derive(Debug, thiserror::Error)]
pub enum CcError {
    /// The compiler could not be started.
    #[error("cannot run C compiler {cc:?}: {source}")]
    Spawn {
        /// The compiler command.
        cc: String,
        /// The error.
        source: std::io::Error,
    },
    /// A cache or scratch operation failed (the path is named).
    #[error("{what}: {source}")]
    Io {
        /// What was being done, naming the path.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// The compiler failed or printed warnings (which count as failures).
    #[error("{cc} {args} failed:\n{stderr}")]
    Failed {
        /// The compiler command.
        cc: String,
        /// Its arguments.
        args: String,
        /// What it printed.
        stderr: String,
    },
}

/// Sanitizer choice for [`compile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sanitize {
    /// Plain `-O2`.
    None,
    /// `-fsanitize=address,undefined -fno-sanitize-recover=all`.
    AddressUndefined,
}

/// The C compiler to use: `$CC`, else `cc`.
pub fn default_cc() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".to_string())
}

/// The directory with this crate's C drivers (`tests/c`).
pub fn driver_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("c")
}

/// The directory with the C the patches add (`patches/c`).
pub fn core_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../patches/c")
}

/// Compile `sources` into the executable `out` with `-Wall -Wextra
/// -Werror`, include paths for the C cores, and the chosen sanitizers.
pub fn compile(
    cc: &str,
    sources: &[PathBuf],
    out: &Path,
    sanitize: Sanitize,
) -> Result<(), CcError> {
    let mut args: Vec<String> = vec![
        "-std=c89".into(),
        "-Wall".into(),
        "-Wextra".into(),
        "-Werror".into(),
        "-g".into(),
        "-D_POSIX_C_SOURCE=200809L".into(),
        format!("-I{}", core_dir().display()),
    ];
    match sanitize {
        Sanitize::None => args.push("-O2".into()),
        Sanitize::AddressUndefined => {
            args.extend(
                [
                    "-O1",
                    "-fsanitize=address,undefined",
                    "-fno-sanitize-recover=all",
                    "-fno-omit-frame-pointer",
                ]
                .map(String::from),
            );
        }
    }
    for s in sources {
        args.push(s.display().to_string());
    }
    args.push("-o".into());
    args.push(out.display().to_string());
    run_cc(cc, &args)
}

/// Compile `sources` with `-O2 -Wall -Wextra -Werror` (warnings are
/// failures) and `include` on the include path, and link them with the
/// static libraries `libs` (e.g. `cdb.a` of a netqmail build tree) into
/// `out`.
pub fn compile_linked(
    cc: &str,
    sources: &[PathBuf],
    include: &Path,
    libs: &[PathBuf],
    out: &Path,
) -> Result<(), CcError> {
    let mut args: Vec<String> = [
        "-std=c89",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-O2",
        "-D_POSIX_C_SOURCE=200809L",
    ]
    .map(String::from)
    .to_vec();
    args.push(format!("-I{}", include.display()));
    args.extend(sources.iter().map(|s| s.display().to_string()));
    args.extend(libs.iter().map(|s| s.display().to_string()));
    args.push("-o".into());
    args.push(out.display().to_string());
    run_cc(cc, &args)
}

/// A stable digest of `parts` for cache keys (FNV-1a 64, each part
/// followed by a separator byte): stable across Rust versions, good enough
/// to tell builds apart.
pub fn fnv_key(parts: &[&[u8]]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for d in parts {
        for &x in *d {
            h ^= u64::from(x);
            h = h.wrapping_mul(0x100000001b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

/// The environment variable that overrides [`cache_dir`].
pub const CACHE_ENV: &str = "QMAIL_DIFFTEST_CACHE";

fn cache_io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> CcError {
    let what = what.into();
    move |source| CcError::Io { what, source }
}

/// The cache directory for compiled test programs: `$QMAIL_DIFFTEST_CACHE`
/// when set, else `qmail-difftest-cc` under the system temp dir
/// (`$TMPDIR`). Created mode 0755 (so an unprivileged uid can run what is
/// in it); see [`ensure_private_dir`] for what is refused.
pub fn cache_dir() -> Result<PathBuf, CcError> {
    let d = match std::env::var_os(CACHE_ENV) {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => std::env::temp_dir().join("qmail-difftest-cc"),
    };
    ensure_private_dir(&d)?;
    Ok(d)
}

/// Creates `dir` (and its parents) if needed and checks that it is a real
/// directory (not a symlink), owned by the effective uid and not writable
/// by group or others, so nobody else can plant or swap what is cached
/// there; then sets it to mode 0755.
pub fn ensure_private_dir(dir: &Path) -> Result<(), CcError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    std::fs::create_dir_all(dir).map_err(cache_io(format!("creating {}", dir.display())))?;
    let md = std::fs::symlink_metadata(dir)
        .map_err(cache_io(format!("inspecting {}", dir.display())))?;
    let euid = unsafe { libc::geteuid() };
    let refuse = |why: String| CcError::Io {
        what: format!("refusing cache directory {}", dir.display()),
        source: std::io::Error::new(std::io::ErrorKind::PermissionDenied, why),
    };
    if !md.file_type().is_dir() {
        return Err(refuse("not a directory (a symlink?)".into()));
    }
    if md.uid() != euid {
        return Err(refuse(format!("owned by uid {}, not {euid}", md.uid())));
    }
    if md.mode() & 0o7777 != 0o755 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
            .map_err(cache_io(format!("chmod 0755 {}", dir.display())))?;
    }
    Ok(())
}

/// Returns `dir/name`, building it first with `build` when it is not there.
///
/// Safe for concurrent threads and processes: builders of the same `name`
/// take turns on an `flock`ed `dir/.name.lock` (re-checking after the
/// lock); `build` gets a path inside a fresh private scratch directory
/// (`tempfile`, unique per call) and must create the artefact there; the
/// result is published with `link(2)`, which never replaces an existing
/// file (if one appeared meanwhile, ours is discarded), falling back to an
/// atomic `rename(2)` on file systems without hard links. The scratch
/// directory is removed on every path. Only a regular file counts as
/// built; anything else at `dir/name` is an error naming it.
pub fn cached_artifact_in(
    dir: &Path,
    name: &str,
    build: impl FnOnce(&Path) -> Result<(), CcError>,
) -> Result<PathBuf, CcError> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(CcError::Io {
            what: format!("cache entry name {name:?}"),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "must be a plain file name",
            ),
        });
    }
    let out = dir.join(name);
    if is_regular(&out)? {
        return Ok(out);
    }
    let _lock = Flock::acquire(&dir.join(format!(".{name}.lock")))?;
    if is_regular(&out)? {
        return Ok(out);
    }
    let scratch = tempfile::Builder::new()
        .prefix(&format!(".{name}.tmp"))
        .tempdir_in(dir)
        .map_err(cache_io(format!(
            "creating a scratch dir in {}",
            dir.display()
        )))?;
    let tmp = scratch.path().join(name);
    build(&tmp)?;
    if !is_regular(&tmp)? {
        return Err(CcError::Io {
            what: format!("building {}", out.display()),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "the build did not create the regular file {}",
                    tmp.display()
                ),
            ),
        });
    }
    match std::fs::hard_link(&tmp, &out) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(_) => std::fs::rename(&tmp, &out).map_err(cache_io(format!(
            "renaming {} to {}",
            tmp.display(),
            out.display()
        )))?,
    }
    if !is_regular(&out)? {
        return Err(CcError::Io {
            what: format!("publishing {}", out.display()),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "something other than a regular file is in the way",
            ),
        });
    }
    Ok(out)
}

/// [`cached_artifact_in`] in [`cache_dir`].
pub fn cached_artifact(
    name: &str,
    build: impl FnOnce(&Path) -> Result<(), CcError>,
) -> Result<PathBuf, CcError> {
    cached_artifact_in(&cache_dir()?, name, build)
}

/// Publishes a copy of the file `src` (mode 0755) as `dir/{stem}-{key}`
/// (the key goes before the first `.` of `stem`, so `x.so` gives
/// `x-{key}.so`), where `key` is a digest of its content, through
/// [`cached_artifact_in`]: for putting executables where an unprivileged
/// uid can run them. `dir` must be a directory only we can write (see
/// [`ensure_private_dir`]).
pub fn publish_copy(src: &Path, dir: &Path, stem: &str) -> Result<PathBuf, CcError> {
    use std::os::unix::fs::PermissionsExt;
    let data = std::fs::read(src).map_err(cache_io(format!("reading {}", src.display())))?;
    let key = fnv_key(&[&data]);
    let name = match stem.split_once('.') {
        Some((base, ext)) => format!("{base}-{key}.{ext}"),
        None => format!("{stem}-{key}"),
    };
    cached_artifact_in(dir, &name, |tmp| {
        std::fs::write(tmp, &data).map_err(cache_io(format!("writing {}", tmp.display())))?;
        std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(0o755))
            .map_err(cache_io(format!("chmod {}", tmp.display())))
    })
}

/// Whether `p` is a regular file (not following a final symlink); a
/// missing file is `false`.
fn is_regular(p: &Path) -> Result<bool, CcError> {
    match std::fs::symlink_metadata(p) {
        Ok(m) => Ok(m.file_type().is_file()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(cache_io(format!("inspecting {}", p.display()))(e)),
    }
}

/// An exclusive `flock` on a lock file, released on drop (when the fd is
/// closed).
struct Flock {
    _file: std::fs::File,
}

impl Flock {
    fn acquire(path: &Path) -> Result<Flock, CcError> {
        use std::os::unix::fs::OpenOptionsExt;
        use std::os::unix::io::AsRawFd;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(path)
            .map_err(cache_io(format!("opening the lock {}", path.display())))?;
        loop {
            if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(Flock { _file: f });
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(cache_io(format!("locking {}", path.display()))(e));
            }
        }
    }
}

/// The errno-injecting `LD_PRELOAD` shim (`tests/c/rrt-errno-shim.c`):
/// `getpwnam`/`getpwnam_r` of `$RRT_SHIM_TXTBSY` fail with ETXTBSY,
/// `stat`/`stat64` of `$RRT_SHIM_EIO` (or, when unset, of a path with an
/// `/EIO-` or `/eio-` component) fail with EIO. Built once per content
/// into [`cache_dir`] (see [`cached_artifact`]) and returned.
pub fn errno_shim() -> Result<PathBuf, CcError> {
    errno_shim_in(&cache_dir()?)
}

/// [`errno_shim`] with the cache in `dir`.
pub fn errno_shim_in(dir: &Path) -> Result<PathBuf, CcError> {
    let src = driver_dir().join("rrt-errno-shim.c");
    let cc = default_cc();
    let text = std::fs::read(&src).map_err(cache_io(format!("reading {}", src.display())))?;
    let key = fnv_key(&[&text, cc.as_bytes()]);
    cached_artifact_in(dir, &format!("rrt-errno-shim-{key}.so"), |tmp| {
        let args: Vec<String> = vec![
            "-std=c89".into(),
            "-Wall".into(),
            "-Wextra".into(),
            "-Werror".into(),
            "-O2".into(),
            "-shared".into(),
            "-fPIC".into(),
            "-o".into(),
            tmp.display().to_string(),
            src.display().to_string(),
            "-ldl".into(),
        ];
        run_cc(&cc, &args)
    })
}

/// Runs the compiler; a failure or any output on stderr is an error.
fn run_cc(cc: &str, args: &[String]) -> Result<(), CcError> {
    let output = Command::new(cc)
        .args(args)
        .output()
        .map_err(|source| CcError::Spawn {
            cc: cc.to_string(),
            source,
        })?;
    if !output.status.success() || !output.stderr.is_empty() {
        return Err(CcError::Failed {
            cc: cc.to_string(),
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(())
}
