//! qtraceaddr on hostile inputs: FIFOs and devices as control files,
//! users/cdb and .qmail files, oversized files, local parts with very many
//! `-`, .qmail files with very many `?LABEL COMMAND` lines, and write
//! errors on standard output.
//!
//! Each child runs under an address-space limit of 1 GiB, so that a
//! regression fails (the child aborts) instead of exhausting the machine's
//! memory, and under a 120 s safety timeout, so that one that blocks fails
//! instead of hanging the test run.
mod common;
use common::*;
use qmail_resolver::ControlFiles;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const AS_LIMIT: u64 = 1 << 30;
const SAFETY_TIMEOUT: Duration = Duration::from_secs(120);

struct Run {
    /// Exit code (`None`: killed by a signal or by the timeout).
    code: Option<i32>,
    timed_out: bool,
    stdout: Vec<u8>,
    stderr: String,
    /// ru_maxrss of the child, in KiB.
    maxrss_kib: i64,
}

/// A qmail home with locals `example.com` and a users/cdb whose catch-all
/// `+` entry sends every local part to user `u` with home `SANDBOX/h`,
/// dash `-` and ext = the local part (so no passwd lookup is needed).
struct Home {
    sb: Sandbox,
    qmail: PathBuf,
}

impl Home {
    fn new() -> Home {
        let sb = Sandbox::new();
        let home = String::from_utf8(sb.home("h")).unwrap();
        let f = ControlFiles {
            me: Some(b"mail.example.com\n".to_vec()),
            locals: Some(b"example.com\n".to_vec()),
            ..Default::default()
        };
        let assign = format!("+:u:{}:1:{home}:-::\n.\n", ouid());
        let qmail = sb.qmail_home(&f, Some(assign.as_bytes()));
        Home { sb, qmail }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_qtraceaddr"));
        c.env("QMAIL", &self.qmail)
            .env_remove("QMAILBREAK")
            .env_remove("QMAILALIAS");
        c
    }

    /// Runs `c` with stdout and stderr going to files in the sandbox.
    fn run(&self, c: Command) -> Run {
        let out = self.sb.p("stdout");
        let so = std::fs::File::create(&out).unwrap();
        let r = run_to(c, Stdio::from(so), &self.sb.p("stderr"));
        Run {
            stdout: std::fs::read(&out).unwrap(),
            ..r
        }
    }
}

/// Spawns `c` (stdin closed, stdout `stdout`, stderr to the file `err`)
/// under [`AS_LIMIT`], waits for it with `wait4` to get its peak memory,
/// and kills it after [`SAFETY_TIMEOUT`].
fn run_to(mut c: Command, stdout: Stdio, err: &Path) -> Run {
    let se = std::fs::File::create(err).unwrap();
    c.stdin(Stdio::null()).stdout(stdout).stderr(se);
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
    unsafe {
        c.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: AS_LIMIT,
                rlim_max: AS_LIMIT,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // reaped below with wait4, which also gives its peak memory
    #[allow(clippy::zombie_processes)]
    let child = c.spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    let start = Instant::now();
    let mut timed_out = false;
    let (status, ru) = loop {
        let mut status = 0;
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: valid out pointers; pid is our child.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
        assert!(r != -1, "wait4: {}", std::io::Error::last_os_error());
        if r == pid {
            break (status, ru);
        }
        if start.elapsed() > SAFETY_TIMEOUT && !timed_out {
            timed_out = true;
            // SAFETY: pid is our child, not yet reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    Run {
        code,
        timed_out,
        stdout: Vec::new(),
        stderr: std::fs::read_to_string(err).unwrap_or_default(),
        maxrss_kib: ru.ru_maxrss,
    }
}

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: c is NUL-terminated.
    assert_eq!(
        unsafe { libc::mkfifo(c.as_ptr(), 0o644) },
        0,
        "mkfifo {p:?}"
    );
}

/// A sparse file of `len` bytes (zeros).
fn sparse(p: &Path, len: u64, mode: u32) {
    let f = std::fs::File::create(p).unwrap();
    f.set_len(len).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn stdout_text(r: &Run) -> String {
    String::from_utf8_lossy(&r.stdout).into_owned()
}

/// Refusals of control files: exit 111 with the path and the reason, and
/// never blocking on a FIFO or reading a device.
#[test]
fn control_file_fifo_device_and_oversize_are_refused_with_the_path() {
    let h = Home::new();
    let locals = h.qmail.join("control/locals");
    let cases: [(&str, &dyn Fn()); 3] = [
        ("not a regular file (fifo)", &|| mkfifo(&locals)),
        ("not a regular file (character device)", &|| {
            std::os::unix::fs::symlink("/dev/zero", &locals).unwrap()
        }),
        ("larger than the limit of 16777216 bytes", &|| {
            sparse(&locals, (16 << 20) + 1, 0o644)
        }),
    ];
    for (want, make) in cases {
        std::fs::remove_file(&locals).unwrap();
        make();
        let mut c = h.cmd();
        c.arg("x@example.com");
        let r = h.run(c);
        assert!(!r.timed_out, "{want}: qtraceaddr blocked");
        assert_eq!(r.code, Some(111), "{want}: {}", r.stderr);
        let msg = format!(
            "qtraceaddr: unable to read control file {}: {want}",
            locals.display()
        );
        assert!(r.stderr.contains(&msg), "want {msg:?}, got {:?}", r.stderr);
        assert!(r.stdout.is_empty());
    }
    // exactly at the limit is still read (and gives no local domains)
    std::fs::remove_file(&locals).unwrap();
    sparse(&locals, 16 << 20, 0o644);
    let mut c = h.cmd();
    c.arg("x@example.com");
    let r = h.run(c);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(stdout_text(&r).contains("accept address for remote delivery\n"));
}

/// A FIFO or device users/cdb: the deferral qmail-lspawn gives (QLX_CDB),
/// naming the file, without blocking or reading it. Over 64 MiB: exit 111
/// naming the file and the limit.
#[test]
fn users_cdb_fifo_device_and_oversize() {
    let h = Home::new();
    let cdb = h.qmail.join("users/cdb");
    for (kind, make) in [
        ("fifo", &(|p: &Path| mkfifo(p)) as &dyn Fn(&Path)),
        ("character device", &|p: &Path| {
            std::os::unix::fs::symlink("/dev/zero", p).unwrap()
        }),
    ] {
        std::fs::remove_file(&cdb).unwrap();
        make(&cdb);
        let mut c = h.cmd();
        c.arg("x@example.com");
        let r = h.run(c);
        assert!(!r.timed_out, "{kind}: qtraceaddr blocked");
        assert_eq!(r.code, Some(0), "{kind}: {}", r.stderr);
        let want = format!(
            "domain exists in locals\nunreadable users/cdb: {}: not a regular file ({kind})\n\
             defer: Trouble reading users/cdb in qmail-lspawn.\n\n",
            cdb.display()
        );
        assert!(stdout_text(&r).ends_with(&want), "{}", stdout_text(&r));
        let mut c = h.cmd();
        c.args(["--json", "x@example.com"]);
        let r = h.run(c);
        let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
        assert_eq!(v["users"]["kind"], "trouble");
        assert_eq!(v["users"]["trouble"], "not_regular");
        let raw = String::from_utf8_lossy(&r.stdout);
        assert_eq!(raw.matches("\"kind\":\"trouble\"").count(), 1);
        assert!(
            !raw.contains("\"kind\":\"not_regular\""),
            "one key per name"
        );
        assert_eq!(v["users"]["file_type"], kind);
        assert_eq!(v["verdict"]["verdict"], "temp_fail");
    }
    std::fs::remove_file(&cdb).unwrap();
    sparse(&cdb, (64 << 20) + 1, 0o644);
    let mut c = h.cmd();
    c.arg("x@example.com");
    let r = h.run(c);
    assert_eq!(r.code, Some(111), "{}", r.stderr);
    let msg = format!(
        "{}: users/cdb larger than the limit of 67108864 bytes",
        cdb.display()
    );
    assert!(r.stderr.contains(&msg), "{:?}", r.stderr);
}

/// .qmail files: a FIFO is "not a regular file" (skipped, as qmail-local
/// does) without blocking; a regular file over 16 MiB defers, naming it.
#[test]
fn dotqmail_fifo_skipped_and_oversize_defers() {
    let h = Home::new();
    mkfifo(&h.sb.p("h/.qmail-x"));
    let mut c = h.cmd();
    c.arg("x@example.com");
    let r = h.run(c);
    assert!(!r.timed_out, "qtraceaddr blocked on a FIFO .qmail");
    let hp = h.sb.p("h");
    let want = format!(
        "not a regular file:{0}/.qmail-x\nmissing .qmail file:{0}/.qmail-default\n\
         bounce message due to lack of a .qmail file\n\n",
        hp.display()
    );
    assert!(stdout_text(&r).ends_with(&want), "{}", stdout_text(&r));

    // exactly 16 MiB is read, not refused
    std::fs::remove_file(h.sb.p("h/.qmail-x")).unwrap();
    sparse(&h.sb.p("h/.qmail-x"), 16 << 20, 0o644);
    let mut c = h.cmd();
    c.arg("x@example.com");
    let r = h.run(c);
    assert!(
        !stdout_text(&r).contains("file too big"),
        "{}",
        stdout_text(&r)
    );
    assert!(
        stdout_text(&r).contains("deliver according to"),
        "{}",
        stdout_text(&r)
    );

    std::fs::remove_file(h.sb.p("h/.qmail-x")).unwrap();
    sparse(&h.sb.p("h/.qmail-x"), (16 << 20) + 1, 0o644);
    for args in [&["x@example.com"][..], &["--explain", "x@example.com"]] {
        let mut c = h.cmd();
        c.args(args);
        let r = h.run(c);
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        assert!(
            stdout_text(&r)
                .ends_with("\ndefer: Unable to open .qmail-x: file too big. (#4.3.0)\n\n"),
            "{args:?}: {}",
            stdout_text(&r)
        );
        assert!(!stdout_text(&r).contains("deliver according to"));
    }
}

fn dashes(n: usize) -> String {
    format!("x{}@example.com", "-".repeat(n))
}

/// A local part `x` + n dashes: qmail-local would probe n + 2 names; those
/// of 4096 bytes or more (ENAMETOOLONG) are counted, not listed, so output
/// and memory stay bounded; the 100,000-dash run used to abort.
#[test]
fn many_dashes_bounded_output_and_memory() {
    let h = Home::new();
    let mut sizes = Vec::new();
    for n in [50_000usize, 100_000] {
        let mut c = h.cmd();
        c.arg(dashes(n));
        let r = h.run(c);
        assert_eq!(r.code, Some(0), "{n} dashes: {}", r.stderr);
        let t = stdout_text(&r);
        // ext = "x" + n dashes; the exact name `.qmail-` + ext is too long,
        // and so is `.qmail-` + ext[..i] + `default` for every i >= 4082
        // after a dash (i = 2..=n+1): n - 4080 of them.
        let too_long = 1 + (n - 4080);
        let want = format!(
            "missing .qmail files: {too_long} names of 4096 bytes or more (ENAMETOOLONG), not probed\n"
        );
        assert!(t.contains(&want), "{n}: no {want:?}");
        let probed = t
            .lines()
            .filter(|l| l.starts_with("missing .qmail file:"))
            .count();
        // the names shorter than 4096 bytes: i = 0 and i = 2..4081
        assert_eq!(probed, 1 + 4080, "{n} dashes");
        assert!(t.lines().all(|l| l.len() < 4096 + 200
            || l.starts_with("input: ")
            || l.starts_with("after percenthack: ")));
        assert!(t.ends_with("bounce message due to lack of a .qmail file\n\n"));
        assert!(
            r.maxrss_kib < 256 * 1024,
            "{n} dashes: {} KiB",
            r.maxrss_kib
        );
        sizes.push(r.stdout.len());
        let mut c = h.cmd();
        c.args(["--json", &dashes(n)]);
        let r = h.run(c);
        assert_eq!(r.code, Some(0), "--json {n} dashes: {}", r.stderr);
        let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
        assert_eq!(v["search_too_long"], too_long);
        assert_eq!(v["search"].as_array().unwrap().len(), 1 + 4080);
        assert!(
            r.maxrss_kib < 256 * 1024,
            "--json {n}: {} KiB",
            r.maxrss_kib
        );
    }
    // doubling the dashes adds only the two longer address lines
    assert!(
        sizes[1] - sizes[0] < 2 * 50_000 + 100,
        "output grew from {} to {}",
        sizes[0],
        sizes[1]
    );
}

fn branchy_qmail(h: &Home, n: usize) {
    let mut s = String::from("#many branches\n");
    for i in 0..n {
        s.push_str(&format!("?L{i} /bin/true\n"));
    }
    s.push_str("./Maildir/\n");
    h.sb.file("h/.qmail-x", s.as_bytes(), 0o644);
}

/// `--explain` on 25,000 and 50,000 `?LABEL COMMAND` lines: exit-99 paths
/// for the first 16 only, one line counting the rest; output linear in the
/// number of lines, memory bounded (8,000 lines used to take 3.5 GB).
#[test]
fn explain_many_branch_lines_is_capped_and_linear() {
    let h = Home::new();
    let mut sizes = Vec::new();
    for n in [25_000usize, 50_000] {
        branchy_qmail(&h, n);
        let mut c = h.cmd();
        c.args(["--explain", "x@example.com"]);
        let r = h.run(c);
        assert_eq!(r.code, Some(0), "{n}: {}", r.stderr);
        let t = stdout_text(&r);
        let paths = t
            .lines()
            .filter(|l| l.starts_with("explain: deliveries if the command on line "))
            .count();
        assert_eq!(paths, 16, "{n}");
        let want = format!(
            "explain: {} more ?LABEL COMMAND lines: their exit-99 paths are not shown (limit 16)\n\n",
            n - 16
        );
        assert!(
            t.ends_with(&want),
            "{n}: {}",
            &t[t.len().saturating_sub(300)..]
        );
        assert!(t.contains("explain: deliveries if the command on line 17 exits 99 (others 0):\n  line 2: program /bin/true\n"));
        assert!(r.maxrss_kib < 256 * 1024, "{n}: {} KiB", r.maxrss_kib);
        sizes.push(r.stdout.len());
    }
    assert!(
        sizes[1] < sizes[0] * 5 / 2,
        "output grew from {} to {} for twice the lines",
        sizes[0],
        sizes[1]
    );
}

/// Every write error on stdout exits 111 with a message on stderr: stdout
/// on /dev/full (`--help` used to panic with exit 101) and on a pipe
/// whose reader is gone.
#[test]
fn write_errors_exit_111_with_a_message() {
    let h = Home::new();
    let arg_sets: [&[&str]; 4] = [
        &["--help"],
        &["x@example.com"],
        &["--json", "x@example.com"],
        &["--explain", "--check", "x@example.com"],
    ];
    for args in arg_sets {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let mut c = h.cmd();
        c.args(args);
        let r = run_to(c, Stdio::from(full), &h.sb.p("stderr"));
        assert_eq!(r.code, Some(111), "{args:?} > /dev/full: {}", r.stderr);
        assert!(
            r.stderr.contains("qtraceaddr: write error: "),
            "{args:?}: {:?}",
            r.stderr
        );
        assert!(!r.stderr.contains("panicked"), "{args:?}: {:?}", r.stderr);

        let mut fds = [0; 2];
        // SAFETY: fds is a valid out array.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: both descriptors are ours; the reader is closed at once.
        unsafe { libc::close(fds[0]) };
        let w = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fds[1]) };
        let mut c = h.cmd();
        c.args(args);
        let r = run_to(c, Stdio::from(w), &h.sb.p("stderr"));
        assert_eq!(r.code, Some(111), "{args:?} | closed: {}", r.stderr);
        assert!(
            r.stderr.contains("qtraceaddr: write error: "),
            "{args:?}: {:?}",
            r.stderr
        );
    }
}

/// qmail-newu's model refuses a FIFO users/assign (naming it) instead of
/// waiting for a writer, and leaves no users/cdb behind.
#[test]
fn compile_assign_file_refuses_a_fifo() {
    let sb = Sandbox::new();
    let assign = sb.p("assign");
    mkfifo(&assign);
    let cdb = sb.p("cdb");
    let (tx, rx) = std::sync::mpsc::channel();
    let (a, c) = (assign.clone(), cdb.clone());
    std::thread::spawn(move || {
        let _ =
            tx.send(qmail_resolver::users::compile_assign_file(&a, &c).map_err(|e| e.to_string()));
    });
    let r = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("compile_assign_file blocked on a FIFO");
    let e = r.expect_err("a FIFO is not a users/assign");
    assert!(
        e.contains(&assign.display().to_string()) && e.contains("not a regular file (fifo)"),
        "{e}"
    );
    assert!(!cdb.exists());
}
