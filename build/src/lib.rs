//! Stage 6 of the pipeline (fetch → verify → unpack → sources → patch →
//! build → test): non-root build and install of one qmail, netqmail-1.06
//! or notqmail-1.09 ([`Qmail`], chosen by the release of the tree given),
//! and mess822-0.58.
//!
//! The steps, each usable on its own:
//!
//! 1. [`qmail_patches::prepare_tree`] (the patch stage): copy a pristine
//!    tree into a scratch directory and apply the generated patches with
//!    `patch -p1` (exactly what packagers get);
//! 2. [`compile_netqmail`] / [`compile_notqmail`] / [`compile_mess822`]:
//!    write `conf-*` and netqmail's `auto_uids.c` (no qmail user needs to
//!    exist; notqmail looks them up at run time), run `make`;
//! 3. [`hier::record`]: list what upstream `hier()` installs, by linking
//!    `hier.o` with a recording replacement for `install.c`
//!    (`build/c/qtk-hier.c`);
//!    For notqmail, its own `instpackage` stages the files into the work
//!    directory and the stage is checked against that list
//!    ([`notqmail`]);
//! 4. [`install::install`]: perform those installs as the invoking user
//!    under `DESTDIR/PREFIX`, applying ownership only as root without a
//!    destdir, recording everything in the [`manifest::Manifest`];
//! 5. [`build`]: all of the above for both packages, plus leapsecs.dat,
//!    the caller's extra files ([`install::ExtraFile`]: qtraceaddr and its
//!    man page, built by `cargo xtask build`) and the manifest, skipped
//!    entirely when the inputs (the extra files' digests included) have
//!    not changed.
//!
//! Before anything is compiled, [`build`] checks the install paths
//! ([`check_install_paths`]) and takes the work directory's lock
//! ([`WorkLock`]). The installer follows no symbolic link below the
//! prefix, and the copied source trees may hold only regular files and
//! directories ([`qmail_patches::tree::copy_tree`]).
#![warn(missing_docs)]

pub mod compile;
pub mod hier;
pub mod ids;
pub mod install;
pub mod lock;
pub mod manifest;
pub mod notqmail;
mod pipeline;
pub mod preflight;
pub mod release;
mod safefs;
#[cfg(test)]
mod testutil;

use std::path::{Path, PathBuf};
use std::process::Command;

pub use compile::{
    compile_mess822, compile_netqmail, compile_netqmail_cwd_home, compile_notqmail,
    compile_notqmail_cwd_home, compile_qmail, compile_qmail_cwd_home, CompileOptions, Compiler,
};
pub use ids::IdMap;
pub use lock::WorkLock;
pub use pipeline::{
    bench_build, build, resolve_ids, BenchFigures, BuildOptions, BuildOutcome, LEAPSECS_PATH,
};
pub use preflight::{check_install_paths, InstallPaths};
pub use release::{select_qmail, Qmail};

/// Everything that can go wrong in a build.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A file or directory operation failed.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// A command failed; `log` holds its output, `tail` the last lines.
    #[error("`{command}` failed in {dir} ({status}); log: {log}\n{tail}")]
    Command {
        /// The command line.
        command: String,
        /// Where it ran.
        dir: PathBuf,
        /// How it ended.
        status: String,
        /// The full output.
        log: PathBuf,
        /// The last lines of the output.
        tail: String,
    },
    /// An option or input value is unusable.
    #[error("{0}")]
    Invalid(String),
    /// Generating, copying or applying the patches to a tree failed.
    #[error(transparent)]
    Patch(#[from] qmail_patches::PatchError),
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |error| BuildError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// The environment for every build command: C locale, UTC, and a fixed
/// `SOURCE_DATE_EPOCH` (unless the caller set one), so that nroff output
/// and anything else date- or locale-dependent is reproducible.
pub(crate) fn reproducible_env(cmd: &mut Command) {
    cmd.env("LC_ALL", "C").env("TZ", "UTC").env_remove("LANG");
    if std::env::var_os("SOURCE_DATE_EPOCH").is_none() {
        cmd.env("SOURCE_DATE_EPOCH", "0");
    }
}

/// Run a command with stdout and stderr going to `log`; fail with the
/// log's last lines (the one runner is [`qmail_patches::run_logged`]).
pub(crate) fn run_logged(cmd: Command, log: &Path) -> Result<(), BuildError> {
    qmail_patches::run_logged(cmd, log).map_err(|e| match e {
        qmail_patches::PatchError::Command(c) => {
            let c = *c;
            BuildError::Command {
                command: c.command,
                dir: c.dir,
                status: c.status,
                log: c.log,
                tail: c.tail,
            }
        }
        other => BuildError::Patch(other),
    })
}

/// Whether this process runs as root (effective uid 0).
pub fn running_as_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_as_root_is_the_effective_uid() {
        assert_eq!(running_as_root(), testutil::euid_is_root());
    }

    #[test]
    fn run_logged_fails_with_the_log_and_tail_and_the_env_is_fixed() {
        let t = tempfile::tempdir().unwrap();
        let log = t.path().join("log");
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "echo \"$LC_ALL $TZ ${LANG-unset}\"; echo bad >&2; exit 4",
        ])
        .env("LANG", "de_DE.UTF-8");
        reproducible_env(&mut cmd);
        let err = run_logged(cmd, &log).unwrap_err();
        let BuildError::Command { log: l, tail, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!(l, &log);
        assert!(tail.contains("bad"), "{tail}");
        assert!(std::fs::read_to_string(&log)
            .unwrap()
            .contains("C UTC unset\n"));
        let mut ok = Command::new("sh");
        ok.args(["-c", "echo \"$SOURCE_DATE_EPOCH\""]);
        reproducible_env(&mut ok);
        run_logged(ok, &log).unwrap();
        let sde = std::env::var("SOURCE_DATE_EPOCH").unwrap_or_else(|_| "0".into());
        assert!(std::fs::read_to_string(&log)
            .unwrap()
            .contains(&format!("{sde}\n")));
    }
}
