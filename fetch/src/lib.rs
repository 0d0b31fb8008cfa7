//! Stage 1 of the pipeline (fetch → verify → unpack → sources → patch →
//! build → test): download the upstream release tarballs
//! into a distfiles directory.
//!
//! For each [`Tarball`] the mirrors are tried in order. A download is
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
//!
//! Hostile mirrors: each mirror attempt has an overall deadline
//! ([`FetchOptions::download_timeout`], default
//! [`DEFAULT_DOWNLOAD_TIMEOUT`]) besides the connect and per-read
//! timeouts, so a server trickling one byte at a time cannot keep a
//! download alive forever. Redirects are followed by this crate (at most
//! [`MAX_REDIRECTS`]) and only to `http` and `https` URLs; any other
//! redirect fails that mirror, naming the URL, and the next one is tried.
//! A panic inside the HTTP client is caught and counts as that mirror
//! failing. Response bodies are never decompressed.
//!
//! Concurrency: while writing, a run holds an exclusive `flock` on the
//! distfiles directory ([`qmail_verify::lock::DirLock`]), so concurrent fetches into one
//! directory are serialised, and the second one finds the file already
//! there. Under that lock, `.<file name>.*.part` temporaries left by
//! interrupted runs are removed (and said so on the log).
//!
//! A symbolic link under a distfile's name (e.g. into a shared cache) is
//! followed for reading, as long as it points to a regular file; if the
//! file it points to is wrong, a fresh download replaces the link itself
//! (by rename), never the file it points to. A FIFO, device or directory
//! at a distfile's name is never read or replaced; it is reported.
#![warn(missing_docs)]

use std::fmt;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use qmail_verify::lock::DirLock;
use qmail_verify::{Hasher, Status};
pub use upstream_hashes::Tarball;

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
    /// The longest one mirror attempt may take, from connecting to the
    /// last byte of the body, redirects included; then the next mirror is
    /// tried. Default [`DEFAULT_DOWNLOAD_TIMEOUT`].
    pub download_timeout: Duration,
}

/// Default of [`FetchOptions::download_timeout`]: 10 minutes per mirror
/// attempt (the largest release is well under 1 MB).
pub const DEFAULT_DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// Most redirects followed for one mirror.
pub const MAX_REDIRECTS: usize = 10;

/// Longest wait for a TCP connection to a mirror.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest wait for any one read from a mirror.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

impl FetchOptions {
    /// Online fetching into `distfiles`, with logging and the default
    /// download timeout.
    pub fn new(distfiles: impl Into<PathBuf>) -> Self {
        Self {
            distfiles: distfiles.into(),
            offline: false,
            log: true,
            download_timeout: DEFAULT_DOWNLOAD_TIMEOUT,
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
    /// What is at the distfile's name cannot be read or is not a regular
    /// file (a FIFO, a directory, no permission...); it is left alone.
    Unreadable(String),
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
    pub release: Tarball,
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
pub fn manual_instructions(release: &Tarball, distfiles: &Path, indent: &str) -> String {
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
            Problem::Unreadable(why) => s.push_str(&format!(
                "{}: {why} (left alone; remove or replace it)\n",
                r.file_name
            )),
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

    fn bar(&self, release: &Tarball, url: &str) -> indicatif::ProgressBar {
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
    let config = ureq::Agent::config_builder()
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_per_read(Some(READ_TIMEOUT))
        // Statuses and redirects are handled by `get`.
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(concat!("qmail-fetch/", env!("CARGO_PKG_VERSION")))
        .build();
    ureq::Agent::new_with_config(config)
}

/// Refuse anything but an http or https URL.
fn check_scheme(url: &str, redirected: bool) -> Result<(), String> {
    let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    if matches!(scheme.as_deref(), Some("http" | "https")) && url.contains("://") {
        return Ok(());
    }
    Err(if redirected {
        format!("redirected to {url}: only http and https redirects are followed")
    } else {
        format!("{url}: only http and https URLs are fetched")
    })
}

/// `location` (a redirect's Location header) resolved against `base`, an
/// http(s) URL. Dot segments are left for the server.
fn resolve(base: &str, location: &str) -> String {
    let loc = location.trim();
    let has_scheme = loc.split_once(':').is_some_and(|(s, _)| {
        s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    if has_scheme {
        return loc.to_string();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("http", base));
    if loc.starts_with("//") {
        return format!("{scheme}:{loc}");
    }
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let origin = format!("{scheme}://{}", &rest[..auth_end]);
    if loc.starts_with('/') {
        return format!("{origin}{loc}");
    }
    let path = &rest[auth_end..];
    let path = &path[..path.find(['?', '#']).unwrap_or(path.len())];
    let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
    format!("{origin}{dir}{loc}")
}

/// Why a request to `url` failed, in words; `deadline` tells an overall
/// timeout from the others.
fn describe(err: &ureq::Error, url: &str, limit: Duration) -> String {
    match err {
        ureq::Error::Timeout(ureq::Timeout::Global) => deadline_message(limit, None),
        ureq::Error::Io(e) => e.to_string(),
        other => {
            let msg = other.to_string();
            msg.strip_prefix(&format!("{url}: "))
                .unwrap_or(&msg)
                .to_string()
        }
    }
}

fn deadline_message(limit: Duration, got: Option<u64>) -> String {
    let after = got.map(|n| format!(" after {n} bytes")).unwrap_or_default();
    format!(
        "gave up{after}: download deadline of {} s exceeded \
         (raise it with --download-timeout or QMAIL_FETCH_TIMEOUT)",
        limit.as_secs_f64()
    )
}

/// GET `url`, following at most [`MAX_REDIRECTS`] redirects to http(s)
/// URLs only, within `deadline`. Returns the final URL and a 2xx response.
fn get(
    agent: &ureq::Agent,
    url: &str,
    deadline: Instant,
    limit: Duration,
) -> Result<ureq::http::Response<ureq::Body>, String> {
    check_scheme(url, false)?;
    let mut current = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(deadline_message(limit, None));
        }
        let response = agent
            .get(&current)
            .config()
            .timeout_global(Some(left))
            .build()
            .call()
            .map_err(|e| {
                let why = describe(&e, &current, limit);
                if current == url {
                    why
                } else {
                    format!("{current} (redirected): {why}")
                }
            })?;
        let status = response.status();
        let text = status.canonical_reason().unwrap_or("");
        if status.is_redirection() {
            let Some(loc) = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
            else {
                return Err(format!(
                    "HTTP {} {text} without a usable Location",
                    status.as_u16()
                ));
            };
            current = resolve(&current, loc);
            check_scheme(&current, true)?;
            continue;
        }
        if !status.is_success() {
            return Err(format!("HTTP {} {text}", status.as_u16()));
        }
        return Ok(response);
    }
    Err(format!(
        "more than {MAX_REDIRECTS} redirects (last to {current})"
    ))
}

/// Download `url` to a temporary file in `dir`, check it against
/// `release`, and rename it to `dest` if it matches.
fn try_mirror(
    agent: &ureq::Agent,
    log: &Log,
    url: &str,
    release: &Tarball,
    dir: &Path,
    dest: &Path,
    limit: Duration,
) -> Result<(), TryError> {
    let deadline = Instant::now() + limit;
    let response = get(agent, url, deadline, limit).map_err(TryError::Next)?;
    if let Some(len) = response.headers().get("content-length") {
        if let Some(len) = len.to_str().ok().and_then(|l| l.trim().parse::<u64>().ok()) {
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
    let mut body = response.into_body().into_reader().take(release.size + 1);
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let read = body.read(&mut buf);
        if Instant::now() >= deadline {
            bar.finish_and_clear();
            return Err(TryError::Next(deadline_message(limit, Some(hasher.len()))));
        }
        let n = match read {
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

/// [`try_mirror`], with a panic in it (in the HTTP client, say) turned
/// into that mirror failing. The temporary file is removed while
/// unwinding.
fn try_mirror_guarded(
    agent: &ureq::Agent,
    log: &Log,
    url: &str,
    release: &Tarball,
    opts: &FetchOptions,
    dest: &Path,
) -> Result<(), TryError> {
    let attempt = std::panic::AssertUnwindSafe(|| {
        try_mirror(
            agent,
            log,
            url,
            release,
            &opts.distfiles,
            dest,
            opts.download_timeout,
        )
    });
    std::panic::catch_unwind(attempt).unwrap_or_else(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(TryError::Next(format!(
            "internal error in the HTTP client: {msg}"
        )))
    })
}

/// Remove `.<file name>.*.part` temporaries of `releases` from `dir`. Only
/// to be called with the directory lock held: every writer holds it, so
/// any such file is left by a run that died.
fn remove_stale_parts(dir: &Path, releases: &[Tarball], log: &Log) -> Result<(), FetchError> {
    let entries = std::fs::read_dir(dir).map_err(io_err(dir))?;
    for entry in entries {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let ours = name.ends_with(".part")
            && releases
                .iter()
                .any(|r| name.starts_with(&format!(".{}.", r.file_name)));
        // file_type does not follow symbolic links.
        if !ours || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.path();
        std::fs::remove_file(&path).map_err(io_err(&path))?;
        log.line(format!(
            "{}: removed stale partial download left by an interrupted fetch",
            path.display()
        ));
    }
    Ok(())
}

/// Check what is at `dest` now; [`Problem::Unreadable`] when it cannot be
/// read (a FIFO, a directory, no permission).
fn check_existing(dest: &Path, release: &Tarball) -> Result<Status, Problem> {
    qmail_verify::verify_file(dest, release).map_err(|e| Problem::Unreadable(e.to_string()))
}

/// State shared by the releases of one [`fetch_all`].
struct Run<'a> {
    agent: ureq::Agent,
    log: Log,
    opts: &'a FetchOptions,
    releases: &'a [Tarball],
    /// Taken before the first download, kept to the end of the run.
    lock: Option<DirLock>,
}

impl Run<'_> {
    /// Create and lock the distfiles directory (once), then clear stale
    /// temporaries.
    fn lock(&mut self) -> Result<(), FetchError> {
        if self.lock.is_some() {
            return Ok(());
        }
        let dir = &self.opts.distfiles;
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let log = &self.log;
        let lock = DirLock::exclusive(dir, || {
            log.line(format!(
                "{}: another fetch is writing here; waiting for it to finish",
                dir.display()
            ))
        })
        .map_err(io_err(dir))?;
        self.lock = Some(lock);
        remove_stale_parts(dir, self.releases, &self.log)
    }

    fn fetch_one(&mut self, release: &Tarball) -> Result<Result<Fetched, Failure>, FetchError> {
        let failure = |problem| {
            Ok(Err(Failure {
                release: *release,
                problem,
            }))
        };
        let dest = qmail_verify::distfile_path(&self.opts.distfiles, release);
        let mut existing = match check_existing(&dest, release) {
            Ok(st) => st,
            Err(p) => return failure(p),
        };
        if !existing.is_ok() && !self.opts.offline {
            // Another run may have just fetched it: look again under the lock.
            self.lock()?;
            existing = match check_existing(&dest, release) {
                Ok(st) => st,
                Err(p) => return failure(p),
            };
        }
        if existing.is_ok() {
            self.log
                .line(format!("{}: already present and correct", dest.display()));
            return Ok(Ok(Fetched::AlreadyPresent { path: dest }));
        }
        if self.opts.offline {
            return failure(match existing {
                Status::Missing => Problem::Missing,
                other => Problem::Wrong(other),
            });
        }
        let existing = match existing {
            Status::Missing => None,
            other => {
                let msg = format!("{}: {other}; downloading it again", dest.display());
                self.log.line(msg);
                Some(other)
            }
        };
        self.download(release, dest, existing)
    }

    fn download(
        &self,
        release: &Tarball,
        dest: PathBuf,
        existing: Option<Status>,
    ) -> Result<Result<Fetched, Failure>, FetchError> {
        let log = &self.log;
        let mut attempts = Vec::new();
        for url in release.mirrors {
            log.line(format!("{}: fetching {url}", release.file_name));
            match try_mirror_guarded(&self.agent, log, url, release, self.opts, &dest) {
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
}

/// Make sure the distfile of `release` is present and correct in
/// `opts.distfiles`, downloading it unless it already is (or, offline,
/// failing with instructions to fetch it by hand).
pub fn fetch_release(release: &Tarball, opts: &FetchOptions) -> Result<Fetched, FetchError> {
    fetch_all(std::slice::from_ref(release), opts).map(|mut v| v.remove(0))
}

/// [`fetch_release`] for each of `releases`, in order. Every release is
/// tried even when an earlier one failed; the error then lists every
/// release that could not be obtained.
///
/// Online, the distfiles directory is locked (see [`qmail_verify::lock::DirLock`]) from
/// the first download needed to the end, so concurrent runs are
/// serialised; offline nothing is written and nothing is locked.
pub fn fetch_all(releases: &[Tarball], opts: &FetchOptions) -> Result<Vec<Fetched>, FetchError> {
    let mut run = Run {
        agent: agent(),
        log: Log::new(opts.log),
        opts,
        releases,
        lock: None,
    };
    let mut done = Vec::new();
    let mut failures = Vec::new();
    for release in releases {
        match run.fetch_one(release)? {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_against_the_url_redirected_from() {
        let base = "http://h:8/a/b/c.tgz?q=1";
        assert_eq!(resolve(base, "https://x/y"), "https://x/y");
        assert_eq!(resolve(base, "FILE:///etc/passwd"), "FILE:///etc/passwd");
        assert_eq!(resolve(base, "//other/z"), "http://other/z");
        assert_eq!(resolve(base, "/root.tgz"), "http://h:8/root.tgz");
        assert_eq!(resolve(base, "d.tgz"), "http://h:8/a/b/d.tgz");
        assert_eq!(resolve(base, " ../e "), "http://h:8/a/b/../e");
        assert_eq!(resolve("http://h", "f"), "http://h/f");
        assert_eq!(resolve("http://h?x/y", "f"), "http://h/f");
        // a colon after a slash, or a "scheme" not starting with a letter
        // or holding other characters, is part of a relative path
        assert_eq!(resolve(base, "d/e:f"), "http://h:8/a/b/d/e:f");
        assert_eq!(resolve(base, "1x:f"), "http://h:8/a/b/1x:f");
        assert_eq!(resolve(base, "svn+ssh:x"), "svn+ssh:x");
    }

    #[test]
    fn only_http_and_https_pass() {
        assert!(check_scheme("http://h/x", true).is_ok());
        assert!(check_scheme("HTTPS://h/x", true).is_ok());
        for bad in ["file:///etc/passwd", "ftp://h/x", "http:/h", "data:,x", "x"] {
            let err = check_scheme(bad, true).unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
        assert!(check_scheme("gopher://h/", false)
            .unwrap_err()
            .starts_with("gopher://h/: only http and https URLs"));
    }
}
