//! qtraceaddr: show how qmail would deliver an address (qtraceaddr.md).
//!
//! ```text
//! qtraceaddr [--qmail DIR] [--break C] [--alias USER] [--release NAME]
//!            [--json] [--explain] [--check] [--sender ADDR] [--stdin] [-0]
//!            [ADDRESS|-]...
//! ```
//!
//! The flags are declared once, in [`args`]; the man page is
//! `resolver/qtraceaddr.1`. Environment: `QMAIL` (qmail home, default
//! `/var/qmail`), `QMAILBREAK` (first byte, default `-`), `QMAILALIAS`
//! (default `alias`); the flags override them. Passwd lookups use the
//! system's `getpwnam` (NSS), through a per-run cache ([`CachedPasswd`]);
//! the file system through a per-run snapshot
//! ([`Resolver::with_fs_snapshot`]): an edit made to the file system
//! during a run may not be seen by that run.
//!
//! Exit status: 0 when every address was traced; 111 on a usage or
//! environment error (no qmail home, unreadable control file, a control
//! file that is a FIFO or device or over 16 MiB, a users/cdb over 64 MiB),
//! on an input error (a record over the limit, a read error) and on any
//! write error on standard output, `--help` included (a full disk, a closed
//! pipe: `qtraceaddr: write error: …` on stderr); with `--check`, 100 if
//! any address would be rejected by realrcptto, otherwise 111 if any would
//! get a 421 (users/cdb or system user database trouble).
//!
//! Decisions: `--release` chooses the upstream modelled (netqmail-1.06 by
//! default, or notqmail-1.09; an unknown name is a usage error listing the
//! known ones); every JSON object has `"release"`, and the text block has a
//! `release:` line after `input:` for a release other than the default.
//! `--sender` sets the envelope sender for Q7 (default: a normal
//! sender); `--json` prints one JSON object per line per address; `--explain`
//! with `--json` adds the parsed instructions and the `-n` listing to the
//! JSON object; `--check` adds a final `verdict: …` line to each text block.
//! The chosen `.qmail` is always read, so that a structural error (a blank
//! first line, an x bit with a file or program line) is reported as the
//! deferral qmail-local gives, with or without `--explain`.
//!
//! Standard input (`-`, `--stdin`, `-0`; see [`input`]): the arguments'
//! addresses come first, then the records of standard input, each traced
//! and written as it is read. Output is buffered (64 KiB) and flushed
//! before every read of standard input: a consumer on a pipe sees every
//! result before qtraceaddr waits for more input, and a bulk run from a
//! file costs one write per 64 KiB of output rather than one per address.
//! An address `-` cannot be given as an argument (it means standard
//! input); put it on standard input.

mod args;
mod input;

use args::Args;
use clap::{CommandFactory, Parser};
use qmail_resolver::report::{format_trace_into, write_explain};
use qmail_resolver::{
    CachedPasswd, Config, ResolveOptions, Resolver, Sender, SystemPasswd, Trace, Verdict,
};
use std::io::Write;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

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
    /// The addresses given as arguments (without `-`).
    addrs: Vec<Vec<u8>>,
    /// Read standard input, with this record separator.
    stdin: Option<u8>,
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

/// clap's parse, with qtraceaddr's exit codes: `--help` and `--version`
/// are written (a write error exits 111) and exit 0; a usage error exits
/// 111 with clap's message.
fn parse_args() -> Args {
    match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let mut out = std::io::stdout().lock();
                let text = e.render().to_string();
                if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
                    die_write(e);
                }
                std::process::exit(0);
            }
            let _ = write!(std::io::stderr(), "{}", e.render());
            std::process::exit(111);
        }
    }
}

/// The flags over `cfg`. An empty `--break` exits 111.
fn cli_from(a: Args, mut cfg: Config) -> Cli {
    let mut opts = ResolveOptions::default();
    if let Some(q) = a.qmail.clone() {
        cfg.qmail_home = PathBuf::from(q);
    }
    if let Some(b) = &a.break_char {
        match b.as_bytes().first() {
            Some(&c) => cfg.break_byte = c,
            None => die("--break needs a non-empty value"),
        }
    }
    if let Some(u) = a.alias.clone() {
        cfg.alias_user = u.into_vec();
    }
    if let Some(r) = a.release {
        cfg.release = r;
    }
    if let Some(s) = a.sender.clone() {
        opts.sender = Sender::Address(s.into_vec().into());
    }
    let stdin = a.reads_stdin().then_some(if a.null { 0 } else { b'\n' });
    let addrs: Vec<Vec<u8>> = a
        .addresses
        .into_iter()
        .filter(|x| x != "-")
        .map(OsStringExt::into_vec)
        .collect();
    if addrs.is_empty() && stdin.is_none() {
        die(&format!(
            "no address given (- or --stdin reads them from standard input)\n{}",
            Args::command().render_usage()
        ));
    }
    Cli {
        cfg,
        opts,
        json: a.json,
        explain: a.explain,
        check: a.check,
        addrs,
        stdin,
    }
}

/// The qmail home must be a directory; then controls and users/cdb load.
fn open_resolver(cfg: Config) -> Resolver<CachedPasswd<SystemPasswd>> {
    match std::fs::metadata(&cfg.qmail_home) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => die(&format!("{}: not a directory", cfg.qmail_home.display())),
        Err(e) => die(&format!("{}: {e}", cfg.qmail_home.display())),
    }
    match Resolver::new(cfg, CachedPasswd::new(SystemPasswd)) {
        // one run, one view of the file system (see --help)
        Ok(r) => r.with_fs_snapshot(),
        Err(e) => die(&e.to_string()),
    }
}

/// One address's output: a JSON line, or the text block (with the
/// `--explain` section and the `--check` verdict line) and an empty line.
/// `block` is the text block's buffer, reused from address to address.
fn write_trace(
    out: &mut impl Write,
    t: &mut Trace,
    cli: &Cli,
    block: &mut Vec<u8>,
) -> std::io::Result<()> {
    if cli.json {
        if !cli.explain {
            t.instructions = None;
            t.listing = None;
        }
        serde_json::to_writer(&mut *out, &*t).map_err(std::io::Error::from)?;
        return out.write_all(b"\n");
    }
    block.clear();
    format_trace_into(t, block);
    block.pop();
    out.write_all(block)?;
    if cli.explain {
        write_explain(t, &mut *out)?;
    }
    if cli.check {
        writeln!(out, "verdict: {}", t.verdict.as_str())?;
    }
    out.write_all(b"\n")
}

/// Whether any address was rejected or got a 421 (the `--check` exit),
/// and the text block's buffer (kept for the whole run).
#[derive(Default)]
struct Tally {
    any_reject: bool,
    any_temp: bool,
    block: Vec<u8>,
}

/// Traces one address and writes its result.
fn trace_one<P: qmail_resolver::Passwd>(
    resolver: &Resolver<P>,
    cli: &Cli,
    tally: &mut Tally,
    out: &mut impl Write,
    addr: &[u8],
) -> std::io::Result<()> {
    let mut t = resolver.resolve_with(addr, &cli.opts);
    match t.verdict {
        Verdict::Reject => tally.any_reject = true,
        Verdict::TempFail(_) => tally.any_temp = true,
        Verdict::Accept => {}
    }
    write_trace(out, &mut t, cli, &mut tally.block)
}

/// Traces the records of standard input, flushing `out` before each read.
fn trace_stdin<P: qmail_resolver::Passwd, W: Write>(
    resolver: &Resolver<P>,
    cli: &Cli,
    sep: u8,
    tally: &mut Tally,
    out: &mut W,
) {
    let stdin = std::io::stdin().lock();
    let out = std::cell::RefCell::new(out);
    let r = input::for_each_record(
        stdin,
        sep,
        || out.borrow_mut().flush(),
        |a| trace_one(resolver, cli, tally, &mut *out.borrow_mut(), a),
    );
    let what = if sep == 0 { "record" } else { "line" };
    let err = match r {
        Ok(()) => return,
        Err(input::InputError::Write(e)) => die_write(e),
        Err(input::InputError::TooLong { record }) => format!(
            "standard input {what} {record}: longer than {} bytes",
            input::RECORD_MAX
        ),
        Err(input::InputError::Nul { record }) => {
            format!("standard input line {record}: NUL byte (use -0 for NUL-separated input)")
        }
        Err(input::InputError::Read(e)) => format!("reading standard input: {e}"),
    };
    // what was traced before the error is still written
    if let Err(e) = out.borrow_mut().flush() {
        die_write(e);
    }
    die(&err)
}

fn main() {
    let mut cli = cli_from(parse_args(), env_config());
    let resolver = open_resolver(cli.cfg.clone());
    // Stage P always runs: a structural error in the chosen instructions
    // (P3) is where qmail-local would stop (qtraceaddr.md Part 1 item 3).
    // Only --explain shows the instructions and the listing.
    cli.opts.instructions = true;
    let mut out = std::io::BufWriter::with_capacity(64 << 10, std::io::stdout().lock());
    let mut tally = Tally::default();
    for a in &cli.addrs {
        if let Err(e) = trace_one(&resolver, &cli, &mut tally, &mut out, a) {
            die_write(e);
        }
    }
    if let Some(sep) = cli.stdin {
        trace_stdin(&resolver, &cli, sep, &mut tally, &mut out);
    }
    if let Err(e) = out.flush() {
        die_write(e);
    }
    if cli.check {
        if tally.any_reject {
            std::process::exit(100);
        }
        if tally.any_temp {
            std::process::exit(111);
        }
    }
}
