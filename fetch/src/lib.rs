//! Download the upstream release tarballs into a distfiles directory.
//!
//! For each [`Release`] the mirrors are tried in order. A download is
//! streamed to a temporary file in the distfiles directory while its size
//! and SHA-256/SHA-512 are computed; only when both match is it renamed to
//! its real name, so a distfile under its real name is always a verified
//! one. Any failure of one mirror (HTTP error status, connection refused,
//! DNS failure, truncated body, wrong size, wrong digest) moves on to the
//! next mirror. A file already present and correct is never downloaded
//! again, and in offline mode the network is never touched.
//!
//! When a release cannot be obtained, the error lists, per release, what
//! went wrong, the URLs, the size and the SHA-256 to fetch it by hand and
//! the directory to put it in.
#![warn(missing_docs)]

use std::fmt;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use qmail_verify::{Hasher, Status};
pub use upstream_hashes::Release;

/// How to fetch.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Directory the distfiles live in; created (with parents) when a
    /// download is needed.
    pub distfiles: PathBuf,
    /// Never touch the network: only check what is already there.
    pub offline: bool,
    /// Write progress to stderr: a progress bar per download when stderr is
    /// a terminal, plain log lines otherwise. `false` prints nothing.
    pub log: bool,
}

impl FetchOptions {
    /// Online fetching into `distfiles`, with logging.
    pub fn new(distfiles: impl Into<PathBuf>) -> Self {
        Self {
            distfiles: distfiles.into(),
            offline: false,
            log: true,
        }
    }
}

/// What [`fetch_release`] did for one release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The file was already there with the right size and digests; the
    /// network was not used.
    AlreadyPresent {
        /// The distfile.
        path: PathBuf,
    },
    /// The file was downloaded, checked and renamed into place.
    Downloaded {
        /// The distfile.
        path: PathBuf,
        /// The mirror it came from.
        url: String,
    },
}

impl Fetched {
    /// The distfile's path.
    pub fn path(&self) -> &Path {
        match self {
            Fetched::AlreadyPresent { path } | Fetched::Downloaded { path, .. } => path,
        }
    }
}

/// One failed try of one mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The URL tried.
    pub url: String,
    /// Why it was not accepted, e.g. `HTTP 404 Not Found` or
    /// `wrong digest (expected …, got …)`.
    pub reason: String,
}

/// Why one release could not be obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Offline and the file is not there.
    Missing,
    /// Offline and the file there is not the upstream one.
    Wrong(Status),
    /// Every mirror failed.
    MirrorsFailed {
        /// Each mirror tried and why it failed, in order.
        attempts: Vec<Attempt>,
        /// What was wrong with a file already present under the real name
        /// (it is left as it was), if there was one.
        existing: Option<Status>,
    },
}

/// One release that could not be obtained, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The release.
    pub release: Release,
    /// What went wrong.
    pub problem: Problem,
}

/// Errors from fetching.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// A local file operation failed (creating the directory, writing the
    /// temporary file, renaming it into place, reading an existing file).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
    /// One or more releases could not be obtained; the message says how to
    /// fetch them by hand.
    #[error("{}", describe_unavailable(distfiles, *offline, failures))]
    Unavailable {
        /// The distfiles directory the files belong in.
        distfiles: PathBuf,
        /// Whether this was an offline run.
        offline: bool,
        /// The releases that could not be obtained.
        failures: Vec<Failure>,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> FetchError + '_ {
    move |source| FetchError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Instructions to obtain `release` by hand: its URLs, size, SHA-256 and
/// where to put it. Every line is indented by `indent`.
pub fn manual_instructions(release: &Release, distfiles: &Path, indent: &str) -> String {
    use fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "{indent}download it from one of:");
    for url in release.mirrors {
        let _ = writeln!(s, "{indent}  {url}");
    }
    let _ = writeln!(s, "{indent}size:    {} bytes", release.size);
    let _ = writeln!(s, "{indent}SHA-256: {}", release.sha256);
    let _ = write!(
        s,
        "{indent}put it at {}",
        distfiles.join(release.file_name).display()
    );
    s
}

fn describe_unavailable(distfiles: &Path, offline: bool, failures: &[Failure]) -> String {
    let mut s = String::new();
    let n = failures.len();
    let files = if n == 1 { "distfile" } else { "distfiles" };
    if offline {
        s.push_str(&format!(
            "offline: {n} {files} not present or not correct in {} (the network was not used)",
            distfiles.display()
        ));
    } else {
        s.push_str(&format!(
            "could not download {n} {files} into {}",
            distfiles.display()
        ));
    }
    for f in failures {
        let r = &f.release;
        s.push('\n');
        match &f.problem {
            Problem::Missing => s.push_str(&format!("{}: missing\n", r.file_name)),
            Problem::Wrong(st) => s.push_str(&format!(
                "{}: {st} (the file is not the upstream release; remove or replace it)\n",
                r.file_name
            )),
            Problem::MirrorsFailed { attempts, existing } => {
                s.push_str(&format!(
                    "{}: no mirror gave the upstream file\n",
                    r.file_name
                ));
                if let Some(st) = existing {
                    s.push_str(&format!("  file already present was left as is: {st}\n"));
                }
                for a in attempts {
                    s.push_str(&format!("  {}: {}\n", a.url, a.reason));
                }
                if attempts.is_empty() {
                    s.push_str("  (no mirrors configured)\n");
                }
            }
        }
        s.push_str(&manual_instructions(r, distfiles, "  "));
    }
    s
}

/// Writes log lines and progress bars.
struct Log {
    enabled: bool,
    bars: bool,
}

impl Log {
    fn new(enabled: bool) -> Self {
        Self {
            enabled,
            bars: enabled && io::stderr().is_terminal(),
        }
    }

    fn line(&self, msg: impl fmt::Display) {
        if self.enabled {
            eprintln!("{msg}");
        }
    }

    fn bar(&self, release: &Release, url: &str) -> indicatif::ProgressBar {
        if !self.bars {
            return indicatif::ProgressBar::hidden();
        }
        let style = indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ");
        let bar = indicatif::ProgressBar::new(release.size).with_style(style);
        bar.set_message(format!("{} <- {url}", release.file_name));
        bar
    }
}

/// Result of trying one mirror.
enum TryError {
    /// This mirror failed; try the next one.
    Next(String),
    /// A local problem; stop.
    Fatal(FetchError),
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(30))
        .timeout_read(Duration::from_secs(60))
        .user_agent(concat!("qmail-fetch/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Download `url` to a temporary file in `dir`, check it against
/// `release`, and rename it to `dest` if it matches.
fn try_mirror(
    agent: &ureq::Agent,
    log: &Log,
    url: &str,
    release: &Release,
    dir: &Path,
    dest: &Path,
) -> Result<(), TryError> {
    let response = match agent.get(url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(code, r)) => {
            return Err(TryError::Next(format!("HTTP {code} {}", r.status_text())))
        }
        Err(ureq::Error::Transport(t)) => {
            // ureq's message starts with the URL, which the caller prints.
            let msg = t.to_string();
            let msg = msg.strip_prefix(&format!("{url}: ")).unwrap_or(&msg);
            return Err(TryError::Next(msg.to_string()));
        }
    };
    if let Some(len) = response.header("Content-Length") {
        if let Ok(len) = len.trim().parse::<u64>() {
            if len != release.size {
                return Err(TryError::Next(format!(
                    "wrong size (expected {}, server announced {len})",
                    release.size
                )));
            }
        }
    }

    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.", release.file_name))
        .suffix(".part")
        .tempfile_in(dir)
        .map_err(|e| TryError::Fatal(io_err(dir)(e)))?;
    let tmp_path = tmp.path().to_path_buf();
    let fatal = |e| TryError::Fatal(io_err(&tmp_path)(e));

    let bar = log.bar(release, url);
    // One byte more than expected is enough to know the size is wrong.
    let mut body = response.into_reader().take(release.size + 1);
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                bar.finish_and_clear();
                return Err(TryError::Next(format!(
                    "download failed after {} bytes: {e}",
                    hasher.len()
                )));
            }
        };
        hasher.update(&buf[..n]);
        tmp.as_file_mut().write_all(&buf[..n]).map_err(fatal)?;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();

    let got = hasher.len();
    if got > release.size {
        return Err(TryError::Next(format!(
            "wrong size (expected {}, server sent more)",
            release.size
        )));
    }
    let status = hasher.finish().status(release);
    if !status.is_ok() {
        return Err(TryError::Next(status.to_string()));
    }

    let file = tmp.as_file();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(fatal)?;
    }
    file.sync_all().map_err(fatal)?;
    tmp.persist(dest)
        .map_err(|e| TryError::Fatal(io_err(dest)(e.error)))?;
    Ok(())
}

fn fetch_one(
    agent: &ureq::Agent,
    log: &Log,
    release: &Release,
    opts: &FetchOptions,
) -> Result<Result<Fetched, Failure>, FetchError> {
    let dir = &opts.distfiles;
    let dest = qmail_verify::distfile_path(dir, release);
    let existing = qmail_verify::verify_file(&dest, release).map_err(|e| FetchError::Io {
        path: e.path,
        source: e.source,
    })?;
    if existing.is_ok() {
        log.line(format!("{}: already present and correct", dest.display()));
        return Ok(Ok(Fetched::AlreadyPresent { path: dest }));
    }
    if opts.offline {
        let problem = match existing {
            Status::Missing => Problem::Missing,
            other => Problem::Wrong(other),
        };
        return Ok(Err(Failure {
            release: *release,
            problem,
        }));
    }
    let existing = match existing {
        Status::Missing => None,
        other => {
            log.line(format!("{}: {other}; downloading it again", dest.display()));
            Some(other)
        }
    };

    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut attempts = Vec::new();
    for url in release.mirrors {
        log.line(format!("{}: fetching {url}", release.file_name));
        match try_mirror(agent, log, url, release, dir, &dest) {
            Ok(()) => {
                log.line(format!(
                    "{}: size and SHA-256 ok, saved as {}",
                    release.file_name,
                    dest.display()
                ));
                return Ok(Ok(Fetched::Downloaded {
                    path: dest,
                    url: url.to_string(),
                }));
            }
            Err(TryError::Next(reason)) => {
                log.line(format!("{}: {url}: {reason}", release.file_name));
                attempts.push(Attempt {
                    url: url.to_string(),
                    reason,
                });
            }
            Err(TryError::Fatal(e)) => return Err(e),
        }
    }
    Ok(Err(Failure {
        release: *release,
        problem: Problem::MirrorsFailed { attempts, existing },
    }))
}

/// Make sure the distfile of `release` is present and correct in
/// `opts.distfiles`, downloading it unless it already is (or, offline,
/// failing with instructions to fetch it by hand).
pub fn fetch_release(release: &Release, opts: &FetchOptions) -> Result<Fetched, FetchError> {
    fetch_all(std::slice::from_ref(release), opts).map(|mut v| v.remove(0))
}

/// [`fetch_release`] for each of `releases`, in order. Every release is
/// tried even when an earlier one failed; the error then lists every
/// release that could not be obtained.
pub fn fetch_all(releases: &[Release], opts: &FetchOptions) -> Result<Vec<Fetched>, FetchError> {
    let log = Log::new(opts.log);
    let agent = agent();
    let mut done = Vec::new();
    let mut failures = Vec::new();
    for release in releases {
        match fetch_one(&agent, &log, release, opts)? {
            Ok(f) => done.push(f),
            Err(f) => failures.push(f),
        }
    }
    if failures.is_empty() {
        Ok(done)
    } else {
        Err(FetchError::Unavailable {
            distfiles: opts.distfiles.clone(),
            offline: opts.offline,
            failures,
        })
    }
}
