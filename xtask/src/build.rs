//! `cargo xtask build`: build netqmail-1.06 and mess822-0.58 without root
//! and install them into `--prefix` (or stage them under `--destdir`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use qmail_build::{resolve_ids, BuildOptions};
use upstream_hashes::{Release, SourceTree, MESS822, NETQMAIL};

use crate::sources::{workspace_root, SourceArgs};
use crate::stack::StackArgs;

/// Arguments of `cargo xtask build`.
#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// Where qmail lives (netqmail's conf-qmail, compiled into the
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
    let patches = qmail_patches::select(&args.patches)?;
    let stack = args.stack.load()?;
    let _lock = crate::patch::lock_work(&work, "build")?;
    let trees = args.sources.obtain(&work.join("pristine"))?;
    let opts = BuildOptions {
        netqmail: tree_of(&trees, &NETQMAIL)?,
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

/// The tree of `release` among `trees`.
pub(crate) fn tree_of(trees: &[SourceTree], release: &Release) -> Result<SourceTree> {
    trees
        .iter()
        .find(|t| t.release == release)
        .cloned()
        .with_context(|| format!("no source tree for {}", release.full_name))
}
