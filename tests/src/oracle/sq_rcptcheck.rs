//! Oracle S/rcptcheck: a qmail-smtpd with an RCPTCHECK hook (notqmail's
//! smtpd-rcptcheck patch, `git diff` of the notqmail branch
//! `patches/notqmail/smtpd-rcptcheck`, given with `--with-patch`), running
//! the RCPTCHECK program qmail-rcptcheck-realrcptto for each RCPT (the
//! program from the rcptcheck patch; the core and its `realrcptto.o` rule
//! are added as the realrcptto patch provides them, without its
//! qmail-smtpd hooks, so that every refusal comes from the program).
//!
//! Set up when the tree S is built from (the third-party stack's) has the
//! hook ([`has_hook`]: its qmail-smtpd.c reads `RCPTCHECK`). Built with
//! conf-qmail `.`, like S: qmail-smtpd's chdir keeps the working
//! directory, and the program reads `./control`, so each run picks its
//! qmail home by cwd.
//!
//! Verdicts: 250 `accept`; `553 sorry, no mailbox here by that name.
//! (#5.1.1)` `reject`; `421 unable to verify recipient (#4.3.0)` (exit
//! 111) `tempfail` (one kind, as R-Q: the cause is on stderr); anything
//! else (`421 unable to execute recipient check`: a crash or exit 120) is
//! its code and text and never agrees.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use qmail_build::{CompileOptions, IdMap, Qmail};
use qmail_patches::{rcptcheck, Patch};
use upstream_hashes::SourceTree;

use super::sq::{ask_smtp_by, io, Reply, SmtpAnswer, SqError, SqOptions};
use crate::cc;
use crate::procenv;

/// What the hook's qmail-smtpd.c contains: it reads the program's name
/// from the environment.
pub const HOOK_ANCHOR: &str = "env_get(\"RCPTCHECK\")";

/// Does `tree`'s qmail-smtpd run an RCPTCHECK program (the
/// smtpd-rcptcheck hook)? A tree without qmail-smtpd.c has no hook.
pub fn has_hook(tree: &SourceTree) -> bool {
    std::fs::read_to_string(tree.root.join("qmail-smtpd.c"))
        .map(|t| t.contains(HOOK_ANCHOR))
        .unwrap_or(false)
}

/// The rcptcheck patch for `tree`'s release.
fn our_patch(tree: &SourceTree) -> Result<Patch, SqError> {
    Ok(match tree.release.name {
        "notqmail" => rcptcheck::generate_notqmail(tree)?,
        _ => rcptcheck::generate(tree)?,
    })
}

/// The built tree.
#[derive(Debug, Clone)]
pub struct RcptcheckBuild {
    tree: PathBuf,
}

fn run(cmd: &mut Command, what: &str) -> Result<(), SqError> {
    let o = cmd.output().map_err(io(what.to_string()))?;
    if o.status.success() {
        return Ok(());
    }
    Err(SqError::Build(format!(
        "{what}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )))
}

fn patch_p1(tree: &Path, diff: &[u8], what: &str) -> Result<(), SqError> {
    let mut child = Command::new("patch")
        .args(["-p1", "--batch", "--forward"])
        .current_dir(tree)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io("running patch"))?;
    if let Some(mut i) = child.stdin.take() {
        i.write_all(diff).map_err(io("writing to patch"))?;
    }
    let o = child.wait_with_output().map_err(io("waiting for patch"))?;
    if !o.status.success() {
        return Err(SqError::Build(format!(
            "{what}: {}",
            String::from_utf8_lossy(&o.stdout)
        )));
    }
    Ok(())
}

impl RcptcheckBuild {
    /// Build (or reuse, under the system temp dir) qmail-smtpd and the
    /// program from `src`, a qmail tree whose qmail-smtpd has the hook
    /// ([`has_hook`]; refused otherwise).
    pub fn build(src: &SourceTree) -> Result<Self, SqError> {
        if !has_hook(src) {
            return Err(SqError::Build(format!(
                "{}: qmail-smtpd.c has no RCPTCHECK hook (no {HOOK_ANCHOR}); apply the smtpd-rcptcheck patch with --with-patch",
                src.root.display()
            )));
        }
        let parent = std::env::temp_dir().join("qmail-difftest-rcptcheck");
        std::fs::create_dir_all(&parent).map_err(io("creating the build parent"))?;
        let smtpd_c = std::fs::read(src.root.join("qmail-smtpd.c"))
            .map_err(io(format!("reading {}/qmail-smtpd.c", src.root.display())))?;
        let ours = our_patch(src)?;
        let core_c = std::fs::read(cc::core_dir().join("realrcptto.c")).map_err(io("core"))?;
        let core_h = std::fs::read(cc::core_dir().join("realrcptto.h")).map_err(io("core"))?;
        let key = cc::fnv_key(&[
            b"rcptcheck-2",
            src.release.full_name.as_bytes(),
            src.root.as_os_str().as_encoded_bytes(),
            &smtpd_c,
            ours.to_diff().as_bytes(),
            &core_c,
            &core_h,
        ]);
        let root = parent.join(format!("{}-rcptcheck-{key}", src.release.full_name));
        if root.join(".built").is_file() {
            return Ok(RcptcheckBuild { tree: root });
        }
        let tmp = tempfile::Builder::new()
            .prefix("build.tmp")
            .tempdir_in(&parent)
            .map_err(io("creating a build dir"))?;
        let tree = tmp.path().join("t");
        run(
            Command::new("cp").arg("-R").arg(&src.root).arg(&tree),
            "copying the qmail tree",
        )?;
        patch_p1(&tree, ours.to_diff().as_bytes(), "the rcptcheck patch")?;
        std::fs::write(tree.join("realrcptto.c"), &core_c).map_err(io("core"))?;
        std::fs::write(tree.join("realrcptto.h"), &core_h).map_err(io("core"))?;
        let mkf = tree.join("Makefile");
        let mut mk = std::fs::read_to_string(&mkf).map_err(io("reading the Makefile"))?;
        mk.push_str(
            "\nrealrcptto.o: \\\ncompile realrcptto.c realrcptto.h\n\t./compile realrcptto.c\n",
        );
        std::fs::write(&mkf, mk).map_err(io("writing the Makefile"))?;
        let qmail = Qmail::of(src).map_err(|e| SqError::Build(e.to_string()))?;
        let opts = CompileOptions {
            targets: Some(vec!["qmail-smtpd".into(), rcptcheck::PROGRAM.into()]),
            ..CompileOptions::new("/", IdMap::build_user())
        };
        qmail_build::compile_qmail_cwd_home(qmail, &tree, &opts)
            .map_err(|e| SqError::Build(format!("make qmail-smtpd {}: {e}", rcptcheck::PROGRAM)))?;
        std::fs::write(tree.join(".built"), b"").map_err(io("marking the build"))?;
        match std::fs::rename(&tree, &root) {
            Ok(()) => {}
            Err(_) if root.join(".built").is_file() => {}
            Err(e) => return Err(io(format!("renaming to {}", root.display()))(e)),
        }
        Ok(RcptcheckBuild { tree: root })
    }

    /// The hooked qmail-smtpd.
    pub fn smtpd(&self) -> PathBuf {
        self.tree.join("qmail-smtpd")
    }

    /// The program qmail-smtpd runs (`RCPTCHECK`).
    pub fn program(&self) -> PathBuf {
        self.tree.join("qmail-rcptcheck-realrcptto")
    }

    /// One pipelined session in `home`: HELO, MAIL, a RCPT per address of
    /// `batch`, QUIT. Returns the session's RCPT replies (up to a 421),
    /// qmail-smtpd's pid and its stderr (the program's too).
    pub fn session(
        &self,
        home: &Path,
        opts: &SqOptions,
        batch: &[Vec<u8>],
    ) -> Result<(SmtpAnswer, u32, Vec<u8>), SqError> {
        let mut cmd = procenv::command_as(&self.smtpd(), opts.run_as)
            .map_err(|e| SqError::Build(e.to_string()))?;
        cmd.env_clear().current_dir(home);
        cmd.env("RCPTCHECK", self.program());
        cmd.envs(opts.env.iter().cloned());
        let group = tempfile::NamedTempFile::new().map_err(io("an empty group file"))?;
        procenv::apply_nss(
            &mut cmd,
            opts.passwd.as_deref(),
            opts.group.as_deref(),
            group.path(),
            &opts.preload,
        )
        .map_err(io("writing an empty group file"))?;
        let mut input = b"HELO difftest.invalid\r\nMAIL FROM:<s@difftest.invalid>\r\n".to_vec();
        for a in batch {
            input.extend_from_slice(b"RCPT TO:<");
            input.extend_from_slice(a);
            input.extend_from_slice(b">\r\n");
        }
        input.extend_from_slice(b"QUIT\r\n");
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(io("starting the hooked qmail-smtpd"))?;
        let pid = child.id();
        let mut stdin = child.stdin.take().expect("piped stdin");
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let o = child
            .wait_with_output()
            .map_err(io("waiting for qmail-smtpd"))?;
        let _ = writer.join();
        let replies = parse_replies(&o.stdout);
        let answer = match replies.first() {
            Some(g) if g.code != 220 => SmtpAnswer::Greeting(g.clone()),
            None => return Err(SqError::Protocol("qmail-smtpd said nothing".into())),
            Some(_) => {
                // greeting, HELO, MAIL; then RCPTs until a 421 or QUIT's 221
                let rcpt: Vec<Reply> = replies
                    .iter()
                    .skip(3)
                    .take(batch.len())
                    .take_while(|r| r.code != 221)
                    .cloned()
                    .collect();
                let end = rcpt.iter().position(|r| r.code == 421).map(|i| i + 1);
                SmtpAnswer::Rcpts(rcpt[..end.unwrap_or(rcpt.len())].to_vec())
            }
        };
        Ok((answer, pid, o.stderr))
    }

    /// The verdicts ([`verdict`]) of the SMTP-safe addresses of `addrs`
    /// (the others `None`); a 421 ends a session, the rest go to a new one.
    pub fn ask(
        &self,
        home: &Path,
        opts: &SqOptions,
        addrs: &[Vec<u8>],
    ) -> Result<Vec<Option<String>>, SqError> {
        let raw = ask_smtp_by(addrs, |batch| Ok(self.session(home, opts, batch)?.0))?;
        // ask_smtp_by speaks S's replies (`super::sq::smtp_verdict`): the
        // hook's own texts come back as "CODE \"TEXT\"".
        let ours = |s: String| {
            for (code, text) in [(553, NOMBOX), (421, VERIFY)] {
                if s == format!("{code} {text:?}") {
                    return verdict(&Reply {
                        code,
                        text: format!("{text}\r\n"),
                    });
                }
            }
            s
        };
        Ok(raw.into_iter().map(|v| v.map(ours)).collect())
    }
}

/// The replies in `out`, one per final line (`NNN `), continuation lines
/// (`NNN-`) joined to them.
fn parse_replies(out: &[u8]) -> Vec<Reply> {
    let text = String::from_utf8_lossy(out);
    let mut v = Vec::new();
    let mut cur = String::new();
    for line in text.split_inclusive("\r\n") {
        cur.push_str(line);
        if line.as_bytes().get(3) != Some(&b'-') {
            let code = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
            v.push(Reply {
                code,
                text: std::mem::take(&mut cur),
            });
        }
    }
    v
}

/// The hook's reply to exit 100.
pub const NOMBOX: &str = "553 sorry, no mailbox here by that name. (#5.1.1)";
/// The hook's reply to exit 111.
pub const VERIFY: &str = "421 unable to verify recipient (#4.3.0)";

/// The verdict of a reply of the hooked qmail-smtpd (see the module doc).
pub fn verdict(r: &Reply) -> String {
    match (r.code, r.text.trim_end()) {
        (250, _) => "accept".into(),
        (553, t) if t == NOMBOX => "reject".into(),
        (421, t) if t == VERIFY => "tempfail".into(),
        (c, t) => format!("{c} {t:?}"),
    }
}
