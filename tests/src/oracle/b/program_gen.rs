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
