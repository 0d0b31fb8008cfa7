//! `cargo xtask fetch` and `cargo xtask verify`, and [`SourceArgs`], the
//! options every later stage (patch, build, test) flattens into its own
//! arguments to get its source trees.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use qmail_sources::{SourceTree, SourcesOptions};

/// The workspace root (the directory holding the top-level Cargo.toml).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// `<workspace>/target/distfiles`, where distfiles go by default.
pub fn default_distfiles() -> PathBuf {
    workspace_root().join("target").join("distfiles")
}

fn parse_source(s: &str) -> Result<(String, PathBuf), String> {
    let (name, dir) = qmail_sources::parse_source_override(s)?;
    if upstream_hashes::release(&name).is_none() {
        let known: Vec<&str> = upstream_hashes::releases().iter().map(|r| r.name).collect();
        return Err(format!(
            "unknown release {name:?} (known: {})",
            known.join(", ")
        ));
    }
    Ok((name, dir))
}

/// The distfiles directory option shared by every command.
#[derive(clap::Args, Debug, Clone)]
pub struct DistfilesArg {
    /// Directory holding the downloaded release tarballs
    /// [default: <workspace>/target/distfiles].
    #[arg(long, value_name = "DIR", env = "QMAIL_DISTFILES")]
    pub distfiles: Option<PathBuf>,
}

impl DistfilesArg {
    /// The directory given, or the default.
    pub fn dir(&self) -> PathBuf {
        self.distfiles.clone().unwrap_or_else(default_distfiles)
    }
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    match s.trim().parse::<u64>() {
        Ok(0) => Err("the download timeout must be at least 1 second".into()),
        Ok(n) => Ok(Duration::from_secs(n)),
        Err(_) => Err(format!("expected a number of seconds, got {s:?}")),
    }
}

/// The per-mirror download deadline option shared by every command that
/// may download.
#[derive(clap::Args, Debug, Clone)]
pub struct DownloadTimeoutArg {
    /// Give up on a mirror (and try the next) when one download takes
    /// longer than SECS seconds in all, redirects included [default: 600].
    #[arg(
        long = "download-timeout",
        value_name = "SECS",
        env = "QMAIL_FETCH_TIMEOUT",
        value_parser = parse_timeout
    )]
    pub download_timeout: Option<Duration>,
}

impl DownloadTimeoutArg {
    /// The timeout given, or the library's default.
    pub fn get(&self) -> Duration {
        self.download_timeout
            .unwrap_or(qmail_fetch::DEFAULT_DOWNLOAD_TIMEOUT)
    }
}

/// Arguments of `cargo xtask fetch`.
#[derive(clap::Args, Debug)]
pub struct FetchArgs {
    #[command(flatten)]
    distfiles: DistfilesArg,
    /// Do not use the network: only check that the files are present and
    /// correct, and say how to fetch the missing ones by hand.
    #[arg(long)]
    offline: bool,
    #[command(flatten)]
    timeout: DownloadTimeoutArg,
}

/// `cargo xtask fetch`: make sure every release tarball is in the distfiles
/// directory with the right size and digests.
pub fn fetch(args: FetchArgs) -> Result<()> {
    let mut opts = qmail_fetch::FetchOptions::new(args.distfiles.dir());
    opts.offline = args.offline;
    opts.download_timeout = args.timeout.get();
    let fetched = qmail_fetch::fetch_all(upstream_hashes::tarballs(), &opts)?;
    for f in fetched {
        match f {
            qmail_fetch::Fetched::AlreadyPresent { path } => {
                println!("{}: ok (already present)", path.display())
            }
            qmail_fetch::Fetched::Downloaded { path, url } => {
                println!("{}: ok (downloaded from {url})", path.display())
            }
        }
    }
    Ok(())
}

/// Arguments of `cargo xtask verify`.
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    distfiles: DistfilesArg,
}

/// `cargo xtask verify`: one line per release tarball (`ok`, `missing`,
/// `wrong size (…)`, `wrong digest (…)`, `not a regular file: …`,
/// `cannot read …`); fails unless all are ok.
pub fn verify(args: VerifyArgs) -> Result<()> {
    let dir = args.distfiles.dir();
    let releases = upstream_hashes::tarballs();
    let mut bad = 0;
    for release in releases {
        let path = qmail_verify::distfile_path(&dir, release);
        // One line per tarball, also when one cannot be read (a FIFO or a
        // directory in its place, no permission): the rest are still checked.
        match qmail_verify::verify_file(&path, release) {
            Ok(status) => {
                println!("{}: {status}", path.display());
                if !status.is_ok() {
                    bad += 1;
                }
            }
            Err(e) => {
                println!("{e}");
                bad += 1;
            }
        }
    }
    if bad > 0 {
        anyhow::bail!(
            "{bad} of {} release tarballs in {} are not the upstream ones \
             (`cargo xtask fetch` downloads them)",
            releases.len(),
            dir.display()
        );
    }
    Ok(())
}

/// Options for obtaining the source trees, for other subcommands to
/// `#[command(flatten)]` into their arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct SourceArgs {
    #[command(flatten)]
    pub distfiles: DistfilesArg,
    /// Do not use the network; the tarballs must already be in the
    /// distfiles directory.
    #[arg(long)]
    pub offline: bool,
    /// Use an already unpacked tree as is instead of the verified tarball,
    /// e.g. `--source netqmail=/src/netqmail-1.06` (repeatable). A tree
    /// whose digest is the release's pinned tree digest is reported as
    /// matching it; any other tree is used with `provenance NOT verified`.
    /// `--source notqmail=DIR` builds, patches and tests notqmail-1.09 in
    /// netqmail's place (it has no tarball to fetch). Without this option,
    /// QMAIL_SOURCE_NETQMAIL / QMAIL_SOURCE_MESS822 / QMAIL_SOURCE_NOTQMAIL
    /// are used the same way when set.
    #[arg(long = "source", value_name = "NAME=DIR", value_parser = parse_source)]
    pub sources: Vec<(String, PathBuf)>,
    #[command(flatten)]
    pub timeout: DownloadTimeoutArg,
}

impl SourceArgs {
    /// The overrides: `--source` options first, then
    /// `QMAIL_SOURCE_<NAME>` for releases without one.
    pub fn overrides(&self) -> Vec<(String, PathBuf)> {
        let mut out = self.sources.clone();
        for release in upstream_hashes::releases() {
            if out.iter().any(|(n, _)| n == release.name) {
                continue;
            }
            let var = format!("QMAIL_SOURCE_{}", release.name.to_ascii_uppercase());
            if let Some(dir) = std::env::var_os(&var).filter(|d| !d.is_empty()) {
                out.push((release.name.to_string(), PathBuf::from(dir)));
            }
        }
        out
    }

    /// One source tree per release (netqmail or notqmail, then mess822):
    /// the `--source` tree as is, or the verified tarball (fetched unless `--offline`)
    /// unpacked into `work_dir/<name-version>/`, replacing any tree already
    /// there. Prints each tree's provenance line to stderr.
    pub fn obtain(&self, work_dir: &Path) -> Result<Vec<SourceTree>> {
        let mut opts = SourcesOptions::new(self.distfiles.dir());
        opts.offline = self.offline;
        opts.overrides = self.overrides();
        opts.download_timeout = self.timeout.get();
        let trees = qmail_sources::obtain_sources(&opts, work_dir)?;
        for t in &trees {
            eprintln!("{}", t.provenance_note());
        }
        Ok(trees)
    }
}
