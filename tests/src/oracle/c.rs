//! Oracle C: the realrcptto C core (`patches/c/realrcptto.c`) compiled on
//! its own with the driver `tests/c/realrcptto-driver.c`, asked for a
//! verdict per address.
//!
//! The driver is built once per (sources, sanitizer, compiler) into a
//! cache directory under the system temp dir, then run once per
//! [`CDriver::check`] call with a clean environment: only the variables in
//! [`CheckOptions::env`], plus nss_wrapper (when a passwd file is given) and
//! the sanitizer options. Addresses are passed as netstrings, so any byte
//! value (NUL and newline included) can be tested.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::cc::{self, CcError, Sanitize};
use crate::procenv;

pub use crate::procenv::NSS_WRAPPER;

/// Everything that can go wrong asking the C core.
#[derive(Debug, thiserror::Error)]
pub enum CError {
    /// Compiling the driver failed.
    #[error("building the realrcptto driver: {0}")]
    Build(#[from] CcError),
    /// An I/O error (the file or action is named).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// `realrcptto_init` failed (the outcome says how: control or nomem).
    #[error("realrcptto_init failed: {0:?}")]
    Init(COutcome),
    /// A sanitizer reported an error.
    #[error("sanitizer report:\n{0}")]
    Sanitizer(String),
    /// The driver failed or printed something unexpected.
    #[error("realrcptto driver: {0}")]
    Driver(String),
}

/// What the core answered for one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum COutcome {
    /// `RRT_ACCEPT`.
    Accept,
    /// `RRT_REJECT`: 550 in SMTP.
    Reject,
    /// `RRT_ENOMEM`: 421 out of memory.
    TempNomem,
    /// `RRT_ECONTROL`: 421 unable to read controls.
    TempControl,
    /// `RRT_ECDB`: 421 unable to read cdb user database.
    TempCdb,
    /// `RRT_ESYS`: 421 unable to read system user database.
    TempSys,
}

impl COutcome {
    /// The verdict in the resolver's vocabulary (`Verdict::as_str`):
    /// `accept`, `reject`, `tempfail-cdb`, `tempfail-sys`, plus
    /// `tempfail-control` and `tempfail-nomem`, which only the C core has.
    pub fn verdict(self) -> &'static str {
        match self {
            COutcome::Accept => "accept",
            COutcome::Reject => "reject",
            COutcome::TempCdb => "tempfail-cdb",
            COutcome::TempSys => "tempfail-sys",
            COutcome::TempControl => "tempfail-control",
            COutcome::TempNomem => "tempfail-nomem",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "accept" => COutcome::Accept,
            "reject" => COutcome::Reject,
            "nomem" => COutcome::TempNomem,
            "control" => COutcome::TempControl,
            "cdb" => COutcome::TempCdb,
            "sys" => COutcome::TempSys,
            _ => return None,
        })
    }

    /// Whether this is one of the 421 (temporary failure) outcomes.
    pub fn is_temp(self) -> bool {
        !matches!(self, COutcome::Accept | COutcome::Reject)
    }
}

/// The verdict for one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CVerdict {
    /// The answer.
    pub outcome: COutcome,
    /// `realrcptto_deny()` right after the call (deny-all mode).
    pub deny: bool,
    /// `realrcptto_why()`: a short reason, for diagnostics only.
    pub why: String,
    /// What the core wrote to stderr during the call (log lines).
    pub log: Vec<u8>,
}

impl CVerdict {
    /// The log as lines (lossy UTF-8).
    pub fn log_lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.log)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// How to run one check.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Environment of the driver (e.g. `PROTO`, `TCPREMOTEIP`,
    /// `QMAILRRTDENYALL`); nothing else is inherited.
    pub env: Vec<(OsString, OsString)>,
    /// passwd file served through nss_wrapper (and `group`, which defaults
    /// to an empty file next to it when `None`).
    pub passwd: Option<PathBuf>,
    /// group file for nss_wrapper.
    pub group: Option<PathBuf>,
    /// Run as this (uid, gid) with no supplementary groups (`setpriv`), for
    /// a non-root view of the file system.
    pub run_as: Option<(u32, u32)>,
    /// auto_patrn (default 0o002).
    pub patrn: u32,
    /// All addresses are one transaction (`realrcptto_start` once) instead
    /// of one transaction each.
    pub one_transaction: bool,
    /// Libraries to preload before nss_wrapper (e.g. an errno-injecting
    /// shim).
    pub preload: Vec<PathBuf>,
    /// Rename this file to that one right after `realrcptto_init` (shows
    /// that control files are read once).
    pub after_init_rename: Option<(PathBuf, PathBuf)>,
    /// Rename this file to that one after the K-th address (K ≥ 1), as
    /// qmail-newu puts a new users/cdb into place.
    pub rename_after: Option<(usize, PathBuf, PathBuf)>,
    /// qmail-lspawn looks up qmailp, qmailq and nofiles when it starts
    /// (notqmail-1.09): the driver tells the core (`-L`, as notqmail's
    /// hooks do). Oracle P has it compiled in instead
    /// ([`super::p::PDriver::build`]).
    pub lspawn_users: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            env: Vec::new(),
            passwd: None,
            group: None,
            run_as: None,
            patrn: 0o002,
            one_transaction: false,
            preload: Vec::new(),
            after_init_rename: None,
            rename_after: None,
            lspawn_users: false,
        }
    }
}

/// The compiled driver.
#[derive(Debug, Clone)]
pub struct CDriver {
    exe: PathBuf,
    sanitize: Sanitize,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> CError {
    let what = what.into();
    move |source| CError::Io { what, source }
}

fn sources() -> Vec<PathBuf> {
    vec![
        cc::driver_dir().join("realrcptto-driver.c"),
        cc::core_dir().join("realrcptto.c"),
    ]
}

/// A stable digest of the inputs of a build, for the cache key.
fn build_key(cc: &str, sanitize: Sanitize) -> Result<String, CError> {
    let sanitize = format!("{sanitize:?}");
    let mut files = sources();
    files.push(cc::core_dir().join("realrcptto.h"));
    let mut data = Vec::new();
    for f in files {
        data.push(std::fs::read(&f).map_err(io(format!("reading {}", f.display())))?);
    }
    let mut parts: Vec<&[u8]> = vec![cc.as_bytes(), sanitize.as_bytes()];
    parts.extend(data.iter().map(Vec::as_slice));
    Ok(cc::fnv_key(&parts))
}

/// Compile `srcs` into the cache ([`cc::cache_dir`]) as `name-key`
/// (once per content), through [`cc::cached_artifact`].
pub(crate) fn cached_build(
    name: &str,
    srcs: &[PathBuf],
    key: &str,
    sanitize: Sanitize,
) -> Result<PathBuf, CError> {
    Ok(cc::cached_artifact(&format!("{name}-{key}"), |tmp| {
        cc::compile(&cc::default_cc(), srcs, tmp, sanitize)
    })?)
}

impl CDriver {
    /// Build (or reuse) the driver, with or without ASan+UBSan.
    pub fn build(sanitize: Sanitize) -> Result<Self, CError> {
        let cc = cc::default_cc();
        let key = build_key(&cc, sanitize)?;
        let tag = match sanitize {
            Sanitize::None => "realrcptto-driver",
            Sanitize::AddressUndefined => "realrcptto-driver-asan",
        };
        let exe = cached_build(tag, &sources(), &key, sanitize)?;
        Ok(CDriver { exe, sanitize })
    }

    /// The same driver run from `exe` (a copy of [`CDriver::exe`], e.g.
    /// one an unprivileged uid can reach).
    pub fn with_exe(self, exe: PathBuf) -> Self {
        CDriver { exe, ..self }
    }

    /// The driver executable.
    pub fn exe(&self) -> &Path {
        &self.exe
    }

    /// Ask the core about `addrs`, for the qmail home `qmail_home` (its
    /// `control/` and `users/cdb` are read), conf-break `break_byte` and
    /// alias user `alias`. One verdict per address, in order.
    pub fn check(
        &self,
        qmail_home: &Path,
        break_byte: u8,
        alias: &[u8],
        addrs: &[Vec<u8>],
        opts: &CheckOptions,
    ) -> Result<Vec<CVerdict>, CError> {
        let logdir = tempfile::Builder::new()
            .prefix("rrt-san")
            .tempdir()
            .map_err(io("creating a sanitizer log dir"))?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(logdir.path(), std::fs::Permissions::from_mode(0o777))
                .map_err(io("chmod sanitizer log dir"))?;
        }
        let mut cmd = procenv::command_as(&self.exe, opts.run_as)
            .map_err(|e| CError::Driver(e.to_string()))?;
        cmd.env_clear();
        cmd.arg("-z");
        if opts.one_transaction {
            cmd.arg("-1");
        }
        if opts.lspawn_users {
            cmd.arg("-L");
        }
        cmd.arg("-p").arg(format!("{:o}", opts.patrn));
        if let Some((from, to)) = &opts.after_init_rename {
            cmd.arg("-m").arg(from).arg(to);
        }
        if let Some((k, from, to)) = &opts.rename_after {
            cmd.arg("-M").arg(k.to_string()).arg(from).arg(to);
        }
        cmd.arg(qmail_home)
            .arg(break_byte.to_string())
            .arg(std::ffi::OsStr::from_bytes(alias));
        cmd.envs(opts.env.iter().cloned());
        procenv::apply_nss(
            &mut cmd,
            opts.passwd.as_deref(),
            opts.group.as_deref(),
            &logdir.path().join("group"),
            &opts.preload,
        )
        .map_err(io("writing an empty group file"))?;
        if self.sanitize == Sanitize::AddressUndefined {
            cmd.env(
                "ASAN_OPTIONS",
                format!(
                    "verify_asan_link_order=0:detect_leaks=1:log_path={}/asan",
                    logdir.path().display()
                ),
            )
            .env(
                "UBSAN_OPTIONS",
                format!(
                    "print_stacktrace=1:halt_on_error=1:log_path={}/ubsan",
                    logdir.path().display()
                ),
            );
        }
        let mut input = Vec::new();
        for a in addrs {
            input.extend_from_slice(format!("{}:", a.len()).as_bytes());
            input.extend_from_slice(a);
            input.push(b',');
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(io(format!("running {}", self.exe.display())))?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child
            .wait_with_output()
            .map_err(io("waiting for the realrcptto driver"))?;
        let _ = writer.join();

        let mut reports = String::new();
        if let Ok(rd) = std::fs::read_dir(logdir.path()) {
            for e in rd.flatten() {
                if e.file_name() != "group" {
                    reports.push_str(&String::from_utf8_lossy(
                        &std::fs::read(e.path()).unwrap_or_default(),
                    ));
                }
            }
        }
        if !reports.is_empty() {
            return Err(CError::Sanitizer(reports));
        }
        if !out.status.success() {
            return Err(CError::Driver(format!(
                "exit {:?}; stdout: {}; stderr: {}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        parse(&out.stdout, addrs.len())
    }
}

fn bad(msg: &str, out: &[u8]) -> CError {
    CError::Driver(format!("{msg}; output: {}", String::from_utf8_lossy(out)))
}

fn netstring<'a>(s: &'a [u8], pos: &mut usize, all: &[u8]) -> Result<&'a [u8], CError> {
    let colon = s[*pos..]
        .iter()
        .position(|&b| b == b':')
        .ok_or_else(|| bad("netstring without ':'", all))?;
    let n: usize = std::str::from_utf8(&s[*pos..*pos + colon])
        .ok()
        .and_then(|x| x.parse().ok())
        .ok_or_else(|| bad("bad netstring length", all))?;
    let start = *pos + colon + 1;
    if start + n >= s.len() || s[start + n] != b',' {
        return Err(bad("truncated netstring", all));
    }
    *pos = start + n + 1;
    Ok(&s[start..start + n])
}

fn parse(out: &[u8], expected: usize) -> Result<Vec<CVerdict>, CError> {
    let mut pos;
    let first_nl = out
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| bad("no init line", out))?;
    match &out[..first_nl] {
        b"init ok" => {}
        b"init control" => return Err(CError::Init(COutcome::TempControl)),
        b"init nomem" => return Err(CError::Init(COutcome::TempNomem)),
        _ => return Err(bad("bad init line", out)),
    }
    pos = first_nl + 1;
    let mut v = Vec::new();
    while !out[pos..].starts_with(b"end\n") {
        let sp = out[pos..]
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| bad("no verdict", out))?;
        let outcome = std::str::from_utf8(&out[pos..pos + sp])
            .ok()
            .and_then(COutcome::parse)
            .ok_or_else(|| bad("unknown verdict", out))?;
        pos += sp + 1;
        let deny = match out.get(pos) {
            Some(b'0') => false,
            Some(b'1') => true,
            _ => return Err(bad("bad deny flag", out)),
        };
        pos += 2;
        let why = String::from_utf8_lossy(netstring(out, &mut pos, out)?).into_owned();
        let log = netstring(out, &mut pos, out)?.to_vec();
        if out.get(pos) != Some(&b'\n') {
            return Err(bad("verdict line not terminated", out));
        }
        pos += 1;
        v.push(CVerdict {
            outcome,
            deny,
            why,
            log,
        });
    }
    if v.len() != expected {
        return Err(bad(
            &format!("{} verdicts for {expected} addresses", v.len()),
            out,
        ));
    }
    Ok(v)
}
