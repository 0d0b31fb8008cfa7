//! `cargo xtask bench`: benchmarks (not tests; nothing here asserts a
//! speed).
//!
//! * `cargo xtask bench rcpt [--source netqmail=DIR] [--work DIR]`: what
//!   the realrcptto check costs per RCPT: one SMTP session of 1,000 RCPTs
//!   against patched and unpatched qmail-smtpd on the same qmail home,
//!   microseconds and system calls (`strace -f -c`) per RCPT.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::sources::{workspace_root, SourceArgs};

/// Arguments of `cargo xtask bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand)]
enum What {
    /// The cost of the realrcptto check per RCPT (needs netqmail-1.06,
    /// a C compiler, make and strace).
    Rcpt(RcptArgs),
}

#[derive(clap::Args)]
struct RcptArgs {
    #[command(flatten)]
    sources: SourceArgs,
    /// Work directory for the builds and the scenario
    /// [default: <workspace>/target/bench-rcpt].
    #[arg(long, value_name = "DIR")]
    work: Option<PathBuf>,
}

/// Run `cargo xtask bench …`.
pub fn run(args: BenchArgs) -> Result<()> {
    match args.what {
        What::Rcpt(a) => rcpt(a),
    }
}

fn rcpt(a: RcptArgs) -> Result<()> {
    let work = a
        .work
        .unwrap_or_else(|| workspace_root().join("target").join("bench-rcpt"));
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    // only netqmail is needed: use an override directly when there is one,
    // so that mess822 does not have to be fetched
    let netqmail = match a
        .sources
        .overrides()
        .into_iter()
        .find(|(n, _)| n == "netqmail")
    {
        Some((_, dir)) => {
            let rel = upstream_hashes::release("netqmail").context("netqmail release unknown")?;
            let t = qmail_unpack::SourceTree::from_dir(rel, &dir)
                .with_context(|| format!("using {} as the netqmail tree", dir.display()))?;
            eprintln!("{}", t.provenance_note());
            t.root
        }
        None => {
            let trees = a.sources.obtain(&work.join("src"))?;
            trees
                .into_iter()
                .find(|t| t.release.name == "netqmail")
                .context("no netqmail source tree")?
                .root
        }
    };
    eprintln!(
        "bench rcpt: building patched and unpatched qmail-smtpd from {} under {}",
        netqmail.display(),
        work.display()
    );
    let report = qmail_difftest::oracle::sq::rcpt_bench(&netqmail, &work)
        .context("running the RCPT benchmark")?;
    print!("{report}");
    Ok(())
}
