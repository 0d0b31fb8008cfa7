//! `cargo xtask fuzz [--seconds N] [TARGET ...]`: libFuzzer runs of the C
//! cores.
//!
//! * `realrcptto`: tests/c/fuzz-realrcptto.c, the realrcptto core on
//!   control files, users/cdb, passwd, a file tree and addresses from the
//!   fuzz input;
//! * `qbranch`: tests/c/fuzz-qbranch.c, a `.qmail` file through the branch
//!   core.
//!
//! Each harness is built with `clang -fsanitize=fuzzer,address,undefined
//! -fno-sanitize-recover=all` (coverage instrumentation on the core only)
//! into `target/fuzz/fuzz-TARGET`, its corpus `target/fuzz/corpus/TARGET`
//! is seeded from generated scenarios (`difftest corpus`, run through
//! `cargo run`; see `qmail_difftest::corpus`), and it runs for `--seconds`
//! (one target after the other). A crash, leak, timeout or out-of-memory input is saved in
//! `target/fuzz/crashes-TARGET/`, and the command fails naming that file.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::sources::workspace_root;

/// How many seed inputs each corpus gets from the scenario generator.
const SEEDS: u64 = 200;
/// The scenario seed the corpus is made from.
const SEED: u64 = 1;
/// libFuzzer's limit for one input, seconds.
const UNIT_TIMEOUT: u64 = 20;

/// A fuzz target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FuzzTarget {
    /// The realrcptto core (patches/c/realrcptto.c).
    Realrcptto,
    /// The qmail-local branch core (patches/c/qbranch.c).
    Qbranch,
}

impl FuzzTarget {
    fn name(self) -> &'static str {
        match self {
            FuzzTarget::Realrcptto => "realrcptto",
            FuzzTarget::Qbranch => "qbranch",
        }
    }

    /// Sources (harness, core) and extra compiler flags.
    fn sources(self, root: &Path) -> (Vec<PathBuf>, &'static [&'static str]) {
        let core = root.join("patches/c");
        let tests = root.join("tests/c");
        match self {
            FuzzTarget::Realrcptto => (
                vec![tests.join("fuzz-realrcptto.c"), core.join("realrcptto.c")],
                &["-Dgetpwnam=rrt_fuzz_getpwnam"],
            ),
            FuzzTarget::Qbranch => (
                vec![tests.join("fuzz-qbranch.c"), core.join("qbranch.c")],
                &[],
            ),
        }
    }
}

/// Arguments of `cargo xtask fuzz`.
#[derive(clap::Args)]
pub struct FuzzArgs {
    /// How long each target runs, in seconds.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    seconds: u64,
    /// The targets [default: all].
    #[arg(value_enum)]
    targets: Vec<FuzzTarget>,
}

/// Run `cargo xtask fuzz …`.
pub fn run(args: FuzzArgs) -> Result<()> {
    let root = workspace_root();
    let work = root.join("target").join("fuzz");
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let targets = if args.targets.is_empty() {
        vec![FuzzTarget::Realrcptto, FuzzTarget::Qbranch]
    } else {
        args.targets.clone()
    };
    let scratch = Scratch::new(&work)?;
    let mut crashes = Vec::new();
    let mut passed = 0;
    let corpora = work.join("corpus");
    seed_corpora(&corpora)?;
    for t in &targets {
        let exe = build(*t, &root, &work)?;
        let corpus_dir = corpora.join(t.name());
        match fuzz_one(*t, &exe, &corpus_dir, &work, &scratch.0, args.seconds)? {
            None => passed += 1,
            Some(c) => crashes.push(c),
        }
    }
    println!("fuzz: {passed} passed, {} failed", crashes.len());
    if !crashes.is_empty() {
        bail!("fuzzing found a crash: {}", crashes.join("; "));
    }
    Ok(())
}

/// Seeds `corpora/realrcptto` and `corpora/qbranch` with [`SEEDS`] inputs
/// each from scenario seed [`SEED`] (`difftest corpus`; inputs already
/// there are kept).
fn seed_corpora(corpora: &Path) -> Result<()> {
    println!(
        "fuzz: seed inputs from scenario seed {SEED} in {}",
        corpora.display()
    );
    let mut c = crate::difftest_bin::command("difftest");
    c.arg("corpus")
        .arg("--seed")
        .arg(SEED.to_string())
        .arg("--count")
        .arg(SEEDS.to_string())
        .arg(corpora);
    crate::difftest_bin::run(&mut c, "difftest corpus")
        .with_context(|| format!("seeding {}", corpora.display()))
}

/// A scratch directory for the harnesses' worlds (TMPDIR), on tmpfs when
/// /dev/shm is usable (much faster), removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(work: &Path) -> Result<Scratch> {
        let name = format!("qmail-fuzz-{}", std::process::id());
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() && std::fs::create_dir(shm.join(&name)).is_ok() {
            shm.join(&name)
        } else {
            let d = work.join("tmp");
            if d.exists() {
                std::fs::remove_dir_all(&d).with_context(|| format!("removing {}", d.display()))?;
            }
            std::fs::create_dir(&d).with_context(|| format!("creating {}", d.display()))?;
            d
        };
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Run the compiler; on failure, its error output (with a hint when the
/// libFuzzer runtime is missing).
fn clang(cc: &str, args: &[std::ffi::OsString], what: &Path) -> Result<()> {
    let out = Command::new(cc)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {cc} (install clang)"))?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let hint = if err.contains("clang_rt") {
        " (the libFuzzer runtime is missing: on Debian install libclang-rt-14-dev)"
    } else {
        ""
    };
    bail!("building {}{hint}:\n{err}", what.display());
}

/// Build the harness for `t` into `work/fuzz-NAME`: the core with
/// coverage instrumentation, the harness without (so that libFuzzer
/// steers by the core's branches, not by the harness's parsing), both
/// with ASan and UBSan.
fn build(t: FuzzTarget, root: &Path, work: &Path) -> Result<PathBuf> {
    let cc = std::env::var("FUZZ_CC").unwrap_or_else(|_| "clang".into());
    let exe = work.join(format!("fuzz-{}", t.name()));
    let tmp = work.join(format!(".fuzz-{}.tmp", t.name()));
    let (sources, extra) = t.sources(root);
    let common = |san: &str| -> Vec<std::ffi::OsString> {
        let mut v: Vec<std::ffi::OsString> = [
            "-g",
            "-O1",
            san,
            "-fno-sanitize-recover=all",
            "-Wall",
            "-Wextra",
            "-Werror",
        ]
        .iter()
        .map(|s| s.into())
        .collect();
        v.extend(extra.iter().map(|s| s.into()));
        v.push(format!("-I{}", root.join("patches/c").display()).into());
        v
    };
    let mut objs = Vec::new();
    for (i, src) in sources.iter().enumerate() {
        // sources[0] is the harness, the rest the core
        let san = if i == 0 {
            "-fsanitize=address,undefined"
        } else {
            "-fsanitize=fuzzer-no-link,address,undefined"
        };
        let obj = work.join(format!(".fuzz-{}-{i}.o", t.name()));
        let mut a = common(san);
        a.extend(["-c".into(), src.into(), "-o".into(), obj.clone().into()]);
        clang(&cc, &a, src)?;
        objs.push(obj);
    }
    let mut a = common("-fsanitize=fuzzer,address,undefined");
    a.extend(objs.iter().map(|o| o.into()));
    a.extend(["-o".into(), tmp.clone().into()]);
    let res = clang(&cc, &a, &exe);
    for o in &objs {
        let _ = std::fs::remove_file(o);
    }
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, &exe).with_context(|| format!("renaming to {}", exe.display()))?;
    Ok(exe)
}

/// The artifact files in `dir`.
fn artifacts(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e.with_context(|| format!("reading {}", dir.display()))?;
        v.push(e.path());
    }
    v.sort();
    Ok(v)
}

/// Fuzz `t` for `seconds`; Some(message naming the crash file) when it
/// found one.
fn fuzz_one(
    t: FuzzTarget,
    exe: &Path,
    corpus_dir: &Path,
    work: &Path,
    scratch: &Path,
    seconds: u64,
) -> Result<Option<String>> {
    let crash_dir = work.join(format!("crashes-{}", t.name()));
    std::fs::create_dir_all(&crash_dir)
        .with_context(|| format!("creating {}", crash_dir.display()))?;
    let before = artifacts(&crash_dir)?;
    let log = work.join(format!("{}.log", t.name()));
    let logf =
        std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let started = Instant::now();
    let status = Command::new(exe)
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-timeout={UNIT_TIMEOUT}"))
        .arg("-close_fd_mask=2")
        .arg("-print_final_stats=1")
        .arg(format!("-artifact_prefix={}/", crash_dir.display()))
        .arg(corpus_dir)
        .env("TMPDIR", scratch)
        .env("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(logf)
        .status()
        .with_context(|| format!("cannot run {}", exe.display()))?;
    let secs = started.elapsed().as_secs();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let runs = text
        .lines()
        .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "?".into());
    let new: Vec<PathBuf> = artifacts(&crash_dir)?
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    if status.success() && new.is_empty() {
        println!(
            "fuzz {}: ok, {runs} inputs in {secs} s, corpus {}, log {}",
            t.name(),
            corpus_dir.display(),
            log.display()
        );
        return Ok(None);
    }
    // show what libFuzzer said about it
    let tail: Vec<&str> = text.lines().rev().take(40).collect();
    for l in tail.iter().rev() {
        eprintln!("{l}");
    }
    let msg = match new.first() {
        Some(c) => format!(
            "{}: {} (reproduce: {} {})",
            t.name(),
            c.display(),
            exe.display(),
            c.display()
        ),
        None => format!(
            "{}: libFuzzer failed ({status}) without saving an input; see {}",
            t.name(),
            log.display()
        ),
    };
    println!("fuzz {}: FAILED after {runs} inputs: {msg}", t.name());
    Ok(Some(msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A harness that crashes on inputs starting with "X", seeded with
    /// such an input: fuzz_one must report the saved crash file.
    #[test]
    fn a_crash_is_saved_and_named() {
        let work = workspace_root()
            .join("target")
            .join(format!("fuzz-selftest-{}", std::process::id()));
        std::fs::create_dir_all(&work).unwrap();
        let src = work.join("crash.c");
        std::fs::write(
            &src,
            "#include <stdint.h>\n#include <stdlib.h>\n\
             int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\n\
             int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)\n\
             { if (n > 0 && d[0] == 'X') abort(); return 0; }\n",
        )
        .unwrap();
        let exe = work.join("fuzz-crash");
        let built = Command::new("clang")
            .arg("-fsanitize=fuzzer")
            .arg(&src)
            .arg("-o")
            .arg(&exe)
            .output();
        if !built.map(|o| o.status.success()).unwrap_or(false) {
            println!(
                "SKIPPED: clang with the libFuzzer runtime (libclang-rt-14-dev) is not available"
            );
            let _ = std::fs::remove_dir_all(&work);
            return;
        }
        let corpus = work.join("corpus");
        std::fs::create_dir_all(&corpus).unwrap();
        std::fs::write(corpus.join("x"), "Xboom").unwrap();
        let res = fuzz_one(FuzzTarget::Qbranch, &exe, &corpus, &work, &work, 5).unwrap();
        let msg = res.expect("the crash must be reported");
        let crash_dir = work.join("crashes-qbranch");
        let saved = artifacts(&crash_dir).unwrap();
        assert_eq!(saved.len(), 1, "{saved:?}");
        assert!(msg.contains(&saved[0].display().to_string()), "{msg}");
        assert!(msg.contains("reproduce:"), "{msg}");
        assert_eq!(std::fs::read(&saved[0]).unwrap(), b"Xboom");
        // a clean run reports nothing
        std::fs::remove_file(corpus.join("x")).unwrap();
        std::fs::write(corpus.join("y"), "fine").unwrap();
        std::fs::remove_dir_all(&crash_dir).unwrap();
        let exe_ok = work.join("fuzz-ok");
        std::fs::write(
            &src,
            "#include <stdint.h>\n#include <stddef.h>\n\
             int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\n\
             int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)\n\
             { (void) d; (void) n; return 0; }\n",
        )
        .unwrap();
        assert!(Command::new("clang")
            .arg("-fsanitize=fuzzer")
            .arg(&src)
            .arg("-o")
            .arg(&exe_ok)
            .status()
            .unwrap()
            .success());
        let res = fuzz_one(FuzzTarget::Qbranch, &exe_ok, &corpus, &work, &work, 1).unwrap();
        assert!(res.is_none(), "{res:?}");
        let _ = std::fs::remove_dir_all(&work);
    }
}
