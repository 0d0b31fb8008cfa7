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
    let output = Command::new(cc)
        .args(&args)
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

/// The errno-injecting `LD_PRELOAD` shim (`tests/c/rrt-errno-shim.c`):
/// `getpwnam`/`getpwnam_r` of `$RRT_SHIM_TXTBSY` fail with ETXTBSY,
/// `stat`/`stat64` of `$RRT_SHIM_EIO` (or, when unset, of a path with an
/// `/EIO-` or `/eio-` component) fail with EIO. Built once per content
/// into `$TMPDIR/qmail-difftest-cc/` (temp name + rename) and returned.
pub fn errno_shim() -> Result<PathBuf, CcError> {
    let src = driver_dir().join("rrt-errno-shim.c");
    let cc = default_cc();
    let io = |source: std::io::Error| CcError::Spawn {
        cc: cc.clone(),
        source,
    };
    let text = std::fs::read(&src).map_err(|e| {
        io(std::io::Error::new(
            e.kind(),
            format!("cannot read {}: {e}", src.display()),
        ))
    })?;
    let key = fnv_key(&[&text, cc.as_bytes()]);
    let dir = std::env::temp_dir().join("qmail-difftest-cc");
    std::fs::create_dir_all(&dir).map_err(io)?;
    let out = dir.join(format!("rrt-errno-shim-{key}.so"));
    if out.is_file() {
        return Ok(out);
    }
    let tmp = dir.join(format!("rrt-errno-shim-{key}.tmp{}", std::process::id()));
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
    let output = Command::new(&cc).args(&args).output().map_err(io)?;
    if !output.status.success() || !output.stderr.is_empty() {
        let _ = std::fs::remove_file(&tmp);
        return Err(CcError::Failed {
            cc: cc.clone(),
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    std::fs::rename(&tmp, &out).map_err(io)?;
    Ok(out)
}
