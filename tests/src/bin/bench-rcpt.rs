//! `bench-rcpt --netqmail DIR --work DIR`: the RCPT benchmark
//! ([`qmail_difftest::bench_rcpt::rcpt_bench`]) on the netqmail-1.06 tree
//! DIR, builds and scenario under the work directory; prints the report.
//! `cargo xtask bench rcpt` runs it (so that the xtask does not link the
//! test harness).

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

/// The command line.
#[derive(Parser)]
#[command(
    name = "bench-rcpt",
    about = "What the realrcptto check costs per RCPT (patched vs unpatched qmail-smtpd)"
)]
struct Cli {
    /// The netqmail-1.06 source tree.
    #[arg(long, value_name = "DIR")]
    netqmail: PathBuf,
    /// Work directory for the builds and the scenario.
    #[arg(long, value_name = "DIR")]
    work: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match qmail_difftest::bench_rcpt::rcpt_bench(&cli.netqmail, &cli.work) {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench-rcpt: {e}");
            ExitCode::FAILURE
        }
    }
}
