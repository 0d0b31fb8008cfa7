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
    let status_of = command_statuses(&ls, statuses);
    let mut run = Run {
        t: Trace::default(),
        mode,
        fwd_only: forward_only,
        did: (0, 0, 0),
        forwards: Vec::new(),
    };
    let mut resume: usize = 0; // first line index that is not skipped
    let mut idx = 0;
    while idx < ls.len() {
        let n = idx + 1;
        if idx < resume {
            run.t.steps.push((n, Step::Skip));
            idx += 1;
            continue;
        }
        match run.line(idx, clean(ls[idx]), status_of[idx]) {
            Flow::Next => {}
            Flow::Jump(label) => resume = run.jump(&ls, idx, label),
            Flow::Stop => break,
            Flow::Fail(code, msg) => {
                let mut t = run.t;
                t.exit = code;
                t.message = msg.map(str::to_string);
                return t;
            }
        }
        idx += 1;
    }
    let mut t = run.t;
    t.sent = run.forwards;
    t.did = Some(run.did);
    t.exit = 0;
    t
}

/// The status of each command line, by line index (P5: the commands get
/// `statuses` in file order, missing ones are 0).
fn command_statuses(ls: &[&[u8]], statuses: &[u8]) -> Vec<u8> {
    let mut status_of = vec![0u8; ls.len()];
    let mut c = 0;
    for (idx, l) in ls.iter().enumerate() {
        if is_command(l) {
            status_of[idx] = statuses.get(c).copied().unwrap_or(0);
            c += 1;
        }
    }
    status_of
}

/// What the loop does after a line.
enum Flow<'a> {
    /// Go on with the next line.
    Next,
    /// Jump to the `:LABEL` line after this one.
    Jump(&'a [u8]),
    /// Read no further lines (`|` exit 99), a success.
    Stop,
    /// Exit with this status and qmail-local's own text, if any.
    Fail(u8, Option<&'static str>),
}

/// The state of one run of the model.
struct Run {
    t: Trace,
    mode: Mode,
    /// Forward-only (the x bit, or after `+list`).
    fwd_only: bool,
    /// Files, forwards, programs so far.
    did: (u64, u64, u64),
    /// Forwards collected (deliver mode), sent at the end.
    forwards: Vec<Vec<u8>>,
}

impl Run {
    /// One cleaned line `l` at index `idx` whose command (if any) exits
    /// with `status`.
    fn line<'a>(&mut self, idx: usize, l: &'a [u8], status: u8) -> Flow<'a> {
        let n = idx + 1;
        match l.first() {
            None => {
                if idx == 0 {
                    return Flow::Fail(
                        111,
                        Some("Uh-oh: first line of .qmail file is blank. (#4.2.1)"),
                    );
                }
                self.t.steps.push((n, Step::Blank));
            }
            Some(b'#') => self.t.steps.push((n, Step::Comment)),
            Some(b'.') | Some(b'/') => {
                self.did.0 += 1;
                if self.fwd_only {
                    return Flow::Fail(
                        111,
                        Some("Uh-oh: .qmail has file delivery but has x bit set. (#4.7.0)"),
                    );
                }
                if l.ends_with(b"/") {
                    self.t.steps.push((n, Step::Maildir(l.to_vec())));
                } else {
                    self.t.steps.push((n, Step::Mbox(l.to_vec())));
                }
            }
            Some(b'|') | Some(b'?') if is_command(l) => return self.program(n, l, status),
            Some(b'?') | Some(b':') => match parse_branch(l) {
                Some(BranchLine::Jump(label)) => return Flow::Jump(label),
                Some(BranchLine::Target(label)) => {
                    self.t.steps.push((n, Step::Target(label.to_vec())))
                }
                _ => unreachable!("a ? line without a command is a jump"),
            },
            Some(b'+') => {
                if l == b"+list" {
                    self.fwd_only = true;
                    self.t.steps.push((n, Step::List));
                } else {
                    self.t.steps.push((n, Step::Ignore));
                }
            }
            Some(_) => {
                let addr = l.strip_prefix(b"&").unwrap_or(l);
                self.did.1 += 1;
                self.t.steps.push((n, Step::Forward(addr.to_vec())));
                if self.mode == Mode::Deliver {
                    self.forwards.push(addr.to_vec());
                }
            }
        }
        Flow::Next
    }

    /// The command line `l` (line `n`: `|COMMAND` or `?LABEL COMMAND`).
    fn program<'a>(&mut self, n: usize, l: &'a [u8], status: u8) -> Flow<'a> {
        self.did.2 += 1;
        if self.fwd_only {
            return Flow::Fail(
                111,
                Some("Uh-oh: .qmail has prog delivery but has x bit set. (#4.7.0)"),
            );
        }
        let (cmd, label) = match parse_branch(l) {
            Some(BranchLine::Cond(label, cmd)) => (cmd, Some(label)),
            _ => (&l[1..], None),
        };
        let status = match self.mode {
            Mode::Deliver => Some(status),
            Mode::Print => None,
        };
        self.t.steps.push((
            n,
            Step::Program {
                status,
                cmd: cmd.to_vec(),
            },
        ));
        let Some(s) = status else {
            return Flow::Next;
        };
        match (status_class(s), label) {
            (0, _) => Flow::Next,
            (99, None) => {
                self.t.steps.push((n, Step::Stop));
                Flow::Stop
            }
            (99, Some(label)) => Flow::Jump(label),
            (code, _) => Flow::Fail(code, None),
        }
    }

    /// The jump to `label` from line index `idx`: records it and returns
    /// the first line index not skipped (after the `:LABEL` line, or the
    /// end when there is none further down).
    fn jump(&mut self, ls: &[&[u8]], idx: usize, label: &[u8]) -> usize {
        let n = idx + 1;
        let target =
            (idx + 1..ls.len()).find(|&m| parse_branch(ls[m]) == Some(BranchLine::Target(label)));
        let (resume, next) = match target {
            Some(m) => (m + 1, Some(m + 2)),
            None => (ls.len(), None),
        };
        self.t.steps.push((
            n,
            Step::Jump {
                next,
                label: label.to_vec(),
            },
        ));
        resume
    }
}
