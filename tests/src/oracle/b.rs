//! Oracle B: the branch C core (`patches/c/qbranch.c`) driven by
//! `tests/c/qbranch-driver.c`, which runs qmail-local's instruction loop
//! on a `.qmail` program with given command exit statuses and prints every
//! decision (spec/branch.md, spec/differential.md).
//!
//! Also here, because oracle L and the tests share them:
//! * [`Trace`], the decisions in a form every model can produce;
//! * [`reference_model`], a small model written straight from
//!   spec/branch.md Part 1 and resolution.md P1–P9, independent of the C;
//! * [`generate_program`], the seeded `.qmail` program generator.

use std::path::{Path, PathBuf};
use std::process::Command;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::cc::{self, CcError, Sanitize};

/// How qmail-local is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// `qmail-local -N`: deliver, running commands.
    Deliver,
    /// `qmail-local -n`: only print the instructions.
    Print,
}

/// One decision about one line of a `.qmail` program.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Step {
    /// An empty line (not the first).
    Blank,
    /// A `#` line.
    Comment,
    /// A line jumped over.
    Skip,
    /// A `:LABEL` line reached normally (a comment).
    Target(Vec<u8>),
    /// The `+list` line: forward-only from here on.
    List,
    /// Any other `+` line (ignored).
    Ignore,
    /// An mbox delivery to this path.
    Mbox(Vec<u8>),
    /// A maildir delivery to this path.
    Maildir(Vec<u8>),
    /// A forward to this address (collected; sent at the end).
    Forward(Vec<u8>),
    /// A command (`|` or `?` with a command); `status` is `None` with `-n`.
    Program {
        /// The exit status it was given (deliver mode).
        status: Option<u8>,
        /// The command text.
        cmd: Vec<u8>,
    },
    /// A `|` command exited 99: no further lines are read.
    Stop,
    /// A jump: processing goes on at line `next` (1-based), or nowhere
    /// (`None`) when no later `:LABEL` line exists.
    Jump {
        /// The line where processing goes on.
        next: Option<usize>,
        /// The label.
        label: Vec<u8>,
    },
}

/// Everything a model decides for one run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Trace {
    /// `(line number, step)` in order.
    pub steps: Vec<(usize, Step)>,
    /// Forwards sent in the one final injection (deliver mode, success).
    pub sent: Vec<Vec<u8>>,
    /// `did F+W+P` (files, forwards, programs) on success.
    pub did: Option<(u64, u64, u64)>,
    /// qmail-local's exit status: 0, 100 or 111.
    pub exit: u8,
    /// qmail-local's own error text, if it printed one.
    pub message: Option<String>,
}

impl Trace {
    /// The trace as text, one step a line (for failure messages).
    pub fn render(&self) -> String {
        let mut s = String::new();
        for (n, st) in &self.steps {
            s.push_str(&format!("{n} {st:?}\n"));
        }
        for a in &self.sent {
            s.push_str(&format!("sent {}\n", String::from_utf8_lossy(a)));
        }
        if let Some((f, w, p)) = self.did {
            s.push_str(&format!("did {f}+{w}+{p}\n"));
        }
        s.push_str(&format!("exit {} {:?}\n", self.exit, self.message));
        s
    }
}

/// Why the driver could not be built or run, or printed nonsense.
#[derive(Debug, thiserror::Error)]
pub enum BError {
    /// Compiling failed.
    #[error(transparent)]
    Cc(#[from] CcError),
    /// Running failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// The driver failed or printed something unexpected.
    #[error("qbranch-driver: {0}")]
    Driver(String),
}

/// The compiled driver.
#[derive(Debug, Clone)]
pub struct Driver {
    exe: PathBuf,
}

impl Driver {
    /// Compile the driver and the core into `dir/qbranch-driver[-asan]`
    /// with the default C compiler.
    pub fn build(dir: &Path, sanitize: Sanitize) -> Result<Driver, BError> {
        Self::build_with(&cc::default_cc(), dir, sanitize)
    }

    /// Compile with the C compiler `cc`.
    pub fn build_with(cc: &str, dir: &Path, sanitize: Sanitize) -> Result<Driver, BError> {
        std::fs::create_dir_all(dir).map_err(|source| BError::Io {
            what: format!("create {}", dir.display()),
            source,
        })?;
        let name = match sanitize {
            Sanitize::None => format!("qbranch-driver-{}", sanitize_name(cc)),
            Sanitize::AddressUndefined => format!("qbranch-driver-{}-asan", sanitize_name(cc)),
        };
        let exe = dir.join(name);
        let sources = [
            cc::driver_dir().join("qbranch-driver.c"),
            cc::core_dir().join("qbranch.c"),
        ];
        cc::compile(cc, &sources, &exe, sanitize)?;
        Ok(Driver { exe })
    }

    /// Compile the driver and the core once per content (sources,
    /// compiler, sanitizer) into the shared build cache
    /// ([`cc::cached_artifact`]), safe for concurrent runs.
    pub fn build_cached(sanitize: Sanitize) -> Result<Driver, BError> {
        let cc = cc::default_cc();
        let sources = [
            cc::driver_dir().join("qbranch-driver.c"),
            cc::core_dir().join("qbranch.c"),
        ];
        let mut data = Vec::new();
        for f in sources.iter().chain([&cc::core_dir().join("qbranch.h")]) {
            data.push(std::fs::read(f).map_err(|source| BError::Io {
                what: format!("read {}", f.display()),
                source,
            })?);
        }
        let tag = format!("{sanitize:?}");
        let mut parts: Vec<&[u8]> = vec![cc.as_bytes(), tag.as_bytes()];
        parts.extend(data.iter().map(Vec::as_slice));
        let name = format!("qbranch-driver-{}", cc::fnv_key(&parts));
        let exe = cc::cached_artifact(&name, |tmp| cc::compile(&cc, &sources, tmp, sanitize))?;
        Ok(Driver { exe })
    }

    /// The executable.
    pub fn path(&self) -> &Path {
        &self.exe
    }

    /// The shell command that re-runs the driver on the program in `file`
    /// as [`Driver::run`] does (for failure messages).
    pub fn rerun_command(
        &self,
        file: &Path,
        forward_only: bool,
        mode: Mode,
        statuses: &[u8],
    ) -> String {
        format!(
            "{}{}{} {}{}",
            self.exe.display(),
            if mode == Mode::Print { " -n" } else { "" },
            if forward_only { " -x" } else { "" },
            file.display(),
            statuses.iter().map(|s| format!(" {s}")).collect::<String>()
        )
    }

    /// Run the driver on `program` (written to `file`) and parse its
    /// output. `statuses` are the exit statuses of the command lines in
    /// file order.
    pub fn run(
        &self,
        file: &Path,
        program: &[u8],
        forward_only: bool,
        mode: Mode,
        statuses: &[u8],
    ) -> Result<Trace, BError> {
        std::fs::write(file, program).map_err(|source| BError::Io {
            what: format!("write {}", file.display()),
            source,
        })?;
        let mut cmd = Command::new(&self.exe);
        if mode == Mode::Print {
            cmd.arg("-n");
        }
        if forward_only {
            cmd.arg("-x");
        }
        cmd.arg(file);
        for s in statuses {
            cmd.arg(s.to_string());
        }
        let out = cmd.output().map_err(|source| BError::Io {
            what: format!("run {}", self.exe.display()),
            source,
        })?;
        if !out.status.success() || !out.stderr.is_empty() {
            return Err(BError::Driver(format!(
                "{} on {}: {}\n{}",
                out.status,
                file.display(),
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            )));
        }
        parse_output(&out.stdout)
    }
}

fn sanitize_name(cc: &str) -> String {
    cc.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn unescape(s: &[u8]) -> Result<Vec<u8>, BError> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' {
            let hex = s
                .get(i + 2..i + 4)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .filter(|_| s.get(i + 1) == Some(&b'x'))
                .ok_or_else(|| BError::Driver(format!("bad escape in {:?}", s)))?;
            out.push(hex);
            i += 4;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn split1(s: &[u8]) -> (&[u8], &[u8]) {
    match s.iter().position(|&b| b == b' ') {
        Some(p) => (&s[..p], &s[p + 1..]),
        None => (s, &[]),
    }
}

/// Parse the driver's output (see the comment at the top of
/// `qbranch-driver.c`).
pub fn parse_output(out: &[u8]) -> Result<Trace, BError> {
    let bad = |l: &[u8]| BError::Driver(format!("bad line {:?}", String::from_utf8_lossy(l)));
    let num = |b: &[u8]| -> Option<u64> { std::str::from_utf8(b).ok()?.parse().ok() };
    let mut t = Trace::default();
    let mut exited = false;
    for line in out.split(|&b| b == b'\n') {
        if line.is_empty() {
            continue;
        }
        if exited {
            return Err(bad(line));
        }
        let (head, rest) = split1(line);
        match head {
            b"exit" => {
                let (code, msg) = split1(rest);
                t.exit = num(code)
                    .and_then(|c| u8::try_from(c).ok())
                    .ok_or_else(|| bad(line))?;
                if !msg.is_empty() {
                    t.message = Some(String::from_utf8_lossy(msg).into_owned());
                }
                exited = true;
            }
            b"sent" => t.sent.push(unescape(rest)?),
            b"did" => {
                let parts: Vec<_> = rest.split(|&b| b == b'+').collect();
                if parts.len() != 3 {
                    return Err(bad(line));
                }
                let f = num(parts[0]).ok_or_else(|| bad(line))?;
                let w = num(parts[1]).ok_or_else(|| bad(line))?;
                let p = num(parts[2]).ok_or_else(|| bad(line))?;
                t.did = Some((f, w, p));
            }
            _ => {
                let n = num(head).ok_or_else(|| bad(line))? as usize;
                let (what, arg) = split1(rest);
                let step = match what {
                    b"blank" => Step::Blank,
                    b"comment" => Step::Comment,
                    b"skip" => Step::Skip,
                    b"list" => Step::List,
                    b"ignore" => Step::Ignore,
                    b"stop" => Step::Stop,
                    b"target" => Step::Target(unescape(arg)?),
                    b"mbox" => Step::Mbox(unescape(arg)?),
                    b"maildir" => Step::Maildir(unescape(arg)?),
                    b"forward" => Step::Forward(unescape(arg)?),
                    b"program" => {
                        let (st, cmd) = split1(arg);
                        let status = if st == b"-" {
                            None
                        } else {
                            Some(
                                num(st)
                                    .and_then(|c| u8::try_from(c).ok())
                                    .ok_or_else(|| bad(line))?,
                            )
                        };
                        Step::Program {
                            status,
                            cmd: unescape(cmd)?,
                        }
                    }
                    b"jump" => {
                        let (next, label) = split1(arg);
                        let next = if next == b"none" {
                            None
                        } else {
                            Some(num(next).ok_or_else(|| bad(line))? as usize)
                        };
                        Step::Jump {
                            next,
                            label: unescape(label)?,
                        }
                    }
                    _ => return Err(bad(line)),
                };
                t.steps.push((n, step));
            }
        }
    }
    if !exited {
        return Err(BError::Driver("no exit line".into()));
    }
    Ok(t)
}

// ---------------------------------------------------------------------
// The reference model, written from the spec (not from the C).
// ---------------------------------------------------------------------

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

fn is_command(line: &[u8]) -> bool {
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

// ---------------------------------------------------------------------
// The seeded program generator.
// ---------------------------------------------------------------------

/// A generated `.qmail` program and the facts needed to run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenProgram {
    /// The `.qmail` file contents.
    pub bytes: Vec<u8>,
    /// The exit status of each command line, in file order (the commands
    /// themselves also `exit` with these).
    pub statuses: Vec<u8>,
    /// Whether the file gets the x bit (forward-only mode).
    pub forward_only: bool,
    /// The mbox paths the program names (relative to home).
    pub mboxes: Vec<String>,
    /// The maildir paths the program names, without the final `/`.
    pub maildirs: Vec<String>,
}

/// Options for [`generate_program`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenOptions {
    /// Produce `?` and `:` lines (otherwise only classic qmail lines).
    pub branches: bool,
    /// The most lines a program gets (at least 1).
    pub max_lines: usize,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            branches: true,
            max_lines: 12,
        }
    }
}

/// The shell command generated programs run: it appends
/// `P<id> <message size> <RECIPIENT>` to `./markers` in the home
/// directory, then exits with `status`.
pub fn marker_command(id: usize, status: u8) -> String {
    format!("echo P{id} `wc -c` \"$RECIPIENT\" >>markers; exit {status}")
}

const LABELS: [&str; 5] = ["", "a", "b", "A", "ab"];
const COND_STATUS: [u8; 10] = [0, 0, 0, 99, 99, 99, 99, 100, 111, 64];
const PIPE_STATUS: [u8; 8] = [0, 0, 0, 0, 0, 99, 100, 111];

/// Generate the program for `seed`: the same seed gives the same program.
pub fn generate_program(seed: u64, opts: GenOptions) -> GenProgram {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let nlines = rng.gen_range(1..=opts.max_lines.max(1));
    let mut out: Vec<u8> = Vec::new();
    let mut statuses = Vec::new();
    let mut mboxes = Vec::new();
    let mut maildirs = Vec::new();
    let forward_only = rng.gen_bool(0.08);
    // a program uses one or two labels, and now and then any other (a
    // near miss such as `A` for `a`, or a label that is never defined)
    let own = [
        LABELS[rng.gen_range(0..LABELS.len())],
        LABELS[rng.gen_range(0..LABELS.len())],
    ];
    let label = |rng: &mut ChaCha8Rng| {
        if rng.gen_bool(0.1) {
            LABELS[rng.gen_range(0..LABELS.len())]
        } else {
            own[rng.gen_range(0..2)]
        }
    };
    let sep = |rng: &mut ChaCha8Rng| [" ", "\t", "  \t "][rng.gen_range(0..3)];
    let mut pending: Vec<&str> = Vec::new();
    for n in 0..nlines {
        // a pending label: a ? line asked for a target further down
        let kind = if opts.branches && !pending.is_empty() && rng.gen_bool(0.3) {
            100
        } else if opts.branches {
            rng.gen_range(0..22)
        } else {
            rng.gen_range(0..13)
        };
        let mut line = String::new();
        let command = |status: u8, statuses: &mut Vec<u8>| {
            statuses.push(status);
            marker_command(statuses.len(), status)
        };
        match kind {
            0 => {
                if n > 0 || rng.gen_bool(0.05) {
                    line.clear(); // blank (an error as the first line)
                } else {
                    line.push_str("#first");
                }
            }
            1 => line.push_str("# a comment"),
            2 | 3 => {
                let st = PIPE_STATUS[rng.gen_range(0..PIPE_STATUS.len())];
                line.push('|');
                line.push_str(&command(st, &mut statuses));
            }
            4 | 5 => {
                let m = format!("./mbox{}", rng.gen_range(0..3));
                if !mboxes.contains(&m) {
                    mboxes.push(m.clone());
                }
                line.push_str(&m);
            }
            6 | 7 => {
                let d = format!("./md{}", rng.gen_range(0..3));
                if !maildirs.contains(&d) {
                    maildirs.push(d.clone());
                }
                line.push_str(&d);
                line.push('/');
            }
            8 | 9 => line.push_str(&format!("&f{}@example.org", rng.gen_range(0..4))),
            10 => line.push_str(&format!("g{}@example.net", rng.gen_range(0..4))),
            11 => line.push_str(if rng.gen_bool(0.5) { "+list" } else { "+other" }),
            12 => line.push('#'),
            13 | 14 => {
                let l = label(&mut rng);
                if rng.gen_bool(0.6) {
                    pending.push(l);
                }
                line.push('?');
                line.push_str(l);
            }
            15..=17 => {
                let l = label(&mut rng);
                if rng.gen_bool(0.6) {
                    pending.push(l);
                }
                line.push('?');
                line.push_str(l);
                line.push_str(sep(&mut rng));
                let st = COND_STATUS[rng.gen_range(0..COND_STATUS.len())];
                line.push_str(&command(st, &mut statuses));
            }
            _ => {
                let l = if kind == 100 {
                    pending.swap_remove(rng.gen_range(0..pending.len()))
                } else {
                    label(&mut rng)
                };
                line.push(':');
                line.push_str(l);
                if rng.gen_bool(0.3) {
                    line.push_str(sep(&mut rng));
                    line.push_str("target comment");
                }
            }
        }
        if !line.is_empty() && rng.gen_bool(0.15) {
            line.push_str(sep(&mut rng));
        }
        out.extend_from_slice(line.as_bytes());
        if n + 1 < nlines || rng.gen_bool(0.9) {
            out.push(b'\n');
        }
    }
    if out.is_empty() {
        // a file of one blank line without its newline would be empty
        out.push(b'\n');
    }
    GenProgram {
        bytes: out,
        statuses,
        forward_only,
        mboxes,
        maildirs,
    }
}

// ---------------------------------------------------------------------
// Comparison with the Rust resolver's model (oracle R's .qmail part).
// ---------------------------------------------------------------------

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
