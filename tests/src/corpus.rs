//! Seed corpora for the libFuzzer harnesses (`tests/c/fuzz-*.c`, run by
//! `cargo xtask fuzz`), made from generated scenarios and generated
//! `.qmail` programs, in the formats the harnesses read.
//!
//! * `realrcptto` (tests/c/fuzz-realrcptto.c): the conf-break byte, a flag
//!   byte, eight length-prefixed sections (the five control files,
//!   users/cdb, passwd, the file tree) and the addresses, one per line.
//!   The world root is written as `/proc/self/cwd`, the harness's scratch
//!   directory.
//! * `qbranch` (tests/c/fuzz-qbranch.c): the `.qmail` file itself.

use std::io;
use std::path::Path;

use crate::options::program_seed;
use crate::oracle::b::{generate_program, GenOptions};
use crate::scenario::{generate, subst_root, CdbState, ErrnoFault, NodeKind, Scenario};

/// Which harness a corpus is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// tests/c/fuzz-realrcptto.c.
    Realrcptto,
    /// tests/c/fuzz-qbranch.c.
    Qbranch,
}

/// The world root as the realrcptto harness sees it.
const FUZZ_ROOT: &str = "/proc/self/cwd";
/// The most addresses the harness reads from one input.
const MAX_ADDRS: usize = 64;

/// Writes `count` seed inputs for `target`, made from scenarios (or
/// programs) `0..count` of `seed`, into `dir` (created if missing), each
/// under a temporary name renamed into place. Files already there are left
/// alone. Returns how many files were written.
pub fn write_seeds(target: Target, seed: u64, count: u64, dir: &Path) -> io::Result<u64> {
    std::fs::create_dir_all(dir)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display())))?;
    let mut written = 0;
    for index in 0..count {
        let (name, bytes) = match target {
            Target::Realrcptto => (
                format!("seed-{seed}-{index}"),
                realrcptto_input(&generate(seed, index)),
            ),
            Target::Qbranch => (
                format!("seed-{seed}-{index}"),
                generate_program(program_seed(seed, index), GenOptions::default()).bytes,
            ),
        };
        let path = dir.join(&name);
        if path.exists() {
            continue;
        }
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, &bytes)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display()))
            })?;
        written += 1;
    }
    Ok(written)
}

/// Appends a section: a 2-byte big-endian length, then the bytes (cut to
/// 65535).
fn section(out: &mut Vec<u8>, b: &[u8]) {
    let b = &b[..b.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(b.len() as u16).to_be_bytes());
    out.extend_from_slice(b);
}

/// The users/cdb image of `sc` (None: no file), and whether it is a
/// directory; as `Scenario::materialize` makes it, homes under
/// [`FUZZ_ROOT`].
fn cdb_image(sc: &Scenario) -> (Option<Vec<u8>>, bool) {
    let root = Path::new(FUZZ_ROOT);
    let records = || {
        let a = subst_root(&sc.assign.as_ref()?.0, root);
        qmail_resolver::compile_assign(&a).ok()
    };
    let image = |recs: Vec<(Vec<u8>, Vec<u8>)>| -> Option<Vec<u8>> {
        let dir = tempfile::tempdir().ok()?;
        let p = dir.path().join("cdb");
        qmail_resolver::users::write_cdb(&p, &recs).ok()?;
        std::fs::read(&p).ok()
    };
    match sc.cdb {
        CdbState::FromAssign => (records().and_then(image), false),
        CdbState::Missing => (None, false),
        CdbState::Directory => (None, true),
        CdbState::Empty => (Some(Vec::new()), false),
        CdbState::NoWildchars => {
            let recs: Vec<_> = records()
                .unwrap_or_default()
                .into_iter()
                .filter(|(k, _)| !k.is_empty())
                .collect();
            // materialize writes an empty file when nothing compiles
            (Some(image(recs).unwrap_or_default()), false)
        }
    }
}

/// The file tree lines: `KIND MODE UID GID PATH` (symlinks: `\0TARGET`).
fn tree(sc: &Scenario) -> Vec<u8> {
    let root = Path::new(FUZZ_ROOT);
    let mut out = Vec::new();
    for n in &sc.nodes {
        let (kind, target) = match &n.kind {
            NodeKind::Dir => ('d', None),
            NodeKind::File { .. } => ('f', None),
            NodeKind::Fifo => ('p', None),
            NodeKind::Symlink { target } => ('l', Some(subst_root(&target.0, root))),
        };
        let bad = |b: &[u8]| b.contains(&b'\n') || b.contains(&0);
        if bad(&n.path.0) || target.as_deref().is_some_and(bad) {
            continue;
        }
        out.extend_from_slice(format!("{kind} {:o} {} {} ", n.mode, n.uid, n.gid).as_bytes());
        out.extend_from_slice(&n.path.0);
        if let Some(t) = target {
            out.push(0);
            out.extend_from_slice(&t);
        }
        out.push(b'\n');
    }
    out
}

/// One realrcptto harness input for scenario `sc`.
fn realrcptto_input(sc: &Scenario) -> Vec<u8> {
    let c = &sc.control;
    let controls = [
        &c.me,
        &c.envnoathost,
        &c.locals,
        &c.percenthack,
        &c.virtualdomains,
    ];
    let (cdb, cdb_dir) = cdb_image(sc);
    let mut flags = 0u8;
    for (i, f) in controls.iter().enumerate() {
        if f.is_some() {
            flags |= 1 << i;
        }
    }
    if cdb.is_some() {
        flags |= 0x20;
    }
    if cdb_dir {
        flags |= 0x40;
    }
    if sc.index % 8 == 7 {
        flags |= 0x80; // deny-all now and then
    }
    let mut out = vec![sc.conf_break, flags];
    for f in controls {
        section(&mut out, f.as_ref().map(|e| e.0.as_slice()).unwrap_or(b""));
    }
    section(&mut out, cdb.as_deref().unwrap_or(b""));
    let mut pw = Vec::new();
    if let Some(ErrnoFault::Etxtbsy { name }) = &sc.errno_fault {
        pw.push(b'!');
        pw.extend_from_slice(&name.0);
        pw.push(b'\n');
    }
    pw.extend_from_slice(&sc.passwd_text(Path::new(FUZZ_ROOT)));
    section(&mut out, &pw);
    section(&mut out, &tree(sc));
    for a in sc
        .addresses
        .iter()
        .filter(|a| !a.0.contains(&b'\n'))
        .take(MAX_ADDRS)
    {
        out.extend_from_slice(&a.0);
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realrcptto_seed_sections_and_addresses() {
        let sc = generate(3, 0);
        let b = realrcptto_input(&sc);
        assert_eq!(b[0], sc.conf_break);
        // walk the eight sections; the rest are the addresses
        let mut pos = 2;
        let mut secs = Vec::new();
        for _ in 0..8 {
            let n = u16::from_be_bytes([b[pos], b[pos + 1]]) as usize;
            secs.push(&b[pos + 2..pos + 2 + n]);
            pos += 2 + n;
        }
        assert_eq!(
            secs[0],
            sc.control
                .me
                .as_ref()
                .map(|e| e.0.as_slice())
                .unwrap_or(b"")
        );
        let pw = String::from_utf8_lossy(secs[6]);
        assert!(pw.contains(":/proc/self/cwd/"), "{pw}");
        assert!(!pw.contains("{ROOT}") && !String::from_utf8_lossy(secs[7]).contains("{ROOT}"));
        let addrs: Vec<&[u8]> = b[pos..].split(|&c| c == b'\n').collect();
        let want: Vec<&[u8]> = sc
            .addresses
            .iter()
            .map(|a| a.0.as_slice())
            .filter(|a| !a.contains(&b'\n'))
            .take(MAX_ADDRS)
            .collect();
        assert_eq!(&addrs[..addrs.len() - 1], want.as_slice());
    }

    #[test]
    fn write_seeds_is_idempotent_and_leaves_no_temp_files() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(write_seeds(Target::Qbranch, 5, 4, d.path()).unwrap(), 4);
        assert_eq!(write_seeds(Target::Qbranch, 5, 4, d.path()).unwrap(), 0);
        let names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 4, "{names:?}");
        assert!(names.iter().all(|n| n.starts_with("seed-5-")), "{names:?}");
        let p = generate_program(program_seed(5, 2), GenOptions::default()).bytes;
        assert_eq!(std::fs::read(d.path().join("seed-5-2")).unwrap(), p);
    }
}
