//! `cargo xtask build`: build one qmail (netqmail-1.06, or notqmail-1.09
//! with `--source notqmail=DIR`) and mess822-0.58 without root and install
//! them into `--prefix` (or stage them under `--destdir`), with qtraceaddr
//! and its man page.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use qmail_build::install::ExtraFile;
use qmail_build::{resolve_ids, BuildOptions};
use upstream_hashes::{Release, SourceTree, MESS822};

use crate::sources::{workspace_root, SourceArgs};
use crate::stack::StackArgs;

/// Arguments of `cargo xtask build`.
#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// Where qmail lives (its conf-qmail, compiled into the
    /// programs); must be absolute. mess822 goes into PREFIX/mess822.
    #[arg(long, value_name = "DIR")]
    pub prefix: PathBuf,
    /// Stage the installation under DESTDIR/PREFIX (for packaging); the
    /// programs still refer to PREFIX and ownership is only recorded in
    /// the manifest.
    #[arg(long, value_name = "DIR")]
    pub destdir: Option<PathBuf>,
    /// mess822's conf-home [default: PREFIX/mess822].
    #[arg(long, value_name = "DIR")]
    pub mess822_home: Option<PathBuf>,
    /// The C compiler (written into conf-cc and conf-ld).
    #[arg(long, value_name = "CC", default_value = "cc")]
    pub cc: String,
    /// Flags after -O2 in conf-cc [default: what the compiler needs for
    /// K&R C: nothing for gcc < 14, `-std=gnu17 -fpermissive` for gcc ≥ 14].
    #[arg(long, value_name = "FLAGS", allow_hyphen_values = true)]
    pub cflags: Option<String>,
    /// Only these patches (comma-separated short names); default: all.
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub patches: Vec<String>,
    /// Numeric ids of the qmail users and groups:
    /// alias=N,qmaild=N,qmaill=N,root=N,qmailp=N,qmailq=N,qmailr=N,qmails=N,qmail=N,nofiles=N
    /// [default: this machine's qmail users if all exist, else the build
    /// user's ids].
    #[arg(long, value_name = "MAP", conflicts_with = "as_build_user")]
    pub uid_map: Option<String>,
    /// Compile the invoking user's uid and gid in for every qmail user and
    /// group (a private, single-user installation). Refused when run as
    /// root (see --allow-root-ids).
    #[arg(long)]
    pub as_build_user: bool,
    /// Allow ids that give qmail users other than `root` uid 0 (from
    /// --as-build-user or the build-user fallback run as root, or from
    /// --uid-map). Dangerous: qmail-queue is then setuid root and every
    /// qmail daemon runs as root.
    #[arg(long)]
    pub allow_root_ids: bool,
    /// Follow symbolic links among the components of --prefix,
    /// --mess822-home and --destdir themselves (refused by default, with
    /// the link's path). Links inside the installed tree are always
    /// refused.
    #[arg(long)]
    pub allow_symlinked_prefix: bool,
    /// Work directory: pristine trees in DIR/pristine, build trees in
    /// DIR/build [default: <workspace>/target/work]. Locked while in use
    /// (DIR/.qtk-lock): a second build or patch with the same DIR waits.
    #[arg(long, value_name = "DIR")]
    pub work: Option<PathBuf>,
    /// Rebuild even if nothing changed.
    #[arg(long)]
    pub force: bool,
    /// Do not build and install qtraceaddr. By default it is built with
    /// `cargo build --profile dist -p qmail-resolver --bin qtraceaddr`
    /// (release code, stripped, paths remapped, so the bytes do not depend
    /// on where the workspace is) and installed as PREFIX/bin/qtraceaddr
    /// (0755) with its page PREFIX/man/man1/qtraceaddr.1 (0644), owned
    /// like netqmail's programs (qmail's root, group qmail) and listed in
    /// the manifest as package qmail-toolkit.
    #[arg(long)]
    pub no_qtraceaddr: bool,
    #[command(flatten)]
    pub stack: StackArgs,
    #[command(flatten)]
    pub sources: SourceArgs,
}

/// Run `cargo xtask build`.
pub fn run(args: BuildArgs) -> Result<()> {
    let work = args
        .work
        .clone()
        .unwrap_or_else(|| workspace_root().join("target").join("work"));
    // Everything that can be refused is refused before sources are
    // unpacked or anything is compiled.
    qmail_build::check_install_paths(
        &args.prefix,
        args.mess822_home.as_deref(),
        args.destdir.as_deref(),
        args.allow_symlinked_prefix,
    )?;
    let (ids, ids_source, note) = resolve_ids(
        args.uid_map.as_deref(),
        args.as_build_user,
        args.allow_root_ids,
    )?;
    if let Some(n) = note {
        eprintln!("build: {n}");
    }
    refuse_two_qmails(&args.sources.sources)?;
    let patches = qmail_patches::select(&args.patches)?;
    let stack = args.stack.load()?;
    let _lock = crate::patch::lock_work(&work, "build")?;
    let trees = args.sources.obtain(&work.join("pristine"))?;
    let extra_files = if args.no_qtraceaddr {
        Vec::new()
    } else {
        qtraceaddr_files()?
    };
    let opts = BuildOptions {
        qmail: qmail_tree(&trees, &args.sources.sources)?,
        mess822: tree_of(&trees, &MESS822)?,
        prefix: args.prefix.clone(),
        mess822_home: args.mess822_home.clone(),
        destdir: args.destdir.clone(),
        cc: args.cc.clone(),
        cflags: args.cflags.clone(),
        patches,
        stack,
        ids,
        ids_source,
        work: work.join("build"),
        force: args.force,
        allow_symlinked_prefix: args.allow_symlinked_prefix,
        extra_files,
    };
    let out = qmail_build::build(&opts)?;
    if out.up_to_date {
        println!(
            "up to date: {} (nothing changed since the last build)",
            out.manifest_path.display()
        );
        return Ok(());
    }
    for (stage, t) in &out.stages {
        eprintln!("build: {stage}: {:.1} s", t.as_secs_f64());
    }
    let m = &out.manifest;
    println!(
        "installed {} paths for {} (mess822 in {}){}",
        m.files.len(),
        m.prefix,
        m.mess822_home,
        match &opts.destdir {
            Some(d) => format!(", staged under {}", d.display()),
            None => String::new(),
        }
    );
    for p in &m.patches {
        match p.origin.as_str() {
            "generated" => println!("patch {}  {}", p.sha256, p.file),
            o => println!("patch {}  {} ({o}, -p{})", p.sha256, p.file, p.strip),
        }
    }
    println!("manifest: {}", out.manifest_path.display());
    if !m.ownership_applied {
        println!(
            "ownership not applied (not root, or staging); the manifest lists each path's intended owner"
        );
    }
    if !out.instcheck_warnings.is_empty() {
        println!(
            "instcheck printed {} warnings:",
            out.instcheck_warnings.len()
        );
        for w in &out.instcheck_warnings {
            println!("  {w}");
        }
    }
    Ok(())
}

/// The qmail short names a build can be given.
const QMAILS: [&str; 2] = ["netqmail", "notqmail"];

/// One build installs one qmail: refuse `--source netqmail=… --source
/// notqmail=…` before anything is unpacked or compiled.
fn refuse_two_qmails(given: &[(String, PathBuf)]) -> Result<()> {
    let both: Vec<String> = given
        .iter()
        .filter(|(n, _)| QMAILS.contains(&n.as_str()))
        .map(|(n, d)| format!("--source {n}={}", d.display()))
        .collect();
    if both.len() > 1 {
        bail!(
            "one build installs one qmail, but {} were given ({}); build each into its own --prefix with only its --source",
            both.len(),
            both.join(", ")
        );
    }
    Ok(())
}

/// The qmail tree to build among `trees`: the one named by an explicit
/// `--source` when there is one (a tree of the other qmail that came from
/// `QMAIL_SOURCE_*` or the default download is then not built), else the
/// only qmail tree there is ([`qmail_build::select_qmail`]).
pub(crate) fn qmail_tree(trees: &[SourceTree], given: &[(String, PathBuf)]) -> Result<SourceTree> {
    let chosen = given
        .iter()
        .map(|(n, _)| n.as_str())
        .find(|n| QMAILS.contains(n));
    let candidates: Vec<SourceTree> = trees
        .iter()
        .filter(|t| chosen.is_none_or(|c| !QMAILS.contains(&t.release.name) || t.release.name == c))
        .cloned()
        .collect();
    Ok(qmail_build::select_qmail(&candidates)?)
}

/// The tree of `release` among `trees`.
pub(crate) fn tree_of(trees: &[SourceTree], release: &Release) -> Result<SourceTree> {
    trees
        .iter()
        .find(|t| t.release == release)
        .cloned()
        .with_context(|| format!("no source tree for {}", release.full_name))
}

/// Build qtraceaddr (profile `dist`) and return it and its man page as
/// files for the build to install.
pub(crate) fn qtraceaddr_files() -> Result<Vec<ExtraFile>> {
    let root = workspace_root();
    let exe = cargo_build_bin(&root, "qmail-resolver", "qtraceaddr")?;
    Ok(vec![
        ExtraFile {
            src: exe,
            dest_rel: "bin/qtraceaddr".into(),
            mode: 0o755,
        },
        ExtraFile {
            src: root.join("resolver").join("qtraceaddr.1"),
            dest_rel: "man/man1/qtraceaddr.1".into(),
            mode: 0o644,
        },
    ])
}

/// The flags that keep build paths out of the binary: the workspace and
/// cargo's registry sources are remapped to fixed names, added to what
/// the caller gave in `CARGO_ENCODED_RUSTFLAGS` or `RUSTFLAGS`.
fn remap_rustflags(root: &Path) -> String {
    let mut flags: Vec<String> = match std::env::var("CARGO_ENCODED_RUSTFLAGS") {
        Ok(s) if !s.is_empty() => s.split('\x1f').map(str::to_string).collect(),
        _ => std::env::var("RUSTFLAGS")
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect(),
    };
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    if let Some(h) = cargo_home {
        flags.push(format!("--remap-path-prefix={}=/cargo", h.display()));
    }
    flags.push(format!(
        "--remap-path-prefix={}=/qmail-toolkit",
        root.display()
    ));
    flags.join("\x1f")
}

/// `cargo build --profile dist -p PACKAGE --bin BIN` in `root`; returns
/// the executable cargo reports.
fn cargo_build_bin(root: &Path, package: &str, bin: &str) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("build: cargo build --profile dist -p {package} --bin {bin}");
    let mut child = Command::new(cargo)
        .args([
            "build",
            "--profile",
            "dist",
            "--message-format=json-render-diagnostics",
        ])
        .args(["-p", package, "--bin", bin])
        .current_dir(root)
        .env("CARGO_ENCODED_RUSTFLAGS", remap_rustflags(root))
        .env_remove("RUSTFLAGS")
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run cargo")?;
    let out = child.stdout.take().context("no stdout from cargo")?;
    let mut exe = None;
    for line in std::io::BufReader::new(out).lines() {
        let line = line.context("reading cargo's output")?;
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if v["reason"] == "compiler-artifact" && v["target"]["name"] == bin {
            if let Some(p) = v["executable"].as_str() {
                exe = Some(PathBuf::from(p));
            }
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    if !status.success() {
        bail!("cargo build of {bin} failed ({status})");
    }
    exe.with_context(|| format!("cargo built no executable named {bin}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use upstream_hashes::{NETQMAIL, NOTQMAIL};

    fn given(names: &[&str]) -> Vec<(String, PathBuf)> {
        names
            .iter()
            .map(|n| (n.to_string(), PathBuf::from(format!("/src/{n}"))))
            .collect()
    }

    #[test]
    fn both_qmails_on_the_command_line_are_refused_before_anything() {
        let err = refuse_two_qmails(&given(&["netqmail", "mess822", "notqmail"]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "one build installs one qmail, but 2 were given (--source netqmail=/src/netqmail, --source notqmail=/src/notqmail); build each into its own --prefix with only its --source"
        );
        refuse_two_qmails(&given(&["notqmail", "mess822"])).unwrap();
    }

    #[test]
    fn the_qmail_given_with_source_wins_over_one_from_the_environment() {
        let trees = [
            SourceTree::unverified(&NETQMAIL, "/env/netqmail-1.06"),
            SourceTree::unverified(&MESS822, "/env/mess822-0.58"),
            SourceTree::unverified(&NOTQMAIL, "/src/notqmail"),
        ];
        let t = qmail_tree(&trees, &given(&["notqmail"])).unwrap();
        assert_eq!(t.release.name, "notqmail");
        let t = qmail_tree(&trees, &given(&["netqmail"])).unwrap();
        assert_eq!(t.root, PathBuf::from("/env/netqmail-1.06"));
        let err = qmail_tree(&trees, &[]).unwrap_err().to_string();
        assert!(err.starts_with("one build installs one qmail"), "{err}");
        let t = qmail_tree(&trees[..2], &[]).unwrap();
        assert_eq!(t.release.name, "netqmail");
    }
}
