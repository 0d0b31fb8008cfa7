//! Stages Q and P: the .qmail search (Q1–Q7) and the .qmail instruction
//! model (P1–P9) with the branch rules of branch.md Part 1.

use crate::bytes::{is_temp_errno, Bytes};
use crate::release::QmailRelease;
use crate::snapshot::{Content, Fs, OpenResult};
use serde::Serialize;
use std::sync::Arc;

/// L4: `safeext` = ASCII-fold(ext) with every `.` replaced by `:`.
pub fn safeext(ext: &[u8]) -> Vec<u8> {
    ext.iter()
        .map(|&c| match c {
            b'.' => b':',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// [`safeext`], borrowing `ext` when it is already safe (no `.`, no
/// upper case: most extensions), so that no copy is made.
pub fn safeext_cow(ext: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if ext.iter().any(|&c| c == b'.' || c.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(safeext(ext))
    } else {
        std::borrow::Cow::Borrowed(ext)
    }
}

/// One name the search probes (Q2–Q4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SearchName {
    /// The name relative to home (`.qmail-foo-default`).
    pub name: Bytes,
    /// Where the value DEFAULT gets if this name is the one found starts in
    /// `ext`: DEFAULT is `ext[default_at..]` (`None` for an exact name that
    /// does not end in `default`). An offset, not a copy, so that the names
    /// of an `ext` with many `-` take memory linear in its length.
    pub default_at: Option<usize>,
}

impl SearchName {
    /// DEFAULT for this name, given the `ext` the name was made from.
    pub fn default_value<'a>(&self, ext: &'a [u8]) -> Option<&'a [u8]> {
        self.default_at.and_then(|i| ext.get(i..))
    }
}

/// Linux's `PATH_MAX` (with the NUL): `open` of a name of this many bytes
/// or more fails with ENAMETOOLONG without looking at the file system.
pub const NAME_LIMIT: usize = 4096;

/// Q2–Q4: the names qmail-local probes, in order, leaving out every name
/// of [`NAME_LIMIT`] (4096) bytes or more.
///
/// qmail-local opens each name relative to home; for those long names the
/// open fails with ENAMETOOLONG, which Q1 treats as absent, so leaving them
/// out does not change the result. This keeps the list at most about 4096
/// names of at most 4096 bytes, whatever the number of `-` in `ext` (all
/// names would take memory quadratic in it); [`too_long_names`] counts the
/// names left out.
pub fn search_names(dash: &[u8], ext: &[u8]) -> Vec<SearchName> {
    let se = safeext_cow(ext);
    let se: &[u8] = &se;
    let mut v = Vec::with_capacity(2 + se.iter().filter(|&&c| c == b'-').count());
    let base = b".qmail".len() + dash.len();
    if base + se.len() < NAME_LIMIT {
        let default_at =
            (se.len() >= 7 && &se[se.len() - 7..] == b"default").then(|| ext.len() - 7);
        v.push(SearchName {
            name: Bytes::joined(&[b".qmail", dash, se]),
            default_at,
        });
    }
    // the default names are base + i + 7 bytes long
    let top = se.len().min(NAME_LIMIT.saturating_sub(base + 8));
    if base + 7 >= NAME_LIMIT {
        return v;
    }
    for i in (0..=top).rev() {
        if i == 0 || se[i - 1] == b'-' {
            v.push(SearchName {
                name: Bytes::joined(&[b".qmail", dash, &se[..i], b"default"]),
                default_at: Some(i),
            });
        }
    }
    v
}

/// How many names of Q2–Q4 [`search_names`] leaves out because they are
/// [`NAME_LIMIT`] bytes or longer (each would be ENAMETOOLONG: absent).
pub fn too_long_names(dash: &[u8], ext: &[u8]) -> usize {
    let base = b".qmail".len() + dash.len();
    let exact = usize::from(base + ext.len() >= NAME_LIMIT);
    // safeext keeps the length and the positions of '-'
    let long_defaults = (0..=ext.len())
        .filter(|&i| (i == 0 || ext[i - 1] == b'-') && base + i + 7 >= NAME_LIMIT)
        .count();
    exact + long_defaults
}

/// The result of Q1's probe of one name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Probe {
    /// open failed with a permanent errno other than EPERM/EACCES: absent.
    Missing {
        /// errno
        errno: i32,
    },
    /// Opened, but not a regular file: absent.
    NotRegular {
        /// st_mode of the target
        mode: u32,
    },
    /// open failed with a temporary errno, EPERM or EACCES (111), or fstat
    /// failed: the search stops with a deferral.
    Error {
        /// errno
        errno: i32,
    },
    /// A regular file with `mode & patrn` (111): the search stops.
    Writable {
        /// st_mode
        mode: u32,
    },
    /// Found.
    Found {
        /// st_mode of the target
        mode: u32,
        /// st_size
        size: u64,
        /// owner-execute bit (forward-only).
        forward_only: bool,
    },
}

/// The largest `.qmail` file read: 16 MiB ([`crate::fsread::CONTROL_MAX`]).
pub const DOTQMAIL_MAX: u64 = crate::fsread::CONTROL_MAX;

/// Q1: `open(path, O_RDONLY|O_NONBLOCK)` then `fstat`. With `read`, the
/// contents of a found file are returned too.
///
/// Decision (size): a regular file larger than [`DOTQMAIL_MAX`] is
/// `Probe::Error { errno: EFBIG }` (a deferral `Unable to open NAME: file
/// too big. (#4.3.0)`), whether or not it is read; so is a read error
/// (with its errno; qmail-local says `Out of memory. (#4.3.0)` for both).
/// A FIFO is never read: open does not block and fstat makes it
/// `NotRegular`, as in qmail-local.
pub fn probe_qmail(path: &[u8], patrn: u32, read: bool) -> (Probe, Option<Vec<u8>>) {
    let (probe, content) = probe_qmail_in(Fs::direct(), path, patrn, read);
    (probe, content.map(|c| c.to_vec()))
}

/// [`probe_qmail`] through `fs` (a snapshot or real system calls); the
/// contents are shared with the snapshot.
pub fn probe_qmail_in(fs: Fs, path: &[u8], patrn: u32, read: bool) -> (Probe, Option<Arc<[u8]>>) {
    let found = |m, s| matches!(classify(m, s, patrn), Probe::Found { .. });
    let (mode, size, content) = match fs.open(path, DOTQMAIL_MAX, |m, s| read && found(m, s)) {
        OpenResult::OpenFailed { errno: e } => {
            if is_temp_errno(e) || e == libc::EPERM || e == libc::EACCES {
                return (Probe::Error { errno: e }, None);
            }
            return (Probe::Missing { errno: e }, None);
        }
        OpenResult::FstatFailed { errno } => return (Probe::Error { errno }, None),
        OpenResult::Opened {
            mode,
            size,
            content,
        } => (mode, size, content),
    };
    let probe = classify(mode, size, patrn);
    if !(read && matches!(probe, Probe::Found { .. })) {
        return (probe, None);
    }
    match content {
        Content::Read(c) => (probe, Some(c)),
        Content::TooLarge => (Probe::Error { errno: libc::EFBIG }, None),
        Content::Failed { errno } => (Probe::Error { errno }, None),
        // read was asked for a found file: not reached
        Content::NotRead => (Probe::Error { errno: libc::EIO }, None),
    }
}

/// Q1 after a successful open and fstat: what the file's mode and size
/// make of it.
fn classify(mode: u32, size: u64, patrn: u32) -> Probe {
    if mode & libc::S_IFMT != libc::S_IFREG {
        Probe::NotRegular { mode }
    } else if mode & patrn != 0 {
        Probe::Writable { mode }
    } else if size > DOTQMAIL_MAX {
        Probe::Error { errno: libc::EFBIG }
    } else {
        Probe::Found {
            mode,
            size,
            forward_only: mode & 0o100 != 0,
        }
    }
}

/// A classified .qmail line (P3, with branch.md rule 1 when enabled).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LineKind {
    /// An empty line (an error if it is the first line).
    Blank,
    /// `#…`
    Comment,
    /// A file line not ending in `/`.
    Mbox {
        /// The path (the whole line).
        path: Bytes,
    },
    /// A file line ending in `/`.
    Maildir {
        /// The path (the whole line).
        path: Bytes,
    },
    /// `|command`
    Program {
        /// The command after `|`.
        command: Bytes,
    },
    /// `&addr` or any other line.
    Forward {
        /// The address.
        address: Bytes,
    },
    /// `+list`
    PlusList,
    /// Any other `+` line (ignored).
    PlusOther,
    /// `?LABEL [COMMAND]` (branch.md).
    Branch {
        /// The label.
        label: Bytes,
        /// The command; `None` for an unconditional jump.
        command: Option<Bytes>,
    },
    /// `:LABEL …` (branch.md): a jump target, otherwise a comment.
    Label {
        /// The label.
        label: Bytes,
    },
}

/// One line of instructions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instruction {
    /// 1-based line number.
    pub line_no: usize,
    /// The line after P2 stripping.
    pub text: Bytes,
    /// Its class.
    pub kind: LineKind,
}

fn label_and_rest(s: &[u8]) -> (&[u8], &[u8]) {
    let end = s
        .iter()
        .position(|&c| c == b' ' || c == b'\t')
        .unwrap_or(s.len());
    let mut rest = &s[end..];
    while let [b' ' | b'\t', r @ ..] = rest {
        rest = r;
    }
    (&s[..end], rest)
}

/// P1–P3: splits instructions into lines and classifies them. `branch`
/// enables the `?` and `:` line types of branch.md (without it they are
/// forwards, as in pristine qmail). An empty input is one blank line (P1
/// adds the missing `\n`); the caller substitutes aliasempty for an empty
/// file first, see [`effective_instructions`].
pub fn parse_instructions(bytes: &[u8], branch: bool) -> Vec<Instruction> {
    let mut out = Vec::new();
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    for (n, line) in body.split(|&c| c == b'\n').enumerate() {
        let mut k = line.len();
        while k > 0 && (line[k - 1] == b' ' || line[k - 1] == b'\t') {
            k -= 1;
        }
        let text = &line[..k];
        // qmail works on C strings from here on
        let cstr = &text[..text.iter().position(|&c| c == 0).unwrap_or(text.len())];
        let kind = match text.first() {
            None | Some(0) => LineKind::Blank,
            Some(b'#') => LineKind::Comment,
            Some(b'.' | b'/') => {
                if text[k - 1] == b'/' {
                    LineKind::Maildir {
                        path: Bytes::new(text),
                    }
                } else {
                    LineKind::Mbox {
                        path: Bytes::new(text),
                    }
                }
            }
            Some(b'|') => LineKind::Program {
                command: Bytes::new(&text[1..]),
            },
            Some(b'+') => {
                if cstr == b"+list" {
                    LineKind::PlusList
                } else {
                    LineKind::PlusOther
                }
            }
            Some(b'?') if branch => {
                let (label, cmd) = label_and_rest(&cstr[1..]);
                LineKind::Branch {
                    label: Bytes::new(label),
                    command: (!cmd.is_empty()).then(|| Bytes::new(cmd)),
                }
            }
            Some(b':') if branch => LineKind::Label {
                label: Bytes::new(label_and_rest(&cstr[1..]).0),
            },
            Some(b'&') => LineKind::Forward {
                address: Bytes::new(&text[1..]),
            },
            Some(_) => LineKind::Forward {
                address: Bytes::new(text),
            },
        };
        out.push(Instruction {
            line_no: n + 1,
            text: Bytes::new(text),
            kind,
        });
    }
    out
}

/// How a program (or `?` command) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "code", rename_all = "snake_case")]
pub enum ProgramExit {
    /// Exited with this status.
    Code(i32),
    /// Killed by a signal.
    Crash,
}

/// What a delivery did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeliveryKind {
    /// mbox delivery.
    Mbox {
        /// Path (up to any NUL).
        path: Bytes,
    },
    /// maildir delivery.
    Maildir {
        /// Path (up to any NUL).
        path: Bytes,
    },
    /// A `|` program or a `?` command.
    Program {
        /// The command.
        command: Bytes,
        /// How it ended.
        exit: ProgramExit,
        /// It came from a `?` line.
        branch: bool,
    },
    /// A forward (sent in one injection after the loop).
    Forward {
        /// The address.
        address: Bytes,
    },
}

/// One delivery made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// The line it came from.
    pub line_no: usize,
    /// What it did.
    pub kind: DeliveryKind,
}

/// The final status of running instructions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunStatus {
    /// Exit 0: `did F+W+P`.
    Ok {
        /// file deliveries counted
        files: usize,
        /// forwards counted
        forwards: usize,
        /// programs counted
        programs: usize,
    },
    /// Exit 100. `text` is qmail-local's text; for a program exit it is the
    /// program's own output, which this model does not know (empty).
    Hard {
        /// The text.
        text: Bytes,
    },
    /// Exit 111, with qmail-local's text (empty for a program exit status,
    /// see [`RunStatus::Hard`]).
    Soft {
        /// The text.
        text: Bytes,
    },
}

/// The result of [`run_instructions`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunResult {
    /// Deliveries made, in order: files and programs as they run (the last
    /// one is the one that failed, if the run failed there), then the
    /// forwards (one injection, file order) if the run got that far.
    pub deliveries: Vec<Delivery>,
    /// Lines skipped by a jump (branch.md rule 2/3) or after an exit 99.
    pub skipped: Vec<usize>,
    /// Forwards collected but never sent because a later line failed (P8).
    pub forwards_dropped: Vec<Delivery>,
    /// The final status.
    pub status: RunStatus,
}

const TXT_BLANK: &str = "Uh-oh: first line of .qmail file is blank. (#4.2.1)";
const TXT_FILE_X: &str = "Uh-oh: .qmail has file delivery but has x bit set. (#4.7.0)";
const TXT_PROG_X: &str = "Uh-oh: .qmail has prog delivery but has x bit set. (#4.7.0)";
const TXT_CRASH: &str = "Aack, child crashed. (#4.3.0)";

fn cstr(b: &[u8]) -> &[u8] {
    &b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())]
}

/// Finds the jump target of a `?LABEL` at index `i`: the index of the first
/// later `:LABEL` line, or `None` (skip everything, branch.md rule 3).
pub fn jump_target(instr: &[Instruction], i: usize, label: &[u8]) -> Option<usize> {
    instr[i + 1..]
        .iter()
        .position(|l| matches!(&l.kind, LineKind::Label { label: t } if t.as_bytes() == label))
        .map(|p| i + 1 + p)
}

/// P4–P8 with branch.md: runs instructions as qmail-local `-N` would, with
/// program results from `exit_of(command, line_no)` (mbox, maildir and
/// forward deliveries are assumed to succeed).
pub fn run_instructions(
    instr: &[Instruction],
    forward_only: bool,
    exit_of: impl FnMut(&[u8], usize) -> ProgramExit,
) -> RunResult {
    run_instructions_with(instr, forward_only, exit_of, |_, _| None, Ok(()))
}

/// The result of qmail-queue for the forwards (P7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueFailure {
    /// qmail-queue answered `D…` (permanent): qmail-local exits 100.
    Permanent(Vec<u8>),
    /// Any other failure: qmail-local exits 111.
    Temporary(Vec<u8>),
}

/// How qmail-queue ended for the forwards, as qmail.c `qmail_close` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QqStatus {
    /// It exited with `code`. `fd6` is what it wrote on descriptor 6
    /// (read only by notqmail-1.09, and only used for exit 82).
    Exit {
        /// The exit code.
        code: u8,
        /// The bytes written on descriptor 6.
        fd6: Vec<u8>,
    },
    /// It was killed by a signal.
    Crashed,
}

/// The `qmail_close` text for exit `code` (both releases).
fn qq_exit_text(code: u8) -> &'static [u8] {
    match code {
        11 | 115 => b"Denvelope address too long for qq (#5.1.3)",
        31 => b"Dmail server permanently rejected message (#5.3.0)",
        51 => b"Zqq out of memory (#4.3.0)",
        52 => b"Zqq timeout (#4.3.0)",
        53 => b"Zqq write error or disk full (#4.3.0)",
        0 | 54 => b"Zqq read error (#4.3.0)",
        55 => b"Zqq unable to read configuration (#4.3.0)",
        56 => b"Zqq trouble making network connection (#4.3.0)",
        61 => b"Zqq trouble in home directory (#4.3.0)",
        62..=66 => b"Zqq trouble creating files in queue (#4.3.0)",
        71 => b"Zmail server temporarily rejected message (#4.3.0)",
        72 => b"Zconnection to mail server timed out (#4.4.1)",
        73 => b"Zconnection to mail server rejected (#4.4.1)",
        74 => b"Zcommunication with mail server failed (#4.4.2)",
        81 | 91 => b"Zqq internal bug (#4.3.0)",
        120 => b"Zunable to exec qq (#4.3.0)",
        11..=40 => b"Dqq permanent problem (#5.3.0)",
        _ => b"Zqq temporary problem (#4.3.0)",
    }
}

/// qmail.c `qmail_close` and qmail-local.c `mailforward`: the P7 result
/// of the forwards' qmail-queue run for `release`. `write_error` is a
/// failed write of the message or envelope to qmail-queue (exit 0 then
/// reads as `qq read error`). An empty text is success; `D…` is
/// permanent, anything else temporary, and the text given to qmail-local
/// is without its first byte.
///
/// The releases differ on exit 82 only ([`crate::release`], difference
/// 2): notqmail-1.09 returns qmail-queue's descriptor-6 text when it has
/// more than 2 bytes (at most 255 are read; the text ends at its first
/// NUL, so a NUL first is success); netqmail-1.06 has no descriptor 6.
pub fn queue_result(
    release: QmailRelease,
    status: &QqStatus,
    write_error: bool,
) -> Result<(), QueueFailure> {
    let text: &[u8] = match status {
        QqStatus::Crashed => b"Zqq crashed (#4.3.0)",
        QqStatus::Exit { code: 0, .. } if !write_error => b"",
        QqStatus::Exit { code: 82, fd6 } if release.qq_custom_error() && fd6.len().min(255) > 2 => {
            let e = &fd6[..fd6.len().min(255)];
            &e[..e.iter().position(|&b| b == 0).unwrap_or(e.len())]
        }
        QqStatus::Exit { code, .. } => qq_exit_text(*code),
    };
    match text.split_first() {
        None => Ok(()),
        Some((b'D', rest)) => Err(QueueFailure::Permanent(rest.to_vec())),
        Some((_, rest)) => Err(QueueFailure::Temporary(rest.to_vec())),
    }
}

/// [`run_instructions`] with file and forward results too:
/// `file_error(path, line_no)` returns `Some(text)` when that mbox/maildir
/// delivery fails (P6: always soft, with qmail-local's text such as
/// `Unable to open PATH: ERR. (#4.2.1)` or `Temporary error on maildir
/// delivery. (#4.3.0)`); `queue` is the qmail-queue result for the forwards
/// (P7: `Unable to forward message: TEXT.`, hard for `D`, soft otherwise).
pub fn run_instructions_with(
    instr: &[Instruction],
    forward_only: bool,
    mut exit_of: impl FnMut(&[u8], usize) -> ProgramExit,
    mut file_error: impl FnMut(&[u8], usize) -> Option<Vec<u8>>,
    queue: Result<(), QueueFailure>,
) -> RunResult {
    let mut run = Run::new(forward_only);
    let mut i = 0;
    while i < instr.len() {
        let next = match run.line(instr, i, &mut exit_of, &mut file_error) {
            Ok(next) => next,
            Err(status) => return run.fail(status),
        };
        match next {
            Next::Line => i += 1,
            Next::Jump(Some(t)) => {
                run.skipped
                    .extend(instr[i + 1..t].iter().map(|l| l.line_no));
                // the target line itself is not skipped; it is a label,
                // which does nothing when run
                i = t;
            }
            Next::Jump(None) => {
                run.skipped.extend(instr[i + 1..].iter().map(|l| l.line_no));
                break;
            }
        }
    }
    run.send_forwards(queue)
}

/// Where a run goes after a line.
enum Next {
    /// The next line.
    Line,
    /// Past the `:LABEL` line at this index, or (`None`) past the end: an
    /// exit 99 (P4) or a jump without a target (branch.md rule 3).
    Jump(Option<usize>),
}

/// The state of [`run_instructions_with`] (P4–P8).
struct Run {
    /// Forward-only: the x bit, or a `+list` line seen (P3).
    fo: bool,
    /// Files and programs run so far.
    deliveries: Vec<Delivery>,
    /// Forwards collected for the one injection after the loop (P4).
    forwards: Vec<Delivery>,
    /// Lines skipped by jumps.
    skipped: Vec<usize>,
    /// The `did F+W+P` counts.
    n_files: usize,
    n_forwards: usize,
    n_programs: usize,
}

impl Run {
    fn new(forward_only: bool) -> Self {
        Run {
            fo: forward_only,
            deliveries: Vec::new(),
            forwards: Vec::new(),
            skipped: Vec::new(),
            n_files: 0,
            n_forwards: 0,
            n_programs: 0,
        }
    }

    /// P8: the first failing instruction ends the run; the forwards
    /// collected are dropped.
    fn fail(self, status: RunStatus) -> RunResult {
        RunResult {
            deliveries: self.deliveries,
            skipped: self.skipped,
            forwards_dropped: self.forwards,
            status,
        }
    }

    /// P3: one line by its kind. `Err` is the status that ends the run.
    fn line(
        &mut self,
        instr: &[Instruction],
        i: usize,
        exit_of: &mut impl FnMut(&[u8], usize) -> ProgramExit,
        file_error: &mut impl FnMut(&[u8], usize) -> Option<Vec<u8>>,
    ) -> Result<Next, RunStatus> {
        let l = &instr[i];
        match &l.kind {
            LineKind::Blank if i == 0 => return Err(soft(TXT_BLANK)),
            LineKind::Blank | LineKind::Comment | LineKind::PlusOther | LineKind::Label { .. } => {}
            LineKind::PlusList => self.fo = true,
            LineKind::Mbox { path } | LineKind::Maildir { path } => {
                self.file_line(l, path, file_error)?
            }
            LineKind::Program { command }
            | LineKind::Branch {
                command: Some(command),
                ..
            } => return self.program_line(instr, i, command, exit_of),
            LineKind::Branch {
                label,
                command: None,
            } => return Ok(Next::Jump(jump_target(instr, i, label))),
            LineKind::Forward { address } => self.forward_line(l, address),
        }
        Ok(Next::Line)
    }

    /// P3 file lines and P6: an mbox or maildir delivery, refused with the
    /// x bit; a failure is soft.
    fn file_line(
        &mut self,
        l: &Instruction,
        path: &[u8],
        file_error: &mut impl FnMut(&[u8], usize) -> Option<Vec<u8>>,
    ) -> Result<(), RunStatus> {
        self.n_files += 1;
        if self.fo {
            return Err(soft(TXT_FILE_X));
        }
        let path = Bytes::new(cstr(path));
        let err = file_error(&path, l.line_no);
        let kind = if matches!(l.kind, LineKind::Maildir { .. }) {
            DeliveryKind::Maildir { path }
        } else {
            DeliveryKind::Mbox { path }
        };
        self.deliveries.push(Delivery {
            line_no: l.line_no,
            kind,
        });
        match err {
            Some(text) => Err(RunStatus::Soft { text: Bytes(text) }),
            None => Ok(()),
        }
    }

    /// P3 program lines, P5 and branch.md: runs the program (refused with
    /// the x bit) and maps its exit; 99 jumps to the label of a `?` line,
    /// or stops reading lines.
    fn program_line(
        &mut self,
        instr: &[Instruction],
        i: usize,
        command: &[u8],
        exit_of: &mut impl FnMut(&[u8], usize) -> ProgramExit,
    ) -> Result<Next, RunStatus> {
        let l = &instr[i];
        self.n_programs += 1;
        if self.fo {
            return Err(soft(TXT_PROG_X));
        }
        let command = cstr(command);
        let exit = exit_of(command, l.line_no);
        self.deliveries.push(Delivery {
            line_no: l.line_no,
            kind: DeliveryKind::Program {
                command: Bytes::new(command),
                exit,
                branch: matches!(l.kind, LineKind::Branch { .. }),
            },
        });
        match exit {
            ProgramExit::Crash => Err(soft(TXT_CRASH)),
            ProgramExit::Code(0) => Ok(Next::Line),
            ProgramExit::Code(99) => Ok(Next::Jump(match &l.kind {
                LineKind::Branch { label, .. } => jump_target(instr, i, label),
                _ => None,
            })),
            ProgramExit::Code(100 | 64 | 65 | 70 | 76 | 77 | 78 | 112) => Err(RunStatus::Hard {
                text: Bytes::default(),
            }),
            ProgramExit::Code(_) => Err(RunStatus::Soft {
                text: Bytes::default(),
            }),
        }
    }

    /// P3 forward lines and P4: collected, sent after the loop.
    fn forward_line(&mut self, l: &Instruction, address: &[u8]) {
        self.n_forwards += 1;
        self.forwards.push(Delivery {
            line_no: l.line_no,
            kind: DeliveryKind::Forward {
                address: Bytes::new(cstr(address)),
            },
        });
    }

    /// P4 and P7: the forwards go in one qmail-queue injection; its failure
    /// is hard for `D`, soft otherwise. Then `did F+W+P`.
    fn send_forwards(mut self, queue: Result<(), QueueFailure>) -> RunResult {
        if !self.forwards.is_empty() {
            if let Err(q) = queue {
                let (hard, t) = match q {
                    QueueFailure::Permanent(t) => (true, t),
                    QueueFailure::Temporary(t) => (false, t),
                };
                let text = Bytes([b"Unable to forward message: ".as_slice(), &t, b"."].concat());
                let status = if hard {
                    RunStatus::Hard { text }
                } else {
                    RunStatus::Soft { text }
                };
                return self.fail(status);
            }
        }
        self.deliveries.append(&mut self.forwards);
        RunResult {
            deliveries: self.deliveries,
            skipped: self.skipped,
            forwards_dropped: Vec::new(),
            status: RunStatus::Ok {
                files: self.n_files,
                forwards: self.n_forwards,
                programs: self.n_programs,
            },
        }
    }
}

fn soft(t: &str) -> RunStatus {
    RunStatus::Soft {
        text: Bytes::from(t),
    }
}

/// The `qmail-local -n` listing (P9 and branch.md rule 6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listing {
    /// The printed lines (`program CMD`, `forward ADDR`, `mbox PATH`,
    /// `maildir PATH`, and finally `did F+W+P` when no error occurred).
    pub lines: Vec<Bytes>,
    /// The soft error that stopped the listing (exit 111), if any.
    pub error: Option<Bytes>,
    /// Lines skipped by unconditional jumps.
    pub skipped: Vec<usize>,
}

/// P9 + branch.md rule 6: what `qmail-local -n` prints for these
/// instructions.
pub fn listing(instr: &[Instruction], forward_only: bool) -> Listing {
    let mut fo = forward_only;
    let mut lines = Vec::new();
    let mut skipped = Vec::new();
    let (mut nf, mut nw, mut np) = (0, 0, 0);
    let say = |t: &str, b: &[u8]| Bytes::joined(&[t.as_bytes(), b]);
    let err = |lines, skipped, t: &str| Listing {
        lines,
        error: Some(Bytes::from(t)),
        skipped,
    };
    let mut i = 0;
    while i < instr.len() {
        let l = &instr[i];
        match &l.kind {
            LineKind::Blank if i == 0 => return err(lines, skipped, TXT_BLANK),
            LineKind::Blank | LineKind::Comment | LineKind::PlusOther | LineKind::Label { .. } => {}
            LineKind::PlusList => fo = true,
            LineKind::Mbox { path } => {
                nf += 1;
                if fo {
                    return err(lines, skipped, TXT_FILE_X);
                }
                lines.push(say("mbox ", path));
            }
            LineKind::Maildir { path } => {
                nf += 1;
                if fo {
                    return err(lines, skipped, TXT_FILE_X);
                }
                lines.push(say("maildir ", path));
            }
            LineKind::Program { command }
            | LineKind::Branch {
                command: Some(command),
                ..
            } => {
                np += 1;
                if fo {
                    return err(lines, skipped, TXT_PROG_X);
                }
                lines.push(say("program ", command));
            }
            LineKind::Branch {
                label,
                command: None,
            } => match jump_target(instr, i, label) {
                Some(t) => {
                    skipped.extend(instr[i + 1..t].iter().map(|l| l.line_no));
                    // resume at the label line, which lists nothing
                    i = t;
                    continue;
                }
                None => {
                    skipped.extend(instr[i + 1..].iter().map(|l| l.line_no));
                    break;
                }
            },
            LineKind::Forward { address } => {
                nw += 1;
                lines.push(say("forward ", address));
            }
        }
        i += 1;
    }
    let mut did = crate::bytes::buffer(16);
    // writing into a Vec cannot fail
    let _ = std::io::Write::write_fmt(&mut did, format_args!("did {nf}+{nw}+{np}"));
    lines.push(Bytes(did));
    Listing {
        lines,
        error: None,
        skipped,
    }
}

/// P1: the instructions qmail-local uses: the file's bytes, or aliasempty
/// (clearing forward-only) when there is no file or it is empty.
/// Returns (instructions, forward_only).
pub fn effective_instructions(
    file: Option<&[u8]>,
    forward_only: bool,
    aliasempty: &[u8],
    branch: bool,
) -> (Vec<Instruction>, bool) {
    match file {
        Some(b) if !b.is_empty() => (parse_instructions(b, branch), forward_only),
        _ => (parse_instructions(aliasempty, branch), false),
    }
}
