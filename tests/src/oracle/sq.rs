//! Oracles S and Q: qmail-smtpd and qmail-qmtpd built from a netqmail-1.06
//! or notqmail-1.09 tree with the generated realrcptto patch, driven through real SMTP and
//! QMTP conversations on stdin/stdout.
//!
//! Decisions:
//! * The programs are built with `conf-qmail` set to `.`, so qmail-smtpd's
//!   `chdir(auto_qmail)` keeps the working directory the harness starts it
//!   in. Each run picks its qmail home by `current_dir`; scenarios can run
//!   in parallel and nothing has to be repointed.
//! * `bin/qmail-queue` in a scenario's home is a stub
//!   (`tests/c/qmail-queue-stub.c`, see [`SqBuild::install_queue_stub`])
//!   that records in `qq-stub.log` whether a message would have been
//!   queued (`queued …`, exit 0) or the envelope was cut short (`aborted`,
//!   exit 54, what qmail-queue does after `qmail_fail`).
//! * The unpatched build (same tree, same conf-qmail) is available for
//!   comparisons and the benchmark (`bench_rcpt.rs`, above this module).

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};

use qmail_build::{CompileOptions, IdMap, Qmail};
use qmail_patches::{realrcptto, Patch};
use upstream_hashes::SourceTree;

use super::c::cached_build;
use crate::cc::{self, Sanitize};
use crate::procenv;

/// Everything that can go wrong building or driving qmail-smtpd/qmtpd.
#[derive(Debug, thiserror::Error)]
pub enum SqError {
    /// An I/O error (the file or action is named).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// Generating the patch failed.
    #[error("generating the realrcptto patch: {0}")]
    Patch(#[from] qmail_patches::PatchError),
    /// Building failed.
    #[error("{0}")]
    Build(String),
    /// A protocol exchange did not go as expected.
    #[error("{0}")]
    Protocol(String),
    /// Compiling a helper failed.
    #[error("{0}")]
    Cc(#[from] super::c::CError),
    /// The TLS layer failed (making the certificates, the handshake).
    #[error("TLS: {0}")]
    Tls(String),
}

pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SqError {
    let what = what.into();
    move |source| SqError::Io { what, source }
}

/// A built tree: qmail-smtpd and qmail-qmtpd (patched or pristine).
#[derive(Debug, Clone)]
pub struct SqBuild {
    root: PathBuf,
    stub: PathBuf,
    patched: bool,
}

/// How to start a qmail-smtpd or qmail-qmtpd process.
#[derive(Debug, Clone, Default)]
pub struct SqOptions {
    /// The environment (`TCPREMOTEIP`, `PROTO`, `RELAYCLIENT`,
    /// `QMAILRRTDENYALL`, …); nothing else is inherited.
    pub env: Vec<(OsString, OsString)>,
    /// passwd file served through nss_wrapper.
    pub passwd: Option<PathBuf>,
    /// group file for nss_wrapper (an empty one is used when `None`).
    pub group: Option<PathBuf>,
    /// Run as this (uid, gid) with no supplementary groups (`setpriv`).
    pub run_as: Option<(u32, u32)>,
    /// Libraries to preload before nss_wrapper (e.g. an errno shim).
    pub preload: Vec<PathBuf>,
    /// Arguments after the program name (qmail-smtpd of the SMTP AUTH
    /// patch: the checkpassword program and its subprogram).
    pub args: Vec<OsString>,
}

impl SqOptions {
    /// Add an environment variable.
    pub fn with(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
}

/// Version of the build recipe, part of the cache key (bump to rebuild).
const RECIPE: &[u8] = b"difftest-sq-2";

impl SqBuild {
    /// Build (or reuse from the cache under the system temp dir) the
    /// programs from the qmail tree `src` (netqmail-1.06 or
    /// notqmail-1.09, maybe with a third-party stack), with the realrcptto
    /// patch when `patched`.
    pub fn build(src: &SourceTree, patched: bool) -> Result<Self, SqError> {
        let dir = std::env::temp_dir().join("qmail-difftest-sq");
        Self::build_in(src, patched, &dir)
    }

    /// Like [`SqBuild::build`], with the build trees under `parent`.
    pub fn build_in(src: &SourceTree, patched: bool, parent: &Path) -> Result<Self, SqError> {
        std::fs::create_dir_all(parent).map_err(io(format!("creating {}", parent.display())))?;
        let qmail = Qmail::of(src).map_err(|e| SqError::Build(e.to_string()))?;
        let patch: Option<Patch> = if patched {
            Some(realrcptto::generate(src)?)
        } else {
            None
        };
        let diff = patch.as_ref().map(|p| p.to_diff()).unwrap_or_default();
        let key = cc::fnv_key(&[
            RECIPE,
            src.release.full_name.as_bytes(),
            src.root.as_os_str().as_encoded_bytes(),
            diff.as_bytes(),
        ]);
        let name = format!("{}-{key}", if patched { "patched" } else { "pristine" });
        let root = parent.join(&name);
        let stub_src = cc::driver_dir().join("qmail-queue-stub.c");
        let stub_key =
            cc::fnv_key(&[&std::fs::read(&stub_src).map_err(io("reading the queue stub"))?]);
        let stub = cached_build("qmail-queue-stub", &[stub_src], &stub_key, Sanitize::None)?;
        let done = root.join(".built");
        if done.is_file() {
            return Ok(SqBuild {
                root,
                stub,
                patched,
            });
        }
        let tmp = tempfile::Builder::new()
            .prefix(&format!("{name}.tmp"))
            .tempdir_in(parent)
            .map_err(io("creating a build dir"))?;
        let tree = qmail_patches::prepare_tree_with(src, patch.as_slice(), tmp.path())
            .map_err(|e| SqError::Build(e.to_string()))?;
        let opts = CompileOptions {
            targets: Some(vec!["qmail-smtpd".into(), "qmail-qmtpd".into()]),
            ..CompileOptions::new("/", IdMap::build_user())
        };
        qmail_build::compile_qmail_cwd_home(qmail, &tree, &opts)
            .map_err(|e| SqError::Build(e.to_string()))?;
        std::fs::write(tree.join(".built"), b"").map_err(io("marking the build"))?;
        let kept = tmp.keep();
        match std::fs::rename(&tree, &root) {
            Ok(()) => {}
            Err(_) if done.is_file() => {} // another process won the race
            Err(e) => return Err(io(format!("renaming to {}", root.display()))(e)),
        }
        let _ = std::fs::remove_dir_all(&kept);
        Ok(SqBuild {
            root,
            stub,
            patched,
        })
    }

    /// The build tree (the netqmail objects and libraries, e.g. `cdb.a`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether this is the patched build.
    pub fn patched(&self) -> bool {
        self.patched
    }

    /// The qmail-smtpd executable.
    pub fn smtpd(&self) -> PathBuf {
        self.root.join("qmail-smtpd")
    }

    /// The qmail-qmtpd executable.
    pub fn qmtpd(&self) -> PathBuf {
        self.root.join("qmail-qmtpd")
    }

    /// Make `home/bin/qmail-queue` the recording stub.
    pub fn install_queue_stub(&self, home: &Path) -> Result<(), SqError> {
        let bin = home.join("bin");
        std::fs::create_dir_all(&bin).map_err(io(format!("creating {}", bin.display())))?;
        let q = bin.join("qmail-queue");
        let _ = std::fs::remove_file(&q);
        std::os::unix::fs::symlink(&self.stub, &q).map_err(io(format!("linking {}", q.display())))
    }

    fn command(
        &self,
        prog: &Path,
        home: &Path,
        opts: &SqOptions,
        errfile: &Path,
    ) -> Result<Command, SqError> {
        let mut cmd =
            procenv::command_as(prog, opts.run_as).map_err(|e| SqError::Build(e.to_string()))?;
        cmd.args(&opts.args).env_clear().current_dir(home);
        cmd.envs(opts.env.iter().cloned());
        procenv::apply_nss(
            &mut cmd,
            opts.passwd.as_deref(),
            opts.group.as_deref(),
            &errfile.with_extension("group"),
            &opts.preload,
        )
        .map_err(io("writing an empty group file"))?;
        let err = std::fs::File::create(errfile).map_err(io("creating the stderr file"))?;
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(err);
        Ok(cmd)
    }

    /// Start qmail-smtpd in the qmail home `home` and read its greeting.
    pub fn smtp(&self, home: &Path, opts: &SqOptions) -> Result<SmtpSession, SqError> {
        let dir = tempfile::tempdir().map_err(io("creating a temp dir"))?;
        let errfile = dir.path().join("stderr");
        let mut child = self
            .command(&self.smtpd(), home, opts, &errfile)?
            .spawn()
            .map_err(io(format!("starting {}", self.smtpd().display())))?;
        let pipes = Pipes {
            from: child.stdout.take().expect("piped stdout"),
            to: child.stdin.take().expect("piped stdin"),
        };
        let mut s = SmtpSession {
            child,
            wire: Some(BufReader::new(Wire::Plain(pipes))),
            errfile,
            _dir: dir,
            greeting: Reply::default(),
        };
        s.greeting = s.read_reply()?;
        Ok(s)
    }

    /// One SMTP transaction: HELO, MAIL FROM:<from>, one RCPT per address,
    /// then DATA with `body` when `body` is `Some`, then QUIT.
    pub fn smtp_transaction(
        &self,
        home: &Path,
        opts: &SqOptions,
        from: &[u8],
        rcpts: &[Vec<u8>],
        body: Option<&str>,
    ) -> Result<SmtpOutcome, SqError> {
        let mut s = self.smtp(home, opts)?;
        let helo = s.cmd(b"HELO client.example")?;
        let env = s.envelope(from, rcpts, body)?;
        let end = s.finish()?;
        Ok(SmtpOutcome {
            helo,
            mail: env.mail,
            rcpt: env.rcpt,
            data: env.data,
            stderr: end.stderr,
            status: end.status,
        })
    }

    /// Send QMTP messages to qmail-qmtpd (all at once, then EOF) and read
    /// the replies: per message, one reply text per recipient.
    pub fn qmtp(
        &self,
        home: &Path,
        opts: &SqOptions,
        msgs: &[QmtpMessage],
    ) -> Result<QmtpOutcome, SqError> {
        let dir = tempfile::tempdir().map_err(io("creating a temp dir"))?;
        let errfile = dir.path().join("stderr");
        let mut child = self
            .command(&self.qmtpd(), home, opts, &errfile)?
            .spawn()
            .map_err(io(format!("starting {}", self.qmtpd().display())))?;
        let mut input = Vec::new();
        for m in msgs {
            m.encode(&mut input);
        }
        let mut stdin = child.stdin.take().expect("piped stdin");
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let mut out = Vec::new();
        child
            .stdout
            .take()
            .expect("piped stdout")
            .read_to_end(&mut out)
            .map_err(io("reading qmail-qmtpd's output"))?;
        let status = child.wait().map_err(io("waiting for qmail-qmtpd"))?;
        let _ = writer.join();
        let stderr = std::fs::read(&errfile).map_err(io("reading qmail-qmtpd's stderr"))?;
        let mut all = Vec::new();
        let mut pos = 0;
        while pos < out.len() {
            let colon = out[pos..].iter().position(|&b| b == b':').ok_or_else(|| {
                SqError::Protocol(format!(
                    "bad QMTP reply: {:?}",
                    String::from_utf8_lossy(&out)
                ))
            })?;
            let n: usize = std::str::from_utf8(&out[pos..pos + colon])
                .ok()
                .and_then(|x| x.parse().ok())
                .ok_or_else(|| {
                    SqError::Protocol(format!(
                        "bad QMTP length: {:?}",
                        String::from_utf8_lossy(&out)
                    ))
                })?;
            let start = pos + colon + 1;
            if start + n >= out.len() || out[start + n] != b',' {
                return Err(SqError::Protocol(format!(
                    "truncated QMTP reply: {:?}",
                    String::from_utf8_lossy(&out)
                )));
            }
            all.push(out[start..start + n].to_vec());
            pos = start + n + 1;
        }
        let mut replies = Vec::new();
        let mut it = all.into_iter();
        for m in msgs {
            let r: Vec<Vec<u8>> = it.by_ref().take(m.rcpts.len()).collect();
            let complete = r.len() == m.rcpts.len();
            replies.push(r);
            if !complete {
                break;
            }
        }
        Ok(QmtpOutcome {
            replies,
            stderr,
            status,
        })
    }
}

/// One SMTP reply: the code and every line of it, CRLF included.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// The reply code (250, 550, …).
    pub code: u16,
    /// The reply text as received, all lines, with their CRLFs.
    pub text: String,
}

/// The two pipes to a child: its stdout to read, its stdin to write.
#[derive(Debug)]
pub struct Pipes {
    from: ChildStdout,
    to: ChildStdin,
}

impl Read for Pipes {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.from.read(buf)
    }
}

impl Write for Pipes {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.to.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.to.flush()
    }
}

/// A byte stream both ways (what a session layer such as TLS makes of
/// [`Pipes`]).
pub trait Duplex: Read + Write + Send + std::fmt::Debug {}

impl<T: Read + Write + Send + std::fmt::Debug> Duplex for T {}

/// What a session talks over: the plain pipes, or a layer over them.
#[derive(Debug)]
enum Wire {
    Plain(Pipes),
    Layered(Box<dyn Duplex>),
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Wire::Plain(p) => p.read(buf),
            Wire::Layered(d) => d.read(buf),
        }
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Wire::Plain(p) => p.write(buf),
            Wire::Layered(d) => d.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Wire::Plain(p) => p.flush(),
            Wire::Layered(d) => d.flush(),
        }
    }
}

/// A running qmail-smtpd.
#[derive(Debug)]
pub struct SmtpSession {
    child: Child,
    /// `None` once closed (or while being layered).
    wire: Option<BufReader<Wire>>,
    errfile: PathBuf,
    _dir: tempfile::TempDir,
    greeting: Reply,
}

/// How a session ended.
#[derive(Debug)]
pub struct SessionEnd {
    /// What the server wrote on stderr (realrcptto's log lines).
    pub stderr: Vec<u8>,
    /// Its exit status.
    pub status: ExitStatus,
}

impl SmtpSession {
    /// The 220 greeting (or the 421 that replaced it).
    pub fn greeting(&self) -> &Reply {
        &self.greeting
    }

    /// The server's process id (the PID field of realrcptto's log line
    /// when it runs without setpriv).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn read_reply(&mut self) -> Result<Reply, SqError> {
        let wire = self
            .wire
            .as_mut()
            .ok_or_else(|| SqError::Protocol("session already closed".into()))?;
        let mut text = String::new();
        loop {
            let mut line = Vec::new();
            let n = wire
                .read_until(b'\n', &mut line)
                .map_err(io("reading from qmail-smtpd"))?;
            if n == 0 {
                return Err(SqError::Protocol(format!(
                    "qmail-smtpd closed the connection (after {text:?})"
                )));
            }
            let l = String::from_utf8_lossy(&line).into_owned();
            text.push_str(&l);
            if l.len() < 4 || l.as_bytes()[3] != b'-' {
                let code = l
                    .get(..3)
                    .and_then(|c| c.parse().ok())
                    .ok_or_else(|| SqError::Protocol(format!("bad SMTP reply {l:?}")))?;
                return Ok(Reply { code, text });
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), SqError> {
        let w = self
            .wire
            .as_mut()
            .ok_or_else(|| SqError::Protocol("session already closed".into()))?
            .get_mut();
        w.write_all(bytes).map_err(io("writing to qmail-smtpd"))?;
        w.flush().map_err(io("writing to qmail-smtpd"))
    }

    /// Puts a layer (TLS) between the session and the pipes: `layer` gets
    /// the plain pipes and returns the stream to talk over from now on.
    /// An error when the session is already layered, or when the server
    /// sent bytes that were not read yet (they would belong to the plain
    /// side).
    pub fn layer(
        &mut self,
        layer: impl FnOnce(Pipes) -> Result<Box<dyn Duplex>, SqError>,
    ) -> Result<(), SqError> {
        match self.wire.take().map(|w| (w.buffer().is_empty(), w)) {
            Some((true, w)) => match w.into_inner() {
                Wire::Plain(p) => {
                    self.wire = Some(BufReader::new(Wire::Layered(layer(p)?)));
                    Ok(())
                }
                Wire::Layered(_) => Err(SqError::Protocol("session already layered".into())),
            },
            Some((false, _)) => Err(SqError::Protocol(
                "qmail-smtpd sent more than its reply before the layer started".into(),
            )),
            None => Err(SqError::Protocol("session already closed".into())),
        }
    }

    /// Send one command line (CRLF is added) and read the reply.
    pub fn cmd(&mut self, line: &[u8]) -> Result<Reply, SqError> {
        self.send(&[line, b"\r\n"].concat())?;
        self.read_reply()
    }

    /// MAIL FROM:<from>, one RCPT per address (stopping after a 421),
    /// then DATA with `body` when `body` is `Some` (and no 421 came).
    pub fn envelope(
        &mut self,
        from: &[u8],
        rcpts: &[Vec<u8>],
        body: Option<&str>,
    ) -> Result<Envelope, SqError> {
        let mail = self.cmd(&[b"MAIL FROM:<".as_slice(), from, b">"].concat())?;
        let mut rcpt = Vec::new();
        for r in rcpts {
            let reply = self.cmd(&[b"RCPT TO:<".as_slice(), r, b">"].concat())?;
            let fatal = reply.code == 421;
            rcpt.push(reply);
            if fatal {
                break;
            }
        }
        let data = match body {
            Some(b) if rcpt.last().map(|r| r.code) != Some(421) => Some(self.data(b)?),
            _ => None,
        };
        Ok(Envelope { mail, rcpt, data })
    }

    /// DATA: if the server answers 354, send `body` (LF line ends become
    /// CRLF, dots are stuffed) and the final dot, and return the final
    /// reply; otherwise return the reply to DATA.
    pub fn data(&mut self, body: &str) -> Result<Reply, SqError> {
        let r = self.cmd(b"DATA")?;
        if r.code != 354 {
            return Ok(r);
        }
        let mut msg = Vec::new();
        for l in body.lines() {
            if l.starts_with('.') {
                msg.push(b'.');
            }
            msg.extend_from_slice(l.as_bytes());
            msg.extend_from_slice(b"\r\n");
        }
        msg.extend_from_slice(b".\r\n");
        self.send(&msg)?;
        self.read_reply()
    }

    /// Send QUIT (if the server is still there) and collect the end.
    pub fn finish(mut self) -> Result<SessionEnd, SqError> {
        if self.send(b"QUIT\r\n").is_ok() {
            let _ = self.read_reply();
        }
        drop(self.wire.take());
        let status = self.child.wait().map_err(io("waiting for qmail-smtpd"))?;
        let stderr = std::fs::read(&self.errfile).map_err(io("reading qmail-smtpd's stderr"))?;
        Ok(SessionEnd { stderr, status })
    }
}

/// The replies of [`SmtpSession::envelope`].
#[derive(Debug)]
pub struct Envelope {
    /// Reply to MAIL.
    pub mail: Reply,
    /// Reply to each RCPT (stops after a 421).
    pub rcpt: Vec<Reply>,
    /// The final reply to DATA (or the refusal of DATA itself).
    pub data: Option<Reply>,
}

/// The result of [`SqBuild::smtp_transaction`].
#[derive(Debug)]
pub struct SmtpOutcome {
    /// Reply to HELO.
    pub helo: Reply,
    /// Reply to MAIL.
    pub mail: Reply,
    /// Reply to each RCPT (stops after a 421).
    pub rcpt: Vec<Reply>,
    /// The final reply to DATA (or the refusal of DATA itself).
    pub data: Option<Reply>,
    /// The server's stderr.
    pub stderr: Vec<u8>,
    /// The exit status.
    pub status: ExitStatus,
}

/// One QMTP message.
#[derive(Debug, Clone)]
pub struct QmtpMessage {
    /// The message, with LF line ends.
    pub body: Vec<u8>,
    /// The envelope sender.
    pub sender: Vec<u8>,
    /// The envelope recipients (any bytes).
    pub rcpts: Vec<Vec<u8>>,
}

fn netstring(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("{}:", s.len()).as_bytes());
    out.extend_from_slice(s);
    out.push(b',');
}

impl QmtpMessage {
    /// Encode as a QMTP request (message in LF form).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut m = vec![b'\n'];
        m.extend_from_slice(&self.body);
        netstring(out, &m);
        netstring(out, &self.sender);
        let mut r = Vec::new();
        for x in &self.rcpts {
            netstring(&mut r, x);
        }
        netstring(out, &r);
    }
}

/// The result of [`SqBuild::qmtp`].
#[derive(Debug)]
pub struct QmtpOutcome {
    /// Per message, the reply text (without the netstring framing) for
    /// each recipient.
    pub replies: Vec<Vec<Vec<u8>>>,
    /// The server's stderr.
    pub stderr: Vec<u8>,
    /// The exit status (0 after a clean EOF; 111 after a fatal error).
    pub status: ExitStatus,
}

/// The lines the queue stub recorded in `home` (see
/// [`SqBuild::install_queue_stub`]); empty when it never ran.
pub fn queue_log(home: &Path) -> Vec<String> {
    std::fs::read(home.join("qq-stub.log"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .lines()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------
// verdicts for the scenario comparisons (pairs R-S and R-Q)

/// Whether qmail-smtpd's `addrparse` passes `a` through unchanged inside
/// `RCPT TO:<…>` (no quoting, escapes, source route or `[ip]` literal, no
/// control bytes, at most 900 bytes).
pub fn smtp_safe(a: &[u8]) -> bool {
    a.len() <= 900
        && a.first() != Some(&b'@')
        && a.iter()
            .all(|&c| c > b' ' && c != 0x7f && !b"<>\\\"[".contains(&c))
}

/// The envelope sender of the scenario comparisons' SMTP and QMTP
/// transactions.
pub const SENDER_SMTP: &[u8] = b"sender@example.net";

/// S's verdict for one RCPT reply: `accept` (250), `reject` (550 with
/// the exact realrcptto text), `tempfail-cdb`/`tempfail-sys`/
/// `tempfail-control` (421 with its text), else the code and text.
pub fn smtp_verdict(r: &Reply) -> String {
    match (r.code, r.text.as_str()) {
        (250, _) => "accept".to_string(),
        (550, "550 sorry, no mailbox here by that name. (#5.1.1)\r\n") => "reject".into(),
        (421, t) if t.contains("cdb user database") => "tempfail-cdb".into(),
        (421, t) if t.contains("system user database") => "tempfail-sys".into(),
        (421, t) if t.contains("unable to read controls") => "tempfail-control".into(),
        (c, t) => format!("{c} {:?}", t.trim_end()),
    }
}

/// What one SMTP session said about a batch of recipients.
#[derive(Debug)]
pub enum SmtpAnswer {
    /// The server greeted with this 421 instead of 220: every address's
    /// verdict.
    Greeting(Reply),
    /// The reply to each RCPT (stops after a 421).
    Rcpts(Vec<Reply>),
}

/// The verdicts of the SMTP-safe addresses of `addrs` ([`smtp_safe`];
/// the others are `None`), asked through `session`, which runs one
/// session for a batch of recipients. A 421 ends a session; the rest go
/// to a new one.
pub fn ask_smtp_by(
    addrs: &[Vec<u8>],
    mut session: impl FnMut(&[Vec<u8>]) -> Result<SmtpAnswer, SqError>,
) -> Result<Vec<Option<String>>, SqError> {
    let mut out: Vec<Option<String>> = vec![None; addrs.len()];
    let idx: Vec<usize> = (0..addrs.len()).filter(|&i| smtp_safe(&addrs[i])).collect();
    let mut k = 0;
    while k < idx.len() {
        let batch: Vec<Vec<u8>> = idx[k..].iter().map(|&i| addrs[i].clone()).collect();
        let rcpt = match session(&batch)? {
            SmtpAnswer::Greeting(g) => {
                let v = if g.text.contains("unable to read controls") {
                    "tempfail-control"
                } else {
                    "tempfail-other"
                };
                for &i in &idx[k..] {
                    out[i] = Some(v.to_string());
                }
                break;
            }
            SmtpAnswer::Rcpts(r) if r.is_empty() => break,
            SmtpAnswer::Rcpts(r) => r,
        };
        for (j, r) in rcpt.iter().enumerate() {
            out[idx[k + j]] = Some(smtp_verdict(r));
        }
        k += rcpt.len();
    }
    Ok(out)
}

/// S's verdicts ([`smtp_verdict`]) through plain SMTP transactions, `None`
/// for addresses SMTP cannot carry unchanged ([`smtp_safe`]). A 421 ends
/// the session; the rest go to a new one. With `check_greeting`, a session
/// is opened first and a 421 greeting is every address's verdict.
pub fn ask_smtp(
    sq: &SqBuild,
    home: &Path,
    opts: &SqOptions,
    addrs: &[Vec<u8>],
    check_greeting: bool,
) -> Result<Vec<Option<String>>, SqError> {
    let mut first = check_greeting;
    ask_smtp_by(addrs, |batch| {
        if std::mem::take(&mut first) {
            let session = sq.smtp(home, opts)?;
            let g = session.greeting().clone();
            let _ = session.finish();
            if g.code == 421 {
                return Ok(SmtpAnswer::Greeting(g));
            }
        }
        let t = sq.smtp_transaction(home, opts, SENDER_SMTP, batch, None)?;
        Ok(SmtpAnswer::Rcpts(t.rcpt))
    })
}

/// Q's verdicts: `K…` accept, the exact `Dsorry, no mailbox here by that
/// name. (#5.1.1)` reject; a fatal error (exit 111, no reply) is asked
/// again one address at a time and reported as `tempfail` (QMTP cannot say
/// which kind). Addresses of 1000 bytes or more are not asked (`None`).
pub fn ask_qmtp(
    sq: &SqBuild,
    home: &Path,
    opts: &SqOptions,
    addrs: &[Vec<u8>],
) -> Result<Vec<Option<String>>, SqError> {
    let mut out: Vec<Option<String>> = vec![None; addrs.len()];
    let idx: Vec<usize> = (0..addrs.len())
        .filter(|&i| addrs[i].len() < 1000)
        .collect();
    let msg = |rcpts: Vec<Vec<u8>>| QmtpMessage {
        body: super::g::MESSAGE.to_vec(),
        sender: SENDER_SMTP.to_vec(),
        rcpts,
    };
    let verdict = |r: &[u8]| -> String {
        if r.first() == Some(&b'K') {
            "accept".into()
        } else if r == b"Dsorry, no mailbox here by that name. (#5.1.1)" {
            "reject".into()
        } else {
            format!("{:?}", String::from_utf8_lossy(r))
        }
    };
    let all = sq.qmtp(
        home,
        opts,
        &[msg(idx.iter().map(|&i| addrs[i].clone()).collect())],
    )?;
    if all.replies.first().map(|r| r.len()) == Some(idx.len()) {
        for (j, r) in all.replies[0].iter().enumerate() {
            out[idx[j]] = Some(verdict(r));
        }
        return Ok(out);
    }
    for &i in &idx {
        let one = sq.qmtp(home, opts, &[msg(vec![addrs[i].clone()])])?;
        out[i] = Some(match one.replies.first().and_then(|r| r.first()) {
            Some(r) => verdict(r),
            None => "tempfail".into(),
        });
    }
    Ok(out)
}
