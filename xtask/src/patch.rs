//! `cargo xtask patch`: unpack the sources, generate the patches, apply
//! them with `patch -p1` in a work tree, and write the `.patch` files and
//! a quilt `series` file.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use qmail_patches::{Patch, PatchDef, ThirdPartyPatch};
use qmail_sources::SourceTree;

use crate::sources::{workspace_root, SourceArgs};
use crate::stack::StackArgs;

/// Arguments of `cargo xtask patch`.
#[derive(clap::Args, Debug)]
pub struct PatchArgs {
    /// Write every `.patch` file and a `series` file into DIR
    /// [default: <workspace>/target/patches].
    #[arg(long, value_name = "DIR")]
    pub emit: Option<PathBuf>,
    /// Work directory: pristine trees are unpacked into DIR/pristine, the
    /// patched trees are DIR/netqmail-1.06 and DIR/mess822-0.58
    /// [default: <workspace>/target/work]. Locked while in use
    /// (DIR/.qtk-lock): a second build or patch with the same DIR waits.
    #[arg(long, value_name = "DIR")]
    pub work: Option<PathBuf>,
    /// Only these patches (comma-separated short names, e.g.
    /// `errno,nonroot`); default: all, in series order.
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub patches: Vec<String>,
    #[command(flatten)]
    pub stack: StackArgs,
    #[command(flatten)]
    pub sources: SourceArgs,
}

/// Write `bytes` to `path` through a temporary file and a rename.
fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp-xtask");
    std::fs::write(&tmp, bytes).with_context(|| format!("{}: cannot write", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("{}: cannot write", path.display()))
}

/// Lock the work directory `work` for the subcommand `what` (waiting,
/// with a message, while another run holds it) and remove the scratch
/// that runs which died left in it: `.NAME.tmp` trees and the
/// unpacker's `pristine/.unpack-*` directories.
pub(crate) fn lock_work(work: &Path, what: &str) -> Result<qmail_build::WorkLock> {
    let lock = qmail_build::WorkLock::acquire(work, |m| eprintln!("{what}: {m}"))?;
    let mut removed = lock.remove_stale(work, qmail_patches::is_scratch_tree)?;
    removed.extend(lock.remove_stale(&work.join("pristine"), |n| n.starts_with(".unpack-"))?);
    for p in removed {
        eprintln!(
            "{what}: removed {} (scratch left by an earlier run that did not finish)",
            p.display()
        );
    }
    Ok(lock)
}

/// Generate the patches of `defs` for one tree and apply them in
/// `work/<full name>`: on the qmail tree the third-party `stack` first
/// (in `work/stacked/`), ours generated against the result.
fn patch_tree(
    tree: &SourceTree,
    defs: &[&PatchDef],
    stack: &[ThirdPartyPatch],
    work: &Path,
) -> Result<Vec<Patch>> {
    let release = tree.release.full_name;
    let stack = if qmail_patches::stack::takes_stack(tree.release) {
        stack
    } else {
        &[]
    };
    for t in stack {
        for f in qmail_patches::stack::left_out(t, &tree.root) {
            eprintln!(
                "{release}: {}: its change to {f} is left out (repository metadata the release tree does not have; `git archive` leaves it out)",
                t.file_name
            );
        }
    }
    let stacked = qmail_patches::apply_stack(tree, stack, &work.join("stacked"))?;
    let patches = qmail_patches::generate_on_stack(tree, &stacked, stack, defs, work)?;
    let dir = qmail_patches::prepare_tree_with(&stacked, &patches, work)
        .with_context(|| format!("applying the patches to {release}"))?;
    eprintln!("{release}: patched tree in {}", dir.display());
    Ok(patches)
}

/// Run `cargo xtask patch`.
pub fn run(args: PatchArgs) -> Result<()> {
    let root = workspace_root();
    let work = args
        .work
        .unwrap_or_else(|| root.join("target").join("work"));
    let emit = args
        .emit
        .unwrap_or_else(|| root.join("target").join("patches"));
    let defs = qmail_patches::select(&args.patches)?;
    let stack = args.stack.load()?;
    let _lock = lock_work(&work, "patch")?;
    let trees = args.sources.obtain(&work.join("pristine"))?;
    let mut all: Vec<Patch> = Vec::new();
    for tree in &trees {
        all.extend(patch_tree(tree, &defs, &stack, &work)?);
    }
    if let Some(p) = stack
        .iter()
        .find(|t| t.file_name == "series" || all.iter().any(|p| p.file_name == t.file_name))
    {
        anyhow::bail!(
            "--with-patch {}: its name {} is one of the files written into {}; rename it",
            p.path.display(),
            p.file_name,
            emit.display()
        );
    }
    std::fs::create_dir_all(&emit).with_context(|| format!("{}: cannot create", emit.display()))?;
    for t in &stack {
        write_atomic(&emit.join(&t.file_name), &t.bytes)?;
        println!("{}  {} (third-party, -p{})", t.sha256, t.file_name, t.strip);
    }
    for p in &all {
        write_atomic(&emit.join(&p.file_name), p.to_diff().as_bytes())?;
        println!("{}  {}", p.sha256(), p.file_name);
    }
    write_atomic(
        &emit.join("series"),
        qmail_patches::series_file(&stack, &all).as_bytes(),
    )?;
    eprintln!(
        "wrote {} patches and series into {} (apply each with `patch -p1` in the release's top directory{})",
        stack.len() + all.len(),
        emit.display(),
        if stack.is_empty() { "" } else { "; the third-party ones first, in the qmail tree" }
    );
    Ok(())
}
