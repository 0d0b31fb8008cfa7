//! Oracle G: pristine netqmail-1.06 (or notqmail-1.09) judging a scenario
//! as production qmail would.
//!
//! The tree named by `QMAIL_SOURCE_NETQMAIL` (or `QMAIL_SOURCE_NOTQMAIL`)
//! is copied under the work
//! directory (`target/difftest/scratch/g/`, or a directory under the system
//! temp dir when the checkout is not reachable by other users; see
//! [`crate::scratch::scratch_dir`]) and built with
//!
//! * `conf-qmail` = `<work>/qmail`, a symlink that [`GBuild::judge`]
//!   repoints at each scenario's qmail home (so one build serves every
//!   scenario; judging holds a lock file and is serial);
//! * a hand-written `auto_uids.c` that maps the qmail accounts to the test
//!   uids of [`crate::scenario`] (`make -o auto_uids.c`, so no qmail users
//!   need to exist on the machine). notqmail-1.09 has no `auto_uids.c`:
//!   its programs look the test accounts up at run time.
//!
//! Per scenario, with every process under nss_wrapper:
//!
//! * **users/cdb**: real `qmail-newu` compiles users/assign (its result is
//!   compared with the resolver's `compile_assign` by the runner, and it is
//!   the cdb the rest of G uses).
//! * **Stage W (rewrite)**: real qmail-send needs a full queue, a running
//!   qmail-lspawn/rspawn pair and the qmail users, and reports its decision
//!   only through log lines. We take the route resolution.md §14 names:
//!   the functions `rewrite()`, `stripvdomprepend()` and `getcontrols()` are
//!   **cut unchanged out of the pristine qmail-send.c at test time** (never
//!   stored in this repository), compiled together with the pristine
//!   control.c, constmap.c and libraries of the same build, and wrapped in
//!   a small `main` that feeds them the recipients. Same code, same control
//!   loading, same data structures: only the queue plumbing around them is
//!   missing.
//! * **Stages H, U, G, L, Q, P**: real `qmail-lspawn`, run as root and
//!   driven on stdin exactly as qmail-spawn drives it (delnum byte, `0/1`,
//!   sender, recipient, each NUL-terminated; `queue/mess/0/1` owned by the
//!   test qmailq). It runs the real `qmail-getpw` as qmailp and starts
//!   `bin/qmail-local`, which is a two-line script that runs the real
//!   qmail-local with `-n` under the target user's uid. `-n` differs from
//!   production only in L3's sticky check (a warning instead of a deferral,
//!   which G turns back into the `-N` deferral text) and L5 (not reachable:
//!   the test message has no Delivered-To line).
//!
//! qmail-lspawn must run as root to switch to the users' uids: as any other
//! user [`build`] fails with [`GError::NotRoot`] and the tier is skipped.

use crate::procenv;
use crate::scenario::{self, Scenario, GID_NOFILES, GID_QMAIL, UID_QMAILQ};
use qmail_build::{CompileOptions, IdMap, Qmail};
use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use upstream_hashes::SourceTree;

/// Why G could not run.
#[derive(Debug, thiserror::Error)]
pub enum GError {
    /// qmail-lspawn needs root.
    #[error("oracle G needs root (qmail-lspawn switches to each user's uid); running as uid {0}")]
    NotRoot(u32),
    /// An I/O error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: io::Error,
    },
    /// A build step failed.
    #[error("building pristine qmail (oracle G) failed: {0}")]
    Build(String),
    /// A qmail program misbehaved (protocol error).
    #[error("{0}")]
    Protocol(String),
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> GError {
    let context = context.into();
    move |source| GError::Io { context, source }
}

pub use crate::procenv::nss_wrapper_lib;

/// The environment that serves a world's passwd and group files to a
/// process through nss_wrapper.
pub fn nss_env(root: &Path) -> Vec<(String, PathBuf)> {
    procenv::nss_vars(
        &root.join(scenario::layout::PASSWD),
        &root.join(scenario::layout::GROUP),
        &[],
    )
}

/// The qmail ids compiled into the test build: the qmail accounts of
/// [`crate::scenario`], root as `root`.
pub fn ids() -> IdMap {
    use crate::scenario::*;
    IdMap {
        uids: [
            UID_ALIAS, UID_QMAILD, UID_QMAILL, 0, UID_QMAILP, UID_QMAILQ, UID_QMAILR, UID_QMAILS,
        ],
        gids: [GID_QMAIL, GID_NOFILES],
    }
}

/// The uid-map source compiled into the test build (the hand-written
/// `auto_uids.c` of resolution.md §14).
pub fn auto_uids_c() -> String {
    ids().auto_uids_c()
}

/// Our wrapper around the functions cut out of qmail-send.c
/// (`tests/c/g-rewrite-harness.c`). `@CUT@` is replaced by the cut text.
const HARNESS: &str = include_str!("../../c/g-rewrite-harness.c");

/// Version of the build recipe (bump to force a rebuild).
const STAMP: &str = "difftest-g-2";

/// The libraries rwharness links with (both releases; netqmail also has
/// [`ALLOC_LIB`]).
const LIBS: &[&str] = &[
    "case.a",
    "getln.a",
    "open.a",
    "stralloc.a",
    "substdio.a",
    "error.a",
    "str.a",
    "fs.a",
];

/// netqmail's `alloc.a` (notqmail has no such library: its `alloc` is
/// libc's `malloc`, through `alloc.h`).
const ALLOC_LIB: &str = "alloc.a";

/// The libraries rwharness links with in a tree of `qmail`.
fn libs(qmail: Qmail) -> Vec<&'static str> {
    let mut v = LIBS.to_vec();
    if qmail == Qmail::Netqmail {
        v.insert(4, ALLOC_LIB);
    }
    v
}

/// The anchors that delimit the parts cut out of qmail-send.c.
const CUTS: &[(&str, &str)] = &[
    ("stralloc rwline = {0};", "void senderadd("),
    ("char *stripvdomprepend(recip)", "stralloc bouncetext"),
    ("int getcontrols()", "stralloc newlocals"),
];

fn cut_qmail_send(src: &str) -> Result<String, GError> {
    let mut out = String::new();
    for (from, to) in CUTS {
        let a = src
            .find(from)
            .ok_or_else(|| GError::Build(format!("qmail-send.c: anchor {from:?} not found")))?;
        let b = src[a..]
            .find(to)
            .ok_or_else(|| GError::Build(format!("qmail-send.c: anchor {to:?} not found")))?;
        out.push_str(&src[a..a + b]);
        out.push('\n');
    }
    Ok(out)
}

/// A built pristine netqmail ready to judge scenarios.
#[derive(Debug, Clone)]
pub struct GBuild {
    /// The work directory.
    pub work: PathBuf,
    /// The build tree (a copy of the pristine sources).
    pub tree: PathBuf,
    /// The compiled-in QMAILHOME (a symlink repointed per scenario).
    pub qmail_link: PathBuf,
}

fn run(cmd: &mut Command, what: &str) -> Result<(), GError> {
    let out = cmd.output().map_err(io_err(format!("cannot run {what}")))?;
    if !out.status.success() {
        return Err(GError::Build(format!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}

/// Builds (or reuses) the G binaries from the pristine tree `src`
/// (netqmail-1.06 or notqmail-1.09) in the directory `work`.
///
/// notqmail-1.09 compiles the qmail user names in, not their ids:
/// qmail-lspawn looks up qmailp, qmailq and nofiles when it starts, and
/// finds the test ids in each scenario's passwd and group files (through
/// nss_wrapper, like every G process).
pub fn build(src: &SourceTree, work: &Path) -> Result<GBuild, GError> {
    let uid = unsafe { libc::geteuid() };
    if uid != 0 {
        return Err(GError::NotRoot(uid));
    }
    let qmail = Qmail::of(src).map_err(|e| GError::Build(e.to_string()))?;
    if !src.root.join("qmail-send.c").is_file() {
        return Err(GError::Build(format!(
            "{} is not a {} tree (no qmail-send.c)",
            src.root.display(),
            src.release.full_name
        )));
    }
    std::fs::create_dir_all(work).map_err(io_err(format!("cannot create {}", work.display())))?;
    let work = work
        .canonicalize()
        .map_err(io_err(format!("cannot resolve {}", work.display())))?;
    std::fs::set_permissions(&work, std::fs::Permissions::from_mode(0o755))
        .map_err(io_err(format!("cannot chmod {}", work.display())))?;
    let tree = work.join(src.release.full_name);
    let qmail_link = work.join("qmail");
    let g = GBuild {
        work: work.clone(),
        tree: tree.clone(),
        qmail_link: qmail_link.clone(),
    };
    // The harness's own digest is in the stamp, so editing
    // tests/c/g-rewrite-harness.c rebuilds G.
    let harness_key = crate::cc::fnv_key(&[HARNESS.as_bytes()]);
    let stamp = format!(
        "{STAMP}\n{harness_key}\n{}\n{}\n{}\n",
        src.release.full_name,
        src.root.display(),
        qmail_link.display()
    );
    let stamp_file = tree.join(".difftest-stamp");
    if std::fs::read_to_string(&stamp_file).ok().as_deref() == Some(stamp.as_str())
        && tree.join("rwharness").is_file()
    {
        return Ok(g);
    }
    let built = qmail_patches::prepare_tree_with(src, &[], &work)
        .map_err(|e| GError::Build(e.to_string()))?;
    debug_assert_eq!(built, tree);
    let opts = CompileOptions {
        targets: Some(
            [
                "qmail-newu",
                "qmail-lspawn",
                "qmail-getpw",
                "qmail-local",
                "control.o",
                "constmap.o",
                "auto_qmail.o",
            ]
            .iter()
            .chain(&libs(qmail))
            .map(|t| t.to_string())
            .collect(),
        ),
        ..CompileOptions::new(&qmail_link, ids())
    };
    qmail_build::compile_qmail(qmail, &tree, &opts).map_err(|e| GError::Build(e.to_string()))?;
    let qsend =
        std::fs::read(tree.join("qmail-send.c")).map_err(io_err("cannot read qmail-send.c"))?;
    let cut = cut_qmail_send(&String::from_utf8_lossy(&qsend))?;
    std::fs::write(tree.join("rwharness.c"), HARNESS.replace("@CUT@", &cut))
        .map_err(io_err("cannot write rwharness.c"))?;
    run(
        Command::new("./compile")
            .current_dir(&tree)
            .arg("rwharness.c"),
        "compile rwharness.c",
    )?;
    run(
        Command::new("./load")
            .current_dir(&tree)
            .args(["rwharness", "control.o", "constmap.o", "auto_qmail.o"])
            .args(libs(qmail)),
        "load rwharness",
    )?;
    std::fs::write(&stamp_file, stamp).map_err(io_err("cannot write stamp"))?;
    Ok(g)
}

/// What G says about one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GAnswer {
    /// qmail-send would not start with these control files (C4).
    NoStart,
    /// qmail-send's rewrite chose the remote channel.
    Remote {
        /// The address handed to qmail-rspawn.
        address: Vec<u8>,
    },
    /// The local channel: qmail-lspawn's report.
    Local {
        /// The rewritten recipient.
        address: Vec<u8>,
        /// How a bounce would show it (`stripvdomprepend`).
        display: Vec<u8>,
        /// `K`, `Z` or `D`.
        letter: u8,
        /// The report text (qmail-local's `-n` listing for `K`).
        text: Vec<u8>,
    },
}

/// G's verdict on a scenario.
#[derive(Debug, Clone)]
pub struct GJudgement {
    /// qmail-newu's result when it ran: `Ok(cdb bytes)` or `Err(exit
    /// status and output)`.
    pub newu: Option<Result<Vec<u8>, String>>,
    /// One answer per address, in order.
    pub answers: Vec<GAnswer>,
}

/// The message every delivery reads (no Delivered-To line, so L5 never
/// applies).
pub const MESSAGE: &[u8] = b"Subject: difftest\n\nbody\n";
/// The envelope sender used (a normal one, so Q7 runs).
pub const SENDER: &[u8] = b"sender@example.net";

struct Lock(std::fs::File);

impl Lock {
    fn take(path: &Path) -> Result<Lock, GError> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(io_err(format!("cannot open {}", path.display())))?;
        use std::os::unix::io::AsRawFd;
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(GError::Io {
                context: format!("cannot lock {}", path.display()),
                source: io::Error::last_os_error(),
            });
        }
        Ok(Lock(f))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        use std::os::unix::io::AsRawFd;
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

impl GBuild {
    fn point_at(&self, qhome: &Path) -> Result<(), GError> {
        let tmp = self.work.join("qmail.new");
        let _ = std::fs::remove_file(&tmp);
        symlink(qhome, &tmp).map_err(io_err("cannot make the QMAILHOME symlink"))?;
        std::fs::rename(&tmp, &self.qmail_link).map_err(io_err("cannot repoint QMAILHOME"))
    }

    /// Adds what qmail-lspawn needs to a materialised world's QMAILHOME:
    /// `bin/qmail-getpw`, `bin/qmail-local` (the `-n` wrapper) and the
    /// message `queue/mess/0/1` owned by qmailq.
    pub fn install_into(&self, qhome: &Path) -> Result<(), GError> {
        let bin = qhome.join("bin");
        let mess = qhome.join("queue/mess/0");
        for d in [&bin, &mess] {
            std::fs::create_dir_all(d).map_err(io_err(format!("cannot create {}", d.display())))?;
        }
        for d in [
            qhome.join("queue"),
            qhome.join("queue/mess"),
            mess.clone(),
            bin.clone(),
        ] {
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755))
                .map_err(io_err(format!("cannot chmod {}", d.display())))?;
        }
        let getpw = bin.join("qmail-getpw");
        let _ = std::fs::remove_file(&getpw);
        symlink(self.tree.join("qmail-getpw"), &getpw)
            .map_err(io_err("cannot link qmail-getpw"))?;
        let local = bin.join("qmail-local");
        let script = format!(
            "#!/bin/sh\nexec '{}' -n \"$@\"\n",
            self.tree.join("qmail-local").display()
        );
        std::fs::write(&local, script).map_err(io_err("cannot write bin/qmail-local"))?;
        std::fs::set_permissions(&local, std::fs::Permissions::from_mode(0o755))
            .map_err(io_err("cannot chmod bin/qmail-local"))?;
        let m = mess.join("1");
        std::fs::write(&m, MESSAGE).map_err(io_err("cannot write the message"))?;
        std::os::unix::fs::chown(&m, Some(UID_QMAILQ), Some(GID_QMAIL))
            .map_err(io_err("cannot chown the message"))?;
        std::fs::set_permissions(&m, std::fs::Permissions::from_mode(0o644))
            .map_err(io_err("cannot chmod the message"))?;
        let _ = GID_NOFILES;
        Ok(())
    }

    fn command(&self, prog: &str, root: &Path) -> Command {
        let mut c = Command::new(self.tree.join(prog));
        c.envs(nss_env(root));
        c.current_dir(&self.work);
        c
    }

    /// Judges a scenario materialised at `root`. Serialised across
    /// processes by a lock file (the QMAILHOME symlink is shared).
    pub fn judge(&self, sc: &Scenario, root: &Path) -> Result<GJudgement, GError> {
        let _lock = Lock::take(&self.work.join("judge.lock"))?;
        let qhome = Scenario::qmail_home(root);
        self.install_into(&qhome)?;
        self.point_at(&qhome)?;

        // users/cdb: qmail-newu, when the scenario builds it from assign.
        let mut newu = None;
        if sc.cdb == scenario::CdbState::FromAssign && sc.assign.is_some() {
            let cdbp = qhome.join("users/cdb");
            let _ = std::fs::remove_file(&cdbp);
            let out = self
                .command("qmail-newu", root)
                .output()
                .map_err(io_err("cannot run qmail-newu"))?;
            newu = Some(if out.status.success() {
                std::fs::read(&cdbp)
                    .map_err(io_err("cannot read users/cdb after qmail-newu"))
                    .map(Ok)?
            } else {
                Err(format!(
                    "{}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            });
        }

        // Stage W.
        let mut input = Vec::new();
        for a in &sc.addresses {
            input.extend_from_slice(&a.0);
            input.push(0);
        }
        let out = pipe_through(self.command("rwharness", root), &input)?;
        let mut answers = Vec::with_capacity(sc.addresses.len());
        let mut locals = Vec::new();
        if out.first() == Some(&b'!') {
            answers = vec![GAnswer::NoStart; sc.addresses.len()];
        } else {
            let mut fields = out.split(|&c| c == 0);
            for i in 0..sc.addresses.len() {
                let rw = fields.next().filter(|f| !f.is_empty()).ok_or_else(|| {
                    GError::Protocol(format!("rwharness: short output at address {i}"))
                })?;
                let display = fields.next().ok_or_else(|| {
                    GError::Protocol(format!("rwharness: short output at address {i}"))
                })?;
                let address = rw[1..].to_vec();
                if rw[0] == b'1' {
                    locals.push(i);
                    answers.push(GAnswer::Local {
                        address,
                        display: display.to_vec(),
                        letter: 0,
                        text: Vec::new(),
                    });
                } else {
                    answers.push(GAnswer::Remote { address });
                }
            }
        }

        // Stages H..P through qmail-lspawn.
        if !locals.is_empty() {
            let recips: Vec<Vec<u8>> = locals
                .iter()
                .map(|&i| match &answers[i] {
                    GAnswer::Local { address, .. } => address.clone(),
                    _ => Vec::new(),
                })
                .collect();
            let reports = self.lspawn(sc, root, &recips)?;
            for (k, &i) in locals.iter().enumerate() {
                if let GAnswer::Local { letter, text, .. } = &mut answers[i] {
                    let (l, t) = reports[k].clone();
                    *letter = l;
                    *text = t;
                }
            }
        }
        Ok(GJudgement { newu, answers })
    }

    fn lspawn(
        &self,
        sc: &Scenario,
        root: &Path,
        recips: &[Vec<u8>],
    ) -> Result<Vec<(u8, Vec<u8>)>, GError> {
        let mut cmd = self.command("qmail-lspawn", root);
        cmd.arg(OsStr::from_bytes(&sc.aliasempty.0));
        // a file, not a pipe: nothing reads stderr while lspawn runs
        let errf =
            tempfile::tempfile().map_err(io_err("cannot make qmail-lspawn's stderr file"))?;
        let errc = errf
            .try_clone()
            .map_err(io_err("cannot make qmail-lspawn's stderr file"))?;
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(errc));
        let mut child = cmd.spawn().map_err(io_err("cannot start qmail-lspawn"))?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| GError::Protocol("no stdin".into()))?;
        let mut stdout = io::BufReader::new(
            child
                .stdout
                .take()
                .ok_or_else(|| GError::Protocol("no stdout".into()))?,
        );
        let mut first = [0u8; 1];
        if let Err(e) = stdout.read_exact(&mut first) {
            return lspawn_no_start(&mut child, errf, recips.len(), e);
        }
        let batch = (first[0] as usize).clamp(1, 50);
        let mut results: Vec<Option<(u8, Vec<u8>)>> = vec![None; recips.len()];
        for (b, chunk) in recips.chunks(batch).enumerate() {
            let mut cmdbuf = Vec::new();
            for (d, r) in chunk.iter().enumerate() {
                cmdbuf.push(d as u8);
                cmdbuf.extend_from_slice(b"0/1\0");
                cmdbuf.extend_from_slice(SENDER);
                cmdbuf.push(0);
                cmdbuf.extend_from_slice(r);
                cmdbuf.push(0);
            }
            stdin
                .write_all(&cmdbuf)
                .map_err(io_err("cannot write to qmail-lspawn"))?;
            stdin
                .flush()
                .map_err(io_err("cannot write to qmail-lspawn"))?;
            for _ in 0..chunk.len() {
                let mut d = [0u8; 1];
                stdout
                    .read_exact(&mut d)
                    .map_err(io_err("qmail-lspawn ended early"))?;
                let mut text = Vec::new();
                io::BufRead::read_until(&mut stdout, 0, &mut text)
                    .map_err(io_err("qmail-lspawn ended early"))?;
                if text.pop() != Some(0) {
                    return Err(GError::Protocol("qmail-lspawn: report without NUL".into()));
                }
                let idx = b * batch + d[0] as usize;
                if d[0] as usize >= chunk.len() || results[idx].is_some() {
                    return Err(GError::Protocol(format!(
                        "qmail-lspawn: unexpected delnum {}",
                        d[0]
                    )));
                }
                let letter = text.first().copied().unwrap_or(b'?');
                let rest = if text.is_empty() {
                    Vec::new()
                } else {
                    text[1..].to_vec()
                };
                results[idx] = Some((letter, rest));
            }
        }
        drop(stdin);
        let _ = child.wait();
        results
            .into_iter()
            .map(|r| r.ok_or_else(|| GError::Protocol("qmail-lspawn: missing report".into())))
            .collect()
    }
}

/// qmail-lspawn ended before its concurrency byte. notqmail's does that,
/// with exit 111 and one `fatal: …` line on stderr (`unable to find user
/// qmailp`, …), when a qmail user or group it looks up is missing:
/// qmail-send then keeps every local delivery in the queue, so each
/// recipient gets the deferral `Z` with that line as its text. Anything
/// else is a protocol error naming the status, the stderr text and `e`.
fn lspawn_no_start(
    child: &mut std::process::Child,
    mut errf: std::fs::File,
    n: usize,
    e: io::Error,
) -> Result<Vec<(u8, Vec<u8>)>, GError> {
    let status = child.wait().map_err(io_err("waiting for qmail-lspawn"))?;
    let mut text = Vec::new();
    io::Seek::rewind(&mut errf).map_err(io_err("reading qmail-lspawn's stderr"))?;
    (&mut errf)
        .take(4096)
        .read_to_end(&mut text)
        .map_err(io_err("reading qmail-lspawn's stderr"))?;
    while text.last() == Some(&b'\n') {
        text.pop();
    }
    if status.code() == Some(111) && text.starts_with(b"fatal: ") && !text.contains(&b'\n') {
        return Ok(vec![(b'Z', text); n]);
    }
    Err(GError::Protocol(format!(
        "qmail-lspawn did not start (no concurrency byte: {e}); it exited {status}: {:?}",
        String::from_utf8_lossy(&text)
    )))
}

fn pipe_through(mut cmd: Command, input: &[u8]) -> Result<Vec<u8>, GError> {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(io_err("cannot start rwharness"))?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| GError::Protocol("no stdin".into()))?;
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child
        .wait_with_output()
        .map_err(io_err("rwharness failed"))?;
    let _ = writer.join();
    if !out.status.success() {
        return Err(GError::Protocol(format!(
            "rwharness exited {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(out.stdout)
}

/// The class of a G answer, in the words of resolution.md O4 / the
/// resolver's `Outcome::class()`, plus the detail compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GClass {
    /// qmail-send would not start: G cannot judge.
    NoStart,
    /// Remote channel.
    Remote,
    /// `K` with empty text (H4).
    Trash,
    /// A `.qmail` file was used; its marker (if its listing shows one).
    Deliver {
        /// The `qfN` marker found in the listing.
        marker: Option<u32>,
        /// The -n listing shows exactly the aliasempty instructions.
        aliasempty: bool,
    },
    /// `D` with this text (last line, no newline).
    Bounce(String),
    /// `Z` with this text (last line, no newline).
    Defer(String),
}

/// The last non-empty line of a report text, as the comparable "text".
pub fn last_line(t: &[u8]) -> String {
    let s = String::from_utf8_lossy(t);
    s.split('\n')
        .rfind(|l| !l.is_empty())
        .unwrap_or("")
        .to_string()
}

/// The `-n` listing qmail-local prints for these instructions (P2, P3, P9).
pub fn listing_of(instructions: &[u8]) -> Vec<String> {
    let mut v = Vec::new();
    for raw in instructions.split(|&c| c == b'\n') {
        let mut l = raw;
        if let Some(z) = l.iter().position(|&c| c == 0) {
            l = &l[..z];
        }
        while let Some((&last, rest)) = l.split_last() {
            if last == b' ' || last == b'\t' {
                l = rest;
            } else {
                break;
            }
        }
        let s = String::from_utf8_lossy(l).into_owned();
        match l.first() {
            None | Some(b'#') | Some(b'+') => {}
            Some(b'.') | Some(b'/') => {
                if l.last() == Some(&b'/') {
                    v.push(format!("maildir {s}"));
                } else {
                    v.push(format!("mbox {s}"));
                }
            }
            Some(b'|') => v.push(format!("program {}", &s[1..])),
            Some(b'&') => v.push(format!("forward {}", &s[1..])),
            _ => v.push(format!("forward {s}")),
        }
    }
    v
}

/// Classifies a G answer. `aliasempty` is the default delivery string.
pub fn classify(a: &GAnswer, aliasempty: &[u8]) -> GClass {
    match a {
        GAnswer::NoStart => GClass::NoStart,
        GAnswer::Remote { .. } => GClass::Remote,
        GAnswer::Local { letter, text, .. } => {
            let s = String::from_utf8_lossy(text);
            if s.contains("Warning: home directory is sticky.") {
                // qmail-local -n only warns; -N (production) stops right
                // there in checkhome with this deferral (L3).
                return GClass::Defer(
                    "Home directory is sticky: user is editing his .qmail file. (#4.2.1)".into(),
                );
            }
            match letter {
                b'K' if text.is_empty() => GClass::Trash,
                b'K' => {
                    let lines: Vec<&str> = s
                        .split('\n')
                        .filter(|l| {
                            !l.is_empty() && !l.starts_with("did ") && !l.starts_with("Warning")
                        })
                        .collect();
                    let mut marker = None;
                    for l in &lines {
                        if let Some(rest) = l.strip_prefix("forward qf") {
                            let digits: String =
                                rest.chars().take_while(|c| c.is_ascii_digit()).collect();
                            if let Ok(n) = digits.parse() {
                                marker = Some(n);
                                break;
                            }
                        }
                    }
                    let mut ae = aliasempty.to_vec();
                    ae.push(b'\n');
                    let expect = listing_of(&ae);
                    let is_ae = marker.is_none()
                        && lines.iter().map(|l| l.to_string()).collect::<Vec<_>>() == expect;
                    GClass::Deliver {
                        marker,
                        aliasempty: is_ae,
                    }
                }
                b'Z' => GClass::Defer(last_line(text)),
                _ => GClass::Bounce(last_line(text)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_follows_p3() {
        let l = listing_of(b"# c\n./Maildir/  \n./mbox\n|prog a\n&x\n y\n+list\n\n");
        assert_eq!(
            l,
            vec![
                "maildir ./Maildir/",
                "mbox ./mbox",
                "program prog a",
                "forward x",
                "forward  y"
            ]
        );
    }

    #[test]
    fn classify_reads_markers_and_texts() {
        let k = GAnswer::Local {
            address: b"a@b".to_vec(),
            display: b"a@b".to_vec(),
            letter: b'K',
            text: b"forward qf12\r\nmaildir ./Maildir/\ndid 1+1+0\n".to_vec(),
        };
        assert_eq!(
            classify(&k, b"./Maildir-aliasempty/"),
            GClass::Deliver {
                marker: Some(12),
                aliasempty: false
            }
        );
        let d = GAnswer::Local {
            address: b"a@b".to_vec(),
            display: b"a@b".to_vec(),
            letter: b'D',
            text: b"Sorry, no mailbox here by that name. (#5.1.1)\n".to_vec(),
        };
        assert_eq!(
            classify(&d, b"x"),
            GClass::Bounce("Sorry, no mailbox here by that name. (#5.1.1)".into())
        );
    }

    #[test]
    fn cut_needs_its_anchors() {
        assert!(cut_qmail_send("nothing here").is_err());
    }
}
