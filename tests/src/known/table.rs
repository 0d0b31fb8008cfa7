//! The known-differences table: one [`KnownRow`] per address of
//! `tests/known/`, rendered as the report section
//! ([`render_markdown`]) and as JSON ([`to_json`]).

use super::case::{Documented, KnownCase, KnownFile};
use serde::Serialize;

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

/// A row for case `k` of `kf` with what `known.json` says, not yet
/// judged.
pub(super) fn base_row(kf: &KnownFile, case: &str, k: &KnownCase) -> KnownRow {
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

/// qmail's documented outcome: class and text.
pub(super) fn doc_text(d: &Documented) -> String {
    match &d.text {
        Some(t) => format!("{} {t:?}", d.class),
        None => d.class.clone(),
    }
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
