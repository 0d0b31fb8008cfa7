//! The command line, declared once with clap: flags, help text and the
//! limits it states. `main` reads the environment and applies these.

use clap::Parser;
use qmail_resolver::dotqmail::NAME_LIMIT;
use qmail_resolver::fsread::{CDB_MAX, CONTROL_MAX};
use qmail_resolver::getpw::PASSWD_CACHE_MAX;
use qmail_resolver::report::EXPLAIN_MAX_BRANCH_PATHS;
use qmail_resolver::snapshot::{SNAPSHOT_MAX_BYTES, SNAPSHOT_MAX_ENTRIES};
use qmail_resolver::QmailRelease;
use std::ffi::OsString;

use crate::input::RECORD_MAX;

/// What `qtraceaddr --help` says after the flags: environment, standard
/// input, the passwd cache, the file system snapshot, the limits and the
/// exit status.
pub fn after_help() -> String {
    format!(
        "Environment: QMAIL (qmail home, default /var/qmail), QMAILBREAK (its first\n\
         byte is qmail-getpw's break character, default -), QMAILALIAS (default\n\
         alias); --qmail, --break and --alias override them. Passwd look-ups use\n\
         the system's getpwnam (NSS, so nss_wrapper works). With --release\n\
         notqmail-1.09, qmail-lspawn's users qmailp and qmailq and group nofiles\n\
         are looked up too (getpwnam, getgrnam): a missing one defers every\n\
         local address, as notqmail's qmail-lspawn does not start.\n\
         \n\
         Standard input (- or --stdin): after the addresses given as arguments,\n\
         one address per line (a trailing CR is removed), or NUL-terminated with\n\
         -0; empty records are skipped; a record over {r} bytes is an error\n\
         naming its line (record) number. Results are written as each address\n\
         is traced and flushed whenever qtraceaddr would wait for more input.\n\
         \n\
         Passwd cache: within one run, each name is looked up in passwd once\n\
         (answers 'found' and 'no such user'; ETXTBSY is asked again; at most\n\
         {pc} names, then the cache starts over). An edit of the passwd database\n\
         during a run may not be seen.\n\
         \n\
         File system snapshot: within one run, each probe of the file system\n\
         (stat of a home, access check, open and read of a .qmail file, stat of\n\
         an owner file) is made once per path and its result, errno included,\n\
         remembered (at most {se} probes and {sb} MiB of contents, then the\n\
         snapshot starts over). An edit made to the file system during a run may\n\
         not be seen by that run.\n\
         \n\
         Limits: control files must be regular files of at most {c} MiB, users/cdb\n\
         at most {u} MiB (a FIFO or device users/cdb defers, as in qmail-lspawn);\n\
         .qmail files over {c} MiB defer; .qmail names of {n} bytes or more are not\n\
         probed (ENAMETOOLONG: missing); --explain shows exit-99 paths for the\n\
         first {p} ?LABEL COMMAND lines only.\n\
         \n\
         Exit status: 0 when every address was traced; 111 on usage, environment,\n\
         input and write errors; with --check, 100 if any address would be\n\
         rejected by realrcptto, otherwise 111 if any would get a 421.\n\
         See qtraceaddr(1).",
        r = RECORD_MAX,
        pc = PASSWD_CACHE_MAX,
        se = SNAPSHOT_MAX_ENTRIES,
        sb = SNAPSHOT_MAX_BYTES >> 20,
        c = CONTROL_MAX >> 20,
        u = CDB_MAX >> 20,
        n = NAME_LIMIT,
        p = EXPLAIN_MAX_BRANCH_PATHS,
    )
}

/// qtraceaddr's flags and arguments.
#[derive(Parser, Debug)]
#[command(
    name = "qtraceaddr",
    version,
    about = "Show how qmail would deliver each address, and the realrcptto verdict",
    args_override_self = true,
    after_help = after_help()
)]
pub struct Args {
    /// The qmail home (overrides QMAIL; default /var/qmail)
    #[arg(long, value_name = "DIR", allow_hyphen_values = true)]
    pub qmail: Option<OsString>,

    /// qmail-getpw's break character: the first byte of C (overrides
    /// QMAILBREAK; default -)
    #[arg(long = "break", value_name = "C", allow_hyphen_values = true)]
    pub break_char: Option<OsString>,

    /// The alias user (overrides QMAILALIAS; default alias)
    #[arg(long, value_name = "USER", allow_hyphen_values = true)]
    pub alias: Option<OsString>,

    /// The upstream release whose delivery logic is modelled:
    /// netqmail-1.06 (default) or notqmail-1.09
    #[arg(long, value_name = "NAME", value_parser = parse_release)]
    pub release: Option<QmailRelease>,

    /// One JSON object per line per address instead of the text block
    #[arg(long)]
    pub json: bool,

    /// Parse the chosen .qmail: what qmail-local -n prints, and the
    /// deliveries under the branch rules
    #[arg(long)]
    pub explain: bool,

    /// Add a verdict line (accept, reject, tempfail-cdb, tempfail-sys);
    /// exit 100 if any address is rejected
    #[arg(long)]
    pub check: bool,

    /// The envelope sender for the owner probes (default: a normal sender)
    #[arg(long, value_name = "ADDR", allow_hyphen_values = true)]
    pub sender: Option<OsString>,

    /// Read addresses from standard input, one per line, after those given
    /// as arguments (the same as the argument -)
    #[arg(long)]
    pub stdin: bool,

    /// Standard input holds NUL-terminated addresses (implies --stdin)
    #[arg(short = '0', long = "null")]
    pub null: bool,

    /// The addresses to trace; - reads more from standard input
    #[arg(value_name = "ADDRESS")]
    pub addresses: Vec<OsString>,
}

/// `--release NAME`: one of [`QmailRelease::ALL`]'s names; clap shows the
/// error (which lists them) and qtraceaddr exits 111.
fn parse_release(s: &str) -> Result<QmailRelease, String> {
    s.parse()
        .map_err(|e: qmail_resolver::UnknownRelease| e.to_string())
}

impl Args {
    /// Is standard input read (`--stdin`, `-0` or an argument `-`)?
    pub fn reads_stdin(&self) -> bool {
        self.stdin || self.null || self.addresses.iter().any(|a| a == "-")
    }
}
