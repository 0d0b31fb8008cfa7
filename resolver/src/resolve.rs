//! The whole chain: stages W, H, U, G, L, Q (and optionally P), the outcome
//! (O1–O4) and the realrcptto verdict.
// The stages return `Step`, whose error (the outcome that ends the chain)
// is large and deliberately not boxed: see `Step`.
#![allow(clippy::result_large_err)]

use crate::bytes::{error_str, is_temp_errno, Bytes};
use crate::control::{ControlError, Controls};
use crate::dotqmail::{self, Listing, Probe, SearchName};
use crate::getpw::{
    self, CandidateResult, Getpw, GetpwOutcome, Passwd, PwEntry, PwResult, StatResult,
};
pub use crate::handoff::Target;
use crate::release::QmailRelease;
use crate::rewrite::{self, Channel, Rewrite};
use crate::snapshot::{Fs, FsSnapshot, SnapshotCounts};
use crate::users::{self, CdbTrouble, UserRecord, UsersDb, UsersHit};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;

/// Compile-time constants and the qmail home (resolution.md §0, §1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// QMAILHOME (`auto_qmail`).
    pub qmail_home: PathBuf,
    /// `auto_break` (G1 only).
    pub break_byte: u8,
    /// `auto_usera`.
    pub alias_user: Vec<u8>,
    /// `auto_patrn`.
    pub patrn: u32,
    /// The default delivery instructions (qmail-start's argv, P1).
    pub aliasempty: Vec<u8>,
    /// The upstream release modelled (default netqmail-1.06); see
    /// [`crate::release`] for what notqmail-1.09 decides differently.
    pub release: QmailRelease,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            qmail_home: PathBuf::from("/var/qmail"),
            break_byte: b'-',
            alias_user: b"alias".to_vec(),
            patrn: 0o002,
            aliasempty: b"./Mailbox\n".to_vec(),
            release: QmailRelease::default(),
        }
    }
}

impl Config {
    /// The default configuration with another qmail home.
    pub fn with_home(home: impl Into<PathBuf>) -> Self {
        Config {
            qmail_home: home.into(),
            ..Config::default()
        }
    }
}

/// The envelope sender for Q7 (and H1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(tag = "kind", content = "address", rename_all = "snake_case")]
pub enum Sender {
    /// A normal sender whose value is not known (the default): Q7's owner
    /// probes run; NEWSENDER is reported only when an owner file changes it.
    #[default]
    Normal,
    /// A given sender address (`""` and `#@[]` skip Q7).
    Address(Bytes),
}

/// Optional message inputs.
#[derive(Debug, Clone, Default)]
pub struct ResolveOptions {
    /// The envelope sender (Q7). Default: a normal sender.
    pub sender: Sender,
    /// The message header block, for L5's Delivered-To loop check. `None`
    /// (the default) means no headers: no loop.
    pub headers: Option<Vec<u8>>,
    /// Read and parse the chosen .qmail (or aliasempty) and attach the
    /// `qmail-local -n` listing and the parsed instructions (stage P). Only
    /// then are P3's structural errors found and the outcome made that
    /// deferral (O4 item 11); without it the outcome stops at Q/Q7.
    pub instructions: bool,
}

/// Why the realrcptto check answers with a temporary failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TempFailSource {
    /// users/cdb trouble: `421 unable to read cdb user database (#4.3.0)`.
    Cdb,
    /// getpwnam ETXTBSY or a temporary stat errno in G3:
    /// `421 unable to read system user database (#4.3.0)`.
    Sys,
}

/// The realrcptto verdict (realrcptto.md Part 1, "the verdict rule").
///
/// `Reject` iff, seen with this process's privileges, local delivery is
/// certain to end in Q5 ("Sorry, no mailbox here by that name."). Every
/// other case is `Accept`, except the two error replies of the C check,
/// which are `TempFail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", content = "source", rename_all = "snake_case")]
pub enum Verdict {
    /// 250: accept the recipient.
    Accept,
    /// 550: `sorry, no mailbox here by that name. (#5.1.1)`.
    Reject,
    /// 421: the session ends.
    TempFail(TempFailSource),
}

impl Verdict {
    /// A stable name: `accept`, `reject`, `tempfail-cdb`, `tempfail-sys`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Accept => "accept",
            Verdict::Reject => "reject",
            Verdict::TempFail(TempFailSource::Cdb) => "tempfail-cdb",
            Verdict::TempFail(TempFailSource::Sys) => "tempfail-sys",
        }
    }
}

/// The final outcome of delivery (O1–O4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "class", rename_all = "snake_case")]
pub enum Outcome {
    /// O1: qmail-rspawn with this address.
    Remote {
        /// The address.
        address: Bytes,
    },
    /// H4: empty local part, `K` with empty text, message discarded.
    Trash,
    /// A .qmail file was found (Q2/Q3) and, when stage P ran, its
    /// instructions have no structural error.
    Deliver {
        /// The name relative to home (`.qmail-foo-default`).
        file: Bytes,
        /// home + `/` + file.
        path: Bytes,
        /// Who and with what arguments.
        target: Target,
        /// DEFAULT, if set.
        default: Option<Bytes>,
        /// The x bit (forward-only); cleared when the file is empty (P1).
        forward_only: bool,
        /// The file is 0 bytes: aliasempty is used instead (P1).
        empty: bool,
        /// NEWSENDER when Q7 changed it.
        newsender: Option<Bytes>,
    },
    /// Q5 with dash "": the default delivery instructions (aliasempty),
    /// without a structural error when stage P ran.
    #[serde(rename = "default")]
    DefaultDelivery {
        /// Who and with what arguments.
        target: Target,
        /// NEWSENDER when Q7 changed it.
        newsender: Option<Bytes>,
    },
    /// `D`: a permanent failure with qmail's text.
    Bounce {
        /// The text.
        text: Bytes,
    },
    /// `Z`: a temporary failure with qmail's text.
    Defer {
        /// The text.
        text: Bytes,
    },
}

impl Outcome {
    /// `remote`, `trash`, `deliver`, `default`, `bounce` or `defer`.
    pub fn class(&self) -> &'static str {
        match self {
            Outcome::Remote { .. } => "remote",
            Outcome::Trash => "trash",
            Outcome::Deliver { .. } => "deliver",
            Outcome::DefaultDelivery { .. } => "default",
            Outcome::Bounce { .. } => "bounce",
            Outcome::Defer { .. } => "defer",
        }
    }
    /// The bounce or defer text, if any.
    pub fn text(&self) -> Option<&Bytes> {
        match self {
            Outcome::Bounce { text } | Outcome::Defer { text } => Some(text),
            _ => None,
        }
    }
}

/// Stage U's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UsersStage {
    /// users/cdb does not exist (U8: go to G).
    Missing,
    /// U13: no entry (go to G).
    NoEntry,
    /// A hit.
    Hit(UsersHit),
    /// U8/U9 trouble.
    Trouble(CdbTrouble),
}

/// L2/L3: the home directory as this process sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HomeCheck {
    /// L1: not absolute.
    Relative,
    /// L2: stat/chdir would fail with this errno.
    Unreachable {
        /// errno
        errno: i32,
    },
    /// L3 checks passed (possibly sticky, which `-n` only warns about).
    Ok {
        /// st_mode
        mode: u32,
    },
    /// L3: `mode & patrn`.
    Writable {
        /// st_mode
        mode: u32,
    },
    /// L3: sticky (deferral with `-N`, warning with `-n`).
    Sticky {
        /// st_mode
        mode: u32,
    },
}

/// One Q1 probe in the search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeStep {
    /// The name probed and its DEFAULT.
    pub name: SearchName,
    /// home + `/` + name.
    pub path: Bytes,
    /// The result.
    pub probe: Probe,
}

/// A step whose result this process cannot be sure of (it accepts): an
/// EACCES or EPERM that the user qmail-getpw or qmail-local runs as might
/// not get.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Uncertain {
    /// The stage: `getpw` (G3 stat of a candidate home), `home` (L2
    /// stat/chdir of the chosen home) or `qmail` (Q1 open of a `.qmail`).
    pub stage: &'static str,
    /// The path.
    pub path: Bytes,
    /// errno
    pub errno: i32,
}

/// Everything known about one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Trace {
    /// The recipient as given.
    pub input: Bytes,
    /// The release modelled ([`Config::release`]); JSON `"release":
    /// "netqmail-1.06"` or `"notqmail-1.09"`.
    pub release: QmailRelease,
    /// Stage W.
    pub rewrite: Rewrite,
    /// W12: how a bounce shows this (local) recipient.
    pub bounce_display: Option<Bytes>,
    /// H3: the local part (local channel only).
    pub local: Option<Bytes>,
    /// H3: the domain (local channel only).
    pub domain: Option<Bytes>,
    /// Stage U (None when not reached).
    pub users: Option<UsersStage>,
    /// Stage G (None when not reached).
    pub getpw: Option<Getpw>,
    /// H6: the six fields handed to qmail-local.
    pub record: Option<UserRecord>,
    /// L1–L3.
    pub home: Option<HomeCheck>,
    /// L5: the Delivered-To line matched a header.
    pub looping: bool,
    /// Q2–Q4 probes, in order, without the names of
    /// [`dotqmail::NAME_LIMIT`] bytes or more (see
    /// [`dotqmail::search_names`]).
    pub search: Vec<ProbeStep>,
    /// How many Q2–Q4 names were not probed because they are
    /// [`dotqmail::NAME_LIMIT`] bytes or longer (ENAMETOOLONG: absent);
    /// 0 when the search did not run.
    pub search_too_long: usize,
    /// Q7: owner probes (`-owner`, `-owner-default`) and their results
    /// (`true` = exists).
    pub owner: Vec<(Bytes, bool)>,
    /// Stage P: the parsed instructions (with [`ResolveOptions::instructions`]).
    pub instructions: Option<Vec<dotqmail::Instruction>>,
    /// Stage P: the `qmail-local -n` listing (with
    /// [`ResolveOptions::instructions`]).
    pub listing: Option<Listing>,
    /// Steps the process cannot be sure of (realrcptto accepts).
    pub uncertain: Vec<Uncertain>,
    /// The final outcome.
    pub outcome: Outcome,
    /// The realrcptto verdict.
    pub verdict: Verdict,
}

impl Trace {
    /// The `.qmail` search step that found the file qmail-local reads
    /// (Q2/Q3), if any. It is set for [`Outcome::Deliver`] and also when
    /// that file's instructions end in a P3 deferral.
    pub fn chosen(&self) -> Option<&ProbeStep> {
        self.search
            .iter()
            .find(|s| matches!(s.probe, Probe::Found { .. }))
    }

    /// Did stage P stop with a structural error (P3, O4 item 11)? Then the
    /// outcome is that deferral, and [`Trace::chosen`] still names the file.
    pub fn structural_error(&self) -> Option<&Bytes> {
        let e = self.listing.as_ref()?.error.as_ref()?;
        match &self.outcome {
            Outcome::Defer { text } if text == e => Some(e),
            _ => None,
        }
    }
}

/// An error building a resolver.
#[derive(Debug, thiserror::Error)]
pub enum ResolverError {
    /// A control file problem.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// users/cdb is over the size limit.
    #[error(transparent)]
    CdbTooLarge(#[from] users::CdbTooLarge),
}

/// The resolver: controls and users/cdb loaded once, passwd and filesystem
/// queried per address (the filesystem through a per-run snapshot only
/// when asked for with [`Resolver::with_fs_snapshot`]).
pub struct Resolver<P: Passwd> {
    config: Config,
    controls: Controls,
    users: UsersDb,
    passwd: P,
    snapshot: Option<FsSnapshot>,
}

fn defer(t: impl AsRef<[u8]>) -> Outcome {
    Outcome::Defer {
        text: Bytes::new(t.as_ref()),
    }
}

/// EACCES or EPERM: this process's credentials, not the file system, may
/// be the reason.
fn is_access_errno(errno: i32) -> bool {
    errno == libc::EACCES || errno == libc::EPERM
}

fn join(home: &[u8], name: &[u8]) -> Vec<u8> {
    Bytes::joined(&[home, b"/", name]).into_vec()
}

impl<P: Passwd> Resolver<P> {
    /// Loads `config.qmail_home/control/*` and `users/cdb`.
    pub fn new(config: Config, passwd: P) -> Result<Self, ResolverError> {
        let controls = Controls::load(&config.qmail_home)?;
        let users = UsersDb::load(&config.qmail_home.join("users/cdb"))?;
        Ok(Resolver {
            config,
            controls,
            users,
            passwd,
            snapshot: None,
        })
    }

    /// Builds a resolver from parts (no files read).
    pub fn from_parts(config: Config, controls: Controls, users: UsersDb, passwd: P) -> Self {
        Resolver {
            config,
            controls,
            users,
            passwd,
            snapshot: None,
        }
    }

    /// Makes every later filesystem probe (home stats and access checks,
    /// `.qmail` opens and reads, owner stats) once per path and remembers
    /// its result, errno included, for the resolver's life: a per-run
    /// snapshot ([`crate::snapshot`]), as qtraceaddr uses it. An edit made
    /// to the filesystem afterwards may not be seen. Off by default.
    pub fn with_fs_snapshot(mut self) -> Self {
        self.snapshot = Some(FsSnapshot::new());
        self
    }

    /// The snapshot's counts (probes made, probes saved), when it is on.
    pub fn fs_snapshot_counts(&self) -> Option<SnapshotCounts> {
        self.snapshot.as_ref().map(FsSnapshot::counts)
    }

    /// How the filesystem is reached: the snapshot, or real system calls.
    fn fs(&self) -> Fs<'_> {
        match &self.snapshot {
            Some(s) => Fs::with(s),
            None => Fs::direct(),
        }
    }

    /// The parsed control files.
    pub fn controls(&self) -> &Controls {
        &self.controls
    }
    /// The users/cdb state.
    pub fn users(&self) -> &UsersDb {
        &self.users
    }

    /// Resolves one recipient with the default options.
    pub fn resolve(&self, addr: &[u8]) -> Trace {
        self.resolve_with(addr, &ResolveOptions::default())
    }

    /// Resolves one recipient.
    pub fn resolve_with(&self, addr: &[u8], opts: &ResolveOptions) -> Trace {
        let rw = rewrite::rewrite(&self.controls, addr);
        let mut t = Trace {
            input: Bytes::new(addr),
            release: self.config.release,
            bounce_display: None,
            local: None,
            domain: None,
            users: None,
            getpw: None,
            record: None,
            home: None,
            looping: false,
            search: Vec::new(),
            search_too_long: 0,
            owner: Vec::new(),
            instructions: None,
            listing: None,
            uncertain: Vec::new(),
            outcome: Outcome::Trash,
            verdict: Verdict::Accept,
            rewrite: rw,
        };
        let (outcome, verdict) = self.local_stages(&mut t, opts);
        t.outcome = outcome;
        if let (Some(r), Some(HomeCheck::Ok { .. }), false) = (&t.record, &t.home, t.looping) {
            // the search ran (see local_stages, stage Q)
            t.search_too_long = dotqmail::too_long_names(&r.dash, &r.ext);
        }
        t.verdict = if t.uncertain.is_empty() {
            verdict
        } else {
            Verdict::Accept
        };
        t
    }

    /// The stages from W's channel to P, in qmail's order (resolution.md
    /// §10 O4): the first stage that decides ends the chain with its
    /// outcome and verdict.
    fn local_stages(&self, t: &mut Trace, opts: &ResolveOptions) -> Stop {
        if let Err(stop) = self.local_channel(t) {
            return stop;
        }
        // The stages after W borrow the recipient while they fill in the
        // trace; it is moved out and back rather than copied.
        let recip = std::mem::take(&mut t.rewrite.address);
        let r = self.local_chain(t, recip.as_bytes(), opts);
        t.rewrite.address = recip;
        match r {
            Ok(stop) | Err(stop) => stop,
        }
    }

    /// The chain behind [`Resolver::local_stages`] after W, one call per
    /// stage; `t.rewrite.address` is empty meanwhile (it is `recip`).
    fn local_chain(&self, t: &mut Trace, recip: &[u8], opts: &ResolveOptions) -> Step<Stop> {
        self.lspawn_start()?;
        let (local, domain) = lspawn_split(t, recip)?;
        let record = match self.lspawn_users_cdb(t, local)? {
            Some(record) => record,
            None => self.getpw(t, local)?,
        };
        let rec = lspawn_record(t, &record)?;
        let target = TargetRef {
            user: &rec.user,
            uid: rec.uid,
            gid: rec.gid,
            home: &rec.home,
            local,
            dash: &rec.dash,
            ext: &rec.ext,
            domain,
        };
        let stop = self.local_delivery(t, &target, opts);
        t.record = Some(rec);
        stop
    }

    /// The stages after H6, as qmail-local runs them for `target`.
    fn local_delivery(
        &self,
        t: &mut Trace,
        target: &TargetRef,
        opts: &ResolveOptions,
    ) -> Step<Stop> {
        let (local, domain) = (target.local, target.domain);
        self.local_preamble(t, target.home)?;
        bouncexf(t, opts, local, domain)?;
        let found = self.dotqmail_search(t, target, opts)?;
        no_mailbox(found.is_some(), target.dash)?;
        let newsender = owner_sender(self.fs(), t, target, opts, local, domain)?;
        let file = ChosenFile::new(t, found);
        self.dotqmail_instructions(t, &file, opts)?;
        Ok(delivery_outcome(t, file, target, newsender))
    }

    /// resolution.md §3 (stage W) and §10 O1: a remote result goes to
    /// qmail-rspawn unchanged; for a local one W12's bounce display is
    /// recorded.
    fn local_channel(&self, t: &mut Trace) -> Step<()> {
        if t.rewrite.channel == Channel::Remote {
            return Err(stop(
                Outcome::Remote {
                    address: t.rewrite.address.clone(),
                },
                Verdict::Accept,
            ));
        }
        let recip = t.rewrite.address.as_bytes();
        t.bounce_display = Some(Bytes(rewrite::bounce_display(&self.controls, recip)));
        Ok(())
    }

    /// notqmail-1.09's qmail-lspawn `initialize` ([`crate::release`],
    /// difference 1): qmailp, qmailq and nofiles must exist, or
    /// qmail-lspawn exits 111 before any delivery and the message stays
    /// queued (a deferral; realrcptto accepts). netqmail-1.06 has them
    /// compiled in: nothing is asked.
    fn lspawn_start(&self) -> Step<()> {
        let user = |n: &[u8]| matches!(self.passwd.getpwnam(n), PwResult::Found(_));
        let group = |n: &[u8]| self.passwd.group_exists(n);
        match self.config.release.lspawn_start(user, group) {
            None => Ok(()),
            Some(text) => Err(stop(defer(text), Verdict::Accept)),
        }
    }

    /// resolution.md §5b U8–U13 (qmail-lspawn.c `nughde_get`): the users/cdb
    /// record for `local`, or `None` to go on to stage G.
    fn lspawn_users_cdb(&self, t: &mut Trace, local: &[u8]) -> Step<Option<Bytes>> {
        match self.users.lookup(local) {
            Err(e) => {
                t.users = Some(UsersStage::Trouble(e));
                Err(stop(
                    defer("Trouble reading users/cdb in qmail-lspawn."),
                    Verdict::TempFail(TempFailSource::Cdb),
                ))
            }
            Ok(Some(hit)) => {
                let rec = hit.record.clone();
                t.users = Some(UsersStage::Hit(hit));
                Ok(Some(rec))
            }
            Ok(None) => {
                t.users = Some(if self.users.exists() {
                    UsersStage::NoEntry
                } else {
                    UsersStage::Missing
                });
                Ok(None)
            }
        }
    }

    /// resolution.md §6 G1–G7 (qmail-getpw.c `userext`, `main`): the record
    /// qmail-getpw prints for `local`. A G3 stat refused with EACCES/EPERM
    /// is recorded as uncertain.
    fn getpw(&self, t: &mut Trace, local: &[u8]) -> Step<Bytes> {
        let g = getpw::getpw_in(
            self.fs(),
            &self.passwd,
            local,
            self.config.break_byte,
            &self.config.alias_user,
            &self.config.qmail_home,
        );
        for c in &g.candidates {
            if let CandidateResult::StatFailed {
                errno,
                uncertain: true,
            } = c.result
            {
                t.uncertain.push(Uncertain {
                    stage: "getpw",
                    path: c.entry.as_ref().map(|e| e.dir.clone()).unwrap_or_default(),
                    errno,
                });
            }
        }
        let res = match &g.outcome {
            GetpwOutcome::Sys => Err(stop(
                defer("Temporary failure in qmail-lspawn."),
                Verdict::TempFail(TempFailSource::Sys),
            )),
            GetpwOutcome::Nfs { .. } => Err(stop(
                defer("NFS failure in qmail-local."),
                Verdict::TempFail(TempFailSource::Sys),
            )),
            GetpwOutcome::NoAlias => {
                Err(stop(defer("Unable to find alias user!"), Verdict::Accept))
            }
            GetpwOutcome::Found {
                entry, dash, ext, ..
            } => Ok(getpw_record(entry, dash, ext)),
        };
        t.getpw = Some(g);
        res
    }

    /// resolution.md §7 L1–L3 (qmail-local.c `main`, `checkhome`): the home
    /// must be absolute, reachable, not writable by others and not sticky.
    /// G3's stat of the same path is reused; an EACCES/EPERM on it is
    /// recorded as uncertain.
    fn local_preamble(&self, t: &mut Trace, home: &[u8]) -> Step<()> {
        // L1
        if home.first() != Some(&b'/') {
            t.home = Some(HomeCheck::Relative);
            return Err(bounce("qmail-local: usage: qmail-local [ -nN ] user homedir local dash ext domain sender aliasempty"));
        }
        // L2, L3
        let known = getpw_home_mode(t, home);
        let hc = check_home_in(self.fs(), home, self.config.patrn, known);
        t.home = Some(hc.clone());
        match hc {
            HomeCheck::Unreachable { errno } => {
                if is_access_errno(errno) {
                    // qmail-local runs as the target user, who may well be
                    // able to reach a home this process cannot.
                    t.uncertain.push(Uncertain {
                        stage: "home",
                        path: Bytes::new(home),
                        errno,
                    });
                }
                Err(stop_defer(unable(b"Unable to switch to ", home, errno)))
            }
            HomeCheck::Writable { .. } => {
                Err(stop_defer("Uh-oh: home directory is writable. (#4.7.0)"))
            }
            HomeCheck::Sticky { .. } => Err(stop_defer(
                "Home directory is sticky: user is editing his .qmail file. (#4.2.1)",
            )),
            _ => Ok(()),
        }
    }

    /// resolution.md §8 Q1–Q4 (qmail-local.c `qmesearch`, `qmeexists`):
    /// probes the names in order and stops at the first one found (its
    /// index in `Trace::search`, with its contents when stage P runs) or at
    /// the first Q1 error.
    fn dotqmail_search(
        &self,
        t: &mut Trace,
        rec: &TargetRef,
        opts: &ResolveOptions,
    ) -> Step<Option<Found>> {
        let home = rec.home;
        for name in dotqmail::search_names(rec.dash, rec.ext) {
            let path = join(home, &name.name);
            let (probe, content) =
                dotqmail::probe_qmail_in(self.fs(), &path, self.config.patrn, opts.instructions);
            t.search.push(ProbeStep {
                name,
                path: Bytes(path),
                probe,
            });
            match probe {
                Probe::Missing { .. } | Probe::NotRegular { .. } => continue,
                Probe::Error { errno } => {
                    let (name, path) = t
                        .search
                        .last()
                        .map(|s| (s.name.name.clone(), s.path.clone()))
                        .unwrap_or_default();
                    if is_access_errno(errno) {
                        // The target user may be allowed to open it.
                        t.uncertain.push(Uncertain {
                            stage: "qmail",
                            path,
                            errno,
                        });
                    }
                    return Err(stop_defer(unable(b"Unable to open ", &name, errno)));
                }
                Probe::Writable { .. } => {
                    return Err(stop_defer("Uh-oh: .qmail file is writable. (#4.7.0)"))
                }
                Probe::Found { .. } => {
                    return Ok(Some(Found {
                        step: t.search.len() - 1,
                        content,
                    }))
                }
            }
        }
        Ok(None)
    }

    /// resolution.md §9 P1–P3 and P9 (only with
    /// [`ResolveOptions::instructions`]): parses the chosen file (or
    /// aliasempty) and attaches the `-n` listing; a P3 structural error
    /// (blank first line, x bit with a file or program line) makes
    /// qmail-local exit 111 with its text (§10 O4 item 11). The search
    /// steps still show the file that was chosen.
    fn dotqmail_instructions(
        &self,
        t: &mut Trace,
        file: &ChosenFile,
        opts: &ResolveOptions,
    ) -> Step<()> {
        if !opts.instructions {
            return Ok(());
        }
        let (instr, fo) = dotqmail::effective_instructions(
            file.content.as_deref().filter(|_| !file.empty),
            file.forward_only,
            &self.config.aliasempty,
            true,
        );
        let listing = dotqmail::listing(&instr, fo);
        let structural = listing.error.clone();
        t.listing = Some(listing);
        t.instructions = Some(instr);
        match structural {
            Some(e) => Err(stop(Outcome::Defer { text: e }, Verdict::Accept)),
            None => Ok(()),
        }
    }
}

/// An outcome that ends resolution, with the verdict before uncertain steps
/// are taken into account.
type Stop = (Outcome, Verdict);

/// A stage's result: go on with `T`, or stop. Not boxed, although an
/// [`Outcome`] is large: nearly every address stops early, and a box
/// would be one more heap allocation per address; the chain is a handful
/// of calls deep, so the moves cost less.
type Step<T> = Result<T, Stop>;

/// Ends the chain with this outcome and verdict.
fn stop(outcome: Outcome, verdict: Verdict) -> Stop {
    (outcome, verdict)
}

/// A `Z` deferral; realrcptto accepts.
fn stop_defer(t: impl AsRef<[u8]>) -> Stop {
    stop(defer(t), Verdict::Accept)
}

/// A `D` bounce that realrcptto accepts (everything but Q5).
fn bounce(text: &str) -> Stop {
    stop(
        Outcome::Bounce {
            text: Bytes::from(text),
        },
        Verdict::Accept,
    )
}

/// `PREFIX NAME: ERR. (#4.3.0)`, qmail-local's text for a failed chdir,
/// open or stat.
fn unable(prefix: &[u8], name: &[u8], errno: i32) -> Vec<u8> {
    let mut m = Bytes::vec_from(prefix);
    m.extend_from_slice(name);
    m.extend_from_slice(b": ");
    m.extend_from_slice(error_str(errno).as_bytes());
    m.extend_from_slice(b". (#4.3.0)");
    m
}

/// resolution.md §4 H2–H4 (spawn.c `docmd`, qmail-lspawn.c `spawn`): the
/// recipient split at its last `@`; no `@` bounces, an empty local part is
/// the trash address.
fn lspawn_split<'a>(t: &mut Trace, recip: &'a [u8]) -> Step<(&'a [u8], &'a [u8])> {
    // H2
    let Some(at) = recip.iter().rposition(|&c| c == b'@') else {
        return Err(bounce("Sorry, address must include host name. (#5.1.3)"));
    };
    // H3
    let local = &recip[..at];
    let domain = &recip[at + 1..];
    t.local = Some(Bytes::new(local));
    t.domain = Some(Bytes::new(domain));
    // H4
    if local.is_empty() {
        return Err(stop(Outcome::Trash, Verdict::Accept));
    }
    Ok((local, domain))
}

/// resolution.md §6 G3: the six NUL-terminated fields qmail-getpw prints
/// for an accepted account.
fn getpw_record(entry: &PwEntry, dash: &[u8], ext: &[u8]) -> Bytes {
    use std::io::Write;
    // the four fields, and 28 bytes for two numbers and six NULs
    let fields = [&entry.name[..], &entry.dir, dash, ext];
    let mut r = crate::bytes::buffer(fields.iter().map(|f| f.len()).sum::<usize>() + 28);
    r.extend_from_slice(&entry.name);
    // writing into a Vec cannot fail
    let _ = write!(r, "\0{}\0{}\0", entry.uid, entry.gid);
    r.extend_from_slice(&entry.dir);
    r.push(0);
    r.extend_from_slice(dash);
    r.push(0);
    r.extend_from_slice(ext);
    r.push(0);
    Bytes(r)
}

/// resolution.md §4 H5–H6 (qmail-lspawn.c `spawn`): the lookup record must
/// have six fields and a uid other than 0; then who qmail-local runs as.
///
/// The record is returned for the caller to keep in `Trace::record` once
/// the later stages, which borrow from it, are done (for uid 0 it is kept
/// here).
fn lspawn_record(t: &mut Trace, record: &Bytes) -> Step<UserRecord> {
    let Some(rec) = users::parse_record(record) else {
        return Err(stop_defer("Internal qmail-lspawn bug."));
    };
    if rec.uid == 0 {
        t.record = Some(rec);
        return Err(stop_defer("Not allowed to perform deliveries as root."));
    }
    Ok(rec)
}

/// Who qmail-local runs as (H6), borrowed from the lookup record and the
/// recipient while the stages after H run: the owned [`Target`] (a copy of
/// every field) is made only for an outcome that holds one.
#[derive(Debug, Clone, Copy)]
struct TargetRef<'a> {
    user: &'a [u8],
    uid: u32,
    gid: u32,
    home: &'a [u8],
    local: &'a [u8],
    dash: &'a [u8],
    ext: &'a [u8],
    domain: &'a [u8],
}

impl TargetRef<'_> {
    fn to_target(self) -> Target {
        Target {
            user: Bytes::new(self.user),
            uid: self.uid,
            gid: self.gid,
            home: Bytes::new(self.home),
            local: Bytes::new(self.local),
            dash: Bytes::new(self.dash),
            ext: Bytes::new(self.ext),
            domain: Bytes::new(self.domain),
        }
    }
}

/// The mode from stage G's stat of `home` (G3), when the account whose
/// home it is was accepted.
fn getpw_home_mode(t: &Trace, home: &[u8]) -> Option<u32> {
    t.getpw.as_ref().and_then(|g| {
        g.candidates
            .iter()
            .find_map(|c| match (&c.result, &c.entry) {
                (CandidateResult::Accepted { mode }, Some(e)) if e.dir.as_bytes() == home => {
                    Some(*mode)
                }
                _ => None,
            })
    })
}

/// resolution.md §7 L4: the DTLINE, `Delivered-To: local@domain` with any
/// `\n` made `_`, plus the `\n` a header line ends with.
fn dtline(local: &[u8], domain: &[u8]) -> Vec<u8> {
    let mut dt = b"Delivered-To: ".to_vec();
    dt.extend_from_slice(local);
    dt.push(b'@');
    dt.extend_from_slice(domain);
    for c in dt.iter_mut() {
        if *c == b'\n' {
            *c = b'_';
        }
    }
    dt.push(b'\n');
    dt
}

/// resolution.md §7 L5 (qmail-local.c `bouncexf`, only with headers): a
/// header line equal to the DTLINE bounces the message as looping.
fn bouncexf(t: &mut Trace, opts: &ResolveOptions, local: &[u8], domain: &[u8]) -> Step<()> {
    let Some(h) = &opts.headers else {
        return Ok(());
    };
    let dt = dtline(local, domain);
    for line in h.split_inclusive(|&c| c == b'\n') {
        if line.len() <= 1 {
            break;
        }
        if line == dt.as_slice() {
            t.looping = true;
            return Err(bounce(
                "This message is looping: it already has my Delivered-To line. (#5.4.6)",
            ));
        }
    }
    Ok(())
}

/// The `.qmail` file stage Q found.
struct Found {
    /// Its index in `Trace::search`.
    step: usize,
    /// Its contents (read only for stage P).
    content: Option<Arc<[u8]>>,
}

/// resolution.md §8 Q5: nothing found with a non-empty dash is the one
/// outcome realrcptto rejects.
fn no_mailbox(found: bool, dash: &[u8]) -> Step<()> {
    if found || dash.is_empty() {
        return Ok(());
    }
    Err(stop(
        Outcome::Bounce {
            text: Bytes::from("Sorry, no mailbox here by that name. (#5.1.1)"),
        },
        Verdict::Reject,
    ))
}

/// resolution.md §8 Q7 (qmail-local.c `qmeox`): NEWSENDER from the
/// `-owner` and `-owner-default` files of the requested name, unless the
/// sender is `""` or `#@[]`. `None` when no owner file changes it.
fn owner_sender(
    fs: Fs,
    t: &mut Trace,
    rec: &TargetRef,
    opts: &ResolveOptions,
    local: &[u8],
    domain: &[u8],
) -> Step<Option<Bytes>> {
    let run_q7 = match &opts.sender {
        Sender::Normal => true,
        Sender::Address(s) => !s.is_empty() && s.as_bytes() != b"#@[]",
    };
    if !run_q7 {
        return Ok(None);
    }
    // home/.qmail<dash><safeext>, then each suffix in turn: one buffer
    let fields = [rec.home, rec.dash, rec.ext];
    let mut path = crate::bytes::buffer(fields.iter().map(|f| f.len()).sum::<usize>() + 30);
    path.extend_from_slice(rec.home);
    path.push(b'/');
    let name_at = path.len();
    path.extend_from_slice(b".qmail");
    path.extend_from_slice(rec.dash);
    path.extend_from_slice(&dotqmail::safeext_cow(rec.ext));
    if !owner_probe(fs, t, &mut path, name_at, b"-owner")? {
        return Ok(None);
    }
    let dflt = owner_probe(fs, t, &mut path, name_at, b"-owner-default")?;
    let mut ns = Bytes::vec_from(local);
    ns.extend_from_slice(if dflt { b"-owner-@" } else { b"-owner@" });
    ns.extend_from_slice(domain);
    if dflt {
        ns.extend_from_slice(b"-@[]");
    }
    Ok(Some(Bytes(ns)))
}

/// resolution.md §8 Q7: does `base + suffix` exist under home (any file
/// type)? `path` is `home/base` (the name starting at `name_at`); the
/// suffix is appended for the probe and removed again. A temporary stat
/// errno defers.
fn owner_probe(
    fs: Fs,
    t: &mut Trace,
    path: &mut Vec<u8>,
    name_at: usize,
    suffix: &[u8],
) -> Step<bool> {
    let base_len = path.len();
    path.extend_from_slice(suffix);
    let st = fs.stat(path);
    let n = &path[name_at..];
    let r = match st {
        StatResult::Ok { .. } => true,
        StatResult::Err { errno } if is_temp_errno(errno) => {
            return Err(stop_defer(unable(b"Unable to open ", n, errno)));
        }
        StatResult::Err { .. } => false,
    };
    t.owner.push((Bytes::new(n), r));
    path.truncate(base_len);
    Ok(r)
}

/// resolution.md §9 P1: the chosen file as stage P sees it.
struct ChosenFile {
    /// The index of the found step in `Trace::search` (`None`: no file).
    step: Option<usize>,
    /// Its contents, when read.
    content: Option<Arc<[u8]>>,
    /// The x bit, cleared for an empty file.
    forward_only: bool,
    /// 0 bytes, or no file: aliasempty is used.
    empty: bool,
}

impl ChosenFile {
    fn new(t: &Trace, found: Option<Found>) -> Self {
        let Some(Found { step, content }) = found else {
            return ChosenFile {
                step: None,
                content: None,
                forward_only: false,
                empty: true,
            };
        };
        let (content, forward_only, empty) = match t.search[step].probe {
            Probe::Found {
                size, forward_only, ..
            } => (content, forward_only && size > 0, size == 0),
            _ => (None, false, true),
        };
        ChosenFile {
            step: Some(step),
            content,
            forward_only,
            empty,
        }
    }
}

/// resolution.md §10 O4 items 12–13: delivery through the chosen file, or
/// the default delivery with no file (Q5 with dash `""`).
fn delivery_outcome(
    t: &Trace,
    file: ChosenFile,
    target: &TargetRef,
    newsender: Option<Bytes>,
) -> Stop {
    let outcome = match file.step {
        Some(i) => {
            let step = &t.search[i];
            let default = step.name.default_value(target.ext).map(Bytes::new);
            Outcome::Deliver {
                file: step.name.name.clone(),
                path: step.path.clone(),
                target: target.to_target(),
                default,
                forward_only: file.forward_only,
                empty: file.empty,
                newsender,
            }
        }
        None => Outcome::DefaultDelivery {
            target: target.to_target(),
            newsender,
        },
    };
    (outcome, Verdict::Accept)
}

/// L2/L3 as this process sees them: stat(home), a directory, searchable
/// (`access(X_OK)`), then the patrn and sticky checks on its mode.
///
/// Decision (speed): when this process runs as root (euid 0), the
/// `access(X_OK)` call is skipped, because a directory is always searchable
/// with CAP_DAC_OVERRIDE.
pub fn check_home(home: &[u8], patrn: u32) -> HomeCheck {
    check_home_mode(home, patrn, None)
}

fn is_root() -> bool {
    use std::sync::OnceLock;
    static ROOT: OnceLock<bool> = OnceLock::new();
    // SAFETY: geteuid cannot fail.
    *ROOT.get_or_init(|| unsafe { libc::geteuid() } == 0)
}

/// [`check_home`] with the mode from an earlier `stat(home)` of the same
/// path (stage G's), saving a system call.
pub fn check_home_mode(home: &[u8], patrn: u32, known_mode: Option<u32>) -> HomeCheck {
    check_home_in(Fs::direct(), home, patrn, known_mode)
}

/// [`check_home_mode`] with the stat and the access check made through
/// `fs` (a snapshot or real system calls).
pub fn check_home_in(fs: Fs, home: &[u8], patrn: u32, known_mode: Option<u32>) -> HomeCheck {
    if home.first() != Some(&b'/') {
        return HomeCheck::Relative;
    }
    let st = match known_mode {
        Some(mode) => StatResult::Ok { uid: 0, mode },
        None => fs.stat(home),
    };
    match st {
        StatResult::Err { errno } => HomeCheck::Unreachable { errno },
        StatResult::Ok { mode, .. } => {
            if mode & libc::S_IFMT != libc::S_IFDIR {
                return HomeCheck::Unreachable {
                    errno: libc::ENOTDIR,
                };
            }
            if is_root() {
                // a directory is always searchable by root
            } else if let Err(errno) = fs.access_x(home) {
                return HomeCheck::Unreachable { errno };
            }
            if mode & patrn != 0 {
                HomeCheck::Writable { mode }
            } else if mode & libc::S_ISVTX != 0 {
                HomeCheck::Sticky { mode }
            } else {
                HomeCheck::Ok { mode }
            }
        }
    }
}
