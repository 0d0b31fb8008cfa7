//! The seeded `.qmail` program generator: programs of classic qmail lines
//! and (optionally) `?`/`:` branch lines, with the exit statuses their
//! commands get.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

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
    let forward_only = rng.gen_bool(0.08);
    // a program uses one or two labels, and now and then any other (a
    // near miss such as `A` for `a`, or a label that is never defined)
    let own = [
        LABELS[rng.gen_range(0..LABELS.len())],
        LABELS[rng.gen_range(0..LABELS.len())],
    ];
    let mut g = ProgramGen {
        rng,
        own,
        pending: Vec::new(),
        p: GenProgram {
            bytes: Vec::new(),
            statuses: Vec::new(),
            forward_only,
            mboxes: Vec::new(),
            maildirs: Vec::new(),
        },
    };
    for n in 0..nlines {
        // a pending label: a ? line asked for a target further down
        let kind: i32 = if opts.branches && !g.pending.is_empty() && g.rng.gen_bool(0.3) {
            100
        } else if opts.branches {
            g.rng.gen_range(0..22)
        } else {
            g.rng.gen_range(0..13)
        };
        let mut line = g.line(kind, n);
        if !line.is_empty() && g.rng.gen_bool(0.15) {
            line.push_str(g.sep());
        }
        g.p.bytes.extend_from_slice(line.as_bytes());
        if n + 1 < nlines || g.rng.gen_bool(0.9) {
            g.p.bytes.push(b'\n');
        }
    }
    if g.p.bytes.is_empty() {
        // a file of one blank line without its newline would be empty
        g.p.bytes.push(b'\n');
    }
    g.p
}

/// The state of one [`generate_program`].
struct ProgramGen {
    rng: ChaCha8Rng,
    /// The program's own labels.
    own: [&'static str; 2],
    /// Labels `?` lines jumped to whose `:` line is still to come.
    pending: Vec<&'static str>,
    /// The program so far.
    p: GenProgram,
}

impl ProgramGen {
    /// A label: mostly one of the program's own.
    fn label(&mut self) -> &'static str {
        if self.rng.gen_bool(0.1) {
            LABELS[self.rng.gen_range(0..LABELS.len())]
        } else {
            self.own[self.rng.gen_range(0..2)]
        }
    }

    /// A separator of blanks.
    fn sep(&mut self) -> &'static str {
        [" ", "\t", "  \t "][self.rng.gen_range(0..3)]
    }

    /// A marker command exiting with `status`, which it records.
    fn command(&mut self, status: u8) -> String {
        self.p.statuses.push(status);
        marker_command(self.p.statuses.len(), status)
    }

    /// `?LABEL`, the label maybe pending.
    fn question(&mut self) -> String {
        let l = self.label();
        if self.rng.gen_bool(0.6) {
            self.pending.push(l);
        }
        format!("?{l}")
    }

    /// Line `n` (0-based) of kind `kind` (100: the target of a pending
    /// label), without its newline.
    fn line(&mut self, kind: i32, n: usize) -> String {
        let mut line = String::new();
        match kind {
            0 => {
                if n > 0 || self.rng.gen_bool(0.05) {
                    line.clear(); // blank (an error as the first line)
                } else {
                    line.push_str("#first");
                }
            }
            1 => line.push_str("# a comment"),
            2 | 3 => {
                let st = PIPE_STATUS[self.rng.gen_range(0..PIPE_STATUS.len())];
                line.push('|');
                line.push_str(&self.command(st));
            }
            4 | 5 => {
                let m = format!("./mbox{}", self.rng.gen_range(0..3));
                if !self.p.mboxes.contains(&m) {
                    self.p.mboxes.push(m.clone());
                }
                line.push_str(&m);
            }
            6 | 7 => {
                let d = format!("./md{}", self.rng.gen_range(0..3));
                if !self.p.maildirs.contains(&d) {
                    self.p.maildirs.push(d.clone());
                }
                line.push_str(&d);
                line.push('/');
            }
            8 | 9 => line.push_str(&format!("&f{}@example.org", self.rng.gen_range(0..4))),
            10 => line.push_str(&format!("g{}@example.net", self.rng.gen_range(0..4))),
            11 => line.push_str(if self.rng.gen_bool(0.5) {
                "+list"
            } else {
                "+other"
            }),
            12 => line.push('#'),
            13 | 14 => line = self.question(),
            15..=17 => {
                line = self.question();
                line.push_str(self.sep());
                let st = COND_STATUS[self.rng.gen_range(0..COND_STATUS.len())];
                line.push_str(&self.command(st));
            }
            _ => {
                let l = if kind == 100 {
                    let i = self.rng.gen_range(0..self.pending.len());
                    self.pending.swap_remove(i)
                } else {
                    self.label()
                };
                line.push(':');
                line.push_str(l);
                if self.rng.gen_bool(0.3) {
                    line.push_str(self.sep());
                    line.push_str("target comment");
                }
            }
        }
        line
    }
}
