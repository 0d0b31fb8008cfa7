//! The RCPT benchmark (`cargo xtask bench rcpt`, which runs the
//! `bench-rcpt` binary): what the realrcptto check adds per RCPT to
//! qmail-smtpd, in microseconds and system calls, patched against
//! unpatched on the same qmail home; and, as the unit to state it in, one
//! users/cdb look-up made the way qmail-lspawn makes it
//! (`tests/c/bench-cdb-lookup.c`, linked with qmail's own `cdb.a`). Not a
//! test: nothing asserts a speed.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::cc;
use crate::oracle::sq::{SqBuild, SqError};
use crate::procenv;

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SqError {
    let what = what.into();
    move |source| SqError::Io { what, source }
}

/// The qmail home of the benchmark under `root`: `bench.example` local,
/// users `joe` (a `.qmail`) and alias (`.qmail-exists-default`) in
/// users/cdb.
fn bench_home(root: &Path) -> Result<PathBuf, SqError> {
    let home = root.join("qmailhome");
    let w = |p: PathBuf, d: &[u8]| -> Result<(), SqError> {
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)
                .map_err(io(format!("creating {}", parent.display())))?;
        }
        std::fs::write(&p, d).map_err(io(format!("writing {}", p.display())))
    };
    w(home.join("control/me"), b"bench.example\n")?;
    w(home.join("control/locals"), b"bench.example\n")?;
    w(home.join("control/rcpthosts"), b"bench.example\n")?;
    let users = root.join("users");
    let joe = users.join("joe");
    let alias = users.join("alias");
    w(alias.join(".qmail-exists-default"), b"./Maildir/\n")?;
    w(joe.join(".qmail"), b"./Maildir/\n")?;
    std::fs::create_dir_all(home.join("users")).map_err(io("creating users/"))?;
    let f = std::fs::File::create(home.join("users/cdb")).map_err(io("creating users/cdb"))?;
    let mut c = cdb::CDBMake::new(f).map_err(io("writing users/cdb"))?;
    let rec = |h: &Path, dash: &str| format!("x\x001000\x001000\x00{}\x00{dash}\x00", h.display());
    c.add(b"", b"-").map_err(io("writing users/cdb"))?;
    c.add(b"!joe\0", rec(&joe, "").as_bytes())
        .map_err(io("writing users/cdb"))?;
    c.add(b"!", rec(&alias, "-").as_bytes())
        .map_err(io("writing users/cdb"))?;
    c.finish().map_err(io("writing users/cdb"))?;
    Ok(home)
}

/// The SMTP session: HELO, MAIL, `n` RCPTs of the four kinds, QUIT.
fn bench_script(n: usize) -> Vec<u8> {
    let mut s = b"HELO bench\r\nMAIL FROM:<sender@remote.example>\r\n".to_vec();
    for i in 0..n {
        let a = match i % 4 {
            0 => "joe@bench.example".to_string(),
            1 => format!("exists-{i}@bench.example"),
            2 => format!("nobody{i}@bench.example"),
            _ => format!("x{i}@remote.example"),
        };
        s.extend_from_slice(format!("RCPT TO:<{a}>\r\n").as_bytes());
    }
    s.extend_from_slice(b"QUIT\r\n");
    s
}

/// CPU seconds (user + system) of all the children this process has
/// waited for so far.
fn children_cpu() -> f64 {
    // SAFETY: getrusage only writes into the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage struct.
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) } != 0 {
        return 0.0;
    }
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

/// One session's figures.
struct Session {
    /// Wall-clock seconds.
    wall: f64,
    /// CPU seconds of qmail-smtpd (and its children): less disturbed by
    /// other load on the machine than the wall clock.
    cpu: f64,
    /// What qmail-smtpd replied.
    replies: String,
}

/// Run one pipelined session (under `strace -f -c -o FILE` when
/// `strace_out` is given). Sessions must run one at a time: the CPU time
/// is the growth of this process's waited-for children's time.
fn bench_session(
    prog: &Path,
    home: &Path,
    script: &[u8],
    strace_out: Option<&Path>,
) -> Result<Session, SqError> {
    let mut cmd = match strace_out {
        Some(o) => {
            let strace = procenv::which("strace")
                .ok_or_else(|| SqError::Build("strace not found".into()))?;
            let mut c = Command::new(strace);
            c.arg("-f").arg("-c").arg("-o").arg(o).arg(prog);
            c
        }
        None => Command::new(prog),
    };
    cmd.env_clear()
        .env("TCPREMOTEIP", "192.0.2.1")
        .env("PROTO", "TCP")
        .env("RELAYCLIENT", "")
        .current_dir(home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let cpu0 = children_cpu();
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(io(format!("starting {}", prog.display())))?;
    let mut stdin = child.stdin.take().expect("piped");
    let input = script.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut out)
        .map_err(io("reading qmail-smtpd"))?;
    child.wait().map_err(io("waiting for qmail-smtpd"))?;
    let wall = start.elapsed().as_secs_f64();
    let cpu = children_cpu() - cpu0;
    let _ = writer.join();
    Ok(Session {
        wall,
        cpu,
        replies: out,
    })
}

/// The `calls` column of the `total` line of `strace -c` output in `path`.
fn strace_calls(path: &Path) -> Result<u64, SqError> {
    let text = std::fs::read_to_string(path).map_err(io(format!("reading {}", path.display())))?;
    let total = text
        .lines()
        .rev()
        .find(|l| l.trim_end().ends_with("total"))
        .ok_or_else(|| SqError::Protocol(format!("no total line in strace output:\n{text}")))?;
    let f: Vec<&str> = total.split_whitespace().collect();
    // % time, seconds, usecs/call, calls, [errors], "total"
    f.get(3)
        .and_then(|x| x.parse().ok())
        .ok_or_else(|| SqError::Protocol(format!("cannot parse strace total line {total:?}")))
}

/// The median of `v` (not empty).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

/// The benchmark of what realrcptto adds per RCPT: one pipelined SMTP
/// session with 1,000 RCPTs (a quarter each: a user with a default
/// delivery, an existing `-default` extension, a missing mailbox, a remote
/// address with RELAYCLIENT set) against patched and unpatched
/// qmail-smtpd on the same qmail home, minus a session with no RCPT.
/// Reports microseconds per RCPT (median of 7 runs) and system calls per
/// RCPT (`strace -f -c`), and the same two figures for one qmail-lspawn
/// users/cdb look-up of `joe` on that home, with the added cost per RCPT
/// in look-ups. Builds and scenario files go under `work`.
pub fn rcpt_bench(netqmail_src: &Path, work: &Path) -> Result<String, SqError> {
    let builds = work.join("builds");
    let src = upstream_hashes::SourceTree::unverified(&upstream_hashes::NETQMAIL, netqmail_src);
    let patched = SqBuild::build_in(&src, true, &builds)?;
    let pristine = SqBuild::build_in(&src, false, &builds)?;
    let scen = work.join("scenario");
    let _ = std::fs::remove_dir_all(&scen);
    let home = bench_home(&scen)?;
    let mut report = String::new();
    report.push_str(&format!(
        "realrcptto RCPT cost: one SMTP session, {N} RCPTs (25% user, 25% -default file, 25% no mailbox, 25% remote), median of {RUNS} runs minus a 0-RCPT session\n"
    ));
    let mut rows = Vec::new();
    for (label, b) in [("unpatched", &pristine), ("patched", &patched)] {
        rows.push(measure(label, &b.smtpd(), &home, work)?);
    }
    for r in &rows {
        let (label, us, wall, calls) = (r.label, r.us, r.wall_us, r.calls);
        let (acc, rej) = (r.accepted, r.rejected);
        report.push_str(&format!(
            "{label:>9}: {us:6.2} CPU us/RCPT ({wall:6.2} wall)  {calls:6.2} syscalls/RCPT  (250 ok: {acc}, 550: {rej})\n"
        ));
    }
    let lk = lookup_cost(&pristine, &home, work)?;
    if let [r0, r1] = rows.as_slice() {
        let (us, calls) = (r1.us - r0.us, r1.calls - r0.calls);
        let wall = r1.wall_us - r0.wall_us;
        report.push_str(&format!(
            "    added: {us:6.2} CPU us/RCPT ({wall:6.2} wall)  {calls:6.2} syscalls/RCPT\n"
        ));
        report.push_str(&format!(
            "one users/cdb look-up as qmail-lspawn makes it (open, cdb_seek \"\" and \"!joe\\0\", read, close): {:.2} CPU us, {:.2} syscalls\n",
            lk.us, lk.calls
        ));
        report.push_str(&format!(
            "    added per RCPT = {:.2} look-ups of time, {:.2} look-ups of syscalls\n",
            us / lk.us,
            calls / lk.calls
        ));
    }
    Ok(report)
}

/// What one users/cdb look-up costs.
struct Lookup {
    /// Microseconds per look-up.
    us: f64,
    /// System calls per look-up.
    calls: f64,
}

/// Timed look-ups per run of the look-up driver.
const LOOKUPS: usize = 20_000;

/// Builds `tests/c/bench-cdb-lookup.c` against the pristine tree's
/// `cdb.a`/`open.a` and measures one look-up of `joe` in `home`'s
/// users/cdb: microseconds (median of [`RUNS`] runs of [`LOOKUPS`]) and
/// system calls (`strace -c`, [`N`] look-ups minus none).
fn lookup_cost(pristine: &SqBuild, home: &Path, work: &Path) -> Result<Lookup, SqError> {
    let exe = work.join("bench-cdb-lookup");
    let root = pristine.root();
    cc::compile_linked(
        &cc::default_cc(),
        &[cc::driver_dir().join("bench-cdb-lookup.c")],
        root,
        &[root.join("cdb.a"), root.join("open.a")],
        &exe,
    )
    .map_err(|e| SqError::Build(e.to_string()))?;
    let mut per = Vec::new();
    for _ in 0..RUNS {
        per.push(lookup_run(&exe, home, LOOKUPS, None)? / LOOKUPS as f64);
    }
    let sf = work.join("strace-lookup-full.txt");
    let se = work.join("strace-lookup-empty.txt");
    lookup_run(&exe, home, N, Some(&sf))?;
    lookup_run(&exe, home, 0, Some(&se))?;
    let calls = (strace_calls(&sf)? as f64 - strace_calls(&se)? as f64) / N as f64;
    Ok(Lookup {
        us: median(per) / 1e3,
        calls,
    })
}

/// Runs the look-up driver for `count` look-ups (under `strace -c` when
/// `strace_out` is given); returns the nanoseconds it reports.
fn lookup_run(
    exe: &Path,
    home: &Path,
    count: usize,
    strace_out: Option<&Path>,
) -> Result<f64, SqError> {
    let mut cmd = match strace_out {
        Some(o) => {
            let strace = procenv::which("strace")
                .ok_or_else(|| SqError::Build("strace not found".into()))?;
            let mut c = Command::new(strace);
            c.arg("-c").arg("-o").arg(o).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    let out = cmd
        .arg("joe")
        .arg(count.to_string())
        .env_clear()
        .current_dir(home)
        .stdin(Stdio::null())
        .output()
        .map_err(io(format!("running {}", exe.display())))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(SqError::Protocol(format!(
            "{} failed: {}",
            exe.display(),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    text.split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .ok_or_else(|| SqError::Protocol(format!("cannot parse look-up driver output {text:?}")))
}

/// RCPTs in the measured session.
const N: usize = 1000;
/// Timed runs per session (the median is taken).
const RUNS: usize = 11;

/// One line of the report.
struct Row {
    label: &'static str,
    /// CPU microseconds per RCPT.
    us: f64,
    /// Wall-clock microseconds per RCPT.
    wall_us: f64,
    /// System calls per RCPT.
    calls: f64,
    /// RCPTs answered `250 ok`.
    accepted: usize,
    /// RCPTs answered 550 (no mailbox).
    rejected: usize,
}

/// Measures the qmail-smtpd `prog` on `home` (strace output under `work`).
fn measure(label: &'static str, prog: &Path, home: &Path, work: &Path) -> Result<Row, SqError> {
    let full = bench_script(N);
    let empty = bench_script(0);
    let check = bench_session(prog, home, &full, None)?.replies;
    let rejected = check
        .matches("550 sorry, no mailbox here by that name. (#5.1.1)")
        .count();
    // every "250 ok" but the one for MAIL
    let accepted = check
        .lines()
        .filter(|l| l.starts_with("250 ok"))
        .count()
        .saturating_sub(1);
    let (mut w_full, mut w_empty, mut c_full, mut c_empty) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let f = bench_session(prog, home, &full, None)?;
        let e = bench_session(prog, home, &empty, None)?;
        w_full.push(f.wall);
        c_full.push(f.cpu);
        w_empty.push(e.wall);
        c_empty.push(e.cpu);
    }
    let us = (median(c_full) - median(c_empty)) * 1e6 / N as f64;
    let wall_us = (median(w_full) - median(w_empty)) * 1e6 / N as f64;
    let sf = work.join(format!("strace-{label}-full.txt"));
    let se = work.join(format!("strace-{label}-empty.txt"));
    bench_session(prog, home, &full, Some(&sf))?;
    bench_session(prog, home, &empty, Some(&se))?;
    let calls = (strace_calls(&sf)? as f64 - strace_calls(&se)? as f64) / N as f64;
    Ok(Row {
        label,
        us,
        wall_us,
        calls,
        accepted,
        rejected,
    })
}
