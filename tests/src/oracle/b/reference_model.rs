//! The reference model of the patched qmail-local instruction loop,
//! written from the spec (spec/branch.md Part 1, resolution.md P1–P9), not
//! from the C.

use super::{Mode, Step, Trace};

/// A `.qmail` line after P2: cut at a NUL byte, trailing spaces and tabs
/// removed.
fn clean(line: &[u8]) -> &[u8] {
    let line = match line.iter().position(|&b| b == 0) {
        Some(p) => &line[..p],
        None => line,
    };
    let mut end = line.len();
    while end > 0 && (line[end - 1] == b' ' || line[end - 1] == b'\t') {
        end -= 1;
    }
    &line[..end]
}

/// A branch line per branch.md Part 1 rule 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BranchLine<'a> {
    /// `?LABEL` (no command): an unconditional jump.
    Jump(&'a [u8]),
    /// `?LABEL COMMAND`.
    Cond(&'a [u8], &'a [u8]),
    /// `:LABEL …`.
    Target(&'a [u8]),
}

/// Classify a cleaned line (see branch.md Part 1 rule 1).
pub fn parse_branch(line: &[u8]) -> Option<BranchLine<'_>> {
    let line = clean(line);
    let first = *line.first()?;
    if first != b'?' && first != b':' {
        return None;
    }
    let rest = &line[1..];
    let lend = rest
        .iter()
        .position(|&b| b == b' ' || b == b'\t')
        .unwrap_or(rest.len());
    let label = &rest[..lend];
    if first == b':' {
        return Some(BranchLine::Target(label));
    }
    let after = &rest[lend..];
    let cstart = after
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(after.len());
    let cmd = &after[cstart..];
    if cmd.is_empty() {
        Some(BranchLine::Jump(label))
    } else {
        Some(BranchLine::Cond(label, cmd))
    }
}

/// Whether `line` runs a command (`|…` or `?LABEL COMMAND`).
pub(super) fn is_command(line: &[u8]) -> bool {
    let c = clean(line);
    c.first() == Some(&b'|') || matches!(parse_branch(line), Some(BranchLine::Cond(..)))
}

/// What qmail-local does with a program exit status (P5).
fn status_class(s: u8) -> u8 {
    match s {
        0 => 0,
        99 => 99,
        100 | 64 | 65 | 70 | 76 | 77 | 78 | 112 => 100,
        _ => 111,
    }
}

/// The split of a program into lines (P1, P2): a missing final newline is
/// added; every line is one `\n`-terminated piece.
pub fn lines(program: &[u8]) -> Vec<&[u8]> {
    let body = program.strip_suffix(b"\n").unwrap_or(program);
    body.split(|&b| b == b'\n').collect()
}

/// The reference model of the patched qmail-local instruction loop, from
/// spec/branch.md Part 1 and resolution.md P1–P9. `program` must not be
/// empty (qmail-local would use aliasempty). `statuses` are the exit
/// statuses of the command lines in file order (missing ones are 0).
pub fn reference_model(program: &[u8], forward_only: bool, mode: Mode, statuses: &[u8]) -> Trace {
    let ls = lines(program);
    let mut t = Trace::default();
    let mut fwd_only = forward_only;
    let (mut nf, mut nw, mut np) = (0u64, 0u64, 0u64);
    let mut forwards: Vec<Vec<u8>> = Vec::new();
    // status of each command line, by line index
    let mut status_of = vec![0u8; ls.len()];
    let mut c = 0;
    for (idx, l) in ls.iter().enumerate() {
        if is_command(l) {
            status_of[idx] = statuses.get(c).copied().unwrap_or(0);
            c += 1;
        }
    }
    let fail = |mut t: Trace, code: u8, msg: Option<&str>| {
        t.exit = code;
        t.message = msg.map(str::to_string);
        t
    };
    let mut resume: usize = 0; // first line index that is not skipped
    let mut idx = 0;
    while idx < ls.len() {
        let n = idx + 1;
        if idx < resume {
            t.steps.push((n, Step::Skip));
            idx += 1;
            continue;
        }
        let l = clean(ls[idx]);
        let mut jump_label: Option<&[u8]> = None;
        match l.first() {
            None => {
                if idx == 0 {
                    return fail(
                        t,
                        111,
                        Some("Uh-oh: first line of .qmail file is blank. (#4.2.1)"),
                    );
                }
                t.steps.push((n, Step::Blank));
            }
            Some(b'#') => t.steps.push((n, Step::Comment)),
            Some(b'.') | Some(b'/') => {
                nf += 1;
                if fwd_only {
                    return fail(
                        t,
                        111,
                        Some("Uh-oh: .qmail has file delivery but has x bit set. (#4.7.0)"),
                    );
                }
                if l.ends_with(b"/") {
                    t.steps.push((n, Step::Maildir(l.to_vec())));
                } else {
                    t.steps.push((n, Step::Mbox(l.to_vec())));
                }
            }
            Some(b'|') | Some(b'?') if is_command(l) => {
                np += 1;
                if fwd_only {
                    return fail(
                        t,
                        111,
                        Some("Uh-oh: .qmail has prog delivery but has x bit set. (#4.7.0)"),
                    );
                }
                let (cmd, label) = match parse_branch(l) {
                    Some(BranchLine::Cond(label, cmd)) => (cmd, Some(label)),
                    _ => (&l[1..], None),
                };
                let status = match mode {
                    Mode::Deliver => Some(status_of[idx]),
                    Mode::Print => None,
                };
                t.steps.push((
                    n,
                    Step::Program {
                        status,
                        cmd: cmd.to_vec(),
                    },
                ));
                if let Some(s) = status {
                    match (status_class(s), label) {
                        (0, _) => {}
                        (99, None) => {
                            t.steps.push((n, Step::Stop));
                            break;
                        }
                        (99, Some(label)) => jump_label = Some(label),
                        (code, _) => return fail(t, code, None),
                    }
                }
            }
            Some(b'?') | Some(b':') => match parse_branch(l) {
                Some(BranchLine::Jump(label)) => jump_label = Some(label),
                Some(BranchLine::Target(label)) => t.steps.push((n, Step::Target(label.to_vec()))),
                _ => unreachable!("a ? line without a command is a jump"),
            },
            Some(b'+') => {
                if l == b"+list" {
                    fwd_only = true;
                    t.steps.push((n, Step::List));
                } else {
                    t.steps.push((n, Step::Ignore));
                }
            }
            Some(_) => {
                let addr = l.strip_prefix(b"&").unwrap_or(l);
                nw += 1;
                t.steps.push((n, Step::Forward(addr.to_vec())));
                if mode == Mode::Deliver {
                    forwards.push(addr.to_vec());
                }
            }
        }
        if let Some(label) = jump_label {
            let target = (idx + 1..ls.len())
                .find(|&m| parse_branch(ls[m]) == Some(BranchLine::Target(label)));
            match target {
                Some(m) => {
                    resume = m + 1;
                    t.steps.push((
                        n,
                        Step::Jump {
                            next: Some(m + 2),
                            label: label.to_vec(),
                        },
                    ));
                }
                None => {
                    resume = ls.len();
                    t.steps.push((
                        n,
                        Step::Jump {
                            next: None,
                            label: label.to_vec(),
                        },
                    ));
                }
            }
        }
        idx += 1;
    }
    t.sent = forwards;
    t.did = Some((nf, nw, np));
    t.exit = 0;
    t
}
