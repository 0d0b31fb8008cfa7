//! The whole build: qmail (netqmail-1.06 or notqmail-1.09) and mess822,
//! leapsecs.dat, manifest, stamp.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use qmail_patches::tree::hash_tree;
use qmail_patches::{
    apply_stack, generate, generate_on_stack, is_scratch_tree, prepare_tree, prepare_tree_with,
    PatchDef, ThirdPartyPatch,
};
use sha2::{Digest, Sha256};
use upstream_hashes::{SourceTree, MESS822};

use crate::compile::{
    compile_mess822, compile_netqmail, compile_notqmail, CompileOptions, Compiler,
};
use crate::hier::{self, HierEntry, Package};
use crate::install::{self, ExtraContents, ExtraFile, Target};
use crate::lock::WorkLock;
use crate::manifest::{
    CompilerRecord, FileRecord, IdsRecord, Manifest, PatchRecord, ReleaseRecord, FORMAT,
    MANIFEST_PATH,
};
use crate::preflight::{check_install_paths, source_date_epoch, InstallPaths};
use crate::release::Qmail;
use crate::{ids, io_err, BuildError, IdMap};

/// Where the bundled leapsecs.dat is installed, relative to the prefix
/// (mess822-nonroot spec, Part 1 item 3).
pub const LEAPSECS_PATH: &str = "share/mess822/leapsecs.dat";

/// Everything a build needs.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The qmail source: a tree of netqmail-1.06 or of notqmail-1.09 (the
    /// build dispatches on `qmail.release.name`, see [`Qmail::of`]).
    pub qmail: SourceTree,
    /// The mess822-0.58 source.
    pub mess822: SourceTree,
    /// qmail's `conf-qmail`: where the programs live.
    pub prefix: PathBuf,
    /// mess822's `conf-home`; `None` = `PREFIX/mess822` (see
    /// [`BuildOptions::mess822_home`]).
    pub mess822_home: Option<PathBuf>,
    /// Stage everything under `DESTDIR/PREFIX`.
    pub destdir: Option<PathBuf>,
    /// The C compiler.
    pub cc: String,
    /// `conf-cc` flags after `-O2`; `None` = automatic.
    pub cflags: Option<String>,
    /// The patches to apply (series order), e.g. from
    /// `qmail_patches::select`.
    pub patches: Vec<&'static PatchDef>,
    /// Third-party patches applied to the qmail tree, in order, before
    /// ours (`--with-patch`); ours are generated against the result.
    pub stack: Vec<ThirdPartyPatch>,
    /// The qmail ids.
    pub ids: IdMap,
    /// Where the ids came from (`system`, `uid-map`, `build-user`).
    pub ids_source: String,
    /// Scratch directory for the build trees.
    pub work: PathBuf,
    /// Rebuild even if the inputs have not changed.
    pub force: bool,
    /// Follow symbolic links among the components of the prefix, mess822
    /// home and destdir themselves (`--allow-symlinked-prefix`); links
    /// inside the installed tree are always refused.
    pub allow_symlinked_prefix: bool,
    /// Files made outside the upstream trees (qtraceaddr and its man
    /// page), installed under the prefix after both packages, listed in
    /// the manifest as package [`install::EXTRA_PACKAGE`]; their digests
    /// are inputs of the build (a changed file is a rebuild).
    pub extra_files: Vec<ExtraFile>,
}

impl BuildOptions {
    /// mess822's `conf-home`. By default `PREFIX/mess822`, not `PREFIX`:
    /// both `hier()`s list `bin` and `man/*`, netqmail as 0755 owned by
    /// qmail's `root`/`qmail`, mess822 as 02755, so with a shared home one
    /// of the two `instcheck`s always warns.
    pub fn mess822_home(&self) -> PathBuf {
        self.mess822_home
            .clone()
            .unwrap_or_else(|| self.prefix.join("mess822"))
    }
}

/// Choose the qmail ids: `--as-build-user`, else `--uid-map`, else the
/// machine's qmail users if all exist, else the build user's ids (with a
/// notice, the build never stops for a missing user). Ids that give a
/// qmail user other than `root` uid 0 (`--as-build-user` or the fallback
/// when building as root, or such a `--uid-map`) are refused unless
/// `allow_root_ids` (see [`crate::preflight::check_root_ids`]). Returns
/// the ids, their source name and an optional notice to print.
pub fn resolve_ids(
    uid_map: Option<&str>,
    as_build_user: bool,
    allow_root_ids: bool,
) -> Result<(IdMap, String, Option<String>), BuildError> {
    let (ids, source, note, how) = if as_build_user {
        let how = "with --as-build-user run as root";
        (IdMap::build_user(), "build-user", None, how)
    } else if let Some(m) = uid_map {
        (IdMap::parse(m)?, "uid-map", None, "with this --uid-map")
    } else if let Some(ids) = IdMap::from_system() {
        (ids, "system", None, "with this machine's qmail users")
    } else {
        let ids = IdMap::build_user();
        let note = format!(
            "the qmail users/groups ({} / {}) do not all exist here; compiling in the build user's ids (uid {}, gid {}) for all of them (use --uid-map to choose)",
            ids::USERS.join(" "),
            ids::GROUPS.join(" "),
            ids.uids[0],
            ids.gids[0]
        );
        let how = "as the qmail users do not all exist here, the build user's ids would be compiled in; the build user is root, so";
        (ids, "build-user", Some(note), how)
    };
    let warning = crate::preflight::check_root_ids(&ids, how, allow_root_ids)?;
    let note = match (note, warning) {
        (Some(n), Some(w)) => Some(format!("{n}\n{w}")),
        (n, w) => n.or(w),
    };
    Ok((ids, source.to_string(), note))
}

/// What a build did.
#[derive(Debug, Clone)]
pub struct BuildOutcome {
    /// Nothing had changed; nothing was done.
    pub up_to_date: bool,
    /// Where the manifest is (under the destdir when staging).
    pub manifest_path: PathBuf,
    /// The manifest.
    pub manifest: Manifest,
    /// Each stage and its wall time.
    pub stages: Vec<(String, Duration)>,
    /// Warnings `instcheck` printed (both packages; not run when staging).
    pub instcheck_warnings: Vec<String>,
}

/// Progress display: a spinner per stage on a terminal, log lines
/// otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    stages: Vec<(String, Duration)>,
    current: Option<(String, Instant)>,
}

impl Progress {
    fn new(total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new(total);
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{spinner} [{pos}/{len}] {msg} ({elapsed})")
            {
                b.set_style(style);
            }
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        Progress {
            bar,
            stages: Vec::new(),
            current: None,
        }
    }

    fn stage(&mut self, name: &str) {
        self.end();
        match &self.bar {
            Some(b) => b.set_message(name.to_string()),
            None => eprintln!("build: {name}"),
        }
        self.current = Some((name.to_string(), Instant::now()));
    }

    fn note(&self, text: &str) {
        match &self.bar {
            Some(b) => b.println(text),
            None => eprintln!("build: {text}"),
        }
    }

    fn end(&mut self) {
        if let Some((name, t)) = self.current.take() {
            self.stages.push((name, t.elapsed()));
            if let Some(b) = &self.bar {
                b.inc(1);
            }
        }
    }

    fn finish(mut self) -> Vec<(String, Duration)> {
        self.end();
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
        self.stages
    }
}

/// The home of `homes` an installed (absolute) path is under, and the
/// path below it.
fn home_rel<'a>(path: &'a str, homes: &[&'a Path]) -> Option<(&'a Path, &'a str)> {
    homes.iter().find_map(|h| {
        Path::new(path)
            .strip_prefix(h)
            .ok()
            .and_then(Path::to_str)
            .map(|rel| (*h, rel))
    })
}

/// Whether every file of a manifest is still installed as recorded
/// (type, mode, contents), looked at without following links.
fn intact(m: &Manifest, target: &Target, homes: &[&Path]) -> bool {
    use rustix::fs::FileType;
    m.files.iter().all(|f| {
        let Some((home, rel)) = home_rel(&f.path, homes) else {
            return false;
        };
        let Ok(Some((mut file, st))) = target.open_read(home, rel) else {
            return false;
        };
        if crate::manifest::mode_string(st.st_mode) != f.mode {
            return false;
        }
        match (f.kind.as_str(), FileType::from_raw_mode(st.st_mode)) {
            ("file", FileType::RegularFile) => {
                let mut h = Sha256::new();
                std::io::copy(&mut file, &mut h).is_ok()
                    && f.sha256.as_deref() == Some(hex::encode(h.finalize()).as_str())
            }
            ("dir", FileType::Directory) | ("fifo", FileType::Fifo) => true,
            _ => false,
        }
    })
}

/// The manifest installed under `target`, if there is a readable one
/// (read without following links, at most 16 MiB).
fn installed_manifest(target: &Target, prefix: &Path) -> Option<Manifest> {
    use std::io::Read;
    let (file, st) = target.open_read(prefix, MANIFEST_PATH).ok()??;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return None;
    }
    let mut bytes = Vec::new();
    file.take(16 << 20).read_to_end(&mut bytes).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Everything the manifest records about the inputs, and their digest.
struct Inputs {
    releases: Vec<ReleaseRecord>,
    patches: Vec<PatchRecord>,
    ids: IdsRecord,
    compiler: CompilerRecord,
    sha256: String,
    q_patches: Vec<qmail_patches::Patch>,
    m8_patches: Vec<qmail_patches::Patch>,
    /// The qmail tree our patches were generated against: the pristine
    /// one, or the stack applied to it.
    q_tree: SourceTree,
}

fn inputs(
    opts: &BuildOptions,
    work: &Path,
    paths: &InstallPaths,
    apply_owner: bool,
    mtime: i64,
    extras: &[ExtraContents],
) -> Result<Inputs, BuildError> {
    let compiler = Compiler::detect(&opts.cc)?;
    let (conf_cc, conf_ld) = compile_options(opts, &paths.prefix).conf_lines()?;
    let q_tree = apply_stack(&opts.qmail, &opts.stack, &work.join("stacked"))?;
    let q_patches = generate_on_stack(&opts.qmail, &q_tree, &opts.stack, &opts.patches, work)?;
    let m8_patches = generate(&opts.mess822, &opts.patches)?;
    let mut releases = Vec::new();
    for r in [&opts.qmail, &opts.mess822] {
        releases.push(ReleaseRecord {
            name: r.release.full_name.to_string(),
            digest: r.digest(),
            tree_sha256: hash_tree(&r.root)?,
        });
    }
    let patches: Vec<PatchRecord> = opts
        .stack
        .iter()
        .map(PatchRecord::third_party)
        .chain(
            q_patches
                .iter()
                .chain(&m8_patches)
                .map(PatchRecord::generated),
        )
        .collect();
    let ids = IdsRecord {
        source: opts.ids_source.clone(),
        users: ids::USERS
            .iter()
            .zip(opts.ids.uids)
            .map(|(n, i)| (n.to_string(), i))
            .collect::<BTreeMap<_, _>>(),
        groups: ids::GROUPS
            .iter()
            .zip(opts.ids.gids)
            .map(|(n, i)| (n.to_string(), i))
            .collect(),
    };
    let compiler = CompilerRecord {
        cc: opts.cc.clone(),
        version: compiler.version.clone(),
        conf_cc,
        conf_ld,
    };
    let stamp = serde_json::json!({
        "format": FORMAT,
        "tool": env!("CARGO_PKG_VERSION"),
        "recorder": hex::encode(Sha256::digest(hier::RECORDER_C)),
        "releases": releases,
        "patches": patches,
        "compiler": compiler,
        "ids": ids,
        "prefix": paths.prefix,
        "mess822_home": paths.mess822_home,
        "apply_owner": apply_owner,
        "mtime": mtime,
        "extra_files": extras
            .iter()
            .map(|c| serde_json::json!({
                "path": c.file.dest_rel,
                "mode": c.file.mode,
                "sha256": c.sha256,
            }))
            .collect::<Vec<_>>(),
    });
    Ok(Inputs {
        releases,
        patches,
        ids,
        compiler,
        sha256: hex::encode(Sha256::digest(stamp.to_string())),
        q_patches,
        m8_patches,
        q_tree,
    })
}

fn compile_options(opts: &BuildOptions, home: &Path) -> CompileOptions {
    CompileOptions {
        cc: opts.cc.clone(),
        cflags: opts.cflags.clone(),
        conf_qmail: home.to_path_buf(),
        ids: opts.ids,
        targets: None,
    }
}

/// Build and install qmail (netqmail or notqmail, by the release of
/// `opts.qmail`) and mess822 as described by `opts`; see the crate docs.
/// The install paths are checked first
/// ([`check_install_paths`]), then the work directory is locked
/// ([`WorkLock`]; a second build waits) and scratch trees of runs that
/// died are removed from it. When the manifest already installed under
/// the target says the same inputs were built and every recorded file is
/// intact, returns at once with `up_to_date` set.
pub fn build(opts: &BuildOptions) -> Result<BuildOutcome, BuildError> {
    let qmail = Qmail::of(&opts.qmail)?;
    let paths = check_install_paths(
        &opts.prefix,
        opts.mess822_home.as_deref(),
        opts.destdir.as_deref(),
        opts.allow_symlinked_prefix,
    )?;
    let mtime = source_date_epoch()?;
    let work = if opts.work.is_absolute() {
        opts.work.clone()
    } else {
        std::env::current_dir()
            .map_err(io_err(Path::new(".")))?
            .join(&opts.work)
    };
    let mut progress = Progress::new(match qmail {
        Qmail::Netqmail => 9,
        Qmail::Notqmail => 10,
    });
    let lock = WorkLock::acquire(&work, |m| progress.note(m))?;
    for p in lock.remove_stale(&work, is_scratch_tree)? {
        progress.note(&format!(
            "removed {} (scratch left by an earlier run that did not finish)",
            p.display()
        ));
    }

    progress.stage("hashing inputs");
    let apply_owner = crate::running_as_root() && paths.destdir.is_none();
    let extras = opts
        .extra_files
        .iter()
        .map(ExtraFile::read)
        .collect::<Result<Vec<_>, _>>()?;
    let inputs = inputs(opts, &work, &paths, apply_owner, mtime, &extras)?;
    let target = Target {
        prefix: paths.prefix.clone(),
        destdir: paths.destdir.clone(),
        ids: opts.ids,
        apply_owner,
        follow_symlinked_prefix: opts.allow_symlinked_prefix,
        mtime,
    };
    let (prefix, m8home) = (&paths.prefix, &paths.mess822_home);
    let homes: [&Path; 2] = [prefix, m8home];
    let manifest_path = target.dest(prefix, MANIFEST_PATH);
    if !opts.force {
        if let Some(old) = installed_manifest(&target, prefix) {
            if old.inputs_sha256 == inputs.sha256 && intact(&old, &target, &homes) {
                let stages = progress.finish();
                return Ok(BuildOutcome {
                    up_to_date: true,
                    manifest_path,
                    manifest: old,
                    stages,
                    instcheck_warnings: Vec::new(),
                });
            }
        }
    }

    let built = compile_all(qmail, opts, &inputs, &paths, &work, &mut progress)?;

    progress.stage("installing");
    let files = install_all(
        &target,
        &paths,
        opts.qmail.release.full_name,
        [
            (&built.q_files, &built.q_entries),
            (&built.m8, &built.m8_entries),
        ],
        &extras,
    )?;

    progress.stage("writing manifest");
    let manifest = Manifest {
        format: FORMAT,
        tool: format!("qmail-build {}", env!("CARGO_PKG_VERSION")),
        prefix: prefix.display().to_string(),
        mess822_home: m8home.display().to_string(),
        inputs_sha256: inputs.sha256,
        releases: inputs.releases,
        patches: inputs.patches,
        compiler: inputs.compiler,
        ids: inputs.ids,
        ownership_applied: apply_owner,
        files,
    };
    let json = manifest.to_json();
    install::put_file(
        &target,
        prefix,
        MANIFEST_PATH,
        json.as_bytes(),
        None,
        None,
        0o644,
    )?;
    // Last, when nothing more is added to them: the directories' mtimes.
    for f in manifest.files.iter().filter(|f| f.kind == "dir") {
        if let Some((home, rel)) = home_rel(&f.path, &homes) {
            install::stamp_dirs(&target, home, [rel])?;
        }
    }

    let mut warnings = Vec::new();
    if paths.destdir.is_none() {
        progress.stage("instcheck");
        warnings = match qmail {
            Qmail::Netqmail => instcheck(&[&built.q, &built.m8])?,
            Qmail::Notqmail => {
                let ids = apply_owner.then_some(&opts.ids);
                let mut w = crate::notqmail::instcheck(&built.q, ids)?;
                w.extend(instcheck(&[&built.m8])?);
                w
            }
        };
        for w in &warnings {
            progress.note(w);
        }
    }
    let stages = progress.finish();
    Ok(BuildOutcome {
        up_to_date: false,
        manifest_path,
        manifest,
        stages,
        instcheck_warnings: warnings,
    })
}

/// The compiled trees and what to install from them.
struct Built {
    /// The qmail build tree.
    q: PathBuf,
    /// Where the qmail files are read from: the build tree (netqmail) or
    /// `instpackage`'s stage of the prefix (notqmail).
    q_files: PathBuf,
    /// qmail's `hier()` entries (files named relative to `q_files`).
    q_entries: Vec<HierEntry>,
    /// The mess822 build tree.
    m8: PathBuf,
    /// mess822's `hier()` entries.
    m8_entries: Vec<HierEntry>,
}

/// Prepare (copy and patch) and compile both trees, and list what their
/// `hier()`s install; for notqmail, also stage it with its own
/// `instpackage` and check the stage against that list
/// ([`crate::notqmail`]).
fn compile_all(
    qmail: Qmail,
    opts: &BuildOptions,
    inputs: &Inputs,
    paths: &InstallPaths,
    work: &Path,
    progress: &mut Progress,
) -> Result<Built, BuildError> {
    let name = opts.qmail.release.full_name;
    progress.stage(&format!("preparing {name} (copy + patch -p1)"));
    let q = prepare_tree_with(&inputs.q_tree, &inputs.q_patches, work)?;
    progress.stage(&format!("compiling {name} (make it man)"));
    let q_opts = compile_options(opts, &paths.prefix);
    match qmail {
        Qmail::Netqmail => compile_netqmail(&q, &q_opts)?,
        Qmail::Notqmail => compile_notqmail(&q, &q_opts)?,
    }
    progress.stage("preparing mess822-0.58 (copy + patch -p1)");
    let m8 = prepare_tree_with(&opts.mess822, &inputs.m8_patches, work)?;
    progress.stage("compiling mess822-0.58 (make it instcheck)");
    compile_mess822(&m8, &compile_options(opts, &paths.mess822_home))?;

    progress.stage("reading hier()");
    let m8_entries = hier::record(&m8, Package::Mess822)?;
    let (q_files, q_entries) = match qmail {
        Qmail::Netqmail => (q.clone(), hier::record(&q, Package::Netqmail)?),
        Qmail::Notqmail => {
            let entries = hier::record(&q, Package::Notqmail)?;
            progress.stage(&format!(
                "staging {name} (its instpackage, DESTDIR in the work directory)"
            ));
            let stage = work.join(format!("{name}.stage"));
            let home = crate::notqmail::instpackage(&q, &stage, &paths.prefix)?;
            let entries = crate::notqmail::reconcile(&entries, &home)?;
            (home, entries)
        }
    };
    Ok(Built {
        q,
        q_files,
        q_entries,
        m8,
        m8_entries,
    })
}

/// Install both packages' `hier()` entries (qmail's as package
/// `qmail_name`), leapsecs.dat, the extra files and the manifest's
/// directory; returns the manifest records.
fn install_all(
    target: &Target,
    paths: &InstallPaths,
    qmail_name: &str,
    pkgs: [(&PathBuf, &Vec<HierEntry>); 2],
    extras: &[ExtraContents],
) -> Result<Vec<FileRecord>, BuildError> {
    let [(q, q_entries), (m8, m8_entries)] = pkgs;
    let prefix = &paths.prefix;
    let mut files: Vec<FileRecord> = Vec::new();
    files.extend(install::install(q, qmail_name, prefix, q_entries, target)?);
    files.extend(install::install(
        m8,
        MESS822.full_name,
        &paths.mess822_home,
        m8_entries,
        target,
    )?);
    let leap = m8.join("leapsecs.dat");
    let leap_bytes = install::read_built(&leap)?;
    files.extend(install::install_extra(
        prefix,
        &["share", "share/mess822"],
        LEAPSECS_PATH,
        &leap_bytes,
        0o644,
        target,
    )?);
    let more = install::install_extra_files(target, prefix, extras, &files)?;
    files.extend(more);
    install::put_dir(target, prefix, "share/qmail-toolkit", None, None, 0o755)?;
    files.push(FileRecord::build_dir(format!(
        "{}/share/qmail-toolkit",
        prefix.display()
    )));
    Ok(files)
}

/// Run each tree's `instcheck`; returns what they printed.
fn instcheck(trees: &[&PathBuf]) -> Result<Vec<String>, BuildError> {
    let mut warnings = Vec::new();
    for tree in trees {
        let out = Command::new(tree.join("instcheck"))
            .current_dir(tree)
            .output()
            .map_err(io_err(&tree.join("instcheck")))?;
        warnings.extend(
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .chain(String::from_utf8_lossy(&out.stdout).lines())
                .map(str::to_string),
        );
    }
    Ok(warnings)
}

/// Build wall times (see [`bench_build`]).
#[derive(Debug, Clone)]
pub struct BenchFigures {
    /// `make` alone in freshly copied trees (netqmail `it man` with a
    /// ready `auto_uids.c`, or notqmail `it man`; mess822 `it instcheck`
    /// with the errno fix): the baseline.
    pub plain_make: Duration,
    /// A cold [`build`] (fresh work dir and prefix), everything included.
    pub cold_build: Duration,
    /// A second [`build`] with nothing changed.
    pub noop_rebuild: Duration,
}

impl BenchFigures {
    /// `cold_build / plain_make` (target ≤ 1.25).
    pub fn ratio(&self) -> f64 {
        self.cold_build.as_secs_f64() / self.plain_make.as_secs_f64().max(1e-9)
    }
}

/// Measure a cold build against plain `make` of the same trees, and a
/// no-op rebuild. `opts.work` and `opts.prefix` are replaced by
/// directories under `scratch` (which must exist and be empty-ish);
/// `opts.destdir` is kept.
pub fn bench_build(opts: &BuildOptions, scratch: &Path) -> Result<BenchFigures, BuildError> {
    let plain = scratch.join("plain");
    let errno = qmail_patches::select(&["errno".to_string()])?;
    let q = prepare_tree(&opts.qmail, &[], &plain)?;
    let m8 = prepare_tree(&opts.mess822, &errno, &plain)?;
    let q_args: &[&str] = match Qmail::of(&opts.qmail)? {
        Qmail::Netqmail => {
            let uids = q.join("auto_uids.c");
            std::fs::write(&uids, opts.ids.auto_uids_c()).map_err(io_err(&uids))?;
            &["-o", "auto_uids.c", "it", "man"]
        }
        Qmail::Notqmail => &["it", "man"],
    };
    let t = Instant::now();
    for (tree, args) in [(&q, q_args), (&m8, &["it", "instcheck"][..])] {
        let mut cmd = Command::new("make");
        cmd.args(args).current_dir(tree);
        crate::run_logged(cmd, &tree.join(".qtk-make.log"))?;
    }
    let plain_make = t.elapsed();

    let mut o = opts.clone();
    o.work = scratch.join("work");
    o.prefix = scratch.join("prefix");
    o.force = false;
    std::fs::create_dir_all(&o.prefix).map_err(io_err(&o.prefix))?;
    let t = Instant::now();
    build(&o)?;
    let cold_build = t.elapsed();
    let t = Instant::now();
    let again = build(&o)?;
    let noop_rebuild = t.elapsed();
    if !again.up_to_date {
        return Err(BuildError::Invalid(
            "bench: the second build was not up to date".into(),
        ));
    }
    Ok(BenchFigures {
        plain_make,
        cold_build,
        noop_rebuild,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relative_mess822_home_is_reported_as_such_not_as_the_prefix() {
        let t = tempfile::tempdir().unwrap();
        let opts = BuildOptions {
            mess822_home: Some("rel/mess822".into()),
            ..bare_options(t.path())
        };
        let err = build(&opts).unwrap_err().to_string();
        assert_eq!(
            err,
            "--mess822-home rel/mess822: must be an absolute path (it is compiled into the programs)"
        );
        assert!(!t.path().join("work").exists(), "work dir created");
        assert!(!t.path().join("prefix").exists(), "prefix created");
    }

    #[test]
    fn uid_map_beats_system_and_build_user_beats_all() {
        let map = "alias=1,qmaild=2,qmaill=3,root=0,qmailp=5,qmailq=6,qmailr=7,qmails=8,qmail=9,nofiles=10";
        let (ids, src, note) = resolve_ids(Some(map), false, false).unwrap();
        assert_eq!((ids.uids[0], src.as_str(), note), (1, "uid-map", None));
        let (ids, src, _) = resolve_ids(Some(map), true, true).unwrap();
        assert_eq!(src, "build-user");
        assert_eq!(ids, IdMap::build_user());
        assert!(resolve_ids(Some("alias=1"), false, false).is_err());
    }

    use crate::hier::EntryKind;
    use std::os::unix::fs::PermissionsExt;

    fn entry(kind: EntryKind, home: &Path, path: &str, mode: u32) -> HierEntry {
        HierEntry {
            kind,
            home: home.display().to_string(),
            path: path.into(),
            user: Some("root"),
            group: Some("qmail"),
            mode,
        }
    }

    fn file(source: &str) -> EntryKind {
        EntryKind::File {
            source: source.into(),
        }
    }

    /// Both fake packages and an extra file installed under `t/q`;
    /// returns the target, the homes and the records.
    fn installed(t: &Path) -> (Target, InstallPaths, Vec<FileRecord>) {
        let paths = InstallPaths {
            prefix: t.join("q"),
            mess822_home: t.join("q/mess822"),
            destdir: None,
        };
        let (q, m8) = (t.join("qtree"), t.join("m8tree"));
        for (d, f, text) in [(&q, "FAQ", "faq\n"), (&m8, "leapsecs.dat", "leap\n")] {
            std::fs::create_dir(d).unwrap();
            std::fs::write(d.join(f), text).unwrap();
        }
        std::fs::write(t.join("qtraceaddr"), "#!/bin/sh\n").unwrap();
        let p = &paths.prefix;
        let q_entries = vec![
            entry(EntryKind::Dir, p, "", 0o755),
            entry(EntryKind::Dir, p, "doc", 0o755),
            entry(file("FAQ"), p, "doc/FAQ", 0o644),
            entry(EntryKind::Fifo, p, "trigger", 0o622),
        ];
        let m8_entries = vec![entry(EntryKind::Dir, &paths.mess822_home, "", 0o755)];
        let extra = ExtraFile {
            src: t.join("qtraceaddr"),
            dest_rel: "bin/qtraceaddr".into(),
            mode: 0o755,
        };
        let target = Target {
            prefix: p.clone(),
            destdir: None,
            ids: IdMap::uniform(7000, 7000),
            apply_owner: false,
            follow_symlinked_prefix: false,
            mtime: 0,
        };
        let pkgs = [(&q, &q_entries), (&m8, &m8_entries)];
        let extras = [extra.read().unwrap()];
        let files = install_all(&target, &paths, "netqmail-1.06", pkgs, &extras).unwrap();
        (target, paths, files)
    }

    fn manifest(files: Vec<FileRecord>) -> Manifest {
        Manifest {
            format: FORMAT,
            tool: "qmail-build test".into(),
            prefix: "/q".into(),
            mess822_home: "/q/mess822".into(),
            inputs_sha256: "00".into(),
            releases: vec![],
            patches: vec![],
            compiler: CompilerRecord {
                cc: "cc".into(),
                version: String::new(),
                conf_cc: String::new(),
                conf_ld: String::new(),
            },
            ids: IdsRecord {
                source: "build-user".into(),
                users: BTreeMap::new(),
                groups: BTreeMap::new(),
            },
            ownership_applied: false,
            files,
        }
    }

    #[test]
    fn install_all_installs_both_packages_leapsecs_extras_and_the_manifest_dir() {
        let t = tempfile::tempdir().unwrap();
        let (_, paths, files) = installed(t.path());
        let q = paths.prefix.display().to_string();
        let got: Vec<(&str, &str, &str)> = files
            .iter()
            .map(|f| {
                (
                    f.path.strip_prefix(&q).unwrap(),
                    f.package.as_str(),
                    f.mode.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("", "netqmail-1.06", "0755"),
                ("/doc", "netqmail-1.06", "0755"),
                ("/doc/FAQ", "netqmail-1.06", "0644"),
                ("/trigger", "netqmail-1.06", "0622"),
                ("/mess822", "mess822-0.58", "0755"),
                ("/share", "qmail-build", "0755"),
                ("/share/mess822", "qmail-build", "0755"),
                ("/share/mess822/leapsecs.dat", "qmail-build", "0644"),
                ("/bin", "qmail-build", "0755"),
                ("/bin/qtraceaddr", "qmail-toolkit", "0755"),
                ("/share/qmail-toolkit", "qmail-build", "0755"),
            ]
        );
        assert_eq!(
            std::fs::read_to_string(paths.prefix.join(LEAPSECS_PATH)).unwrap(),
            "leap\n"
        );
        assert!(paths.prefix.join("share/qmail-toolkit").is_dir());
    }

    #[test]
    fn an_install_is_intact_until_a_file_changes_type_mode_or_contents() {
        let t = tempfile::tempdir().unwrap();
        let (target, paths, files) = installed(t.path());
        let homes: [&Path; 2] = [&paths.prefix, &paths.mess822_home];
        let m = manifest(files.clone());
        assert!(intact(&m, &target, &homes));
        assert_eq!(
            home_rel(&files[2].path, &homes),
            Some((paths.prefix.as_path(), "doc/FAQ"))
        );
        // A path outside both homes is not intact.
        let mut outside = m.clone();
        outside.files[2].path = "/elsewhere/doc/FAQ".into();
        assert!(!intact(&outside, &target, &homes));
        let faq = paths.prefix.join("doc/FAQ");
        std::fs::write(&faq, "changed\n").unwrap();
        assert!(!intact(&m, &target, &homes), "changed contents");
        std::fs::write(&faq, "faq\n").unwrap();
        assert!(intact(&m, &target, &homes));
        std::fs::set_permissions(&faq, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(!intact(&m, &target, &homes), "changed mode");
        std::fs::remove_file(&faq).unwrap();
        std::fs::create_dir(&faq).unwrap();
        std::fs::set_permissions(&faq, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(
            !intact(&m, &target, &homes),
            "a directory instead of a file"
        );
        std::fs::remove_dir(&faq).unwrap();
        assert!(!intact(&m, &target, &homes), "missing");
        // A fifo recorded as a directory, and a directory as a file.
        let mut kinds = manifest(files);
        kinds.files.retain(|f| f.kind != "file");
        assert!(intact(&kinds, &target, &homes));
        let fifo = kinds.files.iter().position(|f| f.kind == "fifo").unwrap();
        kinds.files[fifo].kind = "dir".into();
        assert!(!intact(&kinds, &target, &homes), "fifo as dir");
        kinds.files[fifo].kind = "fifo".into();
        kinds.files[0].kind = "file".into();
        assert!(!intact(&kinds, &target, &homes), "dir as file");
    }

    #[test]
    fn the_installed_manifest_is_read_back_and_a_directory_there_is_none() {
        let t = tempfile::tempdir().unwrap();
        let (target, paths, files) = installed(t.path());
        let prefix = &paths.prefix;
        assert_eq!(installed_manifest(&target, prefix), None);
        let m = manifest(files);
        install::put_file(
            &target,
            prefix,
            MANIFEST_PATH,
            m.to_json().as_bytes(),
            None,
            None,
            0o644,
        )
        .unwrap();
        assert_eq!(installed_manifest(&target, prefix), Some(m));
        let path = prefix.join(MANIFEST_PATH);
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        assert_eq!(installed_manifest(&target, prefix), None);
    }

    #[test]
    fn stages_are_timed_in_order_and_the_ratio_is_cold_over_plain() {
        let mut p = Progress::new(2);
        p.stage("one");
        p.note("a note");
        p.stage("two");
        let names: Vec<String> = p.finish().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["one", "two"]);
        let f = BenchFigures {
            plain_make: Duration::from_secs(4),
            cold_build: Duration::from_secs(5),
            noop_rebuild: Duration::from_secs(1),
        };
        assert_eq!(f.ratio(), 1.25);
    }

    #[test]
    fn mess822_home_defaults_below_the_prefix_and_instcheck_output_is_collected() {
        let t = tempfile::tempdir().unwrap();
        let mut o = BuildOptions {
            prefix: "/opt/q".into(),
            ..bare_options(t.path())
        };
        assert_eq!(o.mess822_home(), Path::new("/opt/q/mess822"));
        o.mess822_home = Some("/opt/m8".into());
        assert_eq!(o.mess822_home(), Path::new("/opt/m8"));
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        for (d, out) in [(&a, "echo out-a; echo err-a >&2"), (&b, "echo out-b")] {
            std::fs::create_dir(d).unwrap();
            crate::testutil::script(&d.join("instcheck"), &format!("#!/bin/sh\n{out}\n"));
        }
        assert_eq!(instcheck(&[&a, &b]).unwrap(), ["err-a", "out-a", "out-b"]);
        let err = instcheck(&[&t.path().join("none")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("none/instcheck"), "{err}");
    }

    #[test]
    fn notes_are_printed_when_not_on_a_terminal() {
        let name = "pipeline::tests::child_note";
        let out = crate::testutil::run_self(name, &[]);
        assert!(out.contains("build: qtk-note-42\n"), "{out}");
        assert!(out.contains("build: qtk-stage-7\n"), "{out}");
    }

    #[test]
    #[ignore = "run by notes_are_printed_when_not_on_a_terminal"]
    fn child_note() {
        let mut p = Progress::new(1);
        p.note("qtk-note-42");
        p.stage("qtk-stage-7");
        p.finish();
    }

    /// A fake netqmail and mess822 tree that `build` can compile (a
    /// Makefile with nothing to do), list (a `load` that makes `qtk-hier`
    /// print `hier.sh`'s lines for the configured home) and check (an
    /// `instcheck` that names its tree).
    fn fake_sources(t: &Path) -> (PathBuf, PathBuf) {
        let mk = ".NOTPARALLEL:\nit man instcheck compile load hier.o auto_qmail.o \
                  auto_split.o fs.a str.a auto_home.o:\n\t@true\n";
        let q = t.join("netqmail-src");
        let m8 = t.join("mess822-src");
        for (d, marker, conf, extra) in [
            (
                &q,
                "qmail-smtpd.c",
                "conf-qmail",
                "d\\t%s\\tdoc\\t-\\t-\\t-1\\t-1\\t755\\n",
            ),
            (&m8, "mess822.h", "conf-home", ""),
        ] {
            std::fs::create_dir(d).unwrap();
            for f in [marker, "Makefile", "compile", "FAQ", "leapsecs.dat"] {
                std::fs::write(
                    d.join(f),
                    match f {
                        "Makefile" => mk,
                        "compile" => "true\n",
                        _ => "x\n",
                    },
                )
                .unwrap();
            }
            let c = "c\\t%s\\tdoc\\tFAQ\\t-\\t-1\\t-1\\t644\\n";
            let hier = format!(
                "#!/bin/sh\nh=$(head -n 1 {conf})\nprintf 'h\\t%s\\t-\\t-\\t-\\t-1\\t-1\\t755\\n' \"$h\"\n\
                 [ -z '{extra}' ] || printf '{extra}{c}' \"$h\" \"$h\"\n"
            );
            std::fs::write(d.join("hier.sh"), hier).unwrap();
            std::fs::write(d.join("load"), "cp hier.sh qtk-hier; chmod 755 qtk-hier\n").unwrap();
            // What mess822's errno patch (bench_build applies it) changes.
            std::fs::write(d.join("error.h"), "extern int errno;\n").unwrap();
            let name = d.file_name().unwrap().to_string_lossy().into_owned();
            crate::testutil::script(&d.join("instcheck"), &format!("#!/bin/sh\necho {name}\n"));
        }
        (q, m8)
    }

    /// Options for trees `t/nq` and `t/m8` (not made here), prefix
    /// `t/prefix`, work `t/work`, compiler `cc`, no patches.
    fn bare_options(t: &Path) -> BuildOptions {
        BuildOptions {
            qmail: SourceTree::unverified(&upstream_hashes::NETQMAIL, t.join("nq")),
            mess822: SourceTree::unverified(&MESS822, t.join("m8")),
            prefix: t.join("prefix"),
            mess822_home: None,
            destdir: None,
            cc: "cc".into(),
            cflags: None,
            patches: Vec::new(),
            stack: Vec::new(),
            ids: IdMap::build_user(),
            ids_source: "build-user".into(),
            work: t.join("work"),
            force: false,
            allow_symlinked_prefix: false,
            extra_files: Vec::new(),
        }
    }

    fn fake_options(t: &Path) -> BuildOptions {
        let (q, m8) = fake_sources(t);
        BuildOptions {
            qmail: SourceTree::unverified(&upstream_hashes::NETQMAIL, q),
            mess822: SourceTree::unverified(&MESS822, m8),
            cc: crate::testutil::fake_cc(t, "cc", "gcc (GCC) 12.2.0"),
            ..bare_options(t)
        }
    }

    #[test]
    fn a_fake_build_installs_checks_and_is_then_up_to_date_until_something_changes() {
        let t = tempfile::tempdir().unwrap();
        let mut o = fake_options(t.path());
        let first = build(&o).unwrap();
        assert!(!first.up_to_date);
        let faq = o.prefix.join("doc/FAQ");
        assert_eq!(std::fs::read_to_string(&faq).unwrap(), "x\n");
        assert_eq!(first.manifest_path, o.prefix.join(MANIFEST_PATH));
        assert_eq!(
            first.manifest.ownership_applied,
            crate::testutil::euid_is_root()
        );
        assert_eq!(first.instcheck_warnings, ["netqmail-src", "mess822-src"]);
        assert_eq!(
            Manifest::read(&first.manifest_path).unwrap(),
            Some(first.manifest.clone())
        );
        // Nothing changed: nothing is done.
        let again = build(&o).unwrap();
        assert!(again.up_to_date);
        assert_eq!(again.manifest, first.manifest);
        // An installed file changed: rebuilt and restored.
        std::fs::write(&faq, "changed\n").unwrap();
        assert!(!build(&o).unwrap().up_to_date);
        assert_eq!(std::fs::read_to_string(&faq).unwrap(), "x\n");
        // Other flags: the inputs changed, though every file is intact.
        o.cflags = Some("-g".into());
        let other = build(&o).unwrap();
        assert!(!other.up_to_date);
        assert_eq!(other.manifest.compiler.conf_cc, format!("{} -O2 -g", o.cc));
        o.force = true;
        assert!(!build(&o).unwrap().up_to_date, "--force did not rebuild");
    }

    #[test]
    fn a_staged_fake_build_applies_no_owner_and_runs_no_instcheck() {
        let t = tempfile::tempdir().unwrap();
        let mut o = fake_options(t.path());
        o.destdir = Some(t.path().join("dest"));
        let out = build(&o).unwrap();
        assert!(!out.manifest.ownership_applied);
        assert!(
            out.instcheck_warnings.is_empty(),
            "{:?}",
            out.instcheck_warnings
        );
        let staged = t
            .path()
            .join("dest")
            .join(o.prefix.strip_prefix("/").unwrap());
        assert!(staged.join("doc/FAQ").is_file());
        assert_eq!(out.manifest_path, staged.join(MANIFEST_PATH));
        assert!(!o.prefix.exists(), "installed outside the destdir");
    }

    #[test]
    fn bench_build_times_plain_make_a_cold_build_and_a_no_op_rebuild() {
        let t = tempfile::tempdir().unwrap();
        let o = fake_options(t.path());
        let scratch = t.path().join("bench");
        std::fs::create_dir(&scratch).unwrap();
        bench_build(&o, &scratch).unwrap();
        assert!(scratch.join("prefix/doc/FAQ").is_file());
        assert!(
            !o.prefix.exists(),
            "the bench installed into the given prefix"
        );
        let fixed = std::fs::read_to_string(scratch.join("plain/mess822-0.58/error.h")).unwrap();
        assert_eq!(fixed, "#include <errno.h>\n");
    }
}
