//! The three-way comparison driver: generated scenarios through R, C, G
//! (and S/Q when available), compared as differential.md "What agree means"
//! says, with every disagreement written out as a replayable, shrunk
//! failure directory.
//!
//! * R's own [`Outcome`](qmail_resolver::Outcome) class and text are
//!   compared with G's (a P3 structural error is a deferral in both).
//! * Only an answer where R recorded an uncertain step (EACCES/EPERM with
//!   qmaild's uid, stages `getpw`, `home`, `qmail`) may disagree with G;
//!   it is excused and listed, per stage, in the report.
//! * A scenario with a conf-break other than `-`
//!   ([`Scenario::conf_break`]) is compared R vs C only: the qmail programs
//!   of G and S/Q are built with `-`. The pairs left out count it in their
//!   "skipped" column.
//! * A scenario with an errno fault ([`Scenario::errno_fault`]) is also
//!   compared R vs C only: both run with the errno shim
//!   ([`crate::cc::errno_shim`]) preloaded, which G's and S/Q's processes
//!   do not get. A run with such scenarios must see the verdict
//!   `tempfail-sys` from both R and C (checked with the O4 coverage).
//! * After the scenarios and the known differences, [`PROGRAMS_B`]
//!   generated `.qmail` programs ([`program_seed`]) are run through oracle
//!   B (the branch C core in its driver) and the resolver's `.qmail` model
//!   (pair R-B), and, with the netqmail tree, the first [`PROGRAMS_L`]
//!   through patched qmail-local (oracle L, pair R-L), each with `-N` and
//!   `-n`, compared as `tests/tests/branch_b.rs` and `branch_l.rs` do.

use crate::cc::Sanitize;
use crate::oracle::b::{self, BError, Driver, GenOptions, Mode};
use crate::oracle::c::{CDriver, CError, COutcome, CheckOptions};
use crate::oracle::g::{self, GAnswer, GBuild, GClass};
use crate::oracle::l::{self, LError, LocalBuild};
use crate::oracle::r::{self, RAnswer, RRun};
use crate::oracle::sq::{QmtpMessage, SqBuild, SqError, SqOptions};
use crate::report::{Excused, Failure, Report};
use crate::scenario::{self, Esc, Scenario, GID_QMAIL, UID_QMAILD};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Generated `.qmail` programs compared R vs B in every run (each with
/// `-N` and `-n`).
pub const PROGRAMS_B: u64 = 1000;
/// Generated `.qmail` programs compared R vs L in a run with the netqmail
/// tree (each with `-N` and `-n`): the first [`PROGRAMS_L`] of R-B's.
pub const PROGRAMS_L: u64 = 200;

/// The [`b::generate_program`] seed of `.qmail` program `index` of a run
/// with seed `seed` (with [`GenOptions::default`]).
pub fn program_seed(seed: u64, index: u64) -> u64 {
    seed.wrapping_mul(1_000_003).wrapping_add(index)
}

/// The outcome classes of resolution.md O4 that every full run must hit.
pub const O4_CLASSES: &[&str] = &["remote", "trash", "deliver", "default", "bounce", "defer"];

/// Why a run could not be carried out (as opposed to finding
/// disagreements, which go into the report).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// An I/O error.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Oracle C could not be built or run.
    #[error("oracle C: {0}")]
    C(#[from] CError),
    /// Oracle R could not be run.
    #[error(transparent)]
    R(#[from] r::RError),
    /// Oracle G could not be built or run.
    #[error("oracle G: {0}")]
    G(#[from] g::GError),
    /// Oracles S/Q could not be built or run.
    #[error("oracles S/Q: {0}")]
    Sq(#[from] SqError),
    /// A required tier is unavailable.
    #[error("{0}")]
    Required(String),
    /// The known-differences cases could not be run.
    #[error(transparent)]
    Known(#[from] crate::known::KnownError),
    /// The errno shim could not be built.
    #[error("errno shim: {0}")]
    Shim(#[from] crate::cc::CcError),
    /// A program could not be put where the test uids can run it.
    #[error("publishing a copy for the test uids: {0}")]
    Publish(crate::cc::CcError),
    /// Oracle B (the branch C core's driver) could not be built.
    #[error("oracle B: {0}")]
    B(#[from] BError),
    /// Oracle L (patched qmail-local) could not be built or run.
    #[error("oracle L: {0}")]
    L(#[from] LError),
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The seed.
    pub seed: u64,
    /// How many scenarios.
    pub scenarios: u64,
    /// The output directory (`target/difftest`).
    pub out_dir: PathBuf,
    /// The difftest executable (for the R child).
    pub exe: PathBuf,
    /// The pristine netqmail tree (for G), if any.
    pub netqmail: Option<PathBuf>,
    /// Fail instead of skipping tiers that need the sources.
    pub require_upstream: bool,
    /// Show a progress bar (only if stderr is a terminal).
    pub progress: bool,
    /// Assert that every O4 class was hit.
    pub require_coverage: bool,
    /// For testing the failure path only: R's verdict is reported flipped
    /// (accept ↔ reject) for addresses containing these bytes, so that the
    /// comparison, shrinking and replay of a disagreement can be exercised.
    pub tamper: Option<Vec<u8>>,
}

/// The default output directory: `<workspace>/target/difftest`, or
/// `$QMAIL_DIFFTEST_DIR`.
pub fn default_out_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("QMAIL_DIFFTEST_DIR") {
        return PathBuf::from(d);
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .unwrap_or(manifest)
        .join("target")
        .join("difftest")
}

struct Oracles {
    c: CDriver,
    g: Option<GBuild>,
    sq: Option<SqBuild>,
    /// The difftest executable R runs (reachable by qmaild).
    r_exe: PathBuf,
    /// Where the worlds are made (reachable by every test uid).
    scratch: PathBuf,
    /// The errno shim (reachable by qmaild), for errno-fault scenarios.
    shim: PathBuf,
}

/// Whether every directory from `/` down to `p` lets other users search it
/// (so that qmaild, qmailp and the test users can reach what is inside).
pub fn reachable_by_others(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Ok(p) = p.canonicalize() else {
        return false;
    };
    p.ancestors().all(|a| {
        std::fs::metadata(a)
            .map(|m| m.permissions().mode() & 0o001 != 0)
            .unwrap_or(false)
    })
}

/// Where the scenario worlds and the G build go: under `out_dir` when
/// every test uid can reach it, else `qmail-difftest-<euid>` under the
/// system temp directory when that is reachable, else under `/tmp` (a
/// checkout in a 0700 home, or a 0700 `$TMPDIR`, would otherwise hide every
/// world from the unprivileged oracles and make every comparison
/// meaningless). A directory in a shared temp dir must be ours and not a
/// symlink ([`crate::cc::ensure_private_dir`]).
pub fn scratch_dir(out_dir: &Path) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(out_dir)?;
    if reachable_by_others(out_dir) {
        let d = out_dir.join("scratch");
        std::fs::create_dir_all(&d)?;
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755))?;
        return Ok(d);
    }
    let name = format!("qmail-difftest-{}", unsafe { libc::geteuid() });
    let tmp = std::env::temp_dir();
    let parent = if reachable_by_others(&tmp) {
        tmp
    } else if reachable_by_others(Path::new("/tmp")) {
        PathBuf::from("/tmp")
    } else {
        tmp
    };
    let d = parent.join(name);
    crate::cc::ensure_private_dir(&d)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::PermissionDenied, e.to_string()))?;
    Ok(d)
}

/// `src` itself when every uid can reach it ([`reachable_by_others`]),
/// else a copy (mode 0755) in `scratch/sub` named `stem-<content digest>`,
/// made through [`crate::cc::publish_copy`] so that concurrent runs never
/// share a temporary name.
pub fn reachable_copy(
    src: &Path,
    scratch: &Path,
    sub: &str,
    stem: &str,
) -> Result<PathBuf, crate::cc::CcError> {
    if reachable_by_others(src) {
        return Ok(src.to_path_buf());
    }
    let dir = scratch.join(sub);
    crate::cc::ensure_private_dir(&dir)?;
    crate::cc::publish_copy(src, &dir, stem)
}

fn prepare(opts: &RunOptions, report: &mut Report, base: &Path) -> Result<Oracles, RunError> {
    let scratch = scratch_dir(base)?;
    // R runs as qmaild: it must be able to execute the binary.
    let r_exe =
        reachable_copy(&opts.exe, &scratch, "bin", "difftest").map_err(RunError::Publish)?;
    let shim = crate::cc::errno_shim()?;
    let shim =
        reachable_copy(&shim, &scratch, "lib", "rrt-errno-shim.so").map_err(RunError::Publish)?;
    let c = CDriver::build(crate::cc::Sanitize::None)?;
    // C runs as qmaild too.
    let c_exe =
        reachable_copy(c.exe(), &scratch, "bin", "realrcptto-driver").map_err(RunError::Publish)?;
    let c = c.with_exe(c_exe);
    let g = match &opts.netqmail {
        Some(src) => match g::build(src, &scratch.join("g")) {
            Ok(b) => Some(b),
            Err(g::GError::NotRoot(uid)) if !opts.require_upstream => {
                report.skipped.push(format!(
                    "G (pristine netqmail): needs root to run qmail-lspawn (uid {uid})"
                ));
                None
            }
            Err(e) => return Err(e.into()),
        },
        None => {
            if opts.require_upstream {
                return Err(RunError::Required(
                    "upstream sources required (--require-upstream) but no netqmail tree was given (QMAIL_SOURCE_NETQMAIL)".into(),
                ));
            }
            report.skipped.push(
                "G (pristine netqmail): upstream sources absent (QMAIL_SOURCE_NETQMAIL not set)"
                    .into(),
            );
            None
        }
    };
    let sq = match &opts.netqmail {
        Some(src) => Some(SqBuild::build(src, true)?),
        None => {
            report.skipped.push(
                "S/Q (patched qmail-smtpd/qmail-qmtpd): upstream sources absent (QMAIL_SOURCE_NETQMAIL not set)".into(),
            );
            None
        }
    };
    Ok(Oracles {
        c,
        g,
        sq,
        r_exe,
        scratch,
        shim,
    })
}

/// What one oracle pair said about one address.
#[derive(Debug, Clone)]
struct Disagreement {
    pair: &'static str,
    address: Option<Esc>,
    left: String,
    right: String,
}

/// The result of checking one scenario.
struct Checked {
    /// (pair, ok) per check.
    checks: Vec<(&'static str, bool)>,
    disagreements: Vec<Disagreement>,
    excused: Vec<(Esc, String, Vec<String>)>,
    /// (pair, count) not compared because the scenario is R vs C only
    /// (its conf-break is not the one the pair's qmail programs were
    /// built with, or it has an errno fault).
    skipped: Vec<(&'static str, u64)>,
    r: Option<RRun>,
    /// C's verdict per address (when C resolved).
    c_verdicts: Vec<&'static str>,
    g: Option<Vec<GClass>>,
}

fn r_desc(a: &RAnswer) -> String {
    let mut s = format!("R {}", a.class);
    if let Some(f) = &a.file {
        s.push_str(&format!(" {}", f));
        if a.empty {
            s.push_str(" (empty)");
        }
    }
    if let Some(t) = &a.text {
        s.push_str(&format!(" {:?}", t.to_text()));
    }
    if a.class == "remote" {
        s.push_str(&format!(" {}", a.address));
    }
    if a.uncertain > 0 {
        s.push_str(&format!(" [uncertain {}]", a.uncertain_stages.join(",")));
    }
    s
}

fn g_desc(c: &GClass, a: &GAnswer) -> String {
    let base = match c {
        GClass::NoStart => "G nostart".to_string(),
        GClass::Remote => "G remote".to_string(),
        GClass::Trash => "G trash".to_string(),
        GClass::Deliver { marker, aliasempty } => format!(
            "G deliver{}{}",
            marker.map(|m| format!(" marker qf{m}")).unwrap_or_default(),
            if *aliasempty { " (aliasempty)" } else { "" }
        ),
        GClass::Bounce(t) => format!("G bounce {t:?}"),
        GClass::Defer(t) => format!("G defer {t:?}"),
    };
    match a {
        GAnswer::Local {
            address,
            letter,
            text,
            ..
        } => format!(
            "{base} [rewritten {}, lspawn {}{}]",
            scenario::escape(address),
            *letter as char,
            scenario::escape(text)
        ),
        GAnswer::Remote { address } => format!("{base} {}", scenario::escape(address)),
        GAnswer::NoStart => base,
    }
}

/// The class name of a G answer in R's vocabulary.
fn g_class_name(c: &GClass) -> &'static str {
    match c {
        GClass::NoStart => "nostart",
        GClass::Remote => "remote",
        GClass::Trash => "trash",
        GClass::Deliver {
            aliasempty: true, ..
        } => "deliver-or-default",
        GClass::Deliver { .. } => "deliver",
        GClass::Bounce(_) => "bounce",
        GClass::Defer(_) => "defer",
    }
}

/// Does R's answer match G's? `Ok(())`, or why not.
fn agree_rg(sc: &Scenario, ra: &RAnswer, gc: &GClass, ga: &GAnswer) -> Result<(), String> {
    let text = |a: &RAnswer| {
        a.text
            .as_ref()
            .map(|t| g::last_line(&t.0))
            .unwrap_or_default()
    };
    // W12: how a bounce would show the recipient (qmail-send's
    // stripvdomprepend on the rewritten address).
    if let (GAnswer::Local { display, .. }, Some(d)) = (ga, &ra.display) {
        if &d.0 != display {
            return Err(format!("bounce display: G {}", scenario::escape(display)));
        }
    }
    match gc {
        GClass::NoStart => Err("G: qmail-send would not start, R resolved".into()),
        GClass::Remote => {
            let GAnswer::Remote { address } = ga else {
                return Err("internal".into());
            };
            if ra.class != "remote" {
                return Err("class".into());
            }
            if &ra.address.0 != address {
                return Err("remote address".into());
            }
            Ok(())
        }
        GClass::Trash => (ra.class == "trash")
            .then_some(())
            .ok_or_else(|| "class".into()),
        GClass::Bounce(t) => {
            if ra.class != "bounce" {
                return Err("class".into());
            }
            (&text(ra) == t)
                .then_some(())
                .ok_or_else(|| "bounce text".into())
        }
        GClass::Defer(t) => {
            if ra.class != "defer" {
                return Err("class".into());
            }
            (&text(ra) == t)
                .then_some(())
                .ok_or_else(|| "defer text".into())
        }
        GClass::Deliver { marker, aliasempty } => {
            let GAnswer::Local { text: gtext, .. } = ga else {
                return Err("internal".into());
            };
            if *aliasempty {
                let ok = ra.class == "default" || (ra.class == "deliver" && ra.empty);
                if !ok {
                    return Err("class (G used aliasempty)".into());
                }
            } else {
                if ra.class != "deliver" {
                    return Err("class".into());
                }
                let file = ra.file.as_ref().map(|f| f.0.clone()).unwrap_or_default();
                let known: Vec<&scenario::QmailFile> =
                    sc.qmail_files.iter().filter(|q| q.name.0 == file).collect();
                if let Some(m) = marker {
                    if !known.iter().any(|q| q.marker == Some(*m)) {
                        return Err(format!("file: G's listing shows marker qf{m}"));
                    }
                } else if !known.iter().any(|q| q.marker.is_none()) {
                    return Err("file: G's listing has no marker".into());
                }
            }
            // The listing itself, when R produced one.
            if let Some(lines) = &ra.listing {
                if ra.listing_error.is_none() {
                    let mut mine = Vec::new();
                    for l in lines {
                        mine.extend_from_slice(&l.0);
                        mine.push(b'\n');
                    }
                    let theirs: Vec<u8> = String::from_utf8_lossy(gtext)
                        .split('\n')
                        .filter(|l| !l.starts_with("Warning"))
                        .collect::<Vec<_>>()
                        .join("\n")
                        .into_bytes();
                    if scenario::escape(&mine) != scenario::escape(&theirs) {
                        return Err(format!(
                            "qmail-local -n listing: R {:?}",
                            scenario::escape(&mine)
                        ));
                    }
                }
            }
            Ok(())
        }
    }
}

/// R runs with qmaild's privileges (realrcptto's point of view), while G's
/// qmail-getpw runs as qmailp and qmail-local as the user. Where R could
/// not see something that the user can, it records an uncertain step
/// (EACCES/EPERM in G3, L2 or Q1); those disagreements are excused (listed
/// in the report, not failures). Nothing else is.
fn r_view_limited(r: &RAnswer) -> bool {
    r.uncertain > 0
}

fn check_scenario(
    sc: &Scenario,
    root: &Path,
    o: &Oracles,
    opts: &RunOptions,
) -> Result<Checked, RunError> {
    sc.materialize(root, &r::compile_assign_cdb)?;
    let mut out = Checked {
        checks: Vec::new(),
        disagreements: Vec::new(),
        excused: Vec::new(),
        skipped: Vec::new(),
        r: None,
        c_verdicts: Vec::new(),
        g: None,
    };
    // G and S/Q are built with conf-break `-` and run without the errno
    // shim: another break or an errno fault is compared R vs C only.
    let default_break = sc.conf_break == scenario::DEFAULT_BREAK && sc.errno_fault.is_none();
    let (preload, fault_env) = match &sc.errno_fault {
        Some(f) => (vec![o.shim.clone()], f.shim_env(root)),
        None => (Vec::new(), Vec::new()),
    };
    let mut rr = r::run_with(&o.r_exe, root, &preload, &fault_env)?;
    if let (Some(t), RRun::Answers(ra)) = (&opts.tamper, &mut rr) {
        for (a, r) in sc.addresses.iter().zip(ra.iter_mut()) {
            if !t.is_empty() && a.0.windows(t.len()).any(|w| w == t.as_slice()) {
                r.verdict = if r.verdict == "accept" {
                    "reject"
                } else {
                    "accept"
                }
                .into();
            }
        }
    }

    // ---- R vs C: the verdict of every address.
    let qhome = Scenario::qmail_home(root);
    let addrs: Vec<Vec<u8>> = sc.addresses.iter().map(|a| a.0.clone()).collect();
    let copts = CheckOptions {
        passwd: Some(root.join(scenario::layout::PASSWD)),
        group: Some(root.join(scenario::layout::GROUP)),
        run_as: if unsafe { libc::geteuid() } == 0 {
            Some((UID_QMAILD, GID_QMAIL))
        } else {
            None
        },
        preload,
        env: fault_env,
        ..CheckOptions::default()
    };
    let cres = o.c.check(&qhome, sc.conf_break, b"alias", &addrs, &copts);
    match (&rr, cres) {
        (RRun::NoStart(why), Err(CError::Init(COutcome::TempControl))) => {
            let _ = why;
            out.checks.push(("R-C", true));
        }
        (RRun::NoStart(why), other) => {
            out.checks.push(("R-C", false));
            out.disagreements.push(Disagreement {
                pair: "R-C",
                address: None,
                left: format!("R cannot start: {why}"),
                right: format!("C: {:?}", other.map(|v| v.len())),
            });
        }
        (RRun::Answers(_), Err(CError::Init(x))) => {
            out.checks.push(("R-C", false));
            out.disagreements.push(Disagreement {
                pair: "R-C",
                address: None,
                left: "R resolved".into(),
                right: format!("C init failed: {x:?}"),
            });
        }
        (RRun::Answers(_), Err(e)) => return Err(e.into()),
        (RRun::Answers(ra), Ok(cv)) => {
            for ((a, r), c) in sc.addresses.iter().zip(ra).zip(cv) {
                out.c_verdicts.push(c.outcome.verdict());
                let ok = r.verdict == c.outcome.verdict();
                out.checks.push(("R-C", ok));
                if !ok {
                    out.disagreements.push(Disagreement {
                        pair: "R-C",
                        address: Some(a.clone()),
                        left: format!("R {} ({})", r.verdict, r_desc(r)),
                        right: format!("C {} (why: {})", c.outcome.verdict(), c.why),
                    });
                }
            }
        }
    }

    // ---- R vs S and R vs Q (before G adds its bin/ programs; the
    // queue stub is independent of them).
    if let (Some(_), false) = (&o.sq, default_break) {
        let smtp = addrs.iter().filter(|a| smtp_safe(a)).count();
        let qmtp = addrs.iter().filter(|a| a.len() < 1000).count();
        out.skipped.push(("R-S", smtp as u64));
        out.skipped.push(("R-Q", qmtp as u64));
    }
    if let Some(sq) = o.sq.as_ref().filter(|_| default_break) {
        let sqopts = SqOptions {
            env: Vec::new(),
            passwd: copts.passwd.clone(),
            group: copts.group.clone(),
            run_as: copts.run_as,
            ..SqOptions::default()
        };
        sq.install_queue_stub(&qhome)?;
        // qmail-smtpd itself (before realrcptto) needs control/me or these
        // two; they do not change anything realrcptto, qmail-send or
        // qmail-lspawn decide.
        for f in ["smtpgreeting", "localiphost"] {
            std::fs::write(qhome.join("control").join(f), b"difftest.invalid\n")?;
        }
        // The stub appends to QMAILHOME/qq-stub.log as qmaild.
        let log = qhome.join("qq-stub.log");
        std::fs::write(&log, b"")?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666))?;
        }
        let s_ans = ask_smtp(sq, &qhome, &sqopts, &addrs, matches!(rr, RRun::NoStart(_)));
        let q_ans = ask_qmtp(sq, &qhome, &sqopts, &addrs);
        for (pair, answers) in [("R-S", s_ans), ("R-Q", q_ans)] {
            let answers = match answers {
                Ok(a) => a,
                Err(e) => {
                    out.checks.push((pair, false));
                    out.disagreements.push(Disagreement {
                        pair,
                        address: None,
                        left: "R answered".into(),
                        right: format!("{} failed: {e}", &pair[2..]),
                    });
                    continue;
                }
            };
            for (i, a) in answers.into_iter().enumerate() {
                let Some(a) = a else { continue };
                let rv = match &rr {
                    RRun::NoStart(_) => "tempfail-control".to_string(),
                    RRun::Answers(ra) => ra[i].verdict.clone(),
                };
                let rv = if pair == "R-Q" && rv.starts_with("tempfail") {
                    "tempfail".to_string()
                } else {
                    rv
                };
                let ok = rv == a;
                out.checks.push((pair, ok));
                if !ok {
                    out.disagreements.push(Disagreement {
                        pair,
                        address: Some(sc.addresses[i].clone()),
                        left: format!("R {rv}"),
                        right: format!("{} {a}", &pair[2..]),
                    });
                }
            }
        }
    }

    // ---- R vs G.
    if let (Some(_), false) = (&o.g, default_break) {
        out.skipped.push(("R-G", addrs.len() as u64));
        if sc.cdb == scenario::CdbState::FromAssign && sc.assign.is_some() {
            out.skipped.push(("U:R-G", 1));
        }
    }
    if let Some(gb) = o.g.as_ref().filter(|_| default_break) {
        let j = gb.judge(sc, root)?;
        // users/cdb: compile_assign vs qmail-newu.
        if let Some(newu) = &j.newu {
            let mine = sc
                .assign
                .as_ref()
                .map(|a| r::compile_assign_cdb(&scenario::subst_root(&a.0, root)));
            let (ok, left, right) = match (mine, newu) {
                (Some(Ok(m)), Ok(theirs)) => {
                    let a = cdb_records(&m, root);
                    let b = cdb_records(theirs, root);
                    (
                        a == b,
                        format!("R {} records", a.len()),
                        format!("qmail-newu {} records", b.len()),
                    )
                }
                (Some(Err(e)), Err(s)) => (true, e, s.clone()),
                (Some(Ok(_)), Err(s)) => (
                    false,
                    "R compiled it".into(),
                    format!("qmail-newu failed: {s}"),
                ),
                (Some(Err(e)), Ok(_)) => (
                    false,
                    format!("R refused: {e}"),
                    "qmail-newu compiled it".into(),
                ),
                (None, _) => (true, String::new(), String::new()),
            };
            out.checks.push(("U:R-G", ok));
            if !ok {
                out.disagreements.push(Disagreement {
                    pair: "U:R-G",
                    address: None,
                    left,
                    right,
                });
            }
        }
        let classes: Vec<GClass> = j
            .answers
            .iter()
            .map(|a| g::classify(a, &sc.aliasempty.0))
            .collect();
        match &rr {
            RRun::NoStart(why) => {
                let ok = classes.iter().all(|c| *c == GClass::NoStart);
                out.checks.push(("R-G", ok));
                if !ok {
                    out.disagreements.push(Disagreement {
                        pair: "R-G",
                        address: None,
                        left: format!("R cannot start: {why}"),
                        right: "G (qmail-send) starts".into(),
                    });
                }
            }
            RRun::Answers(ra) => {
                for (i, a) in sc.addresses.iter().enumerate() {
                    let (r, gc, ga) = (&ra[i], &classes[i], &j.answers[i]);
                    match agree_rg(sc, r, gc, ga) {
                        Ok(()) => out.checks.push(("R-G", true)),
                        Err(why) if r_view_limited(r) => out.excused.push((
                            a.clone(),
                            format!(
                                "R (uid qmaild) could not see what G's qmail-local saw ({why}): {} / {}",
                                r_desc(r),
                                g_desc(gc, ga)
                            ),
                            r.uncertain_stages.clone(),
                        )),
                        Err(why) => {
                            out.checks.push(("R-G", false));
                            out.disagreements.push(Disagreement {
                                pair: "R-G",
                                address: Some(a.clone()),
                                left: r_desc(r),
                                right: format!("{} — differs in {why}", g_desc(gc, ga)),
                            });
                        }
                    }
                }
            }
        }
        out.g = Some(classes);
    }
    out.r = Some(rr);
    Ok(out)
}

/// Whether qmail-smtpd's `addrparse` passes `a` through unchanged inside
/// `RCPT TO:<…>` (no quoting, escapes, source route or `[ip]` literal, no
/// control bytes, at most 900 bytes).
pub fn smtp_safe(a: &[u8]) -> bool {
    a.len() <= 900
        && a.first() != Some(&b'@')
        && a.iter()
            .all(|&c| c > b' ' && c != 0x7f && !b"<>\\\"[".contains(&c))
}

/// S's verdicts (`accept` 250, `reject` 550 with the exact realrcptto
/// text, `tempfail-cdb`/`tempfail-sys`/`tempfail-control` 421), `None` for
/// addresses SMTP cannot carry unchanged. A 421 ends the session; the rest
/// go to a new one.
fn ask_smtp(
    sq: &SqBuild,
    home: &Path,
    opts: &SqOptions,
    addrs: &[Vec<u8>],
    check_greeting: bool,
) -> Result<Vec<Option<String>>, RunError> {
    let mut out: Vec<Option<String>> = vec![None; addrs.len()];
    let idx: Vec<usize> = (0..addrs.len()).filter(|&i| smtp_safe(&addrs[i])).collect();
    let mut k = 0;
    if check_greeting && !idx.is_empty() {
        let session = sq.smtp(home, opts)?;
        if session.greeting().code == 421 {
            let v = if session.greeting().text.contains("unable to read controls") {
                "tempfail-control"
            } else {
                "tempfail-other"
            };
            for &i in &idx {
                out[i] = Some(v.to_string());
            }
            k = idx.len();
        }
        let _ = session.finish();
    }
    while k < idx.len() {
        let batch: Vec<Vec<u8>> = idx[k..].iter().map(|&i| addrs[i].clone()).collect();
        let t = sq.smtp_transaction(home, opts, SENDER_SMTP, &batch, None)?;
        if t.rcpt.is_empty() {
            break;
        }
        for (j, r) in t.rcpt.iter().enumerate() {
            let v = match (r.code, r.text.as_str()) {
                (250, _) => "accept".to_string(),
                (550, "550 sorry, no mailbox here by that name. (#5.1.1)\r\n") => "reject".into(),
                (421, t) if t.contains("cdb user database") => "tempfail-cdb".into(),
                (421, t) if t.contains("system user database") => "tempfail-sys".into(),
                (421, t) if t.contains("unable to read controls") => "tempfail-control".into(),
                (c, t) => format!("{c} {:?}", t.trim_end()),
            };
            out[idx[k + j]] = Some(v);
        }
        k += t.rcpt.len();
    }
    Ok(out)
}

const SENDER_SMTP: &[u8] = b"sender@example.net";

/// Q's verdicts: `K…` accept, the exact `Dsorry, no mailbox here by that
/// name. (#5.1.1)` reject; a fatal error (exit 111, no reply) is asked
/// again one address at a time and reported as `tempfail` (QMTP cannot say
/// which kind). Addresses of 1000 bytes or more are not asked.
fn ask_qmtp(
    sq: &SqBuild,
    home: &Path,
    opts: &SqOptions,
    addrs: &[Vec<u8>],
) -> Result<Vec<Option<String>>, RunError> {
    let mut out: Vec<Option<String>> = vec![None; addrs.len()];
    let idx: Vec<usize> = (0..addrs.len())
        .filter(|&i| addrs[i].len() < 1000)
        .collect();
    let msg = |rcpts: Vec<Vec<u8>>| QmtpMessage {
        body: g::MESSAGE.to_vec(),
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

fn cdb_records(bytes: &[u8], scratch: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    if bytes.len() < 2048 {
        // Shorter than a cdb header: no records (and the cdb crate must
        // not be handed it).
        return Vec::new();
    }
    let p = scratch.join(".cmp.cdb");
    if std::fs::write(&p, bytes).is_err() {
        return Vec::new();
    }
    let mut v = Vec::new();
    if let Ok(c) = cdb::CDB::open(&p) {
        for kv in c.iter().flatten() {
            v.push(kv);
        }
    }
    let _ = std::fs::remove_file(&p);
    v
}

/// Makes a fresh world directory under `out_dir/work`.
fn world_dir(scratch: &Path) -> Result<tempfile::TempDir, RunError> {
    let w = scratch.join("work");
    std::fs::create_dir_all(&w)?;
    Ok(tempfile::Builder::new().prefix("world").tempdir_in(&w)?)
}

/// The command that replays a failure directory.
pub fn replay_command(dir: &Path) -> String {
    format!("cargo xtask test --replay {}", dir.display())
}

fn record_failure(
    report: &mut Report,
    sc: &Scenario,
    d: &Disagreement,
    o: &Oracles,
    opts: &RunOptions,
    n: usize,
) -> Result<(), RunError> {
    // Shrink to the one address when there is one, and check that the
    // shrunk case still disagrees on the same pair.
    let mut keep = sc.clone();
    let mut shrunk = false;
    if let Some(a) = &d.address {
        let small = sc.with_addresses(vec![a.clone()]);
        let w = world_dir(&o.scratch)?;
        if let Ok(c) = check_scenario(&small, &w.path().join("w"), o, opts) {
            if c.disagreements.iter().any(|x| x.pair == d.pair) {
                keep = small;
                shrunk = true;
            }
        }
    }
    let dir = opts
        .out_dir
        .join("failures")
        .join(format!("{}-{}", sc.seed, n));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    keep.save(&dir.join(scenario::layout::SCENARIO_JSON))?;
    let cmd = replay_command(&dir);
    let text = format!(
        "pair: {}\nscenario: seed {} index {}\naddress: {}\nleft:  {}\nright: {}\nshrunk to this address: {}\n\nreplay:\n  {cmd}\n",
        d.pair,
        sc.seed,
        sc.index,
        d.address.as_ref().map(|a| a.to_text()).unwrap_or_else(|| "(whole scenario)".into()),
        d.left,
        d.right,
        shrunk
    );
    crate::report::write_atomic(&dir.join("disagreement.txt"), text.as_bytes())?;
    crate::report::write_atomic(
        &dir.join("replay.sh"),
        format!("#!/bin/sh\nexec {cmd}\n").as_bytes(),
    )?;
    report.failures.push(Failure {
        pair: d.pair.to_string(),
        scenario: sc.index,
        address: d.address.as_ref().map(|a| a.to_text()),
        left: d.left.clone(),
        right: d.right.clone(),
        dir: Some(dir),
        replay: Some(cmd),
        shrunk,
    });
    Ok(())
}

fn tally(report: &mut Report, sc: &Scenario, c: &Checked) {
    report.addresses += sc.addresses.len() as u64;
    if sc.conf_break != scenario::DEFAULT_BREAK {
        report.other_break_scenarios += 1;
    }
    if sc.errno_fault.is_some() {
        report.errno_fault_scenarios += 1;
    }
    for v in &c.c_verdicts {
        *report.c_verdicts.entry(v.to_string()).or_default() += 1;
    }
    for (pair, ok) in &c.checks {
        report.check(pair, *ok);
    }
    for (pair, n) in &c.skipped {
        report.skip(pair, *n);
    }
    for (a, why, stages) in &c.excused {
        report.excuse(Excused {
            pair: "R-G".into(),
            scenario: sc.index,
            address: a.to_text(),
            why: why.clone(),
            stages: stages.clone(),
        });
    }
    if let Some(RRun::Answers(ra)) = &c.r {
        for a in ra {
            report.class("R", &a.class);
            *report.verdicts.entry(a.verdict.clone()).or_default() += 1;
        }
    }
    if let Some(gs) = &c.g {
        for g in gs {
            report.class("G", g_class_name(g));
        }
    }
    for q in &sc.qmail_files {
        *report.qmail_kinds.entry(q.kind.clone()).or_default() += 1;
    }
}

fn run_scenarios(
    scs: &mut dyn Iterator<Item = Scenario>,
    total: u64,
    opts: &RunOptions,
    report: &mut Report,
    scratch_base: &Path,
) -> Result<(), RunError> {
    let start = Instant::now();
    let o = prepare(opts, report, scratch_base)?;
    let bar = if opts.progress && std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] {pos}/{len} scenarios, {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(b)
    } else {
        None
    };
    let mut nfail = 0usize;
    for (k, sc) in scs.enumerate() {
        let w = world_dir(&o.scratch)?;
        let root = w.path().join("w");
        let c = check_scenario(&sc, &root, &o, opts)?;
        tally(report, &sc, &c);
        report.scenarios += 1;
        for d in &c.disagreements {
            nfail += 1;
            record_failure(report, &sc, d, &o, opts, nfail)?;
        }
        if let Some(b) = &bar {
            b.set_position(k as u64 + 1);
            b.set_message(format!("{} failed", report.failed));
        } else if (k + 1) % 100 == 0 {
            eprintln!(
                "difftest: {}/{total} scenarios, {} addresses, {} failed",
                k + 1,
                report.addresses,
                report.failed
            );
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if opts.require_coverage {
        for (oracle, present) in [("R", true), ("G", o.g.is_some())] {
            if !present {
                continue;
            }
            for c in O4_CLASSES {
                let name = if oracle == "G" && *c == "default" {
                    "deliver-or-default"
                } else {
                    c
                };
                let n = report
                    .classes
                    .get(oracle)
                    .and_then(|m| m.get(name))
                    .copied()
                    .unwrap_or(0);
                report.check("coverage", n > 0);
                if n == 0 {
                    report.failures.push(Failure {
                        pair: "coverage".into(),
                        scenario: 0,
                        address: None,
                        left: format!("oracle {oracle} never produced class {c}"),
                        right: "every O4 class must be hit".into(),
                        dir: None,
                        replay: None,
                        shrunk: false,
                    });
                }
            }
        }
        // The errno faults must have reached G2/G4 in both R and C.
        if report.errno_fault_scenarios > 0 {
            let sys = |m: &std::collections::BTreeMap<String, u64>| {
                m.get("tempfail-sys").copied().unwrap_or(0)
            };
            let counts = [("R", sys(&report.verdicts)), ("C", sys(&report.c_verdicts))];
            for (oracle, n) in counts {
                report.check("coverage", n > 0);
                if n == 0 {
                    report.failures.push(Failure {
                        pair: "coverage".into(),
                        scenario: 0,
                        address: None,
                        left: format!(
                            "oracle {oracle} never gave the verdict tempfail-sys in {} errno-fault scenarios",
                            report.errno_fault_scenarios
                        ),
                        right: "an injected ETXTBSY/EIO must reach G2/G4".into(),
                        dir: None,
                        replay: None,
                        shrunk: false,
                    });
                }
            }
        }
    }
    report.seconds = start.elapsed().as_secs_f64();
    Ok(())
}

/// Runs `opts.scenarios` generated scenarios and writes the report.
pub fn run(opts: &RunOptions) -> Result<Report, RunError> {
    let mut report = Report {
        seed: opts.seed,
        ..Report::default()
    };
    let _ = std::fs::remove_dir_all(opts.out_dir.join("failures"));
    let seed = opts.seed;
    let mut it = (0..opts.scenarios).map(|i| scenario::generate(seed, i));
    run_scenarios(&mut it, opts.scenarios, opts, &mut report, &opts.out_dir)?;
    // Every deliberate change of realrcptto.md Part 1 as a hand-written
    // scenario that our patch gets right (rows that need an absent oracle
    // are listed as skipped; rows shown by named tests are not counted).
    let known = crate::known::run_known(opts)?;
    for row in &known {
        match row.status {
            crate::known::RowStatus::Right => report.check("known", true),
            crate::known::RowStatus::Wrong => {
                report.check("known", false);
                report.failures.push(Failure {
                    pair: "known".into(),
                    scenario: 0,
                    address: Some(row.address.clone()),
                    left: format!("deliberate change {}: {}", row.change, row.title),
                    right: row.note.clone().unwrap_or_default(),
                    dir: None,
                    replay: None,
                    shrunk: false,
                });
            }
            crate::known::RowStatus::Skipped | crate::known::RowStatus::Covered => {}
        }
    }
    report.known = known;
    compare_programs(opts, &mut report)?;
    report.write(&opts.out_dir)?;
    Ok(report)
}

/// Records a disagreement on generated program `index` (pairs R-B, R-L).
#[allow(clippy::too_many_arguments)]
fn push_program_failure(
    report: &mut Report,
    pair: &str,
    index: u64,
    desc: String,
    left: String,
    right: String,
    dir: PathBuf,
    replay: String,
) {
    report.failures.push(Failure {
        pair: pair.into(),
        scenario: index,
        address: None,
        left: format!("{desc}\n{left}"),
        right,
        dir: Some(dir),
        replay: Some(replay),
        shrunk: false,
    });
}

/// Writes the failure directory `failures/NAME/` of a `.qmail` program
/// disagreement: the program as `dot-qmail` and `disagreement.txt`.
fn program_failure_dir(
    opts: &RunOptions,
    name: &str,
    program: &[u8],
    text: &str,
) -> Result<PathBuf, RunError> {
    let dir = opts.out_dir.join("failures").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    crate::report::write_atomic(&dir.join("dot-qmail"), program)?;
    crate::report::write_atomic(&dir.join("disagreement.txt"), text.as_bytes())?;
    Ok(dir)
}

/// Pairs R-B and R-L: generated `.qmail` programs through the resolver's
/// `.qmail` model and oracle B (always) and oracle L (with the netqmail
/// tree), compared as `tests/tests/branch_b.rs` and `branch_l.rs` do.
fn compare_programs(opts: &RunOptions, report: &mut Report) -> Result<(), RunError> {
    let start = Instant::now();
    let scratch = scratch_dir(&opts.out_dir)?;
    let driver = Driver::build_cached(Sanitize::None)?;
    // Per-run: concurrent runs share the scratch dir.
    let files = tempfile::Builder::new()
        .prefix("b-programs")
        .tempdir_in(&scratch)?;
    let files = files.path();
    let modes = [Mode::Deliver, Mode::Print];
    let desc = |i: u64, ps: u64, g: &b::GenProgram, mode: Mode| {
        format!(
            "program {i} (generate_program({ps}, GenOptions::default()), run seed {}), {mode:?}, x bit {}, statuses {:?}:\n{}",
            opts.seed,
            g.forward_only,
            g.statuses,
            String::from_utf8_lossy(&g.bytes)
        )
    };
    for i in 0..PROGRAMS_B {
        let ps = program_seed(opts.seed, i);
        let g = b::generate_program(ps, GenOptions::default());
        report.programs_b += 1;
        for mode in modes {
            let file = files.join(format!("{mode:?}.qmail"));
            let run = driver.run(&file, &g.bytes, g.forward_only, mode, &g.statuses);
            let (left, right) = match run {
                Ok(t) => {
                    let cmp = b::compare_resolver(&g.bytes, g.forward_only, mode, &g.statuses, &t);
                    let Err(views) = cmp else {
                        report.check("R-B", true);
                        continue;
                    };
                    let (bv, rv) = *views;
                    (
                        format!("B {bv:?}\nB trace:\n{}", t.render()),
                        format!("R {rv:?}"),
                    )
                }
                Err(e) => (format!("B failed: {e}"), "R ran".to_string()),
            };
            report.check("R-B", false);
            let name = format!("R-B-{ps}-{mode:?}");
            let dir = program_failure_dir(opts, &name, &g.bytes, "")?;
            let cmd =
                driver.rerun_command(&dir.join("dot-qmail"), g.forward_only, mode, &g.statuses);
            let text = format!(
                "pair: R-B\n{}\nleft:  {left}\nright: {right}\n\nre-run oracle B:\n  {cmd}\n",
                desc(i, ps, &g, mode)
            );
            crate::report::write_atomic(&dir.join("disagreement.txt"), text.as_bytes())?;
            push_program_failure(
                report,
                "R-B",
                i,
                desc(i, ps, &g, mode),
                left,
                right,
                dir,
                cmd,
            );
        }
    }
    match &opts.netqmail {
        Some(src) => {
            let lb = LocalBuild::build_cached(src, &scratch.join("l"), true)?;
            // Per-run (concurrent runs share the scratch dir), kept while
            // a failing home in it is kept for its re-run script.
            let homes = tempfile::Builder::new()
                .prefix("l-homes")
                .tempdir_in(&scratch)?
                .keep();
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&homes, std::fs::Permissions::from_mode(0o755))?;
            }
            for i in 0..PROGRAMS_L {
                let ps = program_seed(opts.seed, i);
                let g = b::generate_program(ps, GenOptions::default());
                report.programs_l += 1;
                for mode in modes {
                    let home = homes.join(format!("p{i}-{mode:?}"));
                    let got = lb.run(&home, &g.bytes, g.forward_only, &g.maildirs, mode)?;
                    let want = l::resolver_expected(&g, mode);
                    let rerun = home.with_extension("rerun.sh");
                    if got == want {
                        report.check("R-L", true);
                        let _ = std::fs::remove_dir_all(&home);
                        let _ = std::fs::remove_file(&rerun);
                        let _ = std::fs::remove_file(homes.join(format!("p{i}-{mode:?}.queue")));
                        continue;
                    }
                    report.check("R-L", false);
                    let cmd = format!("sh {}", rerun.display());
                    let left = format!("L (patched qmail-local, home {}) {got:?}", home.display());
                    let right = format!("R {want:?}");
                    let text = format!(
                        "pair: R-L\n{}\nleft:  {left}\nright: {right}\n\nre-run qmail-local (into the same home):\n  {cmd}\n",
                        desc(i, ps, &g, mode)
                    );
                    let dir =
                        program_failure_dir(opts, &format!("R-L-{ps}-{mode:?}"), &g.bytes, &text)?;
                    let d = desc(i, ps, &g, mode);
                    push_program_failure(report, "R-L", i, d, left, right, dir, cmd);
                }
            }
            // gone unless a failing home is kept in it
            let _ = std::fs::remove_dir(&homes);
        }
        None => report.skipped.push(
            "R-L (patched qmail-local): upstream sources absent (QMAIL_SOURCE_NETQMAIL not set)"
                .into(),
        ),
    }
    let secs = start.elapsed().as_secs_f64();
    report.programs_seconds = secs;
    report.seconds += secs;
    Ok(())
}

/// Re-runs the scenario saved in a failure directory (its `scenario.json`)
/// and writes a report into `DIR/replay/`.
pub fn replay(dir: &Path, opts: &RunOptions) -> Result<Report, RunError> {
    let sc = Scenario::load(&dir.join(scenario::layout::SCENARIO_JSON))?;
    let mut report = Report {
        seed: sc.seed,
        ..Report::default()
    };
    let mut o = opts.clone();
    o.out_dir = dir.join("replay");
    // A failure directory may come from elsewhere (a CI artefact): its
    // `replay` must be a real directory, not a symlink leading the report
    // (and the removal of `failures/` below) somewhere else.
    match std::fs::symlink_metadata(&o.out_dir) {
        Ok(m) if !m.file_type().is_dir() => {
            return Err(RunError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "{}: not a directory (a symlink?); refusing to replay into it",
                    o.out_dir.display()
                ),
            )))
        }
        _ => {}
    }
    o.require_coverage = false;
    let mut it = std::iter::once(sc);
    // The worlds and the G build go where a normal run puts them, not
    // into the failure directory.
    run_scenarios(&mut it, 1, &o, &mut report, &opts.out_dir)?;
    // The replay's own failures would nest; keep only the report.
    let _ = std::fs::remove_dir_all(o.out_dir.join("failures"));
    for f in &mut report.failures {
        f.dir = None;
        f.replay = Some(replay_command(dir));
    }
    report.write(&o.out_dir)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ra(class: &str) -> RAnswer {
        RAnswer {
            class: class.into(),
            address: Esc::from("a@b"),
            display: None,
            file: None,
            empty: false,
            text: None,
            verdict: "accept".into(),
            uncertain: 0,
            uncertain_stages: Vec::new(),
            listing: None,
            listing_error: None,
        }
    }

    fn local(letter: u8, text: &str) -> GAnswer {
        GAnswer::Local {
            address: b"a@b".to_vec(),
            display: b"a@b".to_vec(),
            letter,
            text: text.as_bytes().to_vec(),
        }
    }

    fn sc() -> Scenario {
        let mut s = scenario::generate(1, 0);
        s.qmail_files = vec![scenario::QmailFile {
            home: Esc::from("home/joe"),
            name: Esc::from(".qmail-foo"),
            marker: Some(7),
            empty: false,
            kind: "file".into(),
        }];
        s
    }

    #[test]
    fn classes_and_texts_must_match() {
        let s = sc();
        let g = local(b'D', "Sorry, no mailbox here by that name. (#5.1.1)\n");
        let gc = g::classify(&g, b"./Maildir/");
        let mut r = ra("bounce");
        r.text = Some(Esc::from("Sorry, no mailbox here by that name. (#5.1.1)"));
        assert!(agree_rg(&s, &r, &gc, &g).is_ok());
        r.text = Some(Esc::from("Sorry, no mailbox here by that name."));
        assert!(
            agree_rg(&s, &r, &gc, &g).is_err(),
            "a different text must disagree"
        );
        assert!(
            agree_rg(&s, &ra("defer"), &gc, &g).is_err(),
            "another class must disagree"
        );
    }

    #[test]
    fn a_delivery_must_name_the_file_g_used() {
        let s = sc();
        let g = local(b'K', "forward qf7\ndid 0+1+0\n");
        let gc = g::classify(&g, b"./Maildir/");
        let mut r = ra("deliver");
        r.file = Some(Esc::from(".qmail-foo"));
        r.listing = Some(vec![Esc::from("forward qf7"), Esc::from("did 0+1+0")]);
        assert!(agree_rg(&s, &r, &gc, &g).is_ok());
        r.listing = Some(vec![Esc::from("forward qf7"), Esc::from("did 0+0+0")]);
        assert!(
            agree_rg(&s, &r, &gc, &g).is_err(),
            "a different listing must disagree"
        );
        r.listing = None;
        r.file = Some(Esc::from(".qmail-bar"));
        assert!(
            agree_rg(&s, &r, &gc, &g).is_err(),
            "another file must disagree"
        );
    }

    #[test]
    fn aliasempty_matches_default_or_an_empty_file() {
        let s = sc();
        let g = local(b'K', "maildir ./Maildir/\ndid 1+0+0\n");
        let gc = g::classify(&g, b"./Maildir/");
        assert!(agree_rg(&s, &ra("default"), &gc, &g).is_ok());
        let mut r = ra("deliver");
        r.empty = true;
        assert!(agree_rg(&s, &r, &gc, &g).is_ok());
        r.empty = false;
        assert!(agree_rg(&s, &r, &gc, &g).is_err());
    }

    #[test]
    fn p3_errors_compare_rs_own_outcome() {
        let s = sc();
        let text = "Uh-oh: first line of .qmail file is blank. (#4.2.1)";
        let g = local(b'Z', &format!("forward qf7\n{text}\n"));
        let gc = g::classify(&g, b"./Maildir/");
        let mut r = ra("defer");
        r.text = Some(Esc::from(text));
        r.listing_error = Some(Esc::from(text));
        assert!(agree_rg(&s, &r, &gc, &g).is_ok());
        // R's listing error alone no longer turns a delivery into a
        // deferral: the outcome must say it
        let mut r = ra("deliver");
        r.file = Some(Esc::from(".qmail-foo"));
        r.listing_error = Some(Esc::from(text));
        assert!(agree_rg(&s, &r, &gc, &g).is_err());
    }

    #[test]
    fn every_generated_program_is_compared_r_vs_b_in_both_modes() {
        let out = tempfile::tempdir().unwrap();
        let opts = RunOptions {
            seed: 7,
            scenarios: 0,
            out_dir: out.path().to_path_buf(),
            exe: PathBuf::from("/nonexistent"),
            netqmail: None,
            require_upstream: false,
            progress: false,
            require_coverage: false,
            tamper: None,
        };
        let mut report = Report::default();
        compare_programs(&opts, &mut report).unwrap();
        let rb = &report.pairs["R-B"];
        assert_eq!(rb.compared, 2 * PROGRAMS_B);
        assert_eq!(rb.disagreed, 0, "{:#?}", report.failures);
        assert_eq!(report.programs_b, PROGRAMS_B);
        assert!(!report.pairs.contains_key("R-L"));
        assert!(report.skipped.iter().any(|s| s.starts_with("R-L ")));
        assert!(report
            .markdown()
            .contains(&format!("{PROGRAMS_B} generated `.qmail` programs")));
        // the programs differ from run seed to run seed
        assert_ne!(
            b::generate_program(program_seed(7, 0), GenOptions::default()),
            b::generate_program(program_seed(8, 0), GenOptions::default())
        );
    }

    #[test]
    fn only_uncertain_answers_are_excused() {
        let mut r = ra("defer");
        r.text = Some(Esc::from(
            "Unable to switch to /home/x: access denied. (#4.3.0)",
        ));
        assert!(!r_view_limited(&r), "the text alone is no excuse");
        r.uncertain = 1;
        r.uncertain_stages = vec!["home".into()];
        assert!(r_view_limited(&r));
    }

    #[test]
    fn smtp_safe_excludes_what_addrparse_changes() {
        assert!(smtp_safe(b"joe-foo@example.com"));
        assert!(smtp_safe(b""));
        for bad in [
            &b"@route:joe@x"[..],
            b"a b@x",
            b"a\"b@x",
            b"a\\b@x",
            b"a@[1.2.3.4]",
            b"a>b",
        ] {
            assert!(!smtp_safe(bad), "{bad:?}");
        }
    }
}
