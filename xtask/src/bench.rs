//! `cargo xtask bench`: benchmarks (not tests; nothing here asserts a
//! speed).
//!
//! * `cargo xtask bench rcpt [--source netqmail=DIR] [--work DIR]`: what
//!   the realrcptto check costs per RCPT: one SMTP session of 1,000 RCPTs
//!   against patched and unpatched qmail-smtpd on the same qmail home,
//!   CPU microseconds and system calls (`strace -f -c`) per RCPT, next to
//!   one users/cdb look-up made as qmail-lspawn makes it (a small C driver
//!   linked with the pristine tree's `cdb.a`), so that the check's cost
//!   reads in look-ups; the `bench-rcpt` binary of qmail-difftest
//!   measures (`qmail_difftest::bench_rcpt`).
//! * `cargo xtask bench resolve`: the resolver's throughput (addresses per
//!   second, allocations per address) on a generated qmail home; the same
//!   as `cargo bench -p qmail-resolver --bench resolve`.
//! * `cargo xtask bench trace`: qtraceaddr in bulk: the real binary
//!   (release build) with `--stdin` over 24,000 addresses on the same
//!   generated world with nss_wrapper, addresses per CPU second, system
//!   calls (`strace -f -c`) and heap allocations (valgrind) per address,
//!   next to the library's figures (`cargo bench -p qmail-resolver --bench
//!   trace`).
//! * `cargo xtask bench build`: the wall time of a cold `build` against a
//!   plain `make` of the same pristine trees, and of a no-op rebuild.

use std::path::PathBuf;

use anyhow::{Context, Result};
use upstream_hashes::{MESS822, NETQMAIL};

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
    /// Resolver throughput: addresses per second and allocations per
    /// address (runs `cargo bench -p qmail-resolver`).
    Resolve,
    /// qtraceaddr in bulk: the release binary over 24,000 addresses with
    /// --stdin (needs libnss-wrapper; strace and valgrind for the system
    /// call and allocation figures)
    Trace,
    /// Build wall times: cold build vs plain make, and a no-op rebuild
    /// (needs both releases, a C compiler and make).
    Build(BuildBenchArgs),
}

#[derive(clap::Args)]
struct BuildBenchArgs {
    #[command(flatten)]
    sources: SourceArgs,
    /// Work directory [default: <workspace>/target/bench-build].
    #[arg(long, value_name = "DIR")]
    work: Option<PathBuf>,
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
        What::Resolve => cargo_bench("resolve"),
        What::Trace => cargo_bench("trace"),
        What::Build(a) => build(a),
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
        .find(|(n, _)| n == NETQMAIL.name)
    {
        Some((_, dir)) => {
            let t = qmail_sources::given_tree(&NETQMAIL, &dir)
                .with_context(|| format!("using {} as the netqmail tree", dir.display()))?;
            eprintln!("{}", t.provenance_note());
            t.root
        }
        None => {
            let trees = a.sources.obtain(&work.join("src"))?;
            trees
                .into_iter()
                .find(|t| *t.release == NETQMAIL)
                .context("no netqmail source tree")?
                .root
        }
    };
    eprintln!(
        "bench rcpt: building patched and unpatched qmail-smtpd from {} under {}",
        netqmail.display(),
        work.display()
    );
    let mut c = crate::difftest_bin::command("bench-rcpt");
    c.arg("--netqmail").arg(&netqmail).arg("--work").arg(&work);
    crate::difftest_bin::run(&mut c, "bench-rcpt").context("running the RCPT benchmark")
}

/// `cargo bench -p qmail-resolver --bench NAME`.
fn cargo_bench(name: &str) -> Result<()> {
    let sh = xshell::Shell::new()?;
    sh.change_dir(workspace_root());
    xshell::cmd!(sh, "cargo bench -p qmail-resolver --bench {name}")
        .run()
        .with_context(|| format!("running cargo bench -p qmail-resolver --bench {name}"))?;
    Ok(())
}

fn build(a: BuildBenchArgs) -> Result<()> {
    let work = a
        .work
        .unwrap_or_else(|| workspace_root().join("target").join("bench-build"));
    if work.exists() {
        std::fs::remove_dir_all(&work).with_context(|| format!("clearing {}", work.display()))?;
    }
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let trees = a.sources.obtain(&work.join("src"))?;
    let opts = qmail_build::BuildOptions {
        qmail: crate::build::qmail_tree(&trees, &a.sources.sources)?,
        mess822: crate::build::tree_of(&trees, &MESS822)?,
        prefix: work.join("prefix"),
        mess822_home: None,
        destdir: None,
        cc: "cc".into(),
        cflags: None,
        patches: qmail_patches::select(&[])?,
        stack: Vec::new(),
        ids: qmail_build::IdMap::build_user(),
        ids_source: "build-user".into(),
        work: work.join("work"),
        force: false,
        allow_symlinked_prefix: false,
        // Only the two packages: the baseline is their plain `make`.
        extra_files: Vec::new(),
    };
    let scratch = work.join("scratch");
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let f = qmail_build::bench_build(&opts, &scratch)?;
    println!("plain make:    {:7.2} s", f.plain_make.as_secs_f64());
    println!(
        "cold build:    {:7.2} s  ({:.2}x plain make; target <= 1.25x)",
        f.cold_build.as_secs_f64(),
        f.ratio()
    );
    println!(
        "no-op rebuild: {:7.3} s  (target < 1 s)",
        f.noop_rebuild.as_secs_f64()
    );
    Ok(())
}
