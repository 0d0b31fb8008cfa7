//! The qtraceaddr text report (qtraceaddr.md D.2 with D.3 fixed) and the
//! `--explain` section.
//!
//! Decisions (qtraceaddr.md leaves these open):
//! * A missing users/cdb prints `no entry in users/cdb`, like a cdb without
//!   an entry (the original printed nothing about users/cdb then; readers
//!   that look for the final line are unaffected).
//! * Where the original died or had no line, one line `defer: TEXT` or
//!   `bounce: TEXT` gives qmail's text (resolution.md O4), and ends the
//!   block. The missing alias user prints `defer: Unable to find alias
//!   user!` instead of the original's `reject address for lack of any entry
//!   in /etc/passwd` (qmail defers it; realrcptto accepts it).
//! * A users/cdb that is a FIFO, socket or device prints
//!   `unreadable users/cdb: PATH: not a regular file (TYPE)` before the
//!   `defer: Trouble reading users/cdb in qmail-lspawn.` line.
//! * An empty local part (H4) prints `trash: empty local part, message
//!   discarded`.
//! * A passwd candidate whose home cannot be stat'ed because of EACCES or
//!   EPERM prints `uncertain: cannot stat HOME: ERROR (realrcptto accepts)`.
//! * An EACCES or EPERM on the chosen home (L2) or on a `.qmail` (Q1)
//!   prints `uncertain: cannot reach HOME: ERROR (realrcptto accepts)` or
//!   `uncertain: cannot open PATH: ERROR (realrcptto accepts)` before the
//!   `defer:` line: qmail-local runs as the user, who may be allowed.
//! * A structural error of the chosen instructions (resolution.md P3, O4
//!   item 11) prints the `deliver according to …` line, then
//!   `defer: TEXT` with qmail-local's text (qmail stops there).
//! * The `.qmail` paths printed are `HOME/NAME`.
//! * `.qmail` names of 4096 bytes or more (a local part with thousands of
//!   `-`) are not probed, as qmail-local's open of them fails with
//!   ENAMETOOLONG (absent); one line `missing .qmail files: N names of 4096
//!   bytes or more (ENAMETOOLONG), not probed` stands for them, before the
//!   other search lines.
//! * An exception in virtualdomains (empty value) prints `accept address for
//!   remote delivery`, as qmail routes it remotely (D.3 item 16 fixed).

use crate::bytes::error_str;
use crate::dotqmail::{self, DeliveryKind, Instruction, LineKind, Probe, ProgramExit, RunStatus};
use crate::getpw::{CandidateResult, GetpwOutcome};
use crate::release::QmailRelease;
use crate::resolve::{HomeCheck, Outcome, ProbeStep, Trace, UsersStage};
use crate::rewrite::{Channel, Decision};
use crate::users::{CdbTrouble, UsersMatch};
use std::io::Write;
use std::ops::ControlFlow;

fn line(out: &mut Vec<u8>, parts: &[&[u8]]) {
    for p in parts {
        out.extend_from_slice(p);
    }
    out.push(b'\n');
}

/// The default qtraceaddr block for one trace, ending with the empty line.
pub fn format_trace(t: &Trace) -> Vec<u8> {
    let mut o = Vec::new();
    format_trace_into(t, &mut o);
    o
}

/// [`format_trace`] appended to `out`: a caller tracing many addresses
/// clears and reuses one buffer instead of allocating a block each time.
pub fn format_trace_into(t: &Trace, out: &mut Vec<u8>) {
    // Break only means the block ended early.
    let _ = format_body(t, out);
    out.push(b'\n');
}

fn outcome_line(o: &mut Vec<u8>, oc: &Outcome) {
    match oc {
        Outcome::Defer { text } => line(o, &[b"defer: ", text]),
        Outcome::Bounce { text } => line(o, &[b"bounce: ", text]),
        _ => {}
    }
}

fn uncertain_line(o: &mut Vec<u8>, t: &Trace, stage: &str, what: &[u8]) {
    for u in t.uncertain.iter().filter(|u| u.stage == stage) {
        line(
            o,
            &[
                b"uncertain: ",
                what,
                &u.path,
                b": ",
                error_str(u.errno).as_bytes(),
                b" (realrcptto accepts)",
            ],
        );
    }
}

/// The block's lines in qtraceaddr.md D.2's order, one function per stage;
/// a stage that decides the outcome ends the block (`Break`).
fn format_body(t: &Trace, o: &mut Vec<u8>) -> ControlFlow<()> {
    rewrite_lines(t, o)?;
    users_lines(t, o)?;
    getpw_lines(t, o)?;
    home_lines(t, o)?;
    search_lines(t, o);
    result_lines(t, o);
    ControlFlow::Continue(())
}

/// Ends the block with the `defer:` or `bounce:` line of the outcome.
fn end_with(o: &mut Vec<u8>, oc: &Outcome) -> ControlFlow<()> {
    outcome_line(o, oc);
    ControlFlow::Break(())
}

/// Stage W (resolution.md §3) and H2/H4: the rewriting lines; a remote
/// address, an empty local part or an address without `@` ends here.
fn rewrite_lines(t: &Trace, o: &mut Vec<u8>) -> ControlFlow<()> {
    let rw = &t.rewrite;
    line(o, &[b"input: ", &t.input]);
    if t.release != QmailRelease::default() {
        line(o, &[b"release: ", t.release.name().as_bytes()]);
    }
    if let Some(a) = &rw.after_envnoathost {
        line(o, &[b"after envnoathost: ", a]);
    }
    line(o, &[b"after percenthack: ", &rw.after_percenthack]);
    if rw.channel == Channel::Remote {
        line(o, &[b"accept address for remote delivery"]);
        return ControlFlow::Break(());
    }
    match &rw.decision {
        Decision::Locals => line(o, &[b"domain exists in locals"]),
        Decision::Virtual { .. } => line(o, &[b"after virtualdomains: ", rw.local_part()]),
        _ => {}
    }
    match &t.outcome {
        Outcome::Trash => {
            line(o, &[b"trash: empty local part, message discarded"]);
            ControlFlow::Break(())
        }
        _ => ControlFlow::Continue(()),
    }
}

/// Stage U (resolution.md §5b): the users/cdb match; trouble ends here.
fn users_lines(t: &Trace, o: &mut Vec<u8>) -> ControlFlow<()> {
    match &t.users {
        Some(UsersStage::Hit(h)) => match &h.matched {
            UsersMatch::Exact { name } => line(o, &[b"matched users/cdb entry for =", name]),
            UsersMatch::Wildcard { prefix } => line(o, &[b"matched users/cdb entry for +", prefix]),
        },
        Some(UsersStage::NoEntry) | Some(UsersStage::Missing) => {
            line(o, &[b"no entry in users/cdb"])
        }
        Some(UsersStage::Trouble(tr)) => {
            if let CdbTrouble::NotRegular { path, file_type } = tr {
                line(
                    o,
                    &[
                        b"unreadable users/cdb: ",
                        path,
                        b": not a regular file (",
                        file_type.as_bytes(),
                        b")",
                    ],
                );
            }
            return end_with(o, &t.outcome);
        }
        None => {}
    }
    ControlFlow::Continue(())
}

/// Stage G (resolution.md §6): skipped and uncertain candidates, then the
/// passwd match; anything but a match ends here.
fn getpw_lines(t: &Trace, o: &mut Vec<u8>) -> ControlFlow<()> {
    let Some(g) = &t.getpw else {
        return ControlFlow::Continue(());
    };
    for c in &g.candidates {
        match &c.result {
            CandidateResult::Root => line(o, &[b"user ", &c.name, b" has uid==0, skipping"]),
            CandidateResult::StatFailed {
                errno,
                uncertain: true,
            } => {
                let dir = c.entry.as_ref().map(|e| e.dir.as_bytes()).unwrap_or(b"");
                line(
                    o,
                    &[
                        b"uncertain: cannot stat ",
                        dir,
                        b": ",
                        error_str(*errno).as_bytes(),
                        b" (realrcptto accepts)",
                    ],
                )
            }
            _ => {}
        }
    }
    match &g.outcome {
        GetpwOutcome::Found { entry, alias, .. } => {
            if *alias {
                line(o, &[b"matched default /etc/passwd entry for ", &entry.name])
            } else {
                line(o, &[b"matched /etc/passwd entry for ", &entry.name])
            }
            ControlFlow::Continue(())
        }
        _ => end_with(o, &t.outcome),
    }
}

/// H6 and stage L (resolution.md §4, §7): who delivers; a record, home
/// or loop failure ends here.
fn home_lines(t: &Trace, o: &mut Vec<u8>) -> ControlFlow<()> {
    let Some(rec) = &t.record else {
        return end_with(o, &t.outcome);
    };
    line(
        o,
        &[
            b"delivering as USER=",
            &rec.user,
            b", UID=",
            &rec.uid_text,
            b", GID=",
            &rec.gid_text,
        ],
    );
    match &t.home {
        Some(HomeCheck::Ok { .. }) => {}
        _ => {
            uncertain_line(o, t, "home", b"cannot reach ");
            return end_with(o, &t.outcome);
        }
    }
    if t.looping {
        return end_with(o, &t.outcome);
    }
    ControlFlow::Continue(())
}

/// Stage Q (resolution.md §8): one line per `.qmail` name probed.
fn search_lines(t: &Trace, o: &mut Vec<u8>) {
    if t.search_too_long > 0 {
        let m = format!(
            "missing .qmail files: {} names of {} bytes or more (ENAMETOOLONG), not probed",
            t.search_too_long,
            dotqmail::NAME_LIMIT
        );
        line(o, &[m.as_bytes()]);
    }
    for s in &t.search {
        match s.probe {
            Probe::Missing { .. } => line(o, &[b"missing .qmail file:", &s.path]),
            Probe::NotRegular { .. } => line(o, &[b"not a regular file:", &s.path]),
            Probe::Found { .. } => line(o, &[b"deliver according to ", &s.path]),
            Probe::Error { .. } => uncertain_line(o, t, "qmail", b"cannot open "),
            Probe::Writable { .. } => {}
        }
    }
}

/// Q5, P3 and the outcome (resolution.md §8, §9, §10 O4): the last line.
fn result_lines(t: &Trace, o: &mut Vec<u8>) {
    match &t.outcome {
        Outcome::DefaultDelivery { .. } => {
            line(o, &[b"deliver according to default delivery instructions"])
        }
        oc @ Outcome::Defer { .. } if t.structural_error().is_some() => {
            if t.chosen().is_none() {
                line(o, &[b"deliver according to default delivery instructions"])
            }
            outcome_line(o, oc)
        }
        Outcome::Bounce { .. } if is_q5(t) => {
            line(o, &[b"bounce message due to lack of a .qmail file"])
        }
        Outcome::Deliver { .. } => {}
        oc => outcome_line(o, oc),
    }
}

fn is_q5(t: &Trace) -> bool {
    matches!(&t.outcome, Outcome::Bounce { text } if text.as_bytes() == b"Sorry, no mailbox here by that name. (#5.1.1)")
}

fn say_delivery(k: &DeliveryKind) -> Vec<u8> {
    let mut v = Vec::new();
    match k {
        DeliveryKind::Mbox { path } => {
            v.extend_from_slice(b"mbox ");
            v.extend_from_slice(path);
        }
        DeliveryKind::Maildir { path } => {
            v.extend_from_slice(b"maildir ");
            v.extend_from_slice(path);
        }
        DeliveryKind::Program { command, .. } => {
            v.extend_from_slice(b"program ");
            v.extend_from_slice(command);
        }
        DeliveryKind::Forward { address } => {
            v.extend_from_slice(b"forward ");
            v.extend_from_slice(address);
        }
    }
    v
}

fn status_text(s: &RunStatus) -> Vec<u8> {
    match s {
        RunStatus::Ok {
            files,
            forwards,
            programs,
        } => format!("did {files}+{forwards}+{programs}").into_bytes(),
        RunStatus::Hard { text } => [b"hard failure (100) ".as_slice(), text].concat(),
        RunStatus::Soft { text } => [b"soft failure (111) ".as_slice(), text].concat(),
    }
}

/// At most this many `?LABEL COMMAND` lines get their own "exits 99" path
/// in the `--explain` section; each path lists up to one line per
/// instruction, so without a cap the section would grow with the square of
/// the number of such lines.
pub const EXPLAIN_MAX_BRANCH_PATHS: usize = 16;

/// The `--explain` section: the instructions of the chosen .qmail (or
/// aliasempty), the `qmail-local -n` listing, and the deliveries under the
/// branch rules. Commands are not run: the main path assumes every command
/// exits 0; for each of the first [`EXPLAIN_MAX_BRANCH_PATHS`] `?LABEL
/// COMMAND` lines a second path shows what happens when that command exits
/// 99 (all others 0), and one line counts the `?` lines left out. Empty
/// when the trace did not reach stage P (run
/// [`crate::Resolver::resolve_with`] with `instructions: true`). Written
/// to `w` piece by piece (the section is linear in the size of the
/// instructions, but can be large).
pub fn write_explain<W: Write>(t: &Trace, w: &mut W) -> std::io::Result<()> {
    let (Some(instr), Some(listing)) = (&t.instructions, &t.listing) else {
        return Ok(());
    };
    let mut o = Vec::new();
    // The file qmail-local reads: the chosen .qmail unless it is empty
    // (P1); also when its instructions end in a P3 deferral.
    let (src, fo): (&[u8], bool) = match t.chosen() {
        Some(ProbeStep {
            name,
            probe: Probe::Found {
                size, forward_only, ..
            },
            ..
        }) if *size > 0 => (&name.name, *forward_only),
        _ => (b"default delivery instructions (aliasempty)", false),
    };
    line(&mut o, &[b"explain: instructions from ", src]);
    for i in instr {
        line(
            &mut o,
            &[
                b"  line ",
                i.line_no.to_string().as_bytes(),
                b": ",
                kind_name(&i.kind).as_bytes(),
                if i.text.is_empty() { b"" } else { b" " },
                &i.text,
            ],
        );
        flush_big(&mut o, w)?;
    }
    line(&mut o, &[b"explain: qmail-local -n would print:"]);
    for l in &listing.lines {
        line(&mut o, &[b"  ", l]);
        flush_big(&mut o, w)?;
    }
    if let Some(e) = &listing.error {
        line(&mut o, &[b"  error: ", e]);
    }
    explain_path(
        instr,
        fo,
        b"deliveries if every command exits 0:",
        None,
        &mut o,
        w,
    )?;
    let branches = instr.iter().filter(|i| {
        matches!(
            i.kind,
            LineKind::Branch {
                command: Some(_),
                ..
            }
        )
    });
    let mut left_out = 0usize;
    for (n, i) in branches.enumerate() {
        if n >= EXPLAIN_MAX_BRANCH_PATHS {
            left_out += 1;
            continue;
        }
        let title = format!(
            "deliveries if the command on line {} exits 99 (others 0):",
            i.line_no
        );
        explain_path(instr, fo, title.as_bytes(), Some(i.line_no), &mut o, w)?;
    }
    if left_out > 0 {
        let m = format!(
            "explain: {left_out} more ?LABEL COMMAND lines: their exit-99 paths are not shown (limit {EXPLAIN_MAX_BRANCH_PATHS})"
        );
        line(&mut o, &[m.as_bytes()]);
    }
    w.write_all(&o)
}

/// Writes `o` out once it holds 64 KiB or more.
fn flush_big<W: Write>(o: &mut Vec<u8>, w: &mut W) -> std::io::Result<()> {
    if o.len() >= 1 << 16 {
        w.write_all(o)?;
        o.clear();
    }
    Ok(())
}

/// One `explain: deliveries if …` path: every command exits 0, except the
/// one on line `ninety_nine`, which exits 99.
fn explain_path<W: Write>(
    instr: &[Instruction],
    fo: bool,
    title: &[u8],
    ninety_nine: Option<usize>,
    o: &mut Vec<u8>,
    w: &mut W,
) -> std::io::Result<()> {
    let r = dotqmail::run_instructions(instr, fo, |_, n| {
        if Some(n) == ninety_nine {
            ProgramExit::Code(99)
        } else {
            ProgramExit::Code(0)
        }
    });
    line(o, &[b"explain: ", title]);
    for d in &r.deliveries {
        line(
            o,
            &[
                b"  line ",
                d.line_no.to_string().as_bytes(),
                b": ",
                &say_delivery(&d.kind),
            ],
        );
        flush_big(o, w)?;
    }
    if !r.skipped.is_empty() {
        o.extend_from_slice(b"  skipped lines: ");
        for (k, n) in r.skipped.iter().enumerate() {
            if k > 0 {
                o.push(b',');
            }
            o.extend_from_slice(n.to_string().as_bytes());
            flush_big(o, w)?;
        }
        o.push(b'\n');
    }
    line(o, &[b"  result: ", &status_text(&r.status)]);
    flush_big(o, w)
}

fn kind_name(k: &LineKind) -> &'static str {
    match k {
        LineKind::Blank => "blank",
        LineKind::Comment => "comment",
        LineKind::Mbox { .. } => "mbox",
        LineKind::Maildir { .. } => "maildir",
        LineKind::Program { .. } => "program",
        LineKind::Forward { .. } => "forward",
        LineKind::PlusList => "+list",
        LineKind::PlusOther => "ignored",
        LineKind::Branch { command: None, .. } => "jump",
        LineKind::Branch { .. } => "branch-program",
        LineKind::Label { .. } => "label",
    }
}
