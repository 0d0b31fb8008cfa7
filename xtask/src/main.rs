//! Drives the whole pipeline (fetch → verify → unpack → sources → patch →
//! build → test): `cargo xtask`, the qmail packaging pipeline as one
//! command line.
//!
//! Each subcommand lives in its own module; this file only declares the
//! command line.

mod bench;
mod build;
mod cargo_tests;
mod difftest_bin;
mod fuzz;
mod mutants;
mod patch;
mod sources;
mod stack;
mod test;
mod tmpdir;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// The qmail packaging toolkit: fetch, verify, patch, build and test
/// netqmail-1.06 and mess822-0.58.
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Download the upstream releases into the distfiles directory,
    /// checking size and SHA-256 before anything is kept.
    Fetch(sources::FetchArgs),
    /// Check the files in the distfiles directory against upstream-hashes/
    /// and report ok / missing / wrong size / wrong digest for each.
    Verify(sources::VerifyArgs),
    /// Unpack the verified sources into a work tree, apply the generated
    /// patches there, and optionally write the .patch files and a series.
    Patch(patch::PatchArgs),
    /// Build netqmail and mess822 without root and install them into
    /// --prefix (or stage them under --destdir).
    Build(build::BuildArgs),
    /// Run the test suite: the workspace's cargo tests and every
    /// differential tier this machine can run.
    Test(test::TestArgs),
    /// Benchmarks: resolver throughput, the cost of realrcptto per RCPT,
    /// and build wall times.
    Bench(bench::BenchArgs),
    /// Fuzz the C cores (realrcptto, qbranch) with libFuzzer for a while.
    Fuzz(fuzz::FuzzArgs),
    /// Mutation testing of the library packages with cargo-mutants, one
    /// package at a time: the score per package and the mutants missed.
    Mutants(mutants::MutantsArgs),
}

fn main() -> Result<ExitCode> {
    let cli = Cli::parse();
    let done = match cli.command {
        Command::Fetch(args) => sources::fetch(args),
        Command::Verify(args) => sources::verify(args),
        Command::Patch(args) => patch::run(args),
        Command::Build(args) => build::run(args),
        Command::Test(args) => return test::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Fuzz(args) => fuzz::run(args),
        Command::Mutants(args) => mutants::run(args),
    };
    done.map(|()| ExitCode::SUCCESS)
}
