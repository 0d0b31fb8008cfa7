//! Pair R-B: oracle B's [`Trace`] against the Rust resolver's `.qmail`
//! model (oracle R's `.qmail` part), both seen as a [`View`].

use super::reference_model::{is_command, lines};
use super::{Mode, Step, Trace};

/// What both a [`Trace`] and the resolver's `.qmail` model
/// (`qmail_resolver::dotqmail`) say about a run, in one comparable form.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct View {
    /// Deliveries in order: `(line, kind, text, exit status)` with kind
    /// `mbox`, `maildir`, `program` or `forward`; forwards last, and only
    /// when the run succeeded (deliver mode).
    pub deliveries: Vec<(usize, &'static str, Vec<u8>, Option<i32>)>,
    /// Lines passed over by a jump (not counting the `:LABEL` line the jump
    /// lands after) or after a `|` exit 99.
    pub skipped: Vec<usize>,
    /// Forwards collected but not sent because a later line failed.
    pub dropped: Vec<(usize, Vec<u8>)>,
    /// The `-n` listing, `did` line included.
    pub listing: Vec<Vec<u8>>,
    /// Exit status.
    pub exit: u8,
    /// qmail-local's own error text (empty if none).
    pub message: Vec<u8>,
    /// `did F+W+P` in deliver mode.
    pub did: Option<(u64, u64, u64)>,
}

/// The [`View`] of a trace of `program`.
pub fn trace_view(t: &Trace, program: &[u8], mode: Mode) -> View {
    let nlines = lines(program).len();
    let mut v = View {
        exit: t.exit,
        message: t.message.clone().unwrap_or_default().into_bytes(),
        ..View::default()
    };
    let targets: Vec<usize> = t
        .steps
        .iter()
        .filter_map(|(_, s)| match s {
            Step::Jump { next: Some(n), .. } => Some(n - 1),
            _ => None,
        })
        .collect();
    let mut forwards = Vec::new();
    for (n, s) in &t.steps {
        let say = |w: &str, b: &[u8]| {
            let mut x = w.as_bytes().to_vec();
            x.extend_from_slice(b);
            x
        };
        match (mode, s) {
            (_, Step::Skip) if !targets.contains(n) => v.skipped.push(*n),
            (_, Step::Stop) => v.skipped.extend(n + 1..=nlines),
            (Mode::Deliver, Step::Mbox(p)) => v.deliveries.push((*n, "mbox", p.clone(), None)),
            (Mode::Deliver, Step::Maildir(p)) => {
                v.deliveries.push((*n, "maildir", p.clone(), None))
            }
            (Mode::Deliver, Step::Program { status, cmd }) => {
                v.deliveries
                    .push((*n, "program", cmd.clone(), status.map(i32::from)))
            }
            (Mode::Deliver, Step::Forward(a)) => forwards.push((*n, a.clone())),
            (Mode::Print, Step::Mbox(p)) => v.listing.push(say("mbox ", p)),
            (Mode::Print, Step::Maildir(p)) => v.listing.push(say("maildir ", p)),
            (Mode::Print, Step::Program { cmd, .. }) => v.listing.push(say("program ", cmd)),
            (Mode::Print, Step::Forward(a)) => v.listing.push(say("forward ", a)),
            _ => {}
        }
    }
    match mode {
        Mode::Deliver => {
            if t.exit == 0 {
                v.deliveries
                    .extend(forwards.into_iter().map(|(n, a)| (n, "forward", a, None)));
                v.did = t.did;
            } else {
                v.dropped = forwards;
            }
        }
        Mode::Print => {
            if let Some((f, w, p)) = t.did {
                v.listing.push(format!("did {f}+{w}+{p}").into_bytes());
            }
        }
    }
    v
}

/// The [`View`] the resolver's `.qmail` model gives for `program` with
/// these command exit statuses (in file order of the command lines).
pub fn resolver_view(program: &[u8], forward_only: bool, mode: Mode, statuses: &[u8]) -> View {
    use qmail_resolver::dotqmail::{
        listing, parse_instructions, run_instructions, DeliveryKind, ProgramExit, RunStatus,
    };
    let instr = parse_instructions(program, true);
    let mut v = View::default();
    match mode {
        Mode::Print => {
            let l = listing(&instr, forward_only);
            v.listing = l.lines.iter().map(|b| b.as_bytes().to_vec()).collect();
            v.skipped = l.skipped;
            if let Some(e) = l.error {
                v.exit = 111;
                v.message = e.as_bytes().to_vec();
            }
        }
        Mode::Deliver => {
            // the status of each command line, by line number
            let mut by_line = std::collections::HashMap::new();
            let mut c = 0;
            for (i, l) in lines(program).iter().enumerate() {
                if is_command(l) {
                    by_line.insert(i + 1, statuses.get(c).copied().unwrap_or(0));
                    c += 1;
                }
            }
            let r = run_instructions(&instr, forward_only, |_, line| {
                ProgramExit::Code(i32::from(by_line.get(&line).copied().unwrap_or(0)))
            });
            let conv = |d: &qmail_resolver::dotqmail::Delivery| match &d.kind {
                DeliveryKind::Mbox { path } => (d.line_no, "mbox", path.as_bytes().to_vec(), None),
                DeliveryKind::Maildir { path } => {
                    (d.line_no, "maildir", path.as_bytes().to_vec(), None)
                }
                DeliveryKind::Program { command, exit, .. } => (
                    d.line_no,
                    "program",
                    command.as_bytes().to_vec(),
                    match exit {
                        ProgramExit::Code(c) => Some(*c),
                        ProgramExit::Crash => Some(-1),
                    },
                ),
                DeliveryKind::Forward { address } => {
                    (d.line_no, "forward", address.as_bytes().to_vec(), None)
                }
            };
            v.deliveries = r.deliveries.iter().map(conv).collect();
            v.dropped = r
                .forwards_dropped
                .iter()
                .map(conv)
                .map(|(n, _, a, _)| (n, a))
                .collect();
            v.skipped = r.skipped;
            match r.status {
                RunStatus::Ok {
                    files,
                    forwards,
                    programs,
                } => v.did = Some((files as u64, forwards as u64, programs as u64)),
                RunStatus::Hard { text } => {
                    v.exit = 100;
                    v.message = text.as_bytes().to_vec();
                }
                RunStatus::Soft { text } => {
                    v.exit = 111;
                    v.message = text.as_bytes().to_vec();
                }
            }
        }
    }
    v
}

/// Compares oracle B's trace `b` of `program` with the resolver's `.qmail`
/// model (pair R-B) through [`View`]s: `Ok(())` when they agree, else
/// `Err` with B's view and the resolver's view.
pub fn compare_resolver(
    program: &[u8],
    forward_only: bool,
    mode: Mode,
    statuses: &[u8],
    b: &Trace,
) -> Result<(), Box<(View, View)>> {
    let got = trace_view(b, program, mode);
    let want = resolver_view(program, forward_only, mode, statuses);
    if got == want {
        Ok(())
    } else {
        Err(Box::new((got, want)))
    }
}
