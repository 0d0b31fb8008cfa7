//! qtraceaddr: show how qmail would deliver an address (qtraceaddr.md).
//!
//! ```text
//! qtraceaddr [--qmail DIR] [--break C] [--alias USER] [--json] [--explain]
//!            [--check] [--sender ADDR] ADDRESS...
//! ```
//!
//! Environment: `QMAIL` (qmail home, default `/var/qmail`), `QMAILBREAK`
//! (first byte, default `-`), `QMAILALIAS` (default `alias`); the flags
//! override them. Passwd lookups use the system's `getpwnam` (NSS).
//!
//! Exit status: 0 when every address was traced; 111 on a usage or
//! environment error (no qmail home, unreadable control file, a control
//! file that is a FIFO or device or over 16 MiB, a users/cdb over 64 MiB)
//! and on any write error on standard output (a full disk, a closed pipe:
//! `qtraceaddr: write error: …` on stderr); with `--check`, 100 if any
//! address would be rejected by realrcptto, otherwise 111 if any would get
//! a 421 (users/cdb or system user database trouble).
//!
//! Decisions: `--sender` sets the envelope sender for Q7 (default: a normal
//! sender); `--json` prints one JSON object per line per address; `--explain`
//! with `--json` adds the parsed instructions and the `-n` listing to the
//! JSON object; `--check` adds a final `verdict: …` line to each text block.
//! The chosen `.qmail` is always read, so that a structural error (a blank
//! first line, an x bit with a file or program line) is reported as the
//! deferral qmail-local gives, with or without `--explain`.

use qmail_resolver::dotqmail::NAME_LIMIT;
use qmail_resolver::fsread::{CDB_MAX, CONTROL_MAX};
use qmail_resolver::report::{format_trace, write_explain, EXPLAIN_MAX_BRANCH_PATHS};
use qmail_resolver::{Config, ResolveOptions, Resolver, Sender, SystemPasswd, Trace, Verdict};
use std::io::Write;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

const USAGE: &str = "usage: qtraceaddr [--qmail DIR] [--break C] [--alias USER] [--json] [--explain] [--check] [--sender ADDR] ADDRESS...";

/// `--help`: the usage line and the limits.
fn help() -> String {
    format!(
        "{USAGE}\n\
         Limits: control files must be regular files of at most {c} MiB, users/cdb at\n\
         most {u} MiB (a FIFO or device users/cdb defers, as in qmail-lspawn); .qmail\n\
         files over {c} MiB defer; .qmail names of {n} bytes or more are not probed\n\
         (ENAMETOOLONG: missing); --explain shows exit-99 paths for the first {p}\n\
         ?LABEL COMMAND lines only. Exit 111 on usage, environment and write errors.\n",
        c = CONTROL_MAX >> 20,
        u = CDB_MAX >> 20,
        n = NAME_LIMIT,
        p = EXPLAIN_MAX_BRANCH_PATHS,
    )
}

fn die(msg: &str) -> ! {
    // stderr may be closed too: nothing more can be done then
    let _ = writeln!(std::io::stderr(), "qtraceaddr: {msg}");
    std::process::exit(111);
}

fn die_write(e: std::io::Error) -> ! {
    die(&format!("write error: {e}"))
}

/// The command line, after the environment and the flags.
struct Cli {
    cfg: Config,
    opts: ResolveOptions,
    json: bool,
    explain: bool,
    check: bool,
    addrs: Vec<Vec<u8>>,
}

/// `QMAIL`, `QMAILBREAK` and `QMAILALIAS` over the defaults.
fn env_config() -> Config {
    let mut cfg = Config::default();
    if let Some(q) = std::env::var_os("QMAIL") {
        cfg.qmail_home = PathBuf::from(q);
    }
    if let Some(b) = std::env::var_os("QMAILBREAK") {
        if let Some(&c) = b.as_bytes().first() {
            cfg.break_byte = c;
        }
    }
    if let Some(a) = std::env::var_os("QMAILALIAS") {
        cfg.alias_user = a.into_vec();
    }
    cfg
}

/// Parses the arguments over `cfg`; `None` once `--help` has been printed.
/// A bad flag or a missing value exits 111.
fn parse_args(cfg: Config) -> Option<Cli> {
    let mut cli = Cli {
        cfg,
        opts: ResolveOptions::default(),
        json: false,
        explain: false,
        check: false,
        addrs: Vec::new(),
    };
    let mut args = std::env::args_os().skip(1);
    let mut only_addrs = false;
    while let Some(a) = args.next() {
        let ab = a.as_bytes();
        if only_addrs || !ab.starts_with(b"--") {
            cli.addrs.push(ab.to_vec());
            continue;
        }
        let mut value = |name: &str| -> Vec<u8> {
            match args.next() {
                Some(v) => v.into_vec(),
                None => die(&format!("{name} needs a value\n{USAGE}")),
            }
        };
        match ab {
            b"--" => only_addrs = true,
            b"--json" => cli.json = true,
            b"--explain" => cli.explain = true,
            b"--check" => cli.check = true,
            b"--qmail" => {
                cli.cfg.qmail_home = PathBuf::from(std::ffi::OsString::from_vec(value("--qmail")))
            }
            b"--break" => match value("--break").first() {
                Some(&c) => cli.cfg.break_byte = c,
                None => die("--break needs a non-empty value"),
            },
            b"--alias" => cli.cfg.alias_user = value("--alias"),
            b"--sender" => cli.opts.sender = Sender::Address(value("--sender").into()),
            b"--help" => {
                let mut out = std::io::stdout().lock();
                if let Err(e) = out.write_all(help().as_bytes()).and_then(|_| out.flush()) {
                    die_write(e);
                }
                return None;
            }
            _ => die(&format!("unknown option {}\n{USAGE}", a.to_string_lossy())),
        }
    }
    Some(cli)
}

/// The qmail home must be a directory; then controls and users/cdb load.
fn open_resolver(cfg: Config) -> Resolver<SystemPasswd> {
    match std::fs::metadata(&cfg.qmail_home) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => die(&format!("{}: not a directory", cfg.qmail_home.display())),
        Err(e) => die(&format!("{}: {e}", cfg.qmail_home.display())),
    }
    match Resolver::new(cfg, SystemPasswd) {
        Ok(r) => r,
        Err(e) => die(&e.to_string()),
    }
}

/// One address's output: a JSON line, or the text block (with the
/// `--explain` section and the `--check` verdict line) and an empty line.
fn write_trace(out: &mut impl Write, t: &mut Trace, cli: &Cli) -> std::io::Result<()> {
    if cli.json {
        if !cli.explain {
            t.instructions = None;
            t.listing = None;
        }
        serde_json::to_writer(&mut *out, &*t).map_err(std::io::Error::from)?;
        return out.write_all(b"\n");
    }
    let mut block = format_trace(t);
    block.pop();
    out.write_all(&block)?;
    if cli.explain {
        write_explain(t, &mut *out)?;
    }
    if cli.check {
        writeln!(out, "verdict: {}", t.verdict.as_str())?;
    }
    out.write_all(b"\n")
}

fn main() {
    let Some(mut cli) = parse_args(env_config()) else {
        return;
    };
    if cli.addrs.is_empty() {
        die(USAGE);
    }
    let resolver = open_resolver(cli.cfg.clone());
    // Stage P always runs: a structural error in the chosen instructions
    // (P3) is where qmail-local would stop (qtraceaddr.md Part 1 item 3).
    // Only --explain shows the instructions and the listing.
    cli.opts.instructions = true;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let (mut any_reject, mut any_temp) = (false, false);
    for a in &cli.addrs {
        let mut t = resolver.resolve_with(a, &cli.opts);
        match t.verdict {
            Verdict::Reject => any_reject = true,
            Verdict::TempFail(_) => any_temp = true,
            Verdict::Accept => {}
        }
        if let Err(e) = write_trace(&mut out, &mut t, &cli) {
            die_write(e);
        }
    }
    if let Err(e) = out.flush() {
        die_write(e);
    }
    if cli.check {
        if any_reject {
            std::process::exit(100);
        }
        if any_temp {
            std::process::exit(111);
        }
    }
}
