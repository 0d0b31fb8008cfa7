//! Oracle L: real qmail-local, patched with the branch patch (and, for
//! comparison, pristine), doing real deliveries of a message through
//! generated `.qmail` programs.
//!
//! How it is set up:
//! * [`LocalBuild::build`] copies the qmail tree (netqmail-1.06 or
//!   notqmail-1.09) into a work directory
//!   and applies the branch patch with `patch -p1` (or leaves it pristine)
//!   ([`qmail_patches::prepare_tree_with`]), then sets `conf-qmail` to a
//!   directory of the work area and runs `make qmail-local`
//!   ([`qmail_build::compile_qmail`]). qmail-local needs only `auto_qmail.o` and
//!   `auto_patrn.o`, not `auto_uids.o`, so no qmail users or groups must
//!   exist.
//! * Forward lines make qmail-local run `QMAILHOME/bin/qmail-queue`. The
//!   build installs a stub there (a `sh` script) that reads the message,
//!   appends the envelope (`Fsender`, `Trecipient`…, one per line, then an
//!   empty line) to the file named by `$BRANCH_QUEUE_LOG`, and succeeds.
//! * [`LocalBuild::run`] makes a fresh home directory (mode 700), writes
//!   the `.qmail` file (mode 644, or 744 for forward-only), creates the
//!   named maildirs, runs `qmail-local -N` or `-n` with
//!   `user=u homedir local=u dash="" ext="" domain=example.org
//!   sender=s@example.com aliasempty=./Mailbox` and a fixed message on
//!   stdin, and collects an [`Observed`]. Beside the home it leaves
//!   `HOME.rerun.sh`, the one command that re-runs that delivery.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use qmail_build::{CompileOptions, IdMap, Qmail};
use upstream_hashes::SourceTree;

use super::b::{Mode, Step, Trace};

/// The message delivered in every run. Its body has a `From ` line, which
/// mbox delivery quotes, so counting `From ` lines counts deliveries.
pub const MESSAGE: &[u8] = b"From: a@example.com\nSubject: branch test\n\nbody\nFrom here\n";
/// The envelope recipient qmail-local is given (`local@domain`).
pub const RECIPIENT: &str = "u@example.org";
/// The envelope sender.
pub const SENDER: &str = "s@example.com";

/// Why building or running failed.
#[derive(Debug, thiserror::Error)]
pub enum LError {
    /// An I/O operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// Generating the patch failed.
    #[error(transparent)]
    Patch(#[from] qmail_patches::PatchError),
    /// Preparing or compiling the tree failed.
    #[error(transparent)]
    Build(#[from] qmail_build::BuildError),
}

fn io<T>(what: impl FnOnce() -> String, r: std::io::Result<T>) -> Result<T, LError> {
    r.map_err(|source| LError::Io {
        what: what(),
        source,
    })
}

/// A built qmail-local and its fake qmail home.
#[derive(Debug, Clone)]
pub struct LocalBuild {
    qmail_local: PathBuf,
    work: PathBuf,
}

/// Version of the build recipe, part of [`LocalBuild::build_cached`]'s key
/// (bump to rebuild).
const BUILD_RECIPE: &str = "l-1";

/// The stub `bin/qmail-queue`.
const QUEUE_STUB: &str = "#!/bin/sh\n\
# test stub for qmail-queue: read the message (fd 0), append the envelope\n\
# (fd 1) to $BRANCH_QUEUE_LOG, one field a line, and accept the message\n\
cat >/dev/null || exit 54\n\
tr '\\000' '\\012' <&1 >>\"$BRANCH_QUEUE_LOG\" || exit 53\n\
echo >>\"$BRANCH_QUEUE_LOG\"\n\
exit 0\n";

impl LocalBuild {
    /// Build qmail-local from the qmail tree `src` (netqmail-1.06 or
    /// notqmail-1.09) in `work` (emptied first): with the branch patch when
    /// `patched`, else pristine.
    pub fn build(src: &SourceTree, work: &Path, patched: bool) -> Result<LocalBuild, LError> {
        if work.exists() {
            io(
                || format!("remove {}", work.display()),
                std::fs::remove_dir_all(work),
            )?;
        }
        let qhome = work.join("qhome");
        io(
            || format!("create {}", qhome.display()),
            std::fs::create_dir_all(qhome.join("bin")),
        )?;
        let patches = if patched {
            vec![qmail_patches::branch::generate(src)?]
        } else {
            Vec::new()
        };
        let tree = qmail_patches::prepare_tree_with(src, &patches, work)?;
        let stub = qhome.join("bin/qmail-queue");
        io(
            || "write qmail-queue stub".into(),
            std::fs::write(&stub, QUEUE_STUB),
        )?;
        io(
            || "chmod qmail-queue stub".into(),
            std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)),
        )?;
        // qmail-local needs only auto_qmail.o and auto_patrn.o: the ids are
        // not compiled in
        let opts = CompileOptions {
            targets: Some(vec!["qmail-local".into()]),
            ..CompileOptions::new(&qhome, IdMap::build_user())
        };
        qmail_build::compile_qmail(Qmail::of(src)?, &tree, &opts)?;
        io(
            || "write message".into(),
            std::fs::write(work.join("message"), MESSAGE),
        )?;
        Ok(LocalBuild {
            qmail_local: tree.join("qmail-local"),
            work: work.to_path_buf(),
        })
    }

    /// Like [`LocalBuild::build`], but reuses the build already in `work`
    /// when it was made from the same tree, patch, stub and message (a
    /// key file written after a successful build records them).
    pub fn build_cached(
        src: &SourceTree,
        work: &Path,
        patched: bool,
    ) -> Result<LocalBuild, LError> {
        let patch = if patched {
            qmail_patches::branch::generate(src)?.sha256()
        } else {
            "pristine".into()
        };
        let key = crate::cc::fnv_key(&[
            BUILD_RECIPE.as_bytes(),
            src.release.full_name.as_bytes(),
            std::os::unix::ffi::OsStrExt::as_bytes(src.root.as_os_str()),
            patch.as_bytes(),
            QUEUE_STUB.as_bytes(),
            MESSAGE,
        ]);
        let stamp = work.join("build.key");
        let b = LocalBuild {
            qmail_local: work.join(src.release.full_name).join("qmail-local"),
            work: work.to_path_buf(),
        };
        if std::fs::read_to_string(&stamp).ok().as_deref() == Some(key.as_str())
            && b.qmail_local.is_file()
        {
            return Ok(b);
        }
        let b = LocalBuild::build(src, work, patched)?;
        let tmp = work.join("build.key.tmp");
        io(|| "write build key".into(), std::fs::write(&tmp, &key))?;
        io(|| "rename build key".into(), std::fs::rename(&tmp, &stamp))?;
        Ok(b)
    }

    /// The qmail-local binary.
    pub fn qmail_local(&self) -> &Path {
        &self.qmail_local
    }

    /// Deliver [`MESSAGE`] through the `.qmail` file `program` in a fresh
    /// home directory `home` (created; must not exist), creating the
    /// maildirs `maildirs` (relative paths, no final `/`) first.
    pub fn run(
        &self,
        home: &Path,
        program: &[u8],
        forward_only: bool,
        maildirs: &[String],
        mode: Mode,
    ) -> Result<Observed, LError> {
        io(
            || format!("create {}", home.display()),
            std::fs::create_dir(home),
        )?;
        io(
            || "chmod home".into(),
            std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o700)),
        )?;
        let qm = home.join(".qmail");
        io(|| "write .qmail".into(), std::fs::write(&qm, program))?;
        let mode_bits = if forward_only { 0o744 } else { 0o644 };
        io(
            || "chmod .qmail".into(),
            std::fs::set_permissions(&qm, std::fs::Permissions::from_mode(mode_bits)),
        )?;
        for d in maildirs {
            for sub in ["tmp", "new", "cur"] {
                io(
                    || format!("create maildir {d}"),
                    std::fs::create_dir_all(home.join(d).join(sub)),
                )?;
            }
        }
        let msg = self.work.join("message");
        let stdin = io(|| "open message".into(), std::fs::File::open(&msg))?;
        let log = home.join("..").join(format!(
            "{}.queue",
            home.file_name().and_then(|n| n.to_str()).unwrap_or("home")
        ));
        let (local, domain) = RECIPIENT.split_once('@').unwrap_or((RECIPIENT, ""));
        // the one command that re-runs this delivery (into the same home)
        let rerun = format!(
            "#!/bin/sh\nexec env -i PATH=/usr/bin:/bin BRANCH_QUEUE_LOG='{}' '{}' {} u '{}' {local} '' '' {domain} {SENDER} ./Mailbox < '{}'\n",
            log.display(),
            self.qmail_local.display(),
            if mode == Mode::Print { "-n" } else { "-N" },
            home.display(),
            msg.display()
        );
        io(
            || "write rerun script".into(),
            std::fs::write(home.with_extension("rerun.sh"), rerun),
        )?;
        let out = io(
            || format!("run {}", self.qmail_local.display()),
            Command::new(&self.qmail_local)
                .arg(if mode == Mode::Print { "-n" } else { "-N" })
                .args(["u"])
                .arg(home)
                .args([local, "", "", domain, SENDER, "./Mailbox"])
                .env_clear()
                .env("PATH", "/usr/bin:/bin")
                .env("BRANCH_QUEUE_LOG", &log)
                .stdin(Stdio::from(stdin))
                .output(),
        )?;
        let mut obs = Observed {
            exit: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| !l.starts_with("qp "))
                .map(str::to_string)
                .collect(),
            message: String::from_utf8_lossy(&out.stderr).trim_end().to_string(),
            ..Observed::default()
        };
        let had_qp = String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.starts_with("qp "));
        if let Ok(m) = std::fs::read_to_string(home.join("markers")) {
            obs.programs = m.lines().map(str::to_string).collect();
        }
        for e in io(|| "read home".into(), std::fs::read_dir(home))? {
            let e = io(|| "read home".into(), e)?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("mbox") || name == "Mailbox" {
                let text = io(|| format!("read {name}"), std::fs::read(e.path()))?;
                let n = text
                    .split(|&b| b == b'\n')
                    .filter(|l| l.starts_with(b"From "))
                    .count();
                obs.mboxes.insert(format!("./{name}"), n);
            }
        }
        for d in maildirs {
            let n = io(
                || format!("read {d}/new"),
                std::fs::read_dir(home.join(d).join("new")),
            )?
            .count();
            if n > 0 {
                obs.maildirs.insert(d.clone(), n);
            }
        }
        if let Ok(q) = std::fs::read_to_string(&log) {
            for env in q.split("\n\n").filter(|e| !e.trim().is_empty()) {
                obs.queued.push(env.lines().map(str::to_string).collect());
            }
        }
        // qmail-local prints "qp N" exactly when it injected a message
        if had_qp == obs.queued.is_empty() {
            obs.stdout.push(format!(
                "qp line {} but {} injections",
                if had_qp { "printed" } else { "missing" },
                obs.queued.len()
            ));
        }
        Ok(obs)
    }
}

/// What a run of qmail-local visibly did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observed {
    /// Exit status.
    pub exit: i32,
    /// Standard output lines (the `-n` listing and the `did` line), without
    /// the `qp` line (its number is a process id).
    pub stdout: Vec<String>,
    /// Standard error, without the final newline.
    pub message: String,
    /// The lines the commands appended to `markers`, in order
    /// (`P<id> <message size> <RECIPIENT>`).
    pub programs: Vec<String>,
    /// mbox path → number of messages in it.
    pub mboxes: BTreeMap<String, usize>,
    /// maildir path (no final `/`) → number of messages in `new/`.
    pub maildirs: BTreeMap<String, usize>,
    /// The envelopes given to qmail-queue (`Fsender`, `Trecipient`…).
    pub queued: Vec<Vec<String>>,
}

/// The command id (`P<id>`) in a generated command (see
/// [`super::b::marker_command`]).
fn command_id(cmd: &[u8]) -> String {
    let s = String::from_utf8_lossy(cmd);
    s.split_whitespace().nth(1).unwrap_or("P?").to_string()
}

/// What a model's [`Trace`] says a run of qmail-local shows, for programs
/// whose commands are [`super::b::marker_command`]s.
pub fn expected(trace: &Trace, mode: Mode) -> Observed {
    let mut o = Observed {
        exit: i32::from(trace.exit),
        message: trace.message.clone().unwrap_or_default(),
        ..Observed::default()
    };
    for (_, step) in &trace.steps {
        match (mode, step) {
            (Mode::Print, Step::Program { cmd, .. }) => o
                .stdout
                .push(format!("program {}", String::from_utf8_lossy(cmd))),
            (Mode::Print, Step::Forward(a)) => o
                .stdout
                .push(format!("forward {}", String::from_utf8_lossy(a))),
            (Mode::Print, Step::Mbox(p)) => o
                .stdout
                .push(format!("mbox {}", String::from_utf8_lossy(p))),
            (Mode::Print, Step::Maildir(p)) => o
                .stdout
                .push(format!("maildir {}", String::from_utf8_lossy(p))),
            (Mode::Deliver, Step::Program { cmd, .. }) => o.programs.push(format!(
                "{} {} {}",
                command_id(cmd),
                MESSAGE.len(),
                RECIPIENT
            )),
            (Mode::Deliver, Step::Mbox(p)) => {
                *o.mboxes
                    .entry(String::from_utf8_lossy(p).into_owned())
                    .or_default() += 1
            }
            (Mode::Deliver, Step::Maildir(p)) => {
                let p = String::from_utf8_lossy(p);
                *o.maildirs
                    .entry(p.trim_end_matches('/').to_string())
                    .or_default() += 1
            }
            _ => {}
        }
    }
    if let Some((f, w, p)) = trace.did {
        o.stdout.push(format!("did {f}+{w}+{p}"));
    }
    if mode == Mode::Deliver && !trace.sent.is_empty() {
        let mut env = vec![format!("F{SENDER}")];
        env.extend(
            trace
                .sent
                .iter()
                .map(|a| format!("T{}", String::from_utf8_lossy(a))),
        );
        o.queued.push(env);
    }
    o
}

/// What a [`View`](super::b::View) (for instance the resolver's, from
/// [`resolver_view`](super::b::resolver_view)) says a run of qmail-local
/// shows, for programs whose commands are
/// [`marker_command`](super::b::marker_command)s.
pub fn view_observed(v: &super::b::View, mode: Mode) -> Observed {
    let mut o = Observed {
        exit: i32::from(v.exit),
        message: String::from_utf8_lossy(&v.message).into_owned(),
        ..Observed::default()
    };
    match mode {
        Mode::Print => {
            o.stdout = v
                .listing
                .iter()
                .map(|l| String::from_utf8_lossy(l).into_owned())
                .collect();
        }
        Mode::Deliver => {
            let mut fwd = Vec::new();
            for (_, kind, text, _) in &v.deliveries {
                let t = String::from_utf8_lossy(text).into_owned();
                match *kind {
                    "program" => o.programs.push(format!(
                        "{} {} {}",
                        command_id(text),
                        MESSAGE.len(),
                        RECIPIENT
                    )),
                    "mbox" => *o.mboxes.entry(t).or_default() += 1,
                    "maildir" => {
                        *o.maildirs
                            .entry(t.trim_end_matches('/').to_string())
                            .or_default() += 1
                    }
                    _ => fwd.push(format!("T{t}")),
                }
            }
            if !fwd.is_empty() {
                let mut env = vec![format!("F{SENDER}")];
                env.extend(fwd);
                o.queued.push(env);
            }
            if let Some((f, w, p)) = v.did {
                o.stdout.push(format!("did {f}+{w}+{p}"));
            }
        }
    }
    o
}

/// What the resolver's `.qmail` model (oracle R) says a run of
/// qmail-local shows for the generated program `g` (pair R-L: compare
/// with [`LocalBuild::run`]'s [`Observed`]).
pub fn resolver_expected(g: &super::b::GenProgram, mode: Mode) -> Observed {
    view_observed(
        &super::b::resolver_view(&g.bytes, g.forward_only, mode, &g.statuses),
        mode,
    )
}
