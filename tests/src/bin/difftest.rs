//! `difftest`: the differential run of `spec/differential.md` (generated
//! scenarios through the oracles R, C and G), and the replay of one saved
//! failure. `cargo xtask test` runs it; it can also be run on its own.

use clap::{Parser, Subcommand};
use qmail_difftest::failures::replay_command;
use qmail_difftest::options::{default_out_dir, RunOptions, Stack};
use qmail_difftest::runner;
use qmail_patches::ThirdPartyPatch;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use upstream_hashes::{SourceTree, NETQMAIL, NOTQMAIL};

#[derive(Parser)]
#[command(
    name = "difftest",
    about = "Differential tests: Rust resolver vs realrcptto C core vs pristine netqmail or notqmail"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
struct Common {
    /// Output directory (report.md, report.json, failures/).
    #[arg(long, env = "QMAIL_DIFFTEST_DIR")]
    out: Option<PathBuf>,
    /// The unpacked pristine netqmail-1.06 tree: oracle G runs it, S, Q
    /// and L are built from it.
    #[arg(long, env = "QMAIL_SOURCE_NETQMAIL")]
    netqmail: Option<PathBuf>,
    /// The unpacked pristine notqmail-1.09 tree, instead of netqmail's:
    /// G, S, Q and L run notqmail and R models notqmail-1.09.
    #[arg(long, env = "QMAIL_SOURCE_NOTQMAIL")]
    notqmail: Option<PathBuf>,
    /// A third-party patch applied to the qmail tree before ours, for
    /// S, Q and L (repeatable, in order; `pN:FILE` for another strip
    /// level). G stays pristine.
    #[arg(long = "with-patch", value_name = "[pN:]FILE")]
    with_patch: Vec<String>,
    /// The release R, C and P model when no qmail tree is given
    /// (netqmail-1.06 by default): `notqmail-1.09` proves the notqmail
    /// side of the C core and of the RCPTCHECK program (qmail-lspawn's
    /// run-time users) without a tree. With a tree, only its own release.
    #[arg(long, value_name = "RELEASE")]
    release: Option<qmail_resolver::QmailRelease>,
    /// Fail instead of skipping the tiers that need upstream sources.
    #[arg(long)]
    require_upstream: bool,
    /// No progress bar even on a terminal.
    #[arg(long)]
    no_progress: bool,
}

#[derive(Subcommand)]
enum Cmd {
    /// Generate and check scenarios.
    Run {
        /// The seed (the same seed gives the same scenarios).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// How many scenarios.
        #[arg(long, default_value_t = 500)]
        scenarios: u64,
        #[command(flatten)]
        common: Common,
    },
    /// Re-run the scenario saved in a failure directory.
    Replay {
        /// The failure directory (holds scenario.json).
        dir: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Save generated scenario INDEX of SEED as a replayable directory
    /// (DIR/scenario.json), e.g. to look at it or to replay it.
    Save {
        /// The seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The scenario index.
        #[arg(long)]
        index: u64,
        /// The directory to create.
        dir: PathBuf,
    },
    /// Write seed inputs for the fuzz harnesses (cargo xtask fuzz) from
    /// generated scenarios and .qmail programs: DIR/realrcptto/ and
    /// DIR/qbranch/, COUNT files each.
    Corpus {
        /// The seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// How many inputs per harness.
        #[arg(long, default_value_t = 200)]
        count: u64,
        /// The directory to fill.
        dir: PathBuf,
    },
    /// (internal) Oracle R's child: resolve a materialised scenario.
    #[command(hide = true)]
    ROracle {
        /// The release modelled.
        #[arg(long, default_value = "netqmail-1.06")]
        release: qmail_resolver::QmailRelease,
        /// The world's root.
        root: PathBuf,
    },
}

fn options(c: &Common, seed: u64, scenarios: u64) -> Result<RunOptions, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own executable: {e}"))?;
    let require =
        c.require_upstream || std::env::var("QMAIL_REQUIRE_UPSTREAM").as_deref() == Ok("1");
    let out_dir = c.out.clone().unwrap_or_else(default_out_dir);
    let qmail = qmail_tree(c)?;
    if let (Some(q), Some(r)) = (&qmail, c.release) {
        if q.release.full_name != r.name() {
            return Err(format!(
                "--release {r} does not match the qmail tree given ({} at {}): with a tree, the tree's release is modelled",
                q.release.full_name,
                q.root.display()
            ));
        }
    }
    let stack = stack(c, qmail.as_ref(), &out_dir)?;
    Ok(RunOptions {
        seed,
        scenarios,
        out_dir,
        exe,
        qmail,
        stack,
        release: c.release,
        require_upstream: require,
        progress: !c.no_progress,
        require_coverage: scenarios >= 100,
        tamper: None,
    })
}

/// The one qmail tree of the run: netqmail's or notqmail's (one run
/// proves one release; both given is refused, naming both).
fn qmail_tree(c: &Common) -> Result<Option<SourceTree>, String> {
    let given = |p: &Option<PathBuf>| p.clone().filter(|p| !p.as_os_str().is_empty());
    match (given(&c.netqmail), given(&c.notqmail)) {
        (Some(n), Some(m)) => Err(format!(
            "one run proves one qmail, but both were given: netqmail {} and notqmail {} (--netqmail/QMAIL_SOURCE_NETQMAIL, --notqmail/QMAIL_SOURCE_NOTQMAIL); run once for each",
            n.display(),
            m.display()
        )),
        (Some(n), None) => Ok(Some(SourceTree::unverified(&NETQMAIL, n))),
        (None, Some(m)) => Ok(Some(SourceTree::unverified(&NOTQMAIL, m))),
        (None, None) => Ok(None),
    }
}

/// The stack of `--with-patch`, applied to the qmail tree in
/// `OUT/stacked/`; refused without a qmail tree.
fn stack(c: &Common, qmail: Option<&SourceTree>, out: &Path) -> Result<Option<Stack>, String> {
    if c.with_patch.is_empty() {
        return Ok(None);
    }
    let Some(pristine) = qmail else {
        return Err(
            "--with-patch needs a qmail tree (--netqmail DIR or --notqmail DIR, or QMAIL_SOURCE_NETQMAIL / QMAIL_SOURCE_NOTQMAIL)".into(),
        );
    };
    let mut patches = Vec::new();
    for arg in &c.with_patch {
        patches
            .push(ThirdPartyPatch::from_arg(arg).map_err(|e| format!("--with-patch {arg}: {e}"))?);
    }
    let tree = qmail_patches::apply_stack(pristine, &patches, &out.join("stacked"))
        .map_err(|e| e.to_string())?;
    for p in &patches {
        eprintln!(
            "difftest: S, Q and L on the stack: {} + third-party patch {}",
            pristine.release.full_name,
            p.label()
        );
    }
    Ok(Some(Stack {
        tree: tree.root,
        patches,
    }))
}

fn corpus(seed: u64, count: u64, dir: &std::path::Path) -> ExitCode {
    use qmail_difftest::corpus::{write_seeds, Target};
    for (t, sub) in [
        (Target::Realrcptto, "realrcptto"),
        (Target::Qbranch, "qbranch"),
    ] {
        let d = dir.join(sub);
        match write_seeds(t, seed, count, &d) {
            Ok(n) => println!("{}: {n} new seed inputs", d.display()),
            Err(e) => {
                eprintln!("difftest corpus: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::ROracle { release, root } => {
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            return match qmail_difftest::oracle::r::serve(&root, release, &mut lock) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("r-oracle: {e}");
                    ExitCode::from(111)
                }
            };
        }
        Cmd::Corpus { seed, count, dir } => return corpus(seed, count, &dir),
        Cmd::Save { seed, index, dir } => {
            let sc = qmail_difftest::scenario::generate(seed, index);
            let res = std::fs::create_dir_all(&dir)
                .and_then(|()| sc.save(&dir.join(qmail_difftest::scenario::layout::SCENARIO_JSON)));
            return match res {
                Ok(()) => {
                    println!(
                        "{}: scenario {index} of seed {seed} ({} addresses); replay: {}",
                        dir.display(),
                        sc.addresses.len(),
                        replay_command(&dir, None, None, Default::default())
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("difftest save: {}: {e}", dir.display());
                    ExitCode::FAILURE
                }
            };
        }
        Cmd::Run {
            seed,
            scenarios,
            common,
        } => options(&common, seed, scenarios)
            .and_then(|o| runner::run(&o).map(|r| (r, o)).map_err(|e| e.to_string())),
        Cmd::Replay { dir, common } => options(&common, 0, 1).and_then(|o| {
            runner::replay(&dir, &o)
                .map(|r| {
                    let mut shown = o.clone();
                    shown.out_dir = dir.join("replay");
                    (r, shown)
                })
                .map_err(|e| e.to_string())
        }),
    };
    match res {
        Ok((report, o)) => {
            for s in &report.skipped {
                println!("SKIPPED: {s}");
            }
            for f in &report.failures {
                println!(
                    "DISAGREEMENT {} scenario {}{}: {} | {}",
                    f.pair,
                    f.scenario,
                    f.address
                        .as_ref()
                        .map(|a| format!(" address {a:?}"))
                        .unwrap_or_default(),
                    f.left,
                    f.right
                );
                if let Some(r) = &f.replay {
                    println!("  replay: {r}");
                }
            }
            println!(
                "difftest: seed {}, {} scenarios, {} addresses; report: {}",
                report.seed,
                report.scenarios,
                report.addresses,
                o.out_dir.join("report.md").display()
            );
            for (k, s) in &report.pairs {
                println!(
                    "  {k}: {} compared, {} disagreed, {} excused",
                    s.compared, s.disagreed, s.excused
                );
            }
            println!("{}", report.summary_line());
            if report.failed > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("difftest: {e}");
            println!("0 passed, 1 failed");
            ExitCode::FAILURE
        }
    }
}
