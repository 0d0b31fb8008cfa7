//! Oracle P: the RCPTCHECK program `qmail-rcptcheck-realrcptto`
//! (`patches/c/qmail-rcptcheck-realrcptto.c` with the realrcptto core),
//! built outside the qmail tree with stand-in `auto_*` definitions
//! (`tests/c/rcptcheck-autos.c`, which take the qmail home, break, alias
//! user and auto_patrn from the environment) and run once per address by
//! `tests/c/rcptcheck-harness.c`, which does what notqmail's
//! smtpd-rcptcheck hook in qmail-smtpd does: fork, SENDER and RECIPIENT
//! into the environment, execv, wait.
//!
//! The program is built with ASan+UBSan (its sanitizer reports fail the
//! check) or plainly (a run of it costs about a tenth: LeakSanitizer at
//! every exit is most of the sanitized cost); the harness is not under
//! test and is always built plainly. Both run
//! with a clean environment, as [`CheckOptions`] says (nss_wrapper, the
//! test uid, the errno shim).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::c::{cached_build, CError, CheckOptions};
use crate::cc::{self, Sanitize};
use crate::procenv;

/// The program's name, as its fatal lines start with it.
pub const PROGRAM: &str = "qmail-rcptcheck-realrcptto";

/// Addresses longer than this are not asked (an environment string is
/// limited to 128 KiB on Linux); the pair counts them as skipped.
pub const MAX_RECIPIENT: usize = 100_000;

/// How one run of the program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PStatus {
    /// It exited with this code (120: the harness could not exec it).
    Exit(i32),
    /// It was killed by this signal.
    Signal(i32),
}

/// One run of the program for one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PRun {
    /// How it ended.
    pub status: PStatus,
    /// What it wrote to fd 2 (log lines, the cause of a 111).
    pub stderr: Vec<u8>,
    /// What it wrote to fd 1 (under qmail-smtpd: the client's connection;
    /// must stay empty).
    pub stdout: Vec<u8>,
}

impl PRun {
    /// The verdict in the resolver's vocabulary: exit 0 `accept`, 100
    /// `reject`, 111 `tempfail-KIND` by the cause on stderr (`control`,
    /// `nomem`, `cdb`, `sys`; `tempfail-recipient` for RECIPIENT not set);
    /// anything else `exit N` / `signal N`.
    pub fn verdict(&self) -> String {
        match self.status {
            PStatus::Exit(0) => "accept".into(),
            PStatus::Exit(100) => "reject".into(),
            PStatus::Exit(111) => {
                let err = String::from_utf8_lossy(&self.stderr);
                let last = err.lines().last().unwrap_or("");
                let kind = match last.strip_prefix(&format!("{PROGRAM}: ")) {
                    Some("unable to read controls") => "control",
                    Some("out of memory") => "nomem",
                    Some("unable to read cdb user database") => "cdb",
                    Some("unable to read system user database") => "sys",
                    Some("RECIPIENT not set") => "recipient",
                    _ => return format!("exit 111 without a cause line ({last:?})"),
                };
                format!("tempfail-{kind}")
            }
            PStatus::Exit(n) => format!("exit {n}"),
            PStatus::Signal(n) => format!("signal {n}"),
        }
    }

    /// The stderr lines (lossy UTF-8).
    pub fn log_lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.stderr)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// What the harness reported: its pid (the program's parent) and one run
/// per address.
#[derive(Debug, Clone)]
pub struct PAnswers {
    /// The harness's pid: the log lines must name it, as they name
    /// qmail-smtpd under the real hook.
    pub parent: u32,
    /// One run per address, in order.
    pub runs: Vec<PRun>,
}

/// The line the program must log for a rejected `addr` (as the core
/// logs it: the address up to its first NUL, newlines as `_`) under the
/// parent `pid`, with `remoteip`.
pub fn expected_log_line(pid: u32, remoteip: &str, addr: &[u8]) -> String {
    let end = addr.iter().position(|&b| b == 0).unwrap_or(addr.len());
    let a: Vec<u8> = addr[..end]
        .iter()
        .map(|&b| if b == b'\n' { b'_' } else { b })
        .collect();
    format!(
        "realrcptto {pid} {remoteip} {}",
        String::from_utf8_lossy(&a)
    )
}

/// The compiled program and harness.
#[derive(Debug, Clone)]
pub struct PDriver {
    program: PathBuf,
    harness: PathBuf,
    sanitize: Sanitize,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> CError {
    let what = what.into();
    move |source| CError::Io { what, source }
}

fn key(files: &[PathBuf], extra: &str) -> Result<String, CError> {
    let mut data = Vec::new();
    for f in files {
        data.push(std::fs::read(f).map_err(io(format!("reading {}", f.display())))?);
    }
    let cc = cc::default_cc();
    let mut parts: Vec<&[u8]> = vec![cc.as_bytes(), extra.as_bytes()];
    parts.extend(data.iter().map(Vec::as_slice));
    Ok(cc::fnv_key(&parts))
}

impl PDriver {
    /// Build (or reuse) the program (with `sanitize`) and the harness.
    /// `lspawn_users`: the program as notqmail's rcptcheck patch compiles
    /// it (`-DRRT_LSPAWN_USERS`, through `tests/c/rcptcheck-lspawn.c`).
    pub fn build(sanitize: Sanitize, lspawn_users: bool) -> Result<Self, CError> {
        let main = if lspawn_users {
            cc::driver_dir().join("rcptcheck-lspawn.c")
        } else {
            cc::core_dir().join("qmail-rcptcheck-realrcptto.c")
        };
        let srcs = vec![
            main,
            cc::core_dir().join("realrcptto.c"),
            cc::driver_dir().join("rcptcheck-autos.c"),
        ];
        let mut inputs = srcs.clone();
        inputs.push(cc::core_dir().join("realrcptto.h"));
        inputs.push(cc::core_dir().join("qmail-rcptcheck-realrcptto.c"));
        let (name, tag) = match (sanitize, lspawn_users) {
            (Sanitize::AddressUndefined, false) => ("qmail-rcptcheck-realrcptto-asan", "asan"),
            (Sanitize::None, false) => ("qmail-rcptcheck-realrcptto", "plain"),
            (Sanitize::AddressUndefined, true) => {
                ("qmail-rcptcheck-realrcptto-lspawn-asan", "lspawn-asan")
            }
            (Sanitize::None, true) => ("qmail-rcptcheck-realrcptto-lspawn", "lspawn-plain"),
        };
        let program = cached_build(name, &srcs, &key(&inputs, tag)?, sanitize)?;
        let hsrc = vec![cc::driver_dir().join("rcptcheck-harness.c")];
        let harness = cached_build(
            "rcptcheck-harness",
            &hsrc,
            &key(&hsrc, "plain")?,
            Sanitize::None,
        )?;
        Ok(PDriver {
            program,
            harness,
            sanitize,
        })
    }

    /// The same program and harness run from other paths (copies the
    /// test uids can reach).
    pub fn with_exes(self, program: PathBuf, harness: PathBuf) -> Self {
        PDriver {
            program,
            harness,
            ..self
        }
    }

    /// The program executable.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The harness executable.
    pub fn harness(&self) -> &Path {
        &self.harness
    }

    /// Run the program once per address of `addrs` for the qmail home
    /// `qmail_home`, conf-break `break_byte` and alias user `alias`
    /// (`opts.env` is its environment; `unset_recipient` leaves RECIPIENT
    /// out).
    pub fn check(
        &self,
        qmail_home: &Path,
        break_byte: u8,
        alias: &str,
        addrs: &[Vec<u8>],
        opts: &CheckOptions,
        unset_recipient: bool,
    ) -> Result<PAnswers, CError> {
        let logdir = tempfile::Builder::new()
            .prefix("rrt-psan")
            .tempdir()
            .map_err(io("creating a sanitizer log dir"))?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(logdir.path(), std::fs::Permissions::from_mode(0o777))
                .map_err(io("chmod sanitizer log dir"))?;
        }
        let mut cmd = procenv::command_as(&self.harness, opts.run_as)
            .map_err(|e| CError::Driver(e.to_string()))?;
        cmd.env_clear();
        if unset_recipient {
            cmd.arg("-u");
        }
        cmd.arg(&self.program);
        cmd.env("RRT_TEST_QMAIL", qmail_home)
            .env("RRT_TEST_BREAK", break_byte.to_string())
            .env("RRT_TEST_USERA", alias)
            .env("RRT_TEST_PATRN", format!("{:o}", opts.patrn));
        cmd.envs(opts.env.iter().cloned());
        procenv::apply_nss(
            &mut cmd,
            opts.passwd.as_deref(),
            opts.group.as_deref(),
            &logdir.path().join("group"),
            &opts.preload,
        )
        .map_err(io("writing an empty group file"))?;
        let d = logdir.path().display();
        if self.sanitize == Sanitize::AddressUndefined {
            cmd.env(
                "ASAN_OPTIONS",
                format!("verify_asan_link_order=0:detect_leaks=1:log_path={d}/asan"),
            )
            .env(
                "UBSAN_OPTIONS",
                format!("print_stacktrace=1:halt_on_error=1:log_path={d}/ubsan"),
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
            .map_err(io(format!("running {}", self.harness.display())))?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child
            .wait_with_output()
            .map_err(io("waiting for the rcptcheck harness"))?;
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
                "rcptcheck harness: exit {:?}; stdout: {}; stderr: {}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        parse(&out.stdout, addrs.len())
    }
}

fn bad(msg: &str, out: &[u8]) -> CError {
    CError::Driver(format!(
        "rcptcheck harness: {msg}; output: {}",
        String::from_utf8_lossy(out)
    ))
}

fn netstring<'a>(s: &'a [u8], pos: &mut usize) -> Result<&'a [u8], CError> {
    let colon = s[*pos..]
        .iter()
        .position(|&b| b == b':')
        .ok_or_else(|| bad("netstring without ':'", s))?;
    let n: usize = std::str::from_utf8(&s[*pos..*pos + colon])
        .ok()
        .and_then(|x| x.parse().ok())
        .ok_or_else(|| bad("bad netstring length", s))?;
    let start = *pos + colon + 1;
    if start + n >= s.len() || s[start + n] != b',' {
        return Err(bad("truncated netstring", s));
    }
    *pos = start + n + 1;
    Ok(&s[start..start + n])
}

fn parse_status(s: &[u8], out: &[u8]) -> Result<PStatus, CError> {
    let n = std::str::from_utf8(&s[1..])
        .ok()
        .and_then(|x| x.parse().ok())
        .ok_or_else(|| bad("bad status", out))?;
    match s[0] {
        b'e' => Ok(PStatus::Exit(n)),
        b's' => Ok(PStatus::Signal(n)),
        _ => Err(bad("bad status", out)),
    }
}

fn parse(out: &[u8], expected: usize) -> Result<PAnswers, CError> {
    let nl = out
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| bad("no pid line", out))?;
    let parent: u32 = std::str::from_utf8(&out[..nl])
        .ok()
        .and_then(|l| l.strip_prefix("pid "))
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| bad("bad pid line", out))?;
    let mut pos = nl + 1;
    let mut runs = Vec::new();
    while !out[pos..].starts_with(b"end\n") {
        let sp = out[pos..]
            .iter()
            .position(|&b| b == b' ')
            .filter(|&n| n >= 2)
            .ok_or_else(|| bad("no status", out))?;
        let status = parse_status(&out[pos..pos + sp], out)?;
        pos += sp + 1;
        let stderr = netstring(out, &mut pos)?.to_vec();
        let stdout = netstring(out, &mut pos)?.to_vec();
        if out.get(pos) != Some(&b'\n') {
            return Err(bad("run line not terminated", out));
        }
        pos += 1;
        runs.push(PRun {
            status,
            stderr,
            stdout,
        });
    }
    if runs.len() != expected {
        return Err(bad(
            &format!("{} runs for {expected} addresses", runs.len()),
            out,
        ));
    }
    Ok(PAnswers { parent, runs })
}
