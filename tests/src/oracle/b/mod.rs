//! Oracle B: the branch C core (`patches/c/qbranch.c`) driven by
//! `tests/c/qbranch-driver.c`, which runs qmail-local's instruction loop
//! on a `.qmail` program with given command exit statuses and prints every
//! decision (spec/branch.md, spec/differential.md).
//!
//! The module holds [`Trace`], the decisions in a form every model can
//! produce, and, one file each, because oracle L and the tests share them:
//! * `driver.rs`: [`Driver`], which builds and runs the C driver, and
//!   [`parse_output`], which reads its output into a [`Trace`];
//! * `reference_model.rs`: [`reference_model`], a small model written
//!   straight from spec/branch.md Part 1 and resolution.md P1–P9,
//!   independent of the C;
//! * `program_gen.rs`: [`generate_program`], the seeded `.qmail` program
//!   generator;
//! * `compare_resolver.rs`: [`compare_resolver`], pair R-B: a [`Trace`]
//!   and the Rust resolver's `.qmail` model seen as one [`View`].

mod compare_resolver;
mod driver;
mod program_gen;
mod reference_model;

pub use compare_resolver::{compare_resolver, resolver_view, trace_view, View};
pub use driver::{parse_output, BError, Driver};
pub use program_gen::{generate_program, marker_command, GenOptions, GenProgram};
pub use reference_model::{lines, parse_branch, reference_model, BranchLine};

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
