//! Stage 5 of the pipeline (fetch → verify → unpack → sources → patch →
//! build → test): the patch generator, and the one place patches are
//! applied.
//!
//! The generator reads pristine upstream files, finds anchors in them,
//! inserts this project's hooks, and emits unified diffs that apply with
//! `patch -p1` and are byte-identical from run to run.
//!
//! Every patch is a [`PatchDef`]: a name, the release it applies to, and a
//! generator function that turns a pristine [`SourceTree`] into a
//! [`Patch`] (the list of changed and added files). [`series`] lists them in
//! the order they must be applied; [`generate`] runs the generators of one
//! tree's release.
//!
//! Applying ([`prepare_tree`], [`prepare_tree_with`]): the pristine tree is
//! copied ([`tree::copy_tree`], which refuses symbolic links, FIFOs,
//! sockets and devices with their path) under a scratch name, `patch -p1`
//! applies each diff, and the result is renamed into place.
//!
//! Anchors are short strings of upstream text that must occur **exactly
//! once** in the file they are looked for in ([`Editor`]); anything else is
//! a [`PatchError::Anchor`] that names the file and the anchor, so that a
//! changed upstream file is caught instead of patched in the wrong place.
#![warn(missing_docs)]

mod apply;
pub mod branch;
pub mod nonroot;
pub mod portability;
pub mod qmail_release;
pub mod rcptcheck;
pub mod realrcptto;
pub mod stack;
pub mod tree;

use std::fmt::Write as _;
use std::path::PathBuf;

use qmail_release::NOTQMAIL;
use sha2::{Digest, Sha256};
use similar::TextDiff;
use upstream_hashes::{Release, SourceTree, MESS822, NETQMAIL};

pub use apply::{apply, is_scratch_tree, prepare_tree, prepare_tree_with, run_logged};
pub use stack::{apply_stack, generate_on_stack, ThirdPartyPatch};

/// Everything that can go wrong while generating or applying a patch.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// A pristine file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A pristine file is not UTF-8 text (qmail's sources are ASCII).
    #[error("{path}: not a text file (invalid UTF-8)")]
    NotText {
        /// The file.
        path: PathBuf,
    },
    /// An anchor was found zero times or more than once.
    #[error("{file}: anchor {anchor:?} found {count} times, expected exactly once (is this the pristine {release} file?)")]
    Anchor {
        /// The file, relative to the release top directory.
        file: String,
        /// The anchor text.
        anchor: String,
        /// How often it occurs.
        count: usize,
        /// The release the file belongs to.
        release: &'static str,
    },
    /// A file that a patch adds already exists in the tree.
    #[error("{path}: already exists; the tree is not pristine (already patched?)")]
    AlreadyExists {
        /// The file.
        path: PathBuf,
    },
    /// Writing a patched file failed.
    #[error("{path}: cannot write: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// No patch has this name.
    #[error("unknown patch {0:?}; known patches: {1}")]
    Unknown(String, String),
    /// A generator failed ([`generate`]).
    #[error("generating {name}: {source}")]
    Generate {
        /// The patch's short name.
        name: String,
        /// Why.
        source: Box<PatchError>,
    },
    /// Copying, hashing or patching a tree failed on a file.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// A tree holds something it may not (a symbolic link, a FIFO, too
    /// deep a nesting), or is missing.
    #[error("{0}")]
    Refused(String),
    /// `patch` failed.
    #[error(transparent)]
    Command(Box<CommandFailed>),
    /// A third-party patch of the stack does not apply (without fuzz) to
    /// the tree as the patches before it left it.
    #[error("third-party patch {patch} does not apply to {on} without fuzz: {file}: {hunk}; the stack itself conflicts, so nothing of ours was generated")]
    StackHunk {
        /// The patch (name, digest, strip level).
        patch: String,
        /// The release and the patches applied before it.
        on: String,
        /// The file of the first failing hunk.
        file: String,
        /// `patch`'s line for that hunk (`Hunk #4 FAILED at 1453`).
        hunk: String,
    },
    /// A third-party patch could not be applied for another reason (not a
    /// diff, already applied, a file it patches is missing).
    #[error("third-party patch {patch} does not apply to {on}:\n{output}")]
    StackApply {
        /// The patch (name, digest, strip level).
        patch: String,
        /// The release and the patches applied before it.
        on: String,
        /// The first lines of `patch`'s output.
        output: String,
    },
    /// One of our anchors, unique in the pristine file, is missing or
    /// ambiguous after the third-party patches.
    #[error(transparent)]
    StackAnchor(Box<StackAnchor>),
}

/// One of our anchors moved by a third-party patch
/// ([`PatchError::StackAnchor`]).
#[derive(Debug, thiserror::Error)]
#[error("generating {ours}: {file}: anchor {anchor:?} occurs once in pristine {release} but {count} times after {}; {ours} is not generated at a guessed place", by.as_deref().unwrap_or("the third-party patches"))]
pub struct StackAnchor {
    /// Our patch's short name.
    pub ours: String,
    /// The file, relative to the release top directory.
    pub file: String,
    /// The anchor text.
    pub anchor: String,
    /// How often it occurs on the stacked tree.
    pub count: usize,
    /// The third-party patch after which it no longer occurs once
    /// (`None`: only the patches together changed it).
    pub by: Option<String>,
    /// The release.
    pub release: &'static str,
}

/// A `patch` run that failed: `log` holds its output, `tail` the last
/// lines.
#[derive(Debug, thiserror::Error)]
#[error("`{command}` failed in {dir} ({status}); log: {log}\n{tail}")]
pub struct CommandFailed {
    /// The command line.
    pub command: String,
    /// Where it ran.
    pub dir: PathBuf,
    /// How it ended.
    pub status: String,
    /// The full output.
    pub log: PathBuf,
    /// The last lines of the output.
    pub tail: String,
}

/// Reading a pristine [`SourceTree`] for a generator: the files to edit,
/// the files a patch adds.
pub trait Pristine {
    /// Read a file of the tree as text and wrap it in an [`Editor`].
    fn edit(&self, file: &str) -> Result<Editor, PatchError>;
    /// Fail if `file` already exists (a patch is about to add it).
    fn must_not_exist(&self, file: &str) -> Result<(), PatchError>;
}

impl Pristine for SourceTree {
    fn edit(&self, file: &str) -> Result<Editor, PatchError> {
        let path = self.root.join(file);
        let bytes = std::fs::read(&path).map_err(|source| PatchError::Read {
            path: path.clone(),
            source,
        })?;
        let text = String::from_utf8(bytes).map_err(|_| PatchError::NotText { path })?;
        Ok(Editor {
            file: file.to_string(),
            release: self.release.full_name,
            original: text.clone(),
            text,
        })
    }

    fn must_not_exist(&self, file: &str) -> Result<(), PatchError> {
        let path = self.root.join(file);
        if path.symlink_metadata().is_ok() {
            return Err(PatchError::AlreadyExists { path });
        }
        Ok(())
    }
}

/// One file being changed by a patch: the pristine text and the edits made
/// so far. Every anchor must occur exactly once in the **current** text.
#[derive(Debug, Clone)]
pub struct Editor {
    file: String,
    release: &'static str,
    original: String,
    text: String,
}

impl Editor {
    fn find_once(&self, anchor: &str) -> Result<usize, PatchError> {
        let count = self.text.matches(anchor).count();
        if count != 1 || anchor.is_empty() {
            return Err(PatchError::Anchor {
                file: self.file.clone(),
                anchor: anchor.to_string(),
                count,
                release: self.release,
            });
        }
        Ok(self.text.find(anchor).unwrap_or(0))
    }

    /// Insert `text` right after the unique occurrence of `anchor`.
    pub fn insert_after(&mut self, anchor: &str, text: &str) -> Result<&mut Self, PatchError> {
        let at = self.find_once(anchor)? + anchor.len();
        self.text.insert_str(at, text);
        Ok(self)
    }

    /// Insert `text` right before the unique occurrence of `anchor`.
    pub fn insert_before(&mut self, anchor: &str, text: &str) -> Result<&mut Self, PatchError> {
        let at = self.find_once(anchor)?;
        self.text.insert_str(at, text);
        Ok(self)
    }

    /// Replace the unique occurrence of `anchor` with `text`.
    pub fn replace(&mut self, anchor: &str, text: &str) -> Result<&mut Self, PatchError> {
        let at = self.find_once(anchor)?;
        self.text.replace_range(at..at + anchor.len(), text);
        Ok(self)
    }

    /// The text as edited so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Finish editing: the change to put in a [`Patch`].
    pub fn finish(self) -> FileChange {
        FileChange {
            path: self.file,
            old: Some(self.original),
            new: self.text,
        }
    }
}

/// One file of a patch: changed (`old` is `Some`) or added (`old` is `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// Path relative to the release top directory.
    pub path: String,
    /// The pristine text, or `None` for a file the patch adds.
    pub old: Option<String>,
    /// The text after the patch.
    pub new: String,
}

impl FileChange {
    /// A file the patch adds, with the given contents.
    pub fn added(path: &str, contents: &str) -> Self {
        FileChange {
            path: path.to_string(),
            old: None,
            new: contents.to_string(),
        }
    }
}

/// A generated patch: its name, what it is for, and the files it changes.
#[derive(Debug, Clone)]
pub struct Patch {
    /// The file name of the patch, e.g. `netqmail-1.06-realrcptto.patch`.
    pub file_name: String,
    /// The release it applies to.
    pub release: &'static Release,
    /// A few lines that describe it; written at the top of the diff, where
    /// `patch(1)` ignores them.
    pub description: String,
    /// The changed and added files, in the order they appear in the diff.
    pub files: Vec<FileChange>,
}

impl Patch {
    /// The patch as a unified diff for `patch -p1`, run in the release's
    /// top directory: a description, then for each file `--- a/F` /
    /// `+++ b/F` (or `--- /dev/null` for added files) and its hunks with
    /// three lines of context. There are no time stamps, so the output is
    /// byte-identical for the same input.
    pub fn to_diff(&self) -> String {
        let mut out = String::new();
        for line in self.description.lines() {
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out.push('\n');
        for f in &self.files {
            let old = f.old.as_deref().unwrap_or("");
            let old_name = match f.old {
                Some(_) => format!("a/{}", f.path),
                None => "/dev/null".to_string(),
            };
            let new_name = format!("b/{}", f.path);
            let diff = TextDiff::from_lines(old, f.new.as_str());
            let body = diff
                .unified_diff()
                .context_radius(3)
                .header(&old_name, &new_name)
                .to_string();
            if body.is_empty() {
                continue;
            }
            let _ = writeln!(out, "diff -u {old_name} {new_name}");
            out.push_str(&body);
        }
        out
    }

    /// The SHA-256 of [`Patch::to_diff`], in hex.
    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(self.to_diff().as_bytes()))
    }
}

/// A patch this project knows how to generate.
#[derive(Debug, Clone, Copy)]
pub struct PatchDef {
    /// The short name used on the command line (`--patches`), e.g. `realrcptto`.
    pub name: &'static str,
    /// The release it applies to.
    pub release: &'static Release,
    /// Whether it is one of the mission patches (as opposed to a
    /// portability fix).
    pub mission: bool,
    /// Generates the patch from a pristine tree of `release`.
    pub generate: fn(&SourceTree) -> Result<Patch, PatchError>,
}

/// Every patch, in series order: the order in which they are applied.
/// Portability fixes come first, so that each mission patch stays exactly
/// what its spec says.
pub fn series() -> &'static [PatchDef] {
    &SERIES
}

static SERIES: [PatchDef; 8] = [
    PatchDef {
        name: "realrcptto",
        release: &NETQMAIL,
        mission: true,
        generate: realrcptto::generate,
    },
    PatchDef {
        name: "rcptcheck",
        release: &NETQMAIL,
        mission: true,
        generate: rcptcheck::generate,
    },
    PatchDef {
        name: "branch",
        release: &NETQMAIL,
        mission: true,
        generate: branch::generate,
    },
    PatchDef {
        name: "realrcptto",
        release: &NOTQMAIL,
        mission: true,
        generate: realrcptto::generate,
    },
    PatchDef {
        name: "rcptcheck",
        release: &NOTQMAIL,
        mission: true,
        generate: rcptcheck::generate_notqmail,
    },
    PatchDef {
        name: "branch",
        release: &NOTQMAIL,
        mission: true,
        generate: branch::generate,
    },
    PatchDef {
        name: "errno",
        release: &MESS822,
        mission: false,
        generate: portability::generate_mess822,
    },
    PatchDef {
        name: "nonroot",
        release: &MESS822,
        mission: true,
        generate: nonroot::generate,
    },
];

/// Look up patches by short name, keeping series order. An empty `names`
/// selects all of them.
pub fn select(names: &[String]) -> Result<Vec<&'static PatchDef>, PatchError> {
    for n in names {
        if !SERIES.iter().any(|d| d.name == n) {
            let mut known: Vec<_> = Vec::new();
            for d in &SERIES {
                if !known.contains(&d.name) {
                    known.push(d.name);
                }
            }
            return Err(PatchError::Unknown(n.clone(), known.join(", ")));
        }
    }
    Ok(SERIES
        .iter()
        .filter(|d| names.is_empty() || names.iter().any(|n| n == d.name))
        .collect())
}

/// The `series` file: one file name per line, in application order
/// (quilt's format): the third-party patches of `stack` first (followed
/// by ` -pN` when not applied with `-p1`), then ours. Each of ours applies
/// with `patch -p1` inside the top directory its name starts with; the
/// third-party ones inside the qmail tree.
pub fn series_file(stack: &[ThirdPartyPatch], patches: &[Patch]) -> String {
    let mut s = String::new();
    for t in stack {
        s.push_str(&t.file_name);
        if t.strip != 1 {
            let _ = write!(s, " -p{}", t.strip);
        }
        s.push('\n');
    }
    for p in patches {
        s.push_str(&p.file_name);
        s.push('\n');
    }
    s
}

/// The file name a patch gets: `<release full name>-<name>.patch`.
pub fn file_name(def: &PatchDef) -> String {
    format!("{}-{}.patch", def.release.full_name, def.name)
}

/// Generate the patches of `defs` that apply to `tree`'s release, from
/// that pristine tree, in series order. Patches for other releases are
/// skipped. A failing generator is named in the error.
pub fn generate(tree: &SourceTree, defs: &[&PatchDef]) -> Result<Vec<Patch>, PatchError> {
    defs.iter()
        .filter(|d| d.release == tree.release)
        .map(|d| {
            (d.generate)(tree).map_err(|source| PatchError::Generate {
                name: d.name.to_string(),
                source: Box::new(source),
            })
        })
        .collect()
}
