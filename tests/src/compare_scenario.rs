//! One generated scenario through every oracle available, pair by pair:
//! R-C (the verdict of every address), R-P (the RCPTCHECK program's exit
//! code and log line for every address), R-S and R-Q (patched
//! qmail-smtpd/qmail-qmtpd's replies), R-S/tls and R-S/auth (qmail-smtpd's
//! replies inside a STARTTLS or an authenticated session, every
//! [`SESSION_EVERY`]th scenario, on trees whose qmail-smtpd offers them),
//! U:R-G (the resolver's
//! `compile_assign` vs qmail-newu) and R-G (the outcome, by the rules of
//! [`crate::compare_rg`]).
//!
//! G and S/Q are built with conf-break `-` and run without the errno shim:
//! a scenario with another break or an errno fault is compared R vs C
//! only, and the other pairs count its addresses as skipped.

use crate::compare_rg::{agree_rg, g_desc, r_desc, r_view_limited};
use crate::error::RunError;
use crate::options::{RunOptions, P_SANITIZED, SESSION_EVERY};
use crate::oracle::c::{CError, COutcome, CheckOptions};
use crate::oracle::g::{self, GBuild, GClass};
use crate::oracle::p::{expected_log_line, PAnswers, MAX_RECIPIENT};
use crate::oracle::r::{self, RRun};
use crate::oracle::setup::Oracles;
use crate::oracle::sq::{ask_qmtp, ask_smtp, smtp_safe, SqBuild, SqOptions};
use crate::oracle::sq_auth::{ask_smtp_auth, relay_address};
use crate::oracle::sq_tls::ask_smtp_tls;
use crate::scenario::{self, Esc, Scenario, GID_QMAIL, UID_QMAILD};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// What one oracle pair said about one address.
#[derive(Debug, Clone)]
pub(crate) struct Disagreement {
    pub(crate) pair: &'static str,
    pub(crate) address: Option<Esc>,
    pub(crate) left: String,
    pub(crate) right: String,
}

/// The result of checking one scenario.
pub(crate) struct Checked {
    /// (pair, ok) per check.
    pub(crate) checks: Vec<(&'static str, bool)>,
    pub(crate) disagreements: Vec<Disagreement>,
    pub(crate) excused: Vec<(Esc, String, Vec<String>)>,
    /// (pair, count) not compared because the scenario is R vs C only
    /// (its conf-break is not the one the pair's qmail programs were
    /// built with, or it has an errno fault).
    pub(crate) skipped: Vec<(&'static str, u64)>,
    pub(crate) r: Option<RRun>,
    /// C's verdict per address (when C resolved).
    pub(crate) c_verdicts: Vec<&'static str>,
    pub(crate) g: Option<Vec<GClass>>,
}

impl Checked {
    fn push(&mut self, pair: &'static str, ok: bool) {
        self.checks.push((pair, ok));
    }

    fn disagree(&mut self, pair: &'static str, address: Option<Esc>, left: String, right: String) {
        self.checks.push((pair, false));
        self.disagreements.push(Disagreement {
            pair,
            address,
            left,
            right,
        });
    }
}

/// Materialises `sc` at `root` and compares every pair the oracles `o`
/// allow.
pub(crate) fn check_scenario(
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
    let default_break = sc.conf_break == scenario::DEFAULT_BREAK && sc.errno_fault.is_none();
    let (preload, fault_env) = match &sc.errno_fault {
        Some(f) => (vec![o.shim.clone()], f.shim_env(root)),
        None => (Vec::new(), Vec::new()),
    };
    let rr = run_r(sc, root, o, opts, &preload, &fault_env)?;
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
        lspawn_users: o.release.lspawn_looks_up_users(),
        ..CheckOptions::default()
    };
    pair_r_c(sc, &rr, o, &qhome, &addrs, &copts, &mut out)?;
    pair_r_p(sc, &rr, o, &qhome, &addrs, &copts, &mut out)?;
    // S/Q before G adds its bin/ programs (the queue stub is independent
    // of them).
    match &o.sq {
        Ok(_) if !default_break => {
            let smtp = addrs.iter().filter(|a| smtp_safe(a)).count();
            let qmtp = addrs.iter().filter(|a| a.len() < 1000).count();
            out.skipped.push(("R-S", smtp as u64));
            out.skipped.push(("R-Q", qmtp as u64));
            for pair in session_pairs(sc, o) {
                out.skipped.push((pair, smtp as u64));
            }
        }
        Ok(sq) => {
            pair_r_s_r_q(sc, &rr, sq, &qhome, &addrs, &copts, &mut out)?;
            pairs_sessions(sc, &rr, sq, o, &qhome, &addrs, &copts, &mut out)?;
        }
        Err(_) => {}
    }
    pair_r_s_rcptcheck(sc, &rr, o, &qhome, &addrs, &copts, default_break, &mut out)?;
    match &o.g {
        Ok(_) if !default_break => {
            out.skipped.push(("R-G", addrs.len() as u64));
            if sc.cdb == scenario::CdbState::FromAssign && sc.assign.is_some() {
                out.skipped.push(("U:R-G", 1));
            }
        }
        Ok(gb) => pair_r_g(sc, root, &rr, gb, &mut out)?,
        Err(_) => {}
    }
    out.r = Some(rr);
    Ok(out)
}

/// Oracle R on the world at `root` (with the errno shim for a fault),
/// with `opts.tamper`'s flipped verdicts.
fn run_r(
    sc: &Scenario,
    root: &Path,
    o: &Oracles,
    opts: &RunOptions,
    preload: &[PathBuf],
    fault_env: &[(OsString, OsString)],
) -> Result<RRun, RunError> {
    let mut rr = r::run_with(&o.r_exe, o.release, root, preload, fault_env)?;
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
    Ok(rr)
}

/// Pair R-C: the verdict of every address (or both unable to start).
fn pair_r_c(
    sc: &Scenario,
    rr: &RRun,
    o: &Oracles,
    qhome: &Path,
    addrs: &[Vec<u8>],
    copts: &CheckOptions,
    out: &mut Checked,
) -> Result<(), RunError> {
    let cres = o.c.check(qhome, sc.conf_break, b"alias", addrs, copts);
    match (rr, cres) {
        (RRun::NoStart(_), Err(CError::Init(COutcome::TempControl))) => out.push("R-C", true),
        (RRun::NoStart(why), other) => out.disagree(
            "R-C",
            None,
            format!("R cannot start: {why}"),
            format!("C: {:?}", other.map(|v| v.len())),
        ),
        (RRun::Answers(_), Err(CError::Init(x))) => out.disagree(
            "R-C",
            None,
            "R resolved".into(),
            format!("C init failed: {x:?}"),
        ),
        (RRun::Answers(_), Err(e)) => return Err(e.into()),
        (RRun::Answers(ra), Ok(cv)) => {
            for ((a, r), c) in sc.addresses.iter().zip(ra).zip(cv) {
                out.c_verdicts.push(c.outcome.verdict());
                if r.verdict == c.outcome.verdict() {
                    out.push("R-C", true);
                } else {
                    out.disagree(
                        "R-C",
                        Some(a.clone()),
                        format!("R {} ({})", r.verdict, r_desc(r)),
                        format!("C {} (why: {})", c.outcome.verdict(), c.why),
                    );
                }
            }
        }
    }
    Ok(())
}

/// Pair R-P: the RCPTCHECK program run once per address (as the
/// smtpd-rcptcheck hook runs it) against R's verdict. Exit 0/100/111 map
/// to accept/reject/tempfail-KIND ([`crate::oracle::p::PRun::verdict`]);
/// R unable to start is every address `tempfail-control`. A rejected
/// address must be logged exactly as the core logs it, naming the
/// parent's pid; nothing may be written to stdout (qmail-smtpd's
/// connection). Addresses over [`MAX_RECIPIENT`] bytes are skipped. The
/// program is the ASan+UBSan build below [`P_SANITIZED`], else the plain
/// one.
fn pair_r_p(
    sc: &Scenario,
    rr: &RRun,
    o: &Oracles,
    qhome: &Path,
    addrs: &[Vec<u8>],
    copts: &CheckOptions,
    out: &mut Checked,
) -> Result<(), RunError> {
    let asked: Vec<usize> = (0..addrs.len())
        .filter(|&i| addrs[i].len() <= MAX_RECIPIENT)
        .collect();
    let skipped = (addrs.len() - asked.len()) as u64;
    if skipped > 0 {
        out.skipped.push(("R-P", skipped));
    }
    let these: Vec<Vec<u8>> = asked.iter().map(|&i| addrs[i].clone()).collect();
    let p = if sc.index < P_SANITIZED {
        &o.p
    } else {
        &o.p_plain
    };
    let ans = match p.check(qhome, sc.conf_break, "alias", &these, copts, false) {
        Ok(a) => a,
        Err(e @ CError::Sanitizer(_)) => {
            out.disagree("R-P", None, "R answered".into(), format!("P: {e}"));
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    for (k, &i) in asked.iter().enumerate() {
        let rv = match rr {
            RRun::NoStart(_) => "tempfail-control",
            RRun::Answers(ra) => ra[i].verdict.as_str(),
        };
        match p_problem(rv, &ans, k, &addrs[i]) {
            None => out.push("R-P", true),
            Some(p) => out.disagree("R-P", Some(sc.addresses[i].clone()), format!("R {rv}"), p),
        }
    }
    Ok(())
}

/// What is wrong with P's `k`-th run given R's verdict `rv`, if anything.
fn p_problem(rv: &str, ans: &PAnswers, k: usize, addr: &[u8]) -> Option<String> {
    let run = &ans.runs[k];
    let pv = run.verdict();
    if pv != rv {
        return Some(format!("P {pv} (stderr: {:?})", run.log_lines()));
    }
    if !run.stdout.is_empty() {
        return Some(format!(
            "P wrote to stdout: {:?}",
            String::from_utf8_lossy(&run.stdout)
        ));
    }
    if pv == "reject" {
        let want = expected_log_line(ans.parent, "unknown", addr);
        if run.log_lines().last() != Some(&want) {
            return Some(format!(
                "P reject, but the log {:?} does not end with {want:?}",
                run.log_lines()
            ));
        }
    }
    None
}

/// Pair R-S/rcptcheck: the hooked notqmail qmail-smtpd running the
/// RCPTCHECK program, for the SMTP-safe addresses of scenarios with the
/// default break and no errno fault (else counted as skipped).
/// Tempfails are compared as one kind, as R-Q's.
#[allow(clippy::too_many_arguments)]
fn pair_r_s_rcptcheck(
    sc: &Scenario,
    rr: &RRun,
    o: &Oracles,
    qhome: &Path,
    addrs: &[Vec<u8>],
    copts: &CheckOptions,
    default_break: bool,
    out: &mut Checked,
) -> Result<(), RunError> {
    let Some(b) = &o.rcptcheck else {
        return Ok(());
    };
    if !default_break {
        let n = addrs.iter().filter(|a| smtp_safe(a)).count();
        out.skipped.push(("R-S/rcptcheck", n as u64));
        return Ok(());
    }
    for f in ["smtpgreeting", "localiphost"] {
        std::fs::write(qhome.join("control").join(f), b"difftest.invalid\n")?;
    }
    let answers = b
        .ask(qhome, &sq_options(copts), addrs)
        .map_err(RunError::from);
    compare_with_r("R-S/rcptcheck", answers, sc, rr, out);
    Ok(())
}

/// What qmail-smtpd and the queue stub need in the scenario's qmail home.
fn prepare_sq_home(sq: &SqBuild, qhome: &Path) -> Result<(), RunError> {
    sq.install_queue_stub(qhome)?;
    // qmail-smtpd itself (before realrcptto) needs control/me or these
    // two; they do not change anything realrcptto, qmail-send or
    // qmail-lspawn decide.
    for f in ["smtpgreeting", "localiphost"] {
        std::fs::write(qhome.join("control").join(f), b"difftest.invalid\n")?;
    }
    // The stub appends to QMAILHOME/qq-stub.log as qmaild.
    let log = qhome.join("qq-stub.log");
    std::fs::write(&log, b"")?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666))?;
    Ok(())
}

/// How S and Q are started for a scenario: the scenario's passwd and
/// group, as qmaild (when root), no environment.
fn sq_options(copts: &CheckOptions) -> SqOptions {
    SqOptions {
        env: Vec::new(),
        passwd: copts.passwd.clone(),
        group: copts.group.clone(),
        run_as: copts.run_as,
        ..SqOptions::default()
    }
}

/// Pairs R-S and R-Q: R's verdict vs patched qmail-smtpd's and
/// qmail-qmtpd's replies (QMTP cannot tell the tempfail kinds apart).
fn pair_r_s_r_q(
    sc: &Scenario,
    rr: &RRun,
    sq: &SqBuild,
    qhome: &Path,
    addrs: &[Vec<u8>],
    copts: &CheckOptions,
    out: &mut Checked,
) -> Result<(), RunError> {
    let sqopts = sq_options(copts);
    prepare_sq_home(sq, qhome)?;
    let no_start = matches!(rr, RRun::NoStart(_));
    let s_ans = ask_smtp(sq, qhome, &sqopts, addrs, no_start).map_err(RunError::from);
    let q_ans = ask_qmtp(sq, qhome, &sqopts, addrs).map_err(RunError::from);
    for (pair, answers) in [("R-S", s_ans), ("R-Q", q_ans)] {
        compare_with_r(pair, answers, sc, rr, out);
    }
    Ok(())
}

/// The session pairs a scenario takes part in (every [`SESSION_EVERY`]th
/// scenario, for the tiers the oracles offer).
fn session_pairs(sc: &Scenario, o: &Oracles) -> Vec<&'static str> {
    let mut v = Vec::new();
    // `%`, not `is_multiple_of` (Rust 1.87; the workspace says 1.85).
    #[allow(clippy::manual_is_multiple_of)]
    let chosen = sc.index % SESSION_EVERY == 0;
    if chosen {
        if o.tls.is_some() {
            v.push("R-S/tls");
        }
        if o.auth.is_some() {
            v.push("R-S/auth");
        }
    }
    v
}

/// Pairs R-S/tls and R-S/auth: R's verdict vs qmail-smtpd's replies to
/// RCPTs inside a STARTTLS session and inside a session authenticated
/// with AUTH PLAIN (which sets `relayclient` to "": the check judges
/// [`relay_address`]`(a, "")`, the address itself, so R's answer for it is
/// the one to compare). Run after [`pair_r_s_r_q`] set the home up.
#[allow(clippy::too_many_arguments)]
fn pairs_sessions(
    sc: &Scenario,
    rr: &RRun,
    sq: &SqBuild,
    o: &Oracles,
    qhome: &Path,
    addrs: &[Vec<u8>],
    copts: &CheckOptions,
    out: &mut Checked,
) -> Result<(), RunError> {
    let sqopts = sq_options(copts);
    for pair in session_pairs(sc, o) {
        let answers = match (pair, &o.tls, &o.auth) {
            ("R-S/tls", Some(certs), _) => {
                certs.install(qhome)?;
                ask_smtp_tls(sq, qhome, &sqopts, certs, addrs)
            }
            ("R-S/auth", _, Some(stub)) => {
                debug_assert!(addrs.iter().all(|a| relay_address(a, b"") == *a));
                ask_smtp_auth(sq, qhome, &sqopts, stub, addrs)
            }
            _ => continue,
        };
        compare_with_r(pair, answers.map_err(RunError::from), sc, rr, out);
    }
    Ok(())
}

/// Compares an S or Q tier's `answers` (one per address, `None` where it
/// was not asked) with R's verdicts: a disagreement per address that
/// differs, one for the whole scenario when the tier failed. R-Q's
/// tempfails are compared as one kind.
fn compare_with_r(
    pair: &'static str,
    answers: Result<Vec<Option<String>>, RunError>,
    sc: &Scenario,
    rr: &RRun,
    out: &mut Checked,
) {
    let oracle = &pair[2..];
    let answers = match answers {
        Ok(a) => a,
        Err(e) => {
            out.disagree(
                pair,
                None,
                "R answered".into(),
                format!("{oracle} failed: {e}"),
            );
            return;
        }
    };
    for (i, a) in answers.into_iter().enumerate() {
        let Some(a) = a else { continue };
        let rv = match rr {
            RRun::NoStart(_) => "tempfail-control".to_string(),
            RRun::Answers(ra) => ra[i].verdict.clone(),
        };
        let one_tempfail = pair == "R-Q" || pair == "R-S/rcptcheck";
        let rv = if one_tempfail && rv.starts_with("tempfail") {
            "tempfail".to_string()
        } else {
            rv
        };
        if rv == a {
            out.push(pair, true);
        } else {
            let (left, right) = (format!("R {rv}"), format!("{oracle} {a}"));
            out.disagree(pair, Some(sc.addresses[i].clone()), left, right);
        }
    }
}

/// Pairs U:R-G and R-G: G judges the world, then its users/cdb and its
/// outcome per address are compared with R's.
fn pair_r_g(
    sc: &Scenario,
    root: &Path,
    rr: &RRun,
    gb: &GBuild,
    out: &mut Checked,
) -> Result<(), RunError> {
    let j = gb.judge(sc, root)?;
    if let Some(newu) = &j.newu {
        pair_u_r_g(sc, root, newu, out);
    }
    let classes: Vec<GClass> = j
        .answers
        .iter()
        .map(|a| g::classify(a, &sc.aliasempty.0))
        .collect();
    match rr {
        RRun::NoStart(why) => {
            if classes.iter().all(|c| *c == GClass::NoStart) {
                out.push("R-G", true);
            } else {
                out.disagree(
                    "R-G",
                    None,
                    format!("R cannot start: {why}"),
                    "G (qmail-send) starts".into(),
                );
            }
        }
        RRun::Answers(ra) => {
            for (i, a) in sc.addresses.iter().enumerate() {
                let (r, gc, ga) = (&ra[i], &classes[i], &j.answers[i]);
                match agree_rg(sc, r, gc, ga) {
                    Ok(()) => out.push("R-G", true),
                    Err(why) if r_view_limited(r) => out.excused.push((
                        a.clone(),
                        format!(
                            "R (uid qmaild) could not see what G's qmail-local saw ({why}): {} / {}",
                            r_desc(r),
                            g_desc(gc, ga)
                        ),
                        r.uncertain_stages.clone(),
                    )),
                    Err(why) => out.disagree(
                        "R-G",
                        Some(a.clone()),
                        r_desc(r),
                        format!("{} — differs in {why}", g_desc(gc, ga)),
                    ),
                }
            }
        }
    }
    out.g = Some(classes);
    Ok(())
}

/// Pair U:R-G: the resolver's `compile_assign` vs qmail-newu's cdb
/// (`newu`: its bytes, or why it failed).
fn pair_u_r_g(sc: &Scenario, root: &Path, newu: &Result<Vec<u8>, String>, out: &mut Checked) {
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
    if ok {
        out.push("U:R-G", true);
    } else {
        out.disagree("U:R-G", None, left, right);
    }
}

/// The records of a cdb (none when it is shorter than a cdb header or
/// cannot be read), through a temporary file in `scratch`.
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

#[cfg(test)]
mod tests {
    use crate::oracle::sq::smtp_safe;

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
