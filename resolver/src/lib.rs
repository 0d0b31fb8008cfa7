//! Beside the pipeline (fetch → verify → unpack → sources → patch → build
//! → test), which tests it: qmail-resolver, a model of how netqmail-1.06 turns an envelope
//! recipient into a delivery decision (resolution.md), the realrcptto
//! verdict (realrcptto.md Part 1) and the `.qmail` branch rules (branch.md
//! Part 1), plus the text and JSON reports of `qtraceaddr` (qtraceaddr.md).
//!
//! Stages, each usable on its own (resolution.md sections in parentheses):
//! * C — [`control`]: [`Controls`] from raw bytes or from `QMAILHOME/control` (§2).
//! * W — [`rewrite()`](rewrite::rewrite) and [`bounce_display`](rewrite::bounce_display) (§3).
//! * H — [`handoff`]: [`senderadd`](handoff::senderadd) (H1),
//!   [`Target`](handoff::Target) and its
//!   [`qmail_local_args`](handoff::Target::qmail_local_args) (H5–H7),
//!   [`lspawn_report`](handoff::lspawn_report) (O2) (§4, §10).
//! * U — [`compile_assign`], [`write_cdb`](users::write_cdb),
//!   [`lookup_users`](users::lookup_users) over any [`CdbGet`](users::CdbGet) (§5).
//! * G — [`getpw()`](getpw::getpw) with a [`Passwd`] oracle ([`SystemPasswd`],
//!   [`StaticPasswd`]) (§6).
//! * L/Q — [`check_home`](resolve::check_home), [`search_names`](dotqmail::search_names),
//!   [`probe_qmail`](dotqmail::probe_qmail) (§7, §8).
//! * P — [`parse_instructions`](dotqmail::parse_instructions),
//!   [`run_instructions`](dotqmail::run_instructions), [`listing`](dotqmail::listing) (§9).
//!   A run keeps its state in a private `Run` with one step per line kind:
//!   `line` (P3), `file_line` (P6), `program_line` (P5, branch.md),
//!   `forward_line` (P4) and `send_forwards` (P7–P8).
//! * Everything: [`Resolver::resolve`] → [`Trace`] with [`Outcome`] and [`Verdict`].
//!   Inside, [`resolve`] runs one private function per stage, in O4's order
//!   (§10): `local_channel` (W, O1), `lspawn_split` (H2–H4),
//!   `lspawn_users_cdb` (U8–U13), `getpw` (G), `lspawn_record` (H5–H6),
//!   `local_preamble` (L1–L3), `bouncexf` (L5), `dotqmail_search` (Q1–Q4),
//!   `no_mailbox` (Q5), `owner_sender` (Q7), `dotqmail_instructions` (P1–P3,
//!   P9), `delivery_outcome` (O4 items 12–13). Each returns the outcome
//!   that ends the chain, or what the next stage needs.
//! * Reports: [`report`] — the qtraceaddr text block
//!   ([`format_trace`](report::format_trace), one function per stage) and
//!   the `--explain` section; JSON is [`Trace`]'s `Serialize`.
//!
//! * Releases: [`QmailRelease`] in [`Config::release`] (default
//!   netqmail-1.06) chooses the upstream; [`release`] lists the two things
//!   notqmail-1.09 decides differently (qmail-lspawn's run-time users,
//!   qmail-queue's custom error) and how each is modelled. Every
//!   [`Trace`] records its release.
//!
//! Modules import downwards only: [`bytes`], [`fsread`] and [`release`] at the bottom,
//! with [`snapshot`] (the filesystem probes, which imports [`bytes`]);
//! the stage modules above them ([`control`]; [`rewrite`](mod@rewrite),
//! which reads [`Controls`]; [`handoff`]; [`users`]; [`getpw`];
//! [`dotqmail`]); [`resolve`] above the stages; [`report`] on top.
//!
//! The filesystem is queried as the calling process sees it (realrcptto's
//! point of view): by default with real system calls at every probe; with
//! [`Resolver::with_fs_snapshot`] through a per-run [`snapshot`].
//!
//! # Decisions
//!
//! * **Verdict** ([`Verdict`]): `Reject` iff the outcome is Q5 (`Sorry, no
//!   mailbox here by that name. (#5.1.1)`) and no step was uncertain.
//!   `TempFail(Cdb)` for U8/U9 trouble (the C check's `421 unable to read
//!   cdb user database`), `TempFail(Sys)` for getpwnam ETXTBSY or a
//!   temporary errno from stat(pw_dir) (`421 unable to read system user
//!   database`). Everything else accepts, including the missing alias user,
//!   uid 0, relative or unreachable homes, writable/sticky homes, Q1 errors
//!   and loops.
//! * **Uncertain steps** ([`resolve::Uncertain`]): a G3 stat of a
//!   candidate home failing with EACCES/EPERM is recorded in
//!   `Trace::uncertain`; the outcome model still skips that candidate (as
//!   qmail-getpw would if qmailp saw the same), but the verdict accepts.
//!   So are EACCES/EPERM from L2 (stat/search of the chosen home, stage
//!   `home`) and from Q1 (open of a `.qmail`, stage `qmail`): the outcome
//!   is the deferral this process sees, but qmail-local runs as the target
//!   user and may see more.
//! * **Structural errors** (P3, O4 item 11): with
//!   [`ResolveOptions::instructions`], a blank first line or an x bit with
//!   a file or program line makes the outcome `Defer` with qmail-local's
//!   text; [`Trace::chosen`] still names the file and
//!   [`Trace::structural_error`] tells this deferral from the others. The
//!   verdict is accept.
//! * **Point of view**: the home checks (L2/L3), the .qmail probes (Q1) and
//!   Q7 use this process's credentials, not the target user's. L2 is
//!   `stat(home)` + directory + `access(X_OK)` (skipped as root, where a
//!   directory is always searchable); the stat from G3 of the same path is
//!   reused. Sticky homes are judged as with `-N` (deferral).
//! * **users/cdb** is read once into memory by [`Resolver::new`]
//!   ([`UsersDb::load`]); a new `Resolver` sees a rebuilt one.
//! * **Message inputs** are optional ([`ResolveOptions`]): no headers means
//!   no L5 loop; the default sender is "normal", so Q7's owner probes run
//!   and `newsender` is reported only when an owner file changes it.
//! * **Stage P** is only run on request (`ResolveOptions::instructions`):
//!   the file is then read through the Q1 descriptor, parsed with the branch
//!   rules, and the `-n` listing is attached. Program exit statuses are
//!   inputs of [`dotqmail::run_instructions`]; for a failing program the
//!   status text is empty because qmail uses the program's own output.
//! * **Hostile files** ([`fsread`]): control files, users/cdb and
//!   users/assign are opened with `O_NONBLOCK` and `fstat`ed; a FIFO or
//!   device is refused (a control file: an error naming it; users/cdb: the
//!   QLX_CDB deferral), and sizes are bounded (16 MiB, 64 MiB; `.qmail`
//!   files 16 MiB). `.qmail` names of 4096 bytes or more are counted, not
//!   probed ([`dotqmail::search_names`]).
//! * **Filesystem snapshot** ([`snapshot`], opt-in with
//!   [`Resolver::with_fs_snapshot`]; qtraceaddr turns it on, one snapshot
//!   per run): each probe (stat of a home, `access` X_OK, the `.qmail`
//!   open + fstat + bounded read, the owner stats) is made once per exact
//!   path and its result, errno included, remembered, so repeated
//!   addresses cost no system calls and the traces are those of the
//!   uncached resolver on an unchanged filesystem. An edit made to the
//!   filesystem during a run may not be seen by that run. Bounded: at most
//!   1,000,000 probes and 64 MiB of contents, then it starts over. Off by
//!   default, so single checks and the differential suite make the real
//!   system calls every time.
//! * **Allocations** ([`bytes::buffer`]): a [`Bytes`] gives its buffer to
//!   a per-thread free list when dropped (at most 256 buffers of at most
//!   4 KiB each), and the byte strings of the next trace are made from it,
//!   so a loop that drops each trace before resolving the next address
//!   (qtraceaddr, the benchmarks) makes a few heap allocations per address
//!   instead of one per byte string, with the API unchanged. Move a
//!   buffer out of a [`Bytes`] with [`Bytes::into_vec`].
//! * **JSON**: byte strings are JSON strings; invalid UTF-8 bytes appear as
//!   `\xNN` (see [`bytes`]).
#![warn(missing_docs)]

pub mod bytes;
pub mod control;
pub mod dotqmail;
pub mod fsread;
pub mod getpw;
pub mod handoff;
pub mod release;
pub mod report;
pub mod resolve;
pub mod rewrite;
pub mod snapshot;
pub mod users;

pub use bytes::Bytes;
pub use control::{ControlFiles, Controls};
pub use getpw::{CachedPasswd, Passwd, PwEntry, PwResult, StaticPasswd, SystemPasswd};
pub use release::{QmailRelease, UnknownRelease};
pub use resolve::{
    Config, Outcome, ResolveOptions, Resolver, ResolverError, Sender, TempFailSource, Trace,
    Verdict,
};
pub use rewrite::{rewrite, Channel, Rewrite};
pub use users::{compile_assign, UsersDb};
