//! The known differences between the original realrcptto (2006.12.10) and
//! qmail itself: realrcptto.md Part 1, "deliberate changes" 1–9, each
//! shown as a hand-written scenario that our patch gets right.
//!
//! Every directory `tests/known/NN-name/` holds
//!
//! * `known.json`: the change number, a one-line title and one entry per
//!   address: what the original patch did (its verdict and the Part 2 rule
//!   it follows), what qmail itself does (outcome class and text, per
//!   resolution.md), and what is observed (`verdict`, `qmtp_reply`,
//!   `qmtp_denyall` or `log`);
//! * `scenario.json`: the qmail world, in the [`Scenario`] format (absent
//!   when every entry only points at named tests, `covered_by`).
//!
//! [`run_known`] materialises each world and asks the oracles that are
//! available: R (the resolver, as qmaild) and C (our C core) always; S and Q
//! (patched qmail-smtpd/qmail-qmtpd) and G (pristine netqmail-1.06, as
//! root) when `RunOptions::netqmail` is set. Each address gives a
//! [`KnownRow`]; a row is *right* when our verdicts follow qmail's outcome
//! under the verdict rule (reject iff qmail bounces with `Sorry, no mailbox
//! here by that name. (#5.1.1)`) and differ from the original's (for the
//! few entries marked `"difference": false`, which check a claim that the
//! original behaved differently, they must equal it instead).
//! [`render_markdown`] makes the report section.

use crate::oracle::c::{CDriver, CError, CheckOptions};
use crate::oracle::g::{self, GAnswer, GBuild, GClass, GError};
use crate::oracle::r::{self, RAnswer, RError, RRun};
use crate::oracle::sq::{self, QmtpMessage, SqBuild, SqError, SqOptions};
use crate::runner::{self, RunOptions};
use crate::scenario::{self, Esc, Scenario, GID_QMAIL, UID_QMAILD};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// qmail's bounce text that the verdict rule turns into a rejection (Q5).
pub const NO_MAILBOX: &str = "Sorry, no mailbox here by that name. (#5.1.1)";
/// Our QMTP reply for a refused recipient (deliberate change 6).
pub const QMTP_NO_MAILBOX: &[u8] = b"Dsorry, no mailbox here by that name. (#5.1.1)";
/// Our SMTP reply for a refused recipient.
pub const SMTP_NO_MAILBOX: &str = "550 sorry, no mailbox here by that name. (#5.1.1)\r\n";
/// The name of the per-case description file.
pub const KNOWN_JSON: &str = "known.json";

/// Why the known-differences run could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum KnownError {
    /// A file could not be read or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done (names the file).
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// A `known.json` or `scenario.json` is malformed or inconsistent.
    #[error("{0}")]
    Data(String),
    /// Oracle C failed.
    #[error("oracle C: {0}")]
    C(#[from] CError),
    /// Oracle R failed.
    #[error(transparent)]
    R(#[from] RError),
    /// Oracle G failed.
    #[error("oracle G: {0}")]
    G(#[from] GError),
    /// Oracles S/Q failed.
    #[error("oracles S/Q: {0}")]
    Sq(#[from] SqError),
    /// A required tier is unavailable.
    #[error("{0}")]
    Required(String),
    /// A program could not be put where the test uids can run it.
    #[error("publishing a copy for the test uids: {0}")]
    Publish(#[from] crate::cc::CcError),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> KnownError {
    let what = what.into();
    move |source| KnownError::Io { what, source }
}

/// What a case observes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Observe {
    /// The accept/reject verdict of C, R, S and Q.
    #[default]
    Verdict,
    /// Q's reply text for the refused recipient (needs the sources).
    QmtpReply,
    /// QMTP deny-all: every recipient refused and nothing queued (needs the
    /// sources).
    QmtpDenyall,
    /// The log line written for the refused recipient.
    Log,
}

/// What the original patch did for a case.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Original {
    /// `accept`, `reject`, `crash`, or a short phrase.
    pub verdict: String,
    /// The realrcptto.md Part 2 rule it follows, with the reason.
    pub rule: String,
    /// Its QMTP reply text (`qmtp_reply` cases).
    #[serde(default)]
    pub reply: Option<String>,
    /// What happened to the message (`qmtp_denyall` cases: `queued`).
    #[serde(default)]
    pub queue: Option<String>,
    /// Its log line, with `PID` for the process id (`log` cases).
    #[serde(default)]
    pub log: Option<String>,
}

/// What qmail itself does (resolution.md), as documented in `known.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Documented {
    /// The outcome class (`bounce`, `defer`, `trash`, `deliver`, …).
    pub class: String,
    /// The bounce or deferral text; `{ROOT}` stands for the world's root.
    #[serde(default)]
    pub text: Option<String>,
}

/// One address of a `known.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KnownCase {
    /// The address (escaped as in [`Esc`]); must be in the scenario.
    pub address: Esc,
    /// What is special about it, in a few words.
    pub what: String,
    /// Whether the original patch differs from qmail here (default true).
    #[serde(default = "yes")]
    pub difference: bool,
    /// What is observed.
    #[serde(default)]
    pub observe: Observe,
    /// Environment changes for C, S and Q: a value sets, `null` unsets
    /// (the defaults are `PROTO=TCP` and `TCPREMOTEIP=192.0.2.7`).
    #[serde(default)]
    pub env: BTreeMap<String, Option<String>>,
    /// Other recipients of the same transaction, given before `address`.
    #[serde(default)]
    pub with: Vec<Esc>,
    /// The original patch's behaviour.
    pub original: Original,
    /// qmail's behaviour.
    pub qmail: Documented,
    /// For `log` cases: how our log line must end.
    #[serde(default)]
    pub expect_log_suffix: Option<String>,
    /// Named tests (`FILE.rs::fn_name` under `tests/tests/`) that show this
    /// change where no address-level check makes sense.
    #[serde(default)]
    pub covered_by: Vec<String>,
}

fn yes() -> bool {
    true
}

/// A `known.json` file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KnownFile {
    /// The deliberate change's number (realrcptto.md Part 1).
    pub change: u32,
    /// Its one-line title.
    pub title: String,
    /// One entry per address.
    pub cases: Vec<KnownCase>,
}

/// How a row came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowStatus {
    /// Checked, and our patch gets it right.
    Right,
    /// Checked, and something is wrong (see `KnownRow::note`).
    Wrong,
    /// Not checked: the oracle it needs is unavailable.
    Skipped,
    /// Shown by the named tests (which exist), not per address.
    Covered,
}

/// One row of the known-differences table.
#[derive(Debug, Clone, Serialize)]
pub struct KnownRow {
    /// The deliberate change's number.
    pub change: u32,
    /// Its title.
    pub title: String,
    /// The case directory name.
    pub case: String,
    /// The address (escaped).
    pub address: String,
    /// What is special about it.
    pub what: String,
    /// Whether this is a difference from the original (false: a check that
    /// the original already agreed).
    pub difference: bool,
    /// The original's verdict and the rule it follows.
    pub original: String,
    /// qmail's outcome: class and text.
    pub qmail: String,
    /// Which oracle gave qmail's outcome: `G`, `R` (with `uncertain …` when
    /// R's qmaild view could not be sure) or `known.json`.
    pub qmail_source: String,
    /// The verdict qmail's outcome implies (`accept`/`reject`).
    pub qmail_verdict: String,
    /// Our C core's verdict.
    pub c: Option<String>,
    /// The resolver's verdict.
    pub r: Option<String>,
    /// Patched qmail-smtpd's reply.
    pub s: Option<String>,
    /// Patched qmail-qmtpd's reply.
    pub q: Option<String>,
    /// `status == Right`.
    pub right: bool,
    /// How the row came out.
    pub status: RowStatus,
    /// Why it is wrong or skipped, or the tests that cover it.
    pub note: Option<String>,
}

/// The directory of the known cases: `tests/known/`.
pub fn known_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("known")
}

/// Runs every case of [`known_dir`].
pub fn run_known(opts: &RunOptions) -> Result<Vec<KnownRow>, KnownError> {
    run_known_in(&known_dir(), opts)
}

struct Oracles {
    c: CDriver,
    r_exe: PathBuf,
    g: Option<GBuild>,
    sq: Option<SqBuild>,
    scratch: PathBuf,
    g_skipped: Option<String>,
}

fn prepare(opts: &RunOptions) -> Result<Oracles, KnownError> {
    let scratch = runner::scratch_dir(&opts.out_dir).map_err(io_err(format!(
        "creating the scratch dir under {}",
        opts.out_dir.display()
    )))?;
    let r_exe = runner::reachable_copy(&opts.exe, &scratch, "bin", "difftest-known")?;
    let c = CDriver::build(crate::cc::Sanitize::None)?;
    let c_exe = runner::reachable_copy(c.exe(), &scratch, "bin", "realrcptto-driver")?;
    let c = c.with_exe(c_exe);
    let (g, sq, g_skipped) =
        match &opts.netqmail {
            None if opts.require_upstream => return Err(KnownError::Required(
                "upstream sources required but no netqmail tree was given (QMAIL_SOURCE_NETQMAIL)"
                    .into(),
            )),
            None => (
                None,
                None,
                Some("QMAIL_SOURCE_NETQMAIL not set".to_string()),
            ),
            Some(src) => {
                let (g, skipped) = match g::build(src, &scratch.join("g")) {
                    Ok(b) => (Some(b), None),
                    Err(GError::NotRoot(uid)) if !opts.require_upstream => {
                        (None, Some(format!("G needs root (uid {uid})")))
                    }
                    Err(e) => return Err(e.into()),
                };
                (g, Some(SqBuild::build(src, true)?), skipped)
            }
        };
    Ok(Oracles {
        c,
        r_exe,
        g,
        sq,
        scratch,
        g_skipped,
    })
}

/// Runs every case directory under `dir` (sorted by name).
pub fn run_known_in(dir: &Path, opts: &RunOptions) -> Result<Vec<KnownRow>, KnownError> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io_err(format!("reading {}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(KNOWN_JSON).is_file())
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        return Err(KnownError::Data(format!(
            "{}: no case directories (with {KNOWN_JSON})",
            dir.display()
        )));
    }
    let o = prepare(opts)?;
    let mut rows = Vec::new();
    for d in dirs {
        rows.extend(run_case(&d, &o)?);
    }
    Ok(rows)
}

fn load_known(path: &Path) -> Result<KnownFile, KnownError> {
    let text =
        std::fs::read_to_string(path).map_err(io_err(format!("reading {}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| KnownError::Data(format!("{}: not a known-case file: {e}", path.display())))
}

/// Whether `tests/tests/FILE.rs` defines `fn NAME(` for `FILE.rs::NAME`.
fn test_exists(spec: &str) -> bool {
    let Some((file, name)) = spec.split_once("::") else {
        return false;
    };
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(file);
    std::fs::read_to_string(p)
        .map(|t| t.contains(&format!("fn {name}(")))
        .unwrap_or(false)
}

fn base_row(kf: &KnownFile, case: &str, k: &KnownCase) -> KnownRow {
    let mut original = format!("{} — {}", k.original.verdict, k.original.rule);
    if let Some(r) = &k.original.reply {
        original = format!("{r} — {}", k.original.rule);
    }
    KnownRow {
        change: kf.change,
        title: kf.title.clone(),
        case: case.to_string(),
        address: k.address.to_text(),
        what: k.what.clone(),
        difference: k.difference,
        original,
        qmail: doc_text(&k.qmail),
        qmail_source: "known.json".into(),
        qmail_verdict: String::new(),
        c: None,
        r: None,
        s: None,
        q: None,
        right: false,
        status: RowStatus::Skipped,
        note: None,
    }
}

fn doc_text(d: &Documented) -> String {
    match &d.text {
        Some(t) => format!("{} {t:?}", d.class),
        None => d.class.clone(),
    }
}

/// (class, text) of a G answer, in R's vocabulary.
fn g_outcome(c: &GClass) -> (String, Option<String>) {
    match c {
        GClass::NoStart => ("nostart".into(), None),
        GClass::Remote => ("remote".into(), None),
        GClass::Trash => ("trash".into(), None),
        GClass::Deliver {
            aliasempty: true, ..
        } => ("default".into(), None),
        GClass::Deliver { .. } => ("deliver".into(), None),
        GClass::Bounce(t) => ("bounce".into(), Some(t.clone())),
        GClass::Defer(t) => ("defer".into(), Some(t.clone())),
    }
}

fn r_outcome(a: &RAnswer) -> (String, Option<String>) {
    (a.class.clone(), a.text.as_ref().map(|t| g::last_line(&t.0)))
}

fn outcome_text(class: &str, text: &Option<String>) -> String {
    match text {
        Some(t) => format!("{class} {t:?}"),
        None => class.to_string(),
    }
}

/// The environment of C, S and Q for a case.
fn case_env(k: &KnownCase) -> Vec<(OsString, OsString)> {
    let mut m: BTreeMap<String, Option<String>> = BTreeMap::new();
    m.insert("PROTO".into(), Some("TCP".into()));
    m.insert("TCPREMOTEIP".into(), Some("192.0.2.7".into()));
    for (key, v) in &k.env {
        m.insert(key.clone(), v.clone());
    }
    m.into_iter()
        .filter_map(|(key, v)| v.map(|v| (OsString::from(key), OsString::from(v))))
        .collect()
}

fn smtp_verdict(code: u16, text: &str) -> String {
    match code {
        250 => "accept".into(),
        550 if text == SMTP_NO_MAILBOX => "reject".into(),
        _ => format!("{code} {:?}", text.trim_end()),
    }
}

fn qmtp_verdict(r: &[u8]) -> String {
    if r.first() == Some(&b'K') {
        "accept".into()
    } else if r == QMTP_NO_MAILBOX {
        "reject".into()
    } else {
        format!("{:?}", String::from_utf8_lossy(r))
    }
}

/// A log line with its pid field replaced by `PID`.
fn normalise_log(line: &str) -> String {
    let mut f: Vec<&str> = line.splitn(3, ' ').collect();
    if f.len() >= 2 && f[0] == "realrcptto" {
        f[1] = "PID";
    }
    f.join(" ")
}

fn run_case(dir: &Path, o: &Oracles) -> Result<Vec<KnownRow>, KnownError> {
    let kf = load_known(&dir.join(KNOWN_JSON))?;
    let case = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let scp = dir.join(scenario::layout::SCENARIO_JSON);
    let mut rows = Vec::new();
    if !scp.is_file() {
        for k in &kf.cases {
            let mut row = base_row(&kf, &case, k);
            if k.covered_by.is_empty() {
                return Err(KnownError::Data(format!(
                    "{}: no scenario.json and no covered_by for {}",
                    dir.display(),
                    k.address
                )));
            }
            let missing: Vec<&String> = k.covered_by.iter().filter(|t| !test_exists(t)).collect();
            if missing.is_empty() {
                row.status = RowStatus::Covered;
                row.note = Some(format!("covered by {}", k.covered_by.join(", ")));
            } else {
                row.status = RowStatus::Wrong;
                row.note = Some(format!("named tests not found: {missing:?}"));
            }
            rows.push(row);
        }
        return Ok(rows);
    }
    let sc = Scenario::load(&scp).map_err(io_err(format!("loading {}", scp.display())))?;
    for k in &kf.cases {
        if !sc.addresses.contains(&k.address) {
            return Err(KnownError::Data(format!(
                "{}: address {} is not in scenario.json",
                dir.display(),
                k.address
            )));
        }
    }

    let work = o.scratch.join("work");
    std::fs::create_dir_all(&work).map_err(io_err(format!("creating {}", work.display())))?;
    let w = tempfile::Builder::new()
        .prefix("known")
        .tempdir_in(&work)
        .map_err(io_err(format!("creating a world under {}", work.display())))?;
    let root = w.path().join("w");
    sc.materialize(&root, &r::compile_assign_cdb)
        .map_err(io_err(format!("materialising {}", scp.display())))?;
    let qhome = Scenario::qmail_home(&root);
    let is_root = unsafe { libc::geteuid() } == 0;
    let run_as = is_root.then_some((UID_QMAILD, GID_QMAIL));
    let passwd = root.join(scenario::layout::PASSWD);
    let group = root.join(scenario::layout::GROUP);

    // R, as qmaild.
    let rr = r::run(&o.r_exe, &root)?;
    let ranswers: Vec<RAnswer> = match rr {
        RRun::Answers(a) => a,
        RRun::NoStart(why) => {
            return Err(KnownError::Data(format!(
                "{}: the resolver cannot start: {why}",
                scp.display()
            )))
        }
    };
    let r_of = |a: &Esc| -> Option<&RAnswer> {
        sc.addresses
            .iter()
            .position(|x| x == a)
            .and_then(|i| ranswers.get(i))
    };

    // S/Q setup (before G adds its programs, as the runner does).
    if let Some(sqb) = &o.sq {
        sqb.install_queue_stub(&qhome)?;
        for f in ["smtpgreeting", "localiphost"] {
            let p = qhome.join("control").join(f);
            std::fs::write(&p, b"difftest.invalid\n")
                .map_err(io_err(format!("writing {}", p.display())))?;
        }
    }
    let log = qhome.join("qq-stub.log");
    let reset_log = || -> Result<(), KnownError> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(&log, b"").map_err(io_err(format!("writing {}", log.display())))?;
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666))
            .map_err(io_err(format!("chmod {}", log.display())))
    };

    // Per case: C, S, Q.
    struct Ours {
        c: String,
        c_deny: bool,
        c_log: Vec<String>,
        s: Option<String>,
        s_log: Vec<String>,
        q: Option<Vec<Vec<u8>>>,
        queue: Vec<String>,
    }
    let mut ours = Vec::new();
    for k in &kf.cases {
        let env = case_env(k);
        let mut addrs: Vec<Vec<u8>> = k.with.iter().map(|a| a.0.clone()).collect();
        addrs.push(k.address.0.clone());
        let copts = CheckOptions {
            env: env.clone(),
            passwd: Some(passwd.clone()),
            group: Some(group.clone()),
            run_as,
            one_transaction: true,
            ..CheckOptions::default()
        };
        let cv = o.c.check(&qhome, b'-', b"alias", &addrs, &copts)?;
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
        if let Some(sqb) = &o.sq {
            let sqopts = SqOptions {
                env,
                passwd: Some(passwd.clone()),
                group: Some(group.clone()),
                run_as,
                ..SqOptions::default()
            };
            if runner::smtp_safe(&k.address.0) && k.with.is_empty() {
                let t = sqb.smtp_transaction(
                    &qhome,
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
                reset_log()?;
                let m = QmtpMessage {
                    body: g::MESSAGE.to_vec(),
                    sender: g::SENDER.to_vec(),
                    rcpts: addrs.clone(),
                };
                let q = sqb.qmtp(&qhome, &sqopts, &[m])?;
                out.q = q.replies.into_iter().next();
                out.queue = sq::queue_log(&qhome);
            }
        }
        ours.push(out);
    }

    // G, last.
    let g_classes: Option<Vec<GClass>> = match &o.g {
        Some(gb) => {
            let j = gb.judge(&sc, &root)?;
            Some(
                j.answers
                    .iter()
                    .map(|a: &GAnswer| g::classify(a, &sc.aliasempty.0))
                    .collect(),
            )
        }
        None => None,
    };
    let root_s = root.display().to_string();

    for (k, us) in kf.cases.iter().zip(ours) {
        let mut row = base_row(&kf, &case, k);
        let ra = r_of(&k.address)
            .ok_or_else(|| KnownError::Data(format!("R gave no answer for {}", k.address)))?;
        let idx = sc.addresses.iter().position(|x| x == &k.address);
        // qmail's outcome: G, else R.
        let (q_class, q_text, source, certain) = match (&g_classes, idx) {
            (Some(gc), Some(i)) if i < gc.len() => {
                let (c, t) = g_outcome(&gc[i]);
                (c, t, "G".to_string(), true)
            }
            _ => {
                let (c, t) = r_outcome(ra);
                let skipped = o.g_skipped.as_deref().unwrap_or("unavailable");
                if ra.uncertain > 0 {
                    // R, as qmaild, could not see what qmail (qmailp, the
                    // user) sees: its outcome is not qmail's. Use the
                    // documented one, and say what R saw.
                    let src = format!(
                        "known.json; R as qmaild was uncertain in {} and saw {}; G skipped: {skipped}",
                        ra.uncertain_stages.join(","),
                        outcome_text(&c, &t).replace(&root_s, "{ROOT}")
                    );
                    let dt = k.qmail.text.as_ref().map(|x| x.replace("{ROOT}", &root_s));
                    (k.qmail.class.clone(), dt, src, false)
                } else {
                    (c, t, format!("R (G skipped: {skipped})"), true)
                }
            }
        };
        row.qmail = outcome_text(
            &q_class,
            &q_text.as_ref().map(|t| t.replace(&root_s, "{ROOT}")),
        );
        row.qmail_source = source;
        let qmail_verdict = if q_class == "bounce" && q_text.as_deref() == Some(NO_MAILBOX) {
            "reject"
        } else {
            "accept"
        };
        row.qmail_verdict = qmail_verdict.into();
        row.c = Some(if k.observe == Observe::QmtpDenyall {
            format!("{} (deny={})", us.c, us.c_deny as u8)
        } else {
            us.c.clone()
        });
        row.r = Some(ra.verdict.clone());
        row.s = us.s.clone();
        row.q =
            us.q.as_ref()
                .and_then(|r| r.last())
                .map(|r| qmtp_verdict(r));

        let mut problems: Vec<String> = Vec::new();
        // The documented qmail outcome must be what the oracle saw.
        if certain {
            let doc_text = k.qmail.text.as_ref().map(|t| t.replace("{ROOT}", &root_s));
            if k.qmail.class != q_class || (doc_text.is_some() && doc_text != q_text) {
                problems.push(format!(
                    "qmail's outcome is {} but known.json says {}",
                    row.qmail,
                    doc_text_of(&k.qmail)
                ));
            }
        }
        // Our verdicts follow qmail's outcome.
        // (Under deny-all every RCPT is accepted by design: C's deny flag
        // and Q's replies are checked below instead.)
        let mut verdicts = vec![("R", ra.verdict.clone())];
        if k.observe != Observe::QmtpDenyall {
            verdicts.push(("C", us.c.clone()));
        }
        if let Some(s) = &us.s {
            if k.observe != Observe::QmtpDenyall {
                verdicts.push(("S", s.clone()));
            }
        }
        if let Some(q) = &row.q {
            if k.observe != Observe::QmtpDenyall {
                verdicts.push(("Q", q.clone()));
            }
        }
        for (who, v) in &verdicts {
            if v != qmail_verdict {
                problems.push(format!(
                    "{who} says {v}, qmail's outcome means {qmail_verdict}"
                ));
            }
        }
        let mut skipped = None;
        match k.observe {
            Observe::Verdict => {
                let same = us.c == k.original.verdict;
                if k.difference && same {
                    problems.push(format!("C agrees with the original ({})", us.c));
                }
                if !k.difference && !same {
                    problems.push(format!(
                        "C ({}) differs from the original ({}), which known.json says agrees",
                        us.c, k.original.verdict
                    ));
                }
            }
            Observe::QmtpReply => match &us.q {
                None => skipped = Some("needs oracle Q (QMAIL_SOURCE_NETQMAIL)".to_string()),
                Some(r) => {
                    let mine = r.last().cloned().unwrap_or_default();
                    row.q = Some(String::from_utf8_lossy(&mine).into_owned());
                    if mine != QMTP_NO_MAILBOX {
                        problems.push("Q's reply is not the no-mailbox text".into());
                    }
                    if k.original.reply.as_deref().map(str::as_bytes) == Some(&mine[..]) {
                        problems.push("Q's reply is the original's".into());
                    }
                }
            },
            Observe::QmtpDenyall => match &us.q {
                None => skipped = Some("needs oracle Q (QMAIL_SOURCE_NETQMAIL)".to_string()),
                Some(r) => {
                    let all_d =
                        r.len() == k.with.len() + 1 && r.iter().all(|x| x == QMTP_NO_MAILBOX);
                    let queued = us.queue.iter().any(|l| l.starts_with("queued"));
                    let aborted = us.queue.iter().any(|l| l.starts_with("aborted"));
                    row.q = Some(format!(
                        "{} for all {} recipients; queue: {}",
                        if all_d {
                            String::from_utf8_lossy(QMTP_NO_MAILBOX).into_owned()
                        } else {
                            format!(
                                "{:?}",
                                r.iter().map(|x| qmtp_verdict(x)).collect::<Vec<_>>()
                            )
                        },
                        r.len(),
                        if queued {
                            "queued"
                        } else if aborted {
                            "aborted"
                        } else {
                            "not written"
                        }
                    ));
                    if !all_d {
                        problems.push("not every recipient got the no-mailbox text".into());
                    }
                    if queued || !aborted {
                        problems.push(format!("the queue write was not aborted: {:?}", us.queue));
                    }
                    if !us.c_deny {
                        problems.push("C's realrcptto_deny() is false".into());
                    }
                }
            },
            Observe::Log => {
                let suffix = k.expect_log_suffix.clone().unwrap_or_default();
                let ok = |lines: &[String]| -> Option<String> {
                    let l: Vec<&String> = lines
                        .iter()
                        .filter(|l| l.starts_with("realrcptto "))
                        .collect();
                    (l.len() == 1 && l[0].ends_with(&suffix)).then(|| normalise_log(l[0]))
                };
                match ok(&us.c_log) {
                    Some(line) => {
                        row.c = Some(format!("{} — log {line:?}", us.c));
                        if k.original.log.as_deref() == Some(line.as_str()) {
                            problems.push("C logs what the original logged".into());
                        }
                    }
                    None => problems.push(format!("C's log is {:?}", us.c_log)),
                }
                if us.s.is_some() {
                    match ok(&us.s_log) {
                        Some(line) => {
                            row.s = Some(format!(
                                "{} — log {line:?}",
                                us.s.clone().unwrap_or_default()
                            ))
                        }
                        None => problems.push(format!("S's log is {:?}", us.s_log)),
                    }
                }
            }
        }
        if let Some(s) = skipped {
            row.status = RowStatus::Skipped;
            row.note = Some(s);
            problems.clear();
        } else if problems.is_empty() {
            row.status = RowStatus::Right;
            row.right = true;
        } else {
            row.status = RowStatus::Wrong;
            row.note = Some(problems.join("; "));
        }
        rows.push(row);
    }
    Ok(rows)
}

fn doc_text_of(d: &Documented) -> String {
    doc_text(d)
}

/// Runs every known case and writes `known.md` (the section of
/// [`render_markdown`]) and `known.json` (the rows) into `opts.out_dir`;
/// returns the rows and the section, for appending to `report.md`.
pub fn run_and_write(opts: &RunOptions) -> Result<(Vec<KnownRow>, String), KnownError> {
    let rows = run_known(opts)?;
    let md = render_markdown(&rows);
    for (name, data) in [("known.md", md.clone()), ("known.json", to_json(&rows))] {
        let p = opts.out_dir.join(name);
        crate::report::write_atomic(&p, data.as_bytes())
            .map_err(io_err(format!("writing {}", p.display())))?;
    }
    Ok((rows, md))
}

/// The rows as pretty JSON.
pub fn to_json(rows: &[KnownRow]) -> String {
    serde_json::to_string_pretty(rows).unwrap_or_default()
}

/// A long address shortened for the table (the JSON keeps it whole).
fn short(a: &str) -> String {
    if a.len() <= 60 {
        return a.to_string();
    }
    let head: String = a.chars().take(24).collect();
    let tail: String = a
        .chars()
        .rev()
        .take(12)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("{head}…{tail} ({} bytes)", a.len())
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The report section `## Known differences from the original
/// realrcptto`: one table row per address, then a count line.
pub fn render_markdown(rows: &[KnownRow]) -> String {
    let mut out = String::from("## Known differences from the original realrcptto\n\n");
    out.push_str(
        "Each row is one address of a hand-written scenario in `tests/known/` for a \
         deliberate change of realrcptto.md Part 1. *Right* means: our verdicts (C = our C \
         core, R = the resolver, S/Q = patched qmail-smtpd/qmtpd) follow qmail's outcome \
         (reject iff qmail bounces with `Sorry, no mailbox here by that name. (#5.1.1)`) \
         and differ from the original 2006.12.10 patch (rows marked *same* check a case \
         where the original already agreed).\n\n",
    );
    out.push_str(
        "| # | Address | Case | Original 2006.12.10 | qmail (source) | C | R | S | Q | Right |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        let right = match r.status {
            RowStatus::Right if r.difference => "yes".to_string(),
            RowStatus::Right => "yes (same)".to_string(),
            RowStatus::Wrong => format!("**NO**: {}", r.note.clone().unwrap_or_default()),
            RowStatus::Skipped => format!("skipped: {}", r.note.clone().unwrap_or_default()),
            RowStatus::Covered => r.note.clone().unwrap_or_default(),
        };
        let qmail = if r.status == RowStatus::Covered {
            r.qmail.clone()
        } else {
            format!("{} → {} ({})", r.qmail, r.qmail_verdict, r.qmail_source)
        };
        let dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "—".into());
        out.push_str(&format!(
            "| {} | `{}` | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.change,
            cell(&short(&r.address)),
            cell(&r.what),
            cell(&r.original),
            cell(&qmail),
            cell(&dash(&r.c)),
            cell(&dash(&r.r)),
            cell(&dash(&r.s)),
            cell(&dash(&r.q)),
            cell(&right),
        ));
    }
    let n = |s: RowStatus| rows.iter().filter(|r| r.status == s).count();
    out.push_str(&format!(
        "\n{} rows: {} right, {} wrong, {} skipped, {} covered by named tests\n",
        rows.len(),
        n(RowStatus::Right),
        n(RowStatus::Wrong),
        n(RowStatus::Skipped),
        n(RowStatus::Covered)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_file_parses_and_names_its_change() {
        let mut changes = Vec::new();
        for e in std::fs::read_dir(known_dir()).unwrap() {
            let d = e.unwrap().path();
            let kf = load_known(&d.join(KNOWN_JSON)).unwrap();
            assert!(!kf.cases.is_empty(), "{}", d.display());
            if d.join("scenario.json").is_file() {
                let sc = Scenario::load(&d.join("scenario.json")).unwrap();
                for k in &kf.cases {
                    assert!(sc.addresses.contains(&k.address), "{}", k.address);
                }
            }
            changes.push(kf.change);
        }
        changes.sort();
        assert_eq!(changes, (1..=9).collect::<Vec<_>>());
    }

    #[test]
    fn log_lines_lose_their_pid() {
        assert_eq!(
            normalise_log("realrcptto 123 unknown a@b"),
            "realrcptto PID unknown a@b"
        );
        assert_eq!(normalise_log("realrcptto 9  a@b"), "realrcptto PID  a@b");
    }

    #[test]
    fn named_tests_are_found() {
        assert!(test_exists(
            "realrcptto_c.rs::deliberate_9_bytes_not_c_strings"
        ));
        assert!(!test_exists("realrcptto_c.rs::no_such_test"));
        assert!(!test_exists("no-colons"));
    }
}
