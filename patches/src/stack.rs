//! Third-party patches applied before ours: a *stack* (`--with-patch`).
//!
//! Packagers ship qmail with other people's patches (STARTTLS, SMTP AUTH,
//! …) and ours on top. A [`ThirdPartyPatch`] is one such file, read once
//! and identified by its SHA-256. [`apply_stack`] applies a list of them,
//! in order, to a copy of a pristine tree, each with `patch -pN` and **no
//! fuzz**; our generators then read that stacked tree, so our diffs apply
//! after theirs. A stack whose own patches do not apply is refused before
//! anything of ours is generated, naming the patch, the file and the first
//! failing hunk ([`PatchError::StackHunk`]).
//!
//! Where one of our anchors is missing or ambiguous on the stacked tree,
//! [`generate_on_stack`] finds which third-party patch changed it (it
//! replays the stack one patch at a time on a scratch copy) and says so
//! ([`PatchError::StackAnchor`]): nothing is ever inserted at a guessed
//! place.
//!
//! A patch file is hostile input: it is read without blocking (a FIFO is
//! refused), at most [`MAX_PATCH_BYTES`]; before `patch` sees it, every
//! file name in it is checked (no absolute name, no `..`, at least one
//! component left after `-pN`), and git extensions `patch` would act on
//! beyond plain text (symbolic links, binary hunks, renames, copies) are
//! refused. `patch` runs with `--unified`, so an ed script inside is never
//! handed to `ed`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};
use upstream_hashes::{Release, SourceTree, MESS822};

use crate::tree::{copy_tree, io_err};
use crate::{generate, Patch, PatchDef, PatchError};

/// Whether third-party patches apply to `release`'s tree: they are
/// patches to qmail (netqmail), never to mess822.
pub fn takes_stack(release: &Release) -> bool {
    *release != MESS822
}

/// The largest patch file read (the STARTTLS and AUTH patches are under
/// 100 KiB).
pub const MAX_PATCH_BYTES: u64 = 16 << 20;

/// One third-party patch file, read and digested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThirdPartyPatch {
    /// The path it was read from.
    pub path: PathBuf,
    /// Its base name: the name it gets in an emitted `series`.
    pub file_name: String,
    /// The `-pN` it is applied with (1 unless given).
    pub strip: u32,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// The SHA-256 of its bytes, in hex.
    pub sha256: String,
}

impl ThirdPartyPatch {
    /// Parse a `--with-patch` value: `FILE` (applied with `-p1`) or
    /// `pN:FILE` (e.g. `p0:/src/tls.patch`), and read the file. A file
    /// whose name starts with `pN:` is given as `./pN:…`.
    pub fn from_arg(arg: &str) -> Result<Self, PatchError> {
        let (strip, file) = match arg.split_once(':') {
            Some((p, rest)) if p.len() > 1 && p.starts_with('p') => match p[1..].parse::<u32>() {
                Ok(n) if n <= 16 => (n, rest),
                _ => {
                    return Err(PatchError::Refused(format!(
                        "--with-patch {arg:?}: {p:?} is not a strip level p0 … p16"
                    )))
                }
            },
            _ => (1, arg),
        };
        if file.is_empty() {
            return Err(PatchError::Refused(format!(
                "--with-patch {arg:?}: no file name"
            )));
        }
        Self::load(Path::new(file), strip)
    }

    /// Read the patch at `path` (a regular file of at most
    /// [`MAX_PATCH_BYTES`], opened without blocking) and check the file
    /// names in it ([`check_names`]).
    pub fn load(path: &Path, strip: u32) -> Result<Self, PatchError> {
        let bytes = read_patch_file(path)?;
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| !n.is_empty() && !n.starts_with('.'))
            .ok_or_else(|| {
                PatchError::Refused(format!(
                    "{}: a patch file needs a plain UTF-8 name (it is written into the series under it)",
                    path.display()
                ))
            })?
            .to_string();
        let p = ThirdPartyPatch {
            path: path.to_path_buf(),
            file_name,
            strip,
            sha256: hex::encode(Sha256::digest(&bytes)),
            bytes,
        };
        check_names(&p)?;
        Ok(p)
    }

    /// `NAME (sha256 HEX, -pN)`, for messages and reports.
    pub fn label(&self) -> String {
        format!(
            "{} (sha256 {}, -p{})",
            self.file_name, self.sha256, self.strip
        )
    }
}

fn read_patch_file(path: &Path) -> Result<Vec<u8>, PatchError> {
    use std::os::unix::fs::OpenOptionsExt;
    // A link the user names is followed for reading (as a distfile link
    // is); O_NONBLOCK and fstat keep a FIFO or device from being read.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| PatchError::Read {
            path: path.to_path_buf(),
            source: e,
        })?;
    let meta = f.metadata().map_err(io_err(path))?;
    if !meta.is_file() {
        return Err(PatchError::Refused(format!(
            "{}: not a regular file (refusing to read it as a patch)",
            path.display()
        )));
    }
    if meta.len() > MAX_PATCH_BYTES {
        return Err(PatchError::Refused(format!(
            "{}: {} bytes, more than the {MAX_PATCH_BYTES} a patch may have",
            path.display(),
            meta.len()
        )));
    }
    let mut bytes = Vec::new();
    f.take(MAX_PATCH_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err(path))?;
    if bytes.len() as u64 > MAX_PATCH_BYTES {
        return Err(PatchError::Refused(format!(
            "{}: grew past {MAX_PATCH_BYTES} bytes while being read",
            path.display()
        )));
    }
    Ok(bytes)
}

/// Git extended header lines `patch` would act on beyond text hunks.
const REFUSED_GIT_LINES: [&str; 7] = [
    "GIT binary patch",
    "rename from ",
    "rename to ",
    "copy from ",
    "copy to ",
    "new file mode 120000",
    "new mode 120000",
];

/// Check every file name of a patch before `patch` runs: `--- `/`+++ `
/// headers (and `diff --git`), after removing `-pN` components, must be
/// relative, free of `..`, and not empty; git symlink, binary, rename and
/// copy hunks are refused. A patch with no file header at all is refused.
pub fn check_names(p: &ThirdPartyPatch) -> Result<(), PatchError> {
    let text = String::from_utf8_lossy(&p.bytes);
    let mut headers = 0;
    for (n, line) in text.lines().enumerate() {
        let bad = |why: String| {
            PatchError::Refused(format!("{}: line {}: {why}", p.path.display(), n + 1))
        };
        if let Some(g) = REFUSED_GIT_LINES.iter().find(|g| line.starts_with(**g)) {
            return Err(bad(format!(
                "{:?}: only text changes to regular files are applied",
                g.trim()
            )));
        }
        let name = if let Some(rest) = line.strip_prefix("+++ ").or(line.strip_prefix("--- ")) {
            // The name ends at a tab (the time stamp), as in patch(1).
            rest.split('\t').next().unwrap_or("").trim_end()
        } else {
            continue;
        };
        if name == "/dev/null" {
            continue;
        }
        headers += 1;
        check_one_name(name, p.strip).map_err(bad)?;
    }
    if headers == 0 {
        return Err(PatchError::Refused(format!(
            "{}: no `--- FILE` / `+++ FILE` header: not a unified diff",
            p.path.display()
        )));
    }
    Ok(())
}

fn check_one_name(name: &str, strip: u32) -> Result<(), String> {
    if name.starts_with('/') {
        return Err(format!("absolute file name {name:?} refused"));
    }
    let parts: Vec<&str> = name.split('/').filter(|c| !c.is_empty()).collect();
    if parts.contains(&"..") {
        return Err(format!("file name {name:?} with a `..` component refused"));
    }
    if parts.len() <= strip as usize {
        return Err(format!(
            "file name {name:?} has no component left after -p{strip}"
        ));
    }
    Ok(())
}

/// The first hunk `patch` reported as failed: the file and the hunk line.
fn first_failure(output: &str) -> Option<(String, String)> {
    let mut file = String::new();
    for line in output.lines() {
        if let Some(f) = line
            .strip_prefix("checking file ")
            .or(line.strip_prefix("patching file "))
        {
            file = f.trim_matches('\'').to_string();
        } else if line.starts_with("Hunk #") && line.contains("FAILED") {
            return Some((file, line.trim_end_matches('.').to_string()));
        }
    }
    None
}

fn patch_command(tree: &Path, p: &ThirdPartyPatch, file: &Path, dry: bool) -> Command {
    let mut cmd = Command::new("patch");
    cmd.arg(format!("-p{}", p.strip))
        .args([
            "--batch",
            "--forward",
            "--unified",
            "--fuzz=0",
            "--no-backup-if-mismatch",
            "--reject-file=-",
        ])
        .args(dry.then_some("--dry-run"))
        .arg("-i")
        .arg(file)
        .current_dir(tree)
        .env("LC_ALL", "C")
        .env_remove("POSIXLY_CORRECT")
        .env_remove("PATCH_GET")
        .env_remove("SIMPLE_BACKUP_SUFFIX")
        .env_remove("VERSION_CONTROL");
    cmd
}

/// The path a `--- `/`+++ ` header line names, after removing `strip`
/// leading components (`None` for `/dev/null`).
fn header_path(line: &[u8], strip: u32) -> Option<String> {
    let rest = String::from_utf8_lossy(&line[4..]).into_owned();
    let name = rest.split('\t').next().unwrap_or("").trim_end();
    if name == "/dev/null" {
        return None;
    }
    let parts: Vec<&str> = name.split('/').filter(|c| !c.is_empty()).collect();
    Some(parts.get(strip as usize..)?.join("/"))
}

/// One `diff --git` section of `p`: the byte range and, when it changes
/// (not creates) a file under a dot directory or a dot file, that file.
fn git_sections(p: &ThirdPartyPatch) -> Vec<(std::ops::Range<usize>, Option<String>)> {
    let mut sections: Vec<(std::ops::Range<usize>, Option<String>)> = Vec::new();
    let (mut at, mut old, mut in_header) = (0, None, false);
    for line in p.bytes.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"diff --git ") {
            sections.push((at..at, None));
            (old, in_header) = (None, true);
        } else if in_header && line.starts_with(b"--- ") {
            old = header_path(line, p.strip);
        } else if in_header && line.starts_with(b"+++ ") {
            // A creation (`--- /dev/null`) is applied whatever its name.
            let changed = old.take().map(|o| header_path(line, p.strip).unwrap_or(o));
            let dotted = |f: &String| f.split('/').any(|c| c.starts_with('.'));
            if let Some(last) = sections.last_mut() {
                last.1 = changed.filter(dotted);
            }
            in_header = false;
        }
        at += line.len();
        if let Some(last) = sections.last_mut() {
            last.0.end = at;
        }
    }
    sections
}

/// The files of `p` that applying it to `tree` leaves out: in a git-format
/// patch (`diff --git` sections), changes to repository metadata — files
/// under a directory whose name starts with a dot, or dot files
/// (`.github/workflows/…`, `.gitignore`) — that the tree does not have.
/// Release trees made with `git archive` leave such files out
/// (`export-ignore`), while `git diff` between branches carries them;
/// notqmail's STARTTLS patch changes `.github/workflows/…`. Every other
/// missing file is still an error of `patch`.
pub fn left_out(p: &ThirdPartyPatch, tree: &Path) -> Vec<String> {
    git_sections(p)
        .into_iter()
        .filter_map(|(_, f)| f)
        .filter(|f| tree.join(f).symlink_metadata().is_err())
        .collect()
}

/// The bytes of `p` without the sections [`left_out`] names.
fn bytes_for(p: &ThirdPartyPatch, tree: &Path) -> Vec<u8> {
    let skip = left_out(p, tree);
    if skip.is_empty() {
        return p.bytes.clone();
    }
    let mut out = p.bytes.clone();
    for (range, f) in git_sections(p).into_iter().rev() {
        if f.is_some_and(|f| skip.contains(&f)) {
            out.drain(range);
        }
    }
    out
}

/// Apply one third-party patch to `tree`: a dry run first (so a failing
/// patch changes nothing), then the real run, without the sections
/// [`left_out`] names. `before` names the patches already applied, for
/// the error.
fn apply_one(
    tree: &Path,
    release: &str,
    p: &ThirdPartyPatch,
    before: &[ThirdPartyPatch],
) -> Result<(), PatchError> {
    let file = tree.join(format!(".qtk-stack-{}", p.sha256));
    std::fs::write(&file, bytes_for(p, tree)).map_err(io_err(&file))?;
    let on = std::iter::once(release.to_string())
        .chain(before.iter().map(|b| b.file_name.clone()))
        .collect::<Vec<_>>()
        .join(" + ");
    let result = (|| {
        for dry in [true, false] {
            let out = patch_command(tree, p, &file, dry)
                .output()
                .map_err(|e| PatchError::Refused(format!("cannot run `patch`: {e}")))?;
            if out.status.success() {
                continue;
            }
            let text = String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr);
            return Err(match first_failure(&text) {
                Some((file, hunk)) => PatchError::StackHunk {
                    patch: p.label(),
                    on: on.clone(),
                    file,
                    hunk,
                },
                None => PatchError::StackApply {
                    patch: p.label(),
                    on: on.clone(),
                    output: text.lines().take(15).collect::<Vec<_>>().join("\n"),
                },
            });
        }
        Ok(())
    })();
    let _ = std::fs::remove_file(&file);
    result
}

/// Apply `stack` in order to a copy of the pristine tree `pristine`,
/// built as `dest/.<full name>.tmp` and renamed to `dest/<full name>`
/// (replacing an older one) only when every patch applied. Returns that
/// tree, with the pristine tree's release and provenance. With an empty
/// stack nothing is copied and `pristine` is returned.
pub fn apply_stack(
    pristine: &SourceTree,
    stack: &[ThirdPartyPatch],
    dest: &Path,
) -> Result<SourceTree, PatchError> {
    if stack.is_empty() {
        return Ok(pristine.clone());
    }
    let release = pristine.release.full_name;
    std::fs::create_dir_all(dest).map_err(io_err(dest))?;
    let final_dir = dest.join(release);
    let tmp = dest.join(format!(".{release}.tmp"));
    for d in [&tmp, &final_dir] {
        if d.symlink_metadata().is_ok() {
            std::fs::remove_dir_all(d).map_err(io_err(d))?;
        }
    }
    let made = (|| {
        copy_tree(&pristine.root, &tmp)?;
        for (i, p) in stack.iter().enumerate() {
            apply_one(&tmp, release, p, &stack[..i])?;
        }
        // A patch may not leave anything but files and directories
        // (hash_tree refuses links, FIFOs and devices with their path).
        crate::tree::hash_tree(&tmp)?;
        std::fs::rename(&tmp, &final_dir).map_err(io_err(&final_dir))
    })();
    if let Err(e) = made {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    Ok(SourceTree {
        release: pristine.release,
        root: final_dir,
        provenance: pristine.provenance.clone(),
    })
}

/// How often `anchor` occurs in `file` of the tree at `root` (0 when the
/// file cannot be read).
fn anchor_count(root: &Path, file: &str, anchor: &str) -> usize {
    std::fs::read(root.join(file))
        .map(|b| String::from_utf8_lossy(&b).matches(anchor).count())
        .unwrap_or(0)
}

/// Generate `defs`' patches for the stacked tree `stacked` (made by
/// [`apply_stack`] from `pristine`). When an anchor that occurs exactly
/// once in the pristine file is missing or ambiguous on the stack, the
/// stack is replayed one patch at a time in a scratch directory under
/// `scratch` to find the third-party patch that changed it, and the error
/// names it ([`PatchError::StackAnchor`]).
pub fn generate_on_stack(
    pristine: &SourceTree,
    stacked: &SourceTree,
    stack: &[ThirdPartyPatch],
    defs: &[&PatchDef],
    scratch: &Path,
) -> Result<Vec<Patch>, PatchError> {
    let err = match generate(stacked, defs) {
        Ok(p) => return Ok(p),
        Err(e) if stack.is_empty() => return Err(e),
        Err(e) => e,
    };
    let PatchError::Generate { name, source } = &err else {
        return Err(err);
    };
    let PatchError::Anchor {
        file,
        anchor,
        count,
        ..
    } = source.as_ref()
    else {
        return Err(err);
    };
    if anchor_count(&pristine.root, file, anchor) != 1 {
        return Err(err);
    }
    let culprit = find_culprit(pristine, stack, file, anchor, scratch)?;
    Err(PatchError::StackAnchor(Box::new(crate::StackAnchor {
        ours: name.clone(),
        file: file.clone(),
        anchor: anchor.clone(),
        count: *count,
        by: culprit.map(ThirdPartyPatch::label),
        release: pristine.release.full_name,
    })))
}

/// The first patch of `stack` after which `anchor` no longer occurs
/// exactly once in `file`.
fn find_culprit<'a>(
    pristine: &SourceTree,
    stack: &'a [ThirdPartyPatch],
    file: &str,
    anchor: &str,
    scratch: &Path,
) -> Result<Option<&'a ThirdPartyPatch>, PatchError> {
    std::fs::create_dir_all(scratch).map_err(io_err(scratch))?;
    let dir = scratch.join(format!(".{}.anchor.tmp", pristine.release.full_name));
    if dir.symlink_metadata().is_ok() {
        std::fs::remove_dir_all(&dir).map_err(io_err(&dir))?;
    }
    let found = (|| {
        copy_tree(&pristine.root, &dir)?;
        for (i, p) in stack.iter().enumerate() {
            apply_one(&dir, pristine.release.full_name, p, &stack[..i])?;
            if anchor_count(&dir, file, anchor) != 1 {
                return Ok(Some(p));
            }
        }
        Ok(None)
    })();
    let _ = std::fs::remove_dir_all(&dir);
    found
}
