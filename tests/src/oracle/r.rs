//! Oracle R: the Rust resolver (`qmail-resolver`) on a materialised
//! scenario.
//!
//! The resolver asks the system for passwd entries ([`SystemPasswd`],
//! libc `getpwnam`) and probes the file system with its own uid. So that it
//! sees the scenario's passwd file and the view of qmail-smtpd, it runs in
//! a child process: the difftest binary's hidden `r-oracle` subcommand
//! ([`serve`]), started by [`run`] with nss_wrapper in `LD_PRELOAD` and, as
//! root, under the qmaild uid via `setpriv` (the realrcptto point of view;
//! the same one oracle C uses). It prints one JSON line per address.

use crate::scenario::{layout, Esc, Scenario, GID_QMAIL, UID_QMAILD};
use qmail_resolver::{
    Config, Outcome, QmailRelease, ResolveOptions, Resolver, Sender, SystemPasswd,
};
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// The sender R resolves with (the one G's qmail-lspawn is given).
pub const SENDER: &[u8] = crate::oracle::g::SENDER;

/// R's answer for one address, as the child prints it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RAnswer {
    /// `Outcome::class()`.
    pub class: String,
    /// The rewritten address (remote: unchanged).
    pub address: Esc,
    /// How a bounce shows the recipient (local only).
    pub display: Option<Esc>,
    /// The `.qmail` name used (deliver).
    pub file: Option<Esc>,
    /// The file was 0 bytes (aliasempty used).
    pub empty: bool,
    /// bounce/defer text.
    pub text: Option<Esc>,
    /// The realrcptto verdict (`Verdict::as_str`).
    pub verdict: String,
    /// How many steps the resolver could not be sure of with its uid.
    pub uncertain: usize,
    /// Their stages (`getpw`, `home`, `qmail`), in order.
    #[serde(default)]
    pub uncertain_stages: Vec<String>,
    /// The `qmail-local -n` listing, when stage P ran.
    pub listing: Option<Vec<Esc>>,
    /// The listing stopped with this soft error.
    pub listing_error: Option<Esc>,
}

/// R's answers for a scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum RRun {
    /// The resolver could not load the configuration (the C check's
    /// `421 unable to read controls`; qmail-send would not start).
    NoStart(String),
    /// One answer per address.
    Answers(Vec<RAnswer>),
}

/// Why R could not run.
#[derive(Debug, thiserror::Error)]
pub enum RError {
    /// The child could not be run or failed.
    #[error("oracle R: {0}")]
    Child(String),
    /// An I/O error.
    #[error("oracle R: {context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: io::Error,
    },
}

/// The resolver configuration for a world at `root`, modelling `release`.
pub fn config(sc: &Scenario, root: &Path, release: QmailRelease) -> Config {
    let mut c = Config::with_home(Scenario::qmail_home(root));
    c.release = release;
    c.aliasempty = sc.aliasempty.0.clone();
    c.break_byte = sc.conf_break;
    c
}

/// The users/cdb compiler the scenarios use: the resolver's
/// `compile_assign`, written as a cdb.
pub fn compile_assign_cdb(assign: &[u8]) -> Result<Vec<u8>, String> {
    let records = qmail_resolver::compile_assign(assign).map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let p = dir.path().join("cdb");
    qmail_resolver::users::write_cdb(&p, &records).map_err(|e| e.to_string())?;
    std::fs::read(&p).map_err(|e| e.to_string())
}

/// The child side: resolve every address of the scenario at `root` and
/// print one JSON line each (or one `NoStart` line), as `release` would.
pub fn serve(root: &Path, release: QmailRelease, out: &mut impl Write) -> io::Result<()> {
    let sc = Scenario::load(&root.join(layout::SCENARIO_JSON))?;
    let cfg = config(&sc, root, release);
    let r = match Resolver::new(cfg, SystemPasswd) {
        Ok(r) => r,
        Err(e) => {
            let line = serde_json::to_string(&RRun::NoStart(e.to_string()))?;
            writeln!(out, "{line}")?;
            return Ok(());
        }
    };
    let opts = ResolveOptions {
        sender: Sender::Address(qmail_resolver::Bytes::new(SENDER)),
        headers: None,
        instructions: true,
    };
    let mut answers = Vec::with_capacity(sc.addresses.len());
    for a in &sc.addresses {
        let t = r.resolve_with(&a.0, &opts);
        let (file, empty) = match &t.outcome {
            Outcome::Deliver { file, empty, .. } => (Some(Esc(file.0.clone())), *empty),
            _ => (None, false),
        };
        let address = match &t.outcome {
            Outcome::Remote { address } => Esc(address.0.clone()),
            _ => Esc(t.rewrite.address.0.clone()),
        };
        answers.push(RAnswer {
            class: t.outcome.class().to_string(),
            address,
            display: t.bounce_display.as_ref().map(|b| Esc(b.0.clone())),
            file,
            empty,
            text: t.outcome.text().map(|b| Esc(b.0.clone())),
            verdict: t.verdict.as_str().to_string(),
            uncertain: t.uncertain.len(),
            uncertain_stages: t.uncertain.iter().map(|u| u.stage.to_string()).collect(),
            listing: t
                .listing
                .as_ref()
                .map(|l| l.lines.iter().map(|b| Esc(b.0.clone())).collect()),
            listing_error: t
                .listing
                .as_ref()
                .and_then(|l| l.error.as_ref().map(|b| Esc(b.0.clone()))),
        });
    }
    let line = serde_json::to_string(&RRun::Answers(answers))?;
    writeln!(out, "{line}")?;
    out.flush()
}

/// The parent side: runs `exe r-oracle --release RELEASE ROOT` with
/// nss_wrapper, as qmaild when running as root, and reads its answers.
pub fn run(exe: &Path, release: QmailRelease, root: &Path) -> Result<RRun, RError> {
    run_with(exe, release, root, &[], &[])
}

/// [`run`] with `preload` loaded before nss_wrapper (e.g. the errno shim,
/// [`crate::cc::errno_shim`]) and `env` added to the child's environment.
pub fn run_with(
    exe: &Path,
    release: QmailRelease,
    root: &Path,
    preload: &[PathBuf],
    env: &[(OsString, OsString)],
) -> Result<RRun, RError> {
    let is_root = unsafe { libc::geteuid() } == 0;
    let run_as = is_root.then_some((UID_QMAILD, GID_QMAIL));
    let mut cmd = crate::procenv::command_as(exe, run_as)
        .map_err(|e| RError::Child(format!("cannot run {} as qmaild: {e}", exe.display())))?;
    cmd.arg("r-oracle")
        .arg("--release")
        .arg(release.name())
        .arg(root);
    for (k, v) in crate::procenv::nss_vars(
        &root.join(layout::PASSWD),
        &root.join(layout::GROUP),
        preload,
    ) {
        cmd.env(k, v);
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    cmd.current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = cmd.output().map_err(|source| RError::Io {
        context: format!("cannot run {} r-oracle", exe.display()),
        source,
    })?;
    if !out.status.success() {
        return Err(RError::Child(format!(
            "{} r-oracle {} exited {}: {}",
            exe.display(),
            root.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let line = out
        .stdout
        .lines()
        .next()
        .ok_or_else(|| RError::Child("no output".into()))?
        .map_err(|source| RError::Io {
            context: "reading r-oracle output".into(),
            source,
        })?;
    serde_json::from_str(&line).map_err(|e| RError::Child(format!("bad r-oracle output: {e}")))
}
