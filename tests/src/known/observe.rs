//! Observe a known case: materialise its world and ask every oracle
//! available about its addresses, R (as qmaild) once for the scenario, C,
//! S and Q once per address (each in its own transaction, with the case's
//! environment), and G last. Nothing is judged here.

use super::case::{case_env, io_err, smtp_verdict, KnownCase, KnownError, KnownFile};
use crate::oracle::c::CheckOptions;
use crate::oracle::g::{self, GAnswer, GClass};
use crate::oracle::r::{self, RAnswer, RRun};
use crate::oracle::setup::Oracles;
use crate::oracle::sq::{self, QmtpMessage, SqBuild, SqOptions};
use crate::scenario::{self, Esc, Scenario, GID_QMAIL, UID_QMAILD};
use crate::scratch::world_dir;
use std::path::{Path, PathBuf};

/// What C, S and Q said about one address of a case.
pub(super) struct Ours {
    /// C's verdict.
    pub(super) c: String,
    /// C's `realrcptto_deny()` after the address.
    pub(super) c_deny: bool,
    /// C's log lines.
    pub(super) c_log: Vec<String>,
    /// S's verdict, when S ran and SMTP can carry the address alone.
    pub(super) s: Option<String>,
    /// S's stderr lines.
    pub(super) s_log: Vec<String>,
    /// Q's replies, when Q ran.
    pub(super) q: Option<Vec<Vec<u8>>>,
    /// What the queue stub recorded for Q's message.
    pub(super) queue: Vec<String>,
}

/// What every oracle said about a case.
pub(super) struct Observed {
    /// The world (removed on drop).
    _world: tempfile::TempDir,
    /// The world's root, as `{ROOT}` stands for it.
    pub(super) root: String,
    /// R's answer per address of the scenario.
    pub(super) r: Vec<RAnswer>,
    /// C, S and Q per entry of the case file.
    pub(super) ours: Vec<Ours>,
    /// G's outcome per address of the scenario, when G ran.
    pub(super) g: Option<Vec<GClass>>,
}

impl Observed {
    /// R's answer for `a`.
    pub(super) fn r_of(&self, sc: &Scenario, a: &Esc) -> Option<&RAnswer> {
        sc.addresses
            .iter()
            .position(|x| x == a)
            .and_then(|i| self.r.get(i))
    }
}

/// The qmail home of a world and how the oracles reach it.
struct World<'a> {
    qhome: PathBuf,
    passwd: PathBuf,
    group: PathBuf,
    run_as: Option<(u32, u32)>,
    sq: Option<&'a SqBuild>,
}

/// Materialises `sc` (loaded from `scp`) and asks every oracle of `o`
/// about the entries of `kf`.
pub(super) fn observe(
    scp: &Path,
    sc: &Scenario,
    kf: &KnownFile,
    o: &Oracles,
) -> Result<Observed, KnownError> {
    let w = world_dir(&o.scratch, "known").map_err(io_err(format!(
        "creating a world under {}",
        o.scratch.join("work").display()
    )))?;
    let root = w.path().join("w");
    sc.materialize(&root, &r::compile_assign_cdb)
        .map_err(io_err(format!("materialising {}", scp.display())))?;
    let is_root = unsafe { libc::geteuid() } == 0;
    let world = World {
        qhome: Scenario::qmail_home(&root),
        passwd: root.join(scenario::layout::PASSWD),
        group: root.join(scenario::layout::GROUP),
        run_as: is_root.then_some((UID_QMAILD, GID_QMAIL)),
        sq: o.sq.as_ref().ok(),
    };

    // R, as qmaild.
    let ranswers: Vec<RAnswer> = match r::run(&o.r_exe, o.release, &root)? {
        RRun::Answers(a) => a,
        RRun::NoStart(why) => {
            return Err(KnownError::Data(format!(
                "{}: the resolver cannot start: {why}",
                scp.display()
            )))
        }
    };
    // S/Q setup (before G adds its programs, as the runner does).
    if let Some(sqb) = world.sq {
        sqb.install_queue_stub(&world.qhome)?;
        for f in ["smtpgreeting", "localiphost"] {
            let p = world.qhome.join("control").join(f);
            std::fs::write(&p, b"difftest.invalid\n")
                .map_err(io_err(format!("writing {}", p.display())))?;
        }
    }
    let mut ours = Vec::new();
    for k in &kf.cases {
        ours.push(observe_case(k, &world, o)?);
    }
    // G, last.
    let g_classes: Option<Vec<GClass>> = match &o.g {
        Ok(gb) => {
            let j = gb.judge(sc, &root)?;
            Some(
                j.answers
                    .iter()
                    .map(|a: &GAnswer| g::classify(a, &sc.aliasempty.0))
                    .collect(),
            )
        }
        Err(_) => None,
    };
    Ok(Observed {
        root: root.display().to_string(),
        _world: w,
        r: ranswers,
        ours,
        g: g_classes,
    })
}

/// Empties the queue stub's log (writable by the test uids).
fn reset_log(log: &Path) -> Result<(), KnownError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(log, b"").map_err(io_err(format!("writing {}", log.display())))?;
    std::fs::set_permissions(log, std::fs::Permissions::from_mode(0o666))
        .map_err(io_err(format!("chmod {}", log.display())))
}

/// C, S and Q on one entry: its `with` recipients, then its address.
fn observe_case(k: &KnownCase, w: &World, o: &Oracles) -> Result<Ours, KnownError> {
    let env = case_env(k);
    let mut addrs: Vec<Vec<u8>> = k.with.iter().map(|a| a.0.clone()).collect();
    addrs.push(k.address.0.clone());
    let copts = CheckOptions {
        env: env.clone(),
        passwd: Some(w.passwd.clone()),
        group: Some(w.group.clone()),
        run_as: w.run_as,
        one_transaction: true,
        lspawn_users: o.release.lspawn_looks_up_users(),
        ..CheckOptions::default()
    };
    let cv = o.c.check(&w.qhome, b'-', b"alias", &addrs, &copts)?;
    let last = cv
        .last()
        .ok_or_else(|| KnownError::Data("oracle C gave no verdict".into()))?;
    let mut c_log = Vec::new();
    for v in &cv {
        c_log.extend(v.log_lines());
    }
    let mut out = Ours {
        c: last.outcome.verdict().to_string(),
        c_deny: last.deny,
        c_log,
        s: None,
        s_log: Vec::new(),
        q: None,
        queue: Vec::new(),
    };
    let Some(sqb) = w.sq else {
        return Ok(out);
    };
    let sqopts = SqOptions {
        env,
        passwd: Some(w.passwd.clone()),
        group: Some(w.group.clone()),
        run_as: w.run_as,
        ..SqOptions::default()
    };
    if sq::smtp_safe(&k.address.0) && k.with.is_empty() {
        let t = sqb.smtp_transaction(
            &w.qhome,
            &sqopts,
            g::SENDER,
            std::slice::from_ref(&k.address.0),
            None,
        )?;
        out.s = t.rcpt.first().map(|r| smtp_verdict(r.code, &r.text));
        out.s_log = String::from_utf8_lossy(&t.stderr)
            .lines()
            .map(str::to_string)
            .collect();
    }
    if addrs.iter().all(|a| a.len() < 1000) {
        reset_log(&w.qhome.join("qq-stub.log"))?;
        let m = QmtpMessage {
            body: g::MESSAGE.to_vec(),
            sender: g::SENDER.to_vec(),
            rcpts: addrs.clone(),
        };
        let q = sqb.qmtp(&w.qhome, &sqopts, &[m])?;
        out.q = q.replies.into_iter().next();
        out.queue = sq::queue_log(&w.qhome);
    }
    Ok(out)
}
