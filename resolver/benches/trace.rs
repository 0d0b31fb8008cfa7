//! qtraceaddr in bulk: `cargo bench -p qmail-resolver --bench trace` (or
//! `cargo xtask bench trace`).
//!
//! On the generated world of [`world`] (600 passwd users served by
//! nss_wrapper, users/cdb with wildcards, virtual domains, `.qmail` and
//! `-default` files) the real qtraceaddr binary (this profile's build)
//! traces 24,000 addresses read with `--stdin`, output to /dev/null. It
//! prints, next to the library's figures for the same addresses and
//! options (stage P on and a filesystem snapshot per run, as qtraceaddr
//! runs it; and without the snapshot):
//!
//! The child gets a small environment (PATH, HOME, LANG, TERM, USER, SHELL
//! and the four it needs), not cargo's: nss_wrapper reads its variables
//! with several `getenv` calls per look-up, and getenv walks the whole
//! environment, so under cargo's hundred-odd variables more than half of
//! the run went to getenv.
//!
//! * addresses per CPU second (user + system of the child, from `wait4`);
//! * system calls per address (`strace -f -c`): the run's total and the
//!   marginal cost, `(calls(N) - calls(1)) / (N - 1)`, which leaves out
//!   start-up (loading controls and users/cdb, the dynamic loader);
//! * heap allocations per address (valgrind's `total heap usage … allocs`,
//!   counting libc's and nss_wrapper's too; marginal over 2,400 addresses
//!   against 1); the library's come from a counting global allocator.
//!
//! With `TRACE_BENCH_KEEP` set, the world and the input files (`addrs`,
//! `tenth`, `one`) are kept for profiling and their directory printed.
//!
//! Tools that are missing (nss_wrapper, strace, valgrind) are reported as
//! `SKIPPED:` and their figures left out. Nothing here asserts a speed.

mod measure;
mod world;

use measure::{allocs, thread_cpu};

use qmail_resolver::report::format_trace_into;
use qmail_resolver::{Config, ResolveOptions, Resolver};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const NSS_WRAPPER: &str = "/usr/lib/x86_64-linux-gnu/libnss_wrapper.so";
const N: u32 = 24_000;
const RUNS: usize = 5;

fn median(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[v.len() - 1], v[v.len() / 2])
}

/// The library on the same world and addresses: (best, median)
/// addresses per CPU second and allocations per address, resolving only
/// and resolving plus formatting the text block, with a fresh filesystem
/// snapshot for each sample (one run of qtraceaddr), and resolving without
/// the snapshot (every probe a system call, the library's default).
fn library(w: &world::World, addrs: &[Vec<u8>]) {
    let opts = ResolveOptions {
        instructions: true,
        ..Default::default()
    };
    let variants = [
        ("resolve", false, true),
        ("resolve+format", true, true),
        ("no snapshot", false, false),
    ];
    for (label, format, snapshot) in variants {
        let mut rates = Vec::new();
        let mut allocs_n = 0u64;
        let mut bytes = 0usize;
        // one buffer for the whole run, as qtraceaddr keeps it
        let mut block = Vec::new();
        let mut probes = None;
        for _ in 0..RUNS {
            let r = Resolver::new(Config::with_home(&w.qmail), w.passwd.clone()).unwrap();
            let r = if snapshot { r.with_fs_snapshot() } else { r };
            let a0 = allocs();
            let c0 = thread_cpu();
            for a in addrs {
                let t = r.resolve_with(std::hint::black_box(a), &opts);
                if format {
                    block.clear();
                    format_trace_into(&t, &mut block);
                    bytes += block.len();
                }
            }
            rates.push(addrs.len() as f64 / (thread_cpu() - c0));
            allocs_n += allocs() - a0;
            probes = r.fs_snapshot_counts();
        }
        let allocs = allocs_n as f64 / (addrs.len() * RUNS) as f64;
        let (best, med) = median(rates);
        println!(
            "trace: library {label:15} best {best:8.0}, median {med:8.0} addresses/CPU s; {allocs:5.1} allocations/address{}",
            if format { format!(" ({} bytes/address)", bytes / (addrs.len() * RUNS)) } else { String::new() }
        );
        if let (Some(c), false) = (probes, format) {
            println!(
                "trace: library {label:15} {:.3} filesystem probes/address made, {:.2} answered from the snapshot (one run)",
                c.probes as f64 / addrs.len() as f64,
                c.hits as f64 / addrs.len() as f64
            );
        }
    }
}

/// The qtraceaddr command on the world, with nss_wrapper, reading `input`.
fn qtraceaddr(w: &world::World, wrapper: Option<&str>, input: &Path) -> Command {
    let exe = env!("CARGO_BIN_EXE_qtraceaddr");
    let mut c = match wrapper {
        Some(s) => {
            let mut parts = s.split(' ');
            let mut c = Command::new(parts.next().unwrap());
            c.args(parts).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    // An administrator's small environment, not cargo's (nss_wrapper calls
    // getenv several times per look-up, and getenv is linear in it).
    c.env_clear();
    for k in ["PATH", "HOME", "LANG", "TERM", "USER", "SHELL"] {
        if let Some(v) = std::env::var_os(k) {
            c.env(k, v);
        }
    }
    c.arg("--stdin")
        .env("LD_PRELOAD", NSS_WRAPPER)
        .env("NSS_WRAPPER_PASSWD", &w.passwd_file)
        .env("NSS_WRAPPER_GROUP", &w.group_file)
        .env("QMAIL", &w.qmail)
        .env_remove("QMAILBREAK")
        .env_remove("QMAILALIAS")
        .stdin(std::fs::File::open(input).unwrap())
        .stdout(Stdio::null());
    c
}

/// Runs `c` to its end; user + system CPU seconds of the child.
// wait4 reaps the child (clippy cannot see it)
#[allow(clippy::zombie_processes)]
fn child_cpu(c: &mut Command) -> f64 {
    let child = c.spawn().expect("running qtraceaddr");
    let mut status = 0;
    // SAFETY: rusage is a valid out pointer; the pid is our child's.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    assert_eq!(r, pid, "wait4");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "qtraceaddr failed: {status}"
    );
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn write_input(dir: &Path, name: &str, addrs: &[Vec<u8>]) -> PathBuf {
    let p = dir.join(name);
    let mut f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
    for a in addrs {
        f.write_all(a).unwrap();
        f.write_all(b"\n").unwrap();
    }
    f.flush().unwrap();
    p
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `strace -f -c`'s total number of calls for a run on `input`.
fn strace_calls(w: &world::World, input: &Path) -> f64 {
    let out = w.dir.path().join("strace.out");
    let wrapper = format!("strace -f -c -o {}", out.display());
    child_cpu(&mut qtraceaddr(w, Some(&wrapper), input));
    let text = std::fs::read_to_string(&out).unwrap();
    let total = text
        .lines()
        .find(|l| l.trim_end().ends_with("total"))
        .expect("strace summary");
    // % time, seconds, usecs/call, calls, [errors,] "total"
    let nums: Vec<&str> = total.split_whitespace().collect();
    nums[3].parse().expect("calls column")
}

/// valgrind's `total heap usage: N allocs` for a run on `input`.
fn valgrind_allocs(w: &world::World, input: &Path) -> f64 {
    let out = w.dir.path().join("valgrind.out");
    let wrapper = format!("valgrind -q --log-file={} --tool=memcheck", out.display());
    let mut c = qtraceaddr(w, Some(&wrapper), input);
    // -q drops the summary; ask for it on the log
    c.env("VALGRIND_OPTS", "--verbose");
    child_cpu(&mut c);
    let text = std::fs::read_to_string(&out).unwrap();
    let l = text
        .lines()
        .find(|l| l.contains("total heap usage:"))
        .expect("valgrind heap summary");
    let n = l.split("total heap usage:").nth(1).unwrap();
    n.split_whitespace()
        .next()
        .unwrap()
        .replace(',', "")
        .parse()
        .unwrap()
}

fn binary(w: &world::World, addrs: &[Vec<u8>]) {
    let input = write_input(w.dir.path(), "addrs", addrs);
    let one = write_input(w.dir.path(), "one", &addrs[..1]);
    let tenth = write_input(w.dir.path(), "tenth", &addrs[..addrs.len() / 10]);
    let rates: Vec<f64> = (0..RUNS)
        .map(|_| addrs.len() as f64 / child_cpu(&mut qtraceaddr(w, None, &input)))
        .collect();
    let (best, med) = median(rates);
    println!(
        "trace: qtraceaddr --stdin  best {best:8.0}, median {med:8.0} addresses/CPU s ({} addresses, user+sys of the child)",
        addrs.len()
    );
    if have("strace") {
        let (all, base) = (strace_calls(w, &input), strace_calls(w, &one));
        let n = addrs.len() as f64;
        println!(
            "trace: qtraceaddr --stdin  {:.2} system calls/address marginal ({:.0} in all, {:.0} for one address)",
            (all - base) / (n - 1.0),
            all,
            base
        );
    } else {
        println!("SKIPPED: strace not found: no system call figures");
    }
    if have("valgrind") {
        let n = (addrs.len() / 10) as f64;
        let (all, base) = (valgrind_allocs(w, &tenth), valgrind_allocs(w, &one));
        println!(
            "trace: qtraceaddr --stdin  {:.2} heap allocations/address marginal (valgrind, libc and nss_wrapper included; {:.0} for one address)",
            (all - base) / (n - 1.0),
            base
        );
    } else {
        println!("SKIPPED: valgrind not found: no allocation figures for the binary");
    }
}

fn main() {
    let w = world::build();
    let addrs = world::addresses(N);
    println!(
        "trace: {} addresses on a world of 600 passwd users, 400 users/cdb entries, 200 virtual domains (euid {})",
        addrs.len(),
        // SAFETY: geteuid cannot fail.
        unsafe { libc::geteuid() }
    );
    library(&w, &addrs);
    if !Path::new(NSS_WRAPPER).exists() {
        println!("SKIPPED: {NSS_WRAPPER} not found (install libnss-wrapper): no binary figures");
        return;
    }
    binary(&w, &addrs);
    if std::env::var_os("TRACE_BENCH_KEEP").is_some() {
        // for profiling: the world, the input files and a script to run it
        let d = w.dir.keep();
        println!("trace: world kept in {}", d.display());
    }
}
