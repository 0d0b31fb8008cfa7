//! Unpack tests on archives made here, including crafted malicious ones.

use std::io::Write;
use std::path::{Path, PathBuf};

use qmail_unpack::{
    unpack_archive, unpack_bytes, unpack_bytes_replacing, Tarball, UnpackError, UnpackLimits,
};
use sha2::{Digest, Sha256, Sha512};
use tar::{EntryType, Header};

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// A release `pkg-1.0` whose digests are those of `archive`.
fn release_for(archive: &[u8], mirrors: Vec<String>) -> &'static Tarball {
    let mirrors: Vec<&'static str> = mirrors.into_iter().map(leak).collect();
    Box::leak(Box::new(Tarball {
        name: "pkg",
        file_name: "pkg-1.0.tar.gz",
        full_name: "pkg-1.0",
        size: archive.len() as u64,
        sha256: leak(hex::encode(Sha256::digest(archive))),
        sha512: leak(hex::encode(Sha512::digest(archive))),
        mirrors: Box::leak(mirrors.into_boxed_slice()),
    }))
}

/// Writes tar headers byte by byte, so that names the tar crate's builder
/// would refuse (`..`, absolute paths) can be written.
struct RawTar {
    builder: tar::Builder<Vec<u8>>,
}

const MTIME: u64 = 1_200_000_000;

impl RawTar {
    fn new() -> Self {
        RawTar {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    fn raw(&mut self, name: &[u8], kind: EntryType, mode: u32, data: &[u8], link: &[u8]) {
        let mut h = Header::new_gnu();
        {
            let old = h.as_old_mut();
            assert!(name.len() <= old.name.len());
            old.name[..name.len()].copy_from_slice(name);
            old.linkname[..link.len()].copy_from_slice(link);
        }
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_mtime(MTIME);
        h.set_cksum();
        self.builder.append(&h, data).unwrap();
    }

    fn dir(&mut self, name: &str) -> &mut Self {
        self.raw(name.as_bytes(), EntryType::Directory, 0o775, b"", b"");
        self
    }

    fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> &mut Self {
        self.raw(name.as_bytes(), EntryType::Regular, mode, data, b"");
        self
    }

    fn tar(self) -> Vec<u8> {
        self.builder.into_inner().unwrap()
    }

    fn gz(self) -> Vec<u8> {
        gzip(&self.tar())
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// A well-formed archive of `pkg-1.0`.
fn good_archive() -> RawTar {
    let mut t = RawTar::new();
    t.dir("pkg-1.0/")
        .file("pkg-1.0/pkg.c", 0o664, b"int main(void) { return 0; }\n")
        .file("pkg-1.0/configure", 0o775, b"#!/bin/sh\necho hi\n")
        .file("pkg-1.0/readonly.txt", 0o400, b"read only\n")
        .file("pkg-1.0/only-user-x", 0o700, b"x\n")
        // Parent directories not listed in the archive.
        .file("pkg-1.0/sub/dir/x.h", 0o644, b"#define X 1\n");
    t
}

struct Dirs {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    archive: PathBuf,
    dest: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let dest = root.join("work").join("dest");
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::create_dir_all(root.join("archives")).unwrap();
    Dirs {
        archive: root.join("archives").join("pkg-1.0.tar.gz"),
        root,
        dest,
        _tmp: tmp,
    }
}

fn list(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn good_archive_unpacks_with_normalised_permissions() {
    let d = dirs();
    let gz = good_archive().gz();
    std::fs::write(&d.archive, &gz).unwrap();
    let rel = release_for(&gz, vec![]);
    let root = unpack_archive(&d.archive, rel, &d.dest).unwrap();
    assert_eq!(root, d.dest.join("pkg-1.0"));
    assert_eq!(
        list(&d.dest),
        vec!["pkg-1.0"],
        "staging directory left behind"
    );
    assert_eq!(
        list(&root),
        vec!["configure", "only-user-x", "pkg.c", "readonly.txt", "sub"]
    );
    assert_eq!(
        std::fs::read(root.join("pkg.c")).unwrap(),
        b"int main(void) { return 0; }\n"
    );
    assert_eq!(
        std::fs::read(root.join("sub/dir/x.h")).unwrap(),
        b"#define X 1\n"
    );
    #[cfg(unix)]
    {
        assert_eq!(mode(&root), 0o755);
        assert_eq!(mode(&root.join("sub")), 0o755);
        assert_eq!(mode(&root.join("sub/dir")), 0o755);
        assert_eq!(mode(&root.join("pkg.c")), 0o644);
        assert_eq!(mode(&root.join("configure")), 0o755);
        assert_eq!(mode(&root.join("readonly.txt")), 0o644);
        assert_eq!(mode(&root.join("only-user-x")), 0o755);
    }
    let mtime = std::fs::metadata(root.join("pkg.c"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(
        mtime,
        std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(MTIME)
    );
}

#[test]
fn existing_destination_is_refused_and_kept() {
    let d = dirs();
    let gz = good_archive().gz();
    let rel = release_for(&gz, vec![]);
    std::fs::create_dir(d.dest.join("pkg-1.0")).unwrap();
    std::fs::write(d.dest.join("pkg-1.0/mine"), b"keep").unwrap();
    let err = unpack_bytes(&gz, "pkg-1.0.tar.gz", rel, &d.dest).unwrap_err();
    assert!(matches!(err, UnpackError::Exists { .. }), "{err}");
    assert!(err.to_string().contains("pkg-1.0.tar.gz"), "{err}");
    assert_eq!(list(&d.dest), vec!["pkg-1.0"]);
    assert_eq!(list(&d.dest.join("pkg-1.0")), vec!["mine"]);
}

#[test]
fn replacing_swaps_in_the_fresh_tree_and_keeps_the_old_one_on_error() {
    let d = dirs();
    let gz = good_archive().gz();
    let rel = release_for(&gz, vec![]);
    let limits = UnpackLimits::default();
    std::fs::create_dir(d.dest.join("pkg-1.0")).unwrap();
    std::fs::write(d.dest.join("pkg-1.0/old"), b"old").unwrap();
    // A broken archive leaves the old tree as it was.
    let err =
        unpack_bytes_replacing(b"not gzip", "pkg-1.0.tar.gz", rel, &d.dest, &limits).unwrap_err();
    assert!(err.to_string().starts_with("pkg-1.0.tar.gz: "), "{err}");
    assert_eq!(list(&d.dest), vec!["pkg-1.0"]);
    assert_eq!(list(&d.dest.join("pkg-1.0")), vec!["old"]);
    let root = unpack_bytes_replacing(&gz, "pkg-1.0.tar.gz", rel, &d.dest, &limits).unwrap();
    assert_eq!(root, d.dest.join("pkg-1.0"));
    assert_eq!(list(&d.dest), vec!["pkg-1.0"], "staging or old tree left");
    assert_eq!(
        list(&root),
        vec!["configure", "only-user-x", "pkg.c", "readonly.txt", "sub"]
    );
}

/// Unpacking `gz` must fail with an error naming the archive (and
/// containing `reason_part`), leaving nothing in the destination and
/// nothing outside it.
fn rejected(gz: Vec<u8>, reason_part: &str) {
    let d = dirs();
    std::fs::write(&d.archive, &gz).unwrap();
    let rel = release_for(&gz, vec![]);
    // on another thread: a read error retried forever fails in 10 s
    let (archive, dest) = (d.archive.clone(), d.dest.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(unpack_archive(&archive, rel, &dest).map_err(|e| e.to_string()));
    });
    let msg = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("unpacking a bad archive did not finish in 10 s")
        .unwrap_err();
    assert!(
        msg.contains("pkg-1.0.tar.gz"),
        "error does not name the archive: {msg}"
    );
    assert!(
        msg.contains(reason_part),
        "expected {reason_part:?} in: {msg}"
    );
    assert_eq!(
        list(&d.dest),
        Vec::<String>::new(),
        "left behind after: {msg}"
    );
    assert_eq!(list(&d.root.join("work")), vec!["dest"], "escaped: {msg}");
    assert_eq!(list(&d.root), vec!["archives", "work"], "escaped: {msg}");
    assert_eq!(list(&d.root.join("archives")), vec!["pkg-1.0.tar.gz"]);
}

/// A good archive with one bad entry in the middle (so that good files
/// have been written before the bad entry is seen).
fn with_bad_entry(name: &[u8], kind: EntryType, data: &[u8], link: &[u8]) -> Vec<u8> {
    let mut t = good_archive();
    t.raw(name, kind, 0o644, data, link);
    t.file("pkg-1.0/after.c", 0o644, b"after\n");
    t.gz()
}

#[test]
fn dot_dot_path_is_rejected() {
    rejected(
        with_bad_entry(b"../evil", EntryType::Regular, b"evil\n", b""),
        "\"..\"",
    );
    rejected(
        with_bad_entry(b"pkg-1.0/../../evil", EntryType::Regular, b"evil\n", b""),
        "\"..\"",
    );
    rejected(
        with_bad_entry(b"pkg-1.0/sub/../../..", EntryType::Directory, b"", b""),
        "\"..\"",
    );
}

#[test]
fn absolute_path_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("absolute-evil");
    let name = target.to_str().unwrap().as_bytes().to_vec();
    rejected(
        with_bad_entry(&name, EntryType::Regular, b"evil\n", b""),
        "absolute path",
    );
    assert!(!target.exists());
}

#[test]
fn symlink_is_rejected() {
    rejected(
        with_bad_entry(b"pkg-1.0/link", EntryType::Symlink, b"", b"/etc/passwd"),
        "symbolic link not allowed",
    );
}

#[test]
fn hard_link_is_rejected() {
    rejected(
        with_bad_entry(b"pkg-1.0/hard", EntryType::Link, b"", b"pkg-1.0/pkg.c"),
        "hard link not allowed",
    );
}

#[test]
fn device_and_fifo_nodes_are_rejected() {
    rejected(
        with_bad_entry(b"pkg-1.0/null", EntryType::Char, b"", b""),
        "character device not allowed",
    );
    rejected(
        with_bad_entry(b"pkg-1.0/sda", EntryType::Block, b"", b""),
        "block device not allowed",
    );
    rejected(
        with_bad_entry(b"pkg-1.0/fifo", EntryType::Fifo, b"", b""),
        "FIFO not allowed",
    );
}

#[test]
fn entries_outside_the_top_directory_are_rejected() {
    rejected(
        with_bad_entry(b"other-1.0/x.c", EntryType::Regular, b"x\n", b""),
        "outside the top directory pkg-1.0/",
    );
    rejected(
        with_bad_entry(b"README", EntryType::Regular, b"x\n", b""),
        "outside the top directory pkg-1.0/",
    );
    rejected(
        with_bad_entry(b"pkg-1.0.evil/x", EntryType::Regular, b"x\n", b""),
        "outside the top directory pkg-1.0/",
    );
}

#[test]
fn top_directory_as_a_file_is_rejected() {
    let mut t = RawTar::new();
    t.file("pkg-1.0", 0o644, b"not a dir\n");
    rejected(t.gz(), "top directory pkg-1.0/ is a file");
}

#[test]
fn long_gnu_name_with_dot_dot_is_rejected() {
    // A GNU long-name record: the real path is in the data of an 'L'
    // entry, not in the header's name field.
    let long = format!("pkg-1.0/{}/../../../evil\0", "d".repeat(120));
    let mut t = good_archive();
    t.raw(
        b"././@LongLink",
        EntryType::GNULongName,
        0o644,
        long.as_bytes(),
        b"",
    );
    t.raw(
        b"pkg-1.0/innocent",
        EntryType::Regular,
        0o644,
        b"evil\n",
        b"",
    );
    rejected(t.gz(), "\"..\"");
}

#[test]
fn empty_archive_is_rejected() {
    rejected(RawTar::new().gz(), "no pkg-1.0/ directory");
}

#[test]
fn corrupt_gzip_is_rejected() {
    let good = good_archive().gz();
    // A flipped bit in the compressed data.
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x10;
    rejected(flipped, "corrupt archive");
    // A wrong CRC in the trailer (the data itself inflates fine).
    let mut crc = good.clone();
    let n = crc.len();
    crc[n - 8] ^= 0xff;
    rejected(crc, "corrupt archive");
    // Truncated.
    rejected(good[..good.len() - 20].to_vec(), "corrupt archive");
    // Not gzip at all.
    rejected(good_archive().tar(), "corrupt archive");
}

#[test]
fn pax_global_header_is_ignored() {
    let d = dirs();
    let mut t = RawTar::new();
    let comment = b"52 comment=0123456789012345678901234567890123456789\n";
    t.raw(
        b"pax_global_header",
        EntryType::XGlobalHeader,
        0o666,
        comment,
        b"",
    );
    t.dir("pkg-1.0/").file("pkg-1.0/pkg.c", 0o644, b"x\n");
    let gz = t.gz();
    let rel = release_for(&gz, vec![]);
    let root = unpack_bytes(&gz, "pkg-1.0.tar.gz", rel, &d.dest).unwrap();
    assert_eq!(list(&root), vec!["pkg.c"]);
}
