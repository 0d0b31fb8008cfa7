//! The process environment of oracles run under nss_wrapper, `LD_PRELOAD`
//! shims and `setpriv`: one place for what C, S/Q, G (and R) set up.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The nss_wrapper library (Debian package libnss-wrapper).
pub const NSS_WRAPPER: &str = "/usr/lib/x86_64-linux-gnu/libnss_wrapper.so";

/// The path of libnss_wrapper: `$QMAIL_NSS_WRAPPER`, else [`NSS_WRAPPER`].
pub fn nss_wrapper_lib() -> PathBuf {
    std::env::var_os("QMAIL_NSS_WRAPPER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(NSS_WRAPPER))
}

/// The variables that serve `passwd` and `group` to a process through
/// nss_wrapper, with `preload` loaded before it.
pub fn nss_vars(passwd: &Path, group: &Path, preload: &[PathBuf]) -> Vec<(String, PathBuf)> {
    vec![
        ("LD_PRELOAD".into(), preload_list(preload, true)),
        ("NSS_WRAPPER_PASSWD".into(), passwd.to_path_buf()),
        ("NSS_WRAPPER_GROUP".into(), group.to_path_buf()),
    ]
}

fn preload_list(preload: &[PathBuf], with_nss: bool) -> PathBuf {
    let mut pre: Vec<String> = preload.iter().map(|p| p.display().to_string()).collect();
    if with_nss {
        pre.push(nss_wrapper_lib().display().to_string());
    }
    PathBuf::from(pre.join(":"))
}

/// Set up `cmd`'s user database and preloads:
/// * with a `passwd` file: nss_wrapper serving it and `group` (when `group`
///   is `None`, an empty group file is written at `empty_group` and used),
///   preloaded after `preload`;
/// * without one: only `preload` (nothing when it is empty).
pub fn apply_nss(
    cmd: &mut Command,
    passwd: Option<&Path>,
    group: Option<&Path>,
    empty_group: &Path,
    preload: &[PathBuf],
) -> std::io::Result<()> {
    match passwd {
        Some(pw) => {
            let group = match group {
                Some(g) => g.to_path_buf(),
                None => {
                    std::fs::write(empty_group, b"")?;
                    empty_group.to_path_buf()
                }
            };
            for (k, v) in nss_vars(pw, &group, preload) {
                cmd.env(k, v);
            }
        }
        None if !preload.is_empty() => {
            cmd.env("LD_PRELOAD", preload_list(preload, false));
        }
        None => {}
    }
    Ok(())
}

/// Find `prog` in `$PATH`.
pub fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

/// `setpriv` was not found in `$PATH`.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("setpriv not found in PATH")]
pub struct NoSetpriv;

/// A command running `prog`: directly, or with `run_as = Some((uid,
/// gid))` under `setpriv --reuid=uid --regid=gid --clear-groups` (no
/// supplementary groups). Arguments added later go to `prog`.
pub fn command_as(prog: &Path, run_as: Option<(u32, u32)>) -> Result<Command, NoSetpriv> {
    Ok(match run_as {
        Some((uid, gid)) => {
            let mut c = Command::new(which("setpriv").ok_or(NoSetpriv)?);
            c.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={gid}"))
                .arg("--clear-groups")
                .arg(prog);
            c
        }
        None => Command::new(prog),
    })
}
