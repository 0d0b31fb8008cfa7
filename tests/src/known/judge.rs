//! Judge a known case: compare what the oracles observed
//! ([`super::observe`]) with qmail's outcome (G's, else R's, else the one
//! `known.json` documents) and with the original patch's behaviour, and
//! fill in its [`KnownRow`].
//!
//! A row is *right* when our verdicts follow qmail's outcome under the
//! verdict rule (reject iff qmail bounces with [`NO_MAILBOX`]) and differ
//! from the original's (for the few entries marked `"difference": false`
//! they must equal it instead); the observation a case names
//! ([`Observe`]) adds its own checks.

use super::case::{
    normalise_log, qmtp_verdict, KnownCase, KnownError, KnownFile, Observe, NO_MAILBOX,
    QMTP_NO_MAILBOX,
};
use super::observe::{Observed, Ours};
use super::table::{base_row, doc_text, KnownRow, RowStatus};
use crate::oracle::g::{self, GClass};
use crate::oracle::r::RAnswer;
use crate::oracle::setup::Absent;
use crate::scenario::Scenario;

/// qmail's outcome for one address and where it comes from.
struct QmailOutcome {
    class: String,
    text: Option<String>,
    /// `G`, `R (…)` or `known.json; …`.
    source: String,
    /// Whether an oracle saw it (then `known.json` must agree with it).
    certain: bool,
}

/// The row of entry `k` (`us`: what C, S and Q said about it) of case
/// `case`; `g_absent` says why G did not run, if it did not.
pub(super) fn judge(
    kf: &KnownFile,
    case: &str,
    k: &KnownCase,
    us: &Ours,
    sc: &Scenario,
    obs: &Observed,
    g_absent: Option<Absent>,
) -> Result<KnownRow, KnownError> {
    let mut row = base_row(kf, case, k);
    let ra = obs
        .r_of(sc, &k.address)
        .ok_or_else(|| KnownError::Data(format!("R gave no answer for {}", k.address)))?;
    let idx = sc.addresses.iter().position(|x| x == &k.address);
    let g_class = match (&obs.g, idx) {
        (Some(gc), Some(i)) if i < gc.len() => Some(&gc[i]),
        _ => None,
    };
    let qm = qmail_outcome(k, ra, g_class, g_absent, &obs.root);
    let root_s = &obs.root;
    row.qmail = outcome_text(
        &qm.class,
        &qm.text.as_ref().map(|t| t.replace(root_s, "{ROOT}")),
    );
    row.qmail_source = qm.source.clone();
    let qmail_verdict = if qm.class == "bounce" && qm.text.as_deref() == Some(NO_MAILBOX) {
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
    if qm.certain {
        let doc = k.qmail.text.as_ref().map(|t| t.replace("{ROOT}", root_s));
        if k.qmail.class != qm.class || (doc.is_some() && doc != qm.text) {
            problems.push(format!(
                "qmail's outcome is {} but known.json says {}",
                row.qmail,
                doc_text(&k.qmail)
            ));
        }
    }
    follow_qmail(k, ra, us, &row, qmail_verdict, &mut problems);
    let skipped = match k.observe {
        Observe::Verdict => judge_verdict(k, us, &mut problems),
        Observe::QmtpReply => judge_qmtp_reply(k, us, &mut row, &mut problems),
        Observe::QmtpDenyall => judge_qmtp_denyall(k, us, &mut row, &mut problems),
        Observe::Log => judge_log(k, us, &mut row, &mut problems),
    };
    if let Some(s) = skipped {
        row.status = RowStatus::Skipped;
        row.note = Some(s);
    } else if problems.is_empty() {
        row.status = RowStatus::Right;
        row.right = true;
    } else {
        row.status = RowStatus::Wrong;
        row.note = Some(problems.join("; "));
    }
    Ok(row)
}

/// Why G did not run, in the table's words.
fn g_skipped(g_absent: Option<Absent>) -> String {
    match g_absent {
        Some(Absent::NoSources) => "QMAIL_SOURCE_NETQMAIL or QMAIL_SOURCE_NOTQMAIL not set".into(),
        Some(Absent::NotRoot(uid)) => format!("G needs root (uid {uid})"),
        None => "unavailable".into(),
    }
}

/// qmail's outcome: G's, else R's; where R (as qmaild) was uncertain, the
/// one `known.json` documents.
fn qmail_outcome(
    k: &KnownCase,
    ra: &RAnswer,
    g_class: Option<&GClass>,
    g_absent: Option<Absent>,
    root_s: &str,
) -> QmailOutcome {
    if let Some(gc) = g_class {
        let (class, text) = g_outcome(gc);
        return QmailOutcome {
            class,
            text,
            source: "G".into(),
            certain: true,
        };
    }
    let (c, t) = r_outcome(ra);
    let skipped = g_skipped(g_absent);
    if ra.uncertain > 0 {
        // R, as qmaild, could not see what qmail (qmailp, the user) sees:
        // its outcome is not qmail's. Use the documented one, and say what
        // R saw.
        let source = format!(
            "known.json; R as qmaild was uncertain in {} and saw {}; G skipped: {skipped}",
            ra.uncertain_stages.join(","),
            outcome_text(&c, &t).replace(root_s, "{ROOT}")
        );
        let text = k.qmail.text.as_ref().map(|x| x.replace("{ROOT}", root_s));
        QmailOutcome {
            class: k.qmail.class.clone(),
            text,
            source,
            certain: false,
        }
    } else {
        QmailOutcome {
            class: c,
            text: t,
            source: format!("R (G skipped: {skipped})"),
            certain: true,
        }
    }
}

/// Our verdicts (R, C, S, Q) must follow qmail's outcome. (Under deny-all
/// every RCPT is accepted by design: C's deny flag and Q's replies are
/// checked by [`judge_qmtp_denyall`] instead.)
fn follow_qmail(
    k: &KnownCase,
    ra: &RAnswer,
    us: &Ours,
    row: &KnownRow,
    qmail_verdict: &str,
    problems: &mut Vec<String>,
) {
    let mut verdicts = vec![("R", ra.verdict.clone())];
    if k.observe != Observe::QmtpDenyall {
        verdicts.push(("C", us.c.clone()));
        if let Some(s) = &us.s {
            verdicts.push(("S", s.clone()));
        }
        if let Some(q) = &row.q {
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
}

/// `verdict`: C must differ from the original (or, for `"difference":
/// false`, equal it).
fn judge_verdict(k: &KnownCase, us: &Ours, problems: &mut Vec<String>) -> Option<String> {
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
    None
}

const NEEDS_Q: &str = "needs oracle Q (QMAIL_SOURCE_NETQMAIL or QMAIL_SOURCE_NOTQMAIL)";

/// `qmtp_reply`: Q's reply is the no-mailbox text, not the original's.
fn judge_qmtp_reply(
    k: &KnownCase,
    us: &Ours,
    row: &mut KnownRow,
    problems: &mut Vec<String>,
) -> Option<String> {
    let Some(r) = &us.q else {
        return Some(NEEDS_Q.to_string());
    };
    let mine = r.last().cloned().unwrap_or_default();
    row.q = Some(String::from_utf8_lossy(&mine).into_owned());
    if mine != QMTP_NO_MAILBOX {
        problems.push("Q's reply is not the no-mailbox text".into());
    }
    if k.original.reply.as_deref().map(str::as_bytes) == Some(&mine[..]) {
        problems.push("Q's reply is the original's".into());
    }
    None
}

/// `qmtp_denyall`: every recipient refused, the queue write aborted, and
/// C's deny flag set.
fn judge_qmtp_denyall(
    k: &KnownCase,
    us: &Ours,
    row: &mut KnownRow,
    problems: &mut Vec<String>,
) -> Option<String> {
    let Some(r) = &us.q else {
        return Some(NEEDS_Q.to_string());
    };
    let all_d = r.len() == k.with.len() + 1 && r.iter().all(|x| x == QMTP_NO_MAILBOX);
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
    None
}

/// `log`: C (and S) log one realrcptto line with the expected ending,
/// not the original's.
fn judge_log(
    k: &KnownCase,
    us: &Ours,
    row: &mut KnownRow,
    problems: &mut Vec<String>,
) -> Option<String> {
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
    None
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

/// (class, text) of an R answer.
fn r_outcome(a: &RAnswer) -> (String, Option<String>) {
    (a.class.clone(), a.text.as_ref().map(|t| g::last_line(&t.0)))
}

/// An outcome as the table shows it.
fn outcome_text(class: &str, text: &Option<String>) -> String {
    match text {
        Some(t) => format!("{class} {t:?}"),
        None => class.to_string(),
    }
}
