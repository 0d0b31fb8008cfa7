//! Limits and trailing data: gzip bombs, entry floods, data after the tar
//! end or after the gzip member, FIFOs, and stale staging directories.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use qmail_unpack::{
    unpack_archive_limited, unpack_bytes, unpack_bytes_limited, Tarball, UnpackLimits,
    DEFAULT_MAX_ENTRIES, DEFAULT_MAX_UNPACKED_BYTES,
};

const REL: Tarball = Tarball {
    name: "pkg",
    file_name: "pkg-1.0.tar.gz",
    full_name: "pkg-1.0",
    size: 0,
    sha256: "",
    sha512: "",
    mirrors: &[],
};

fn tar_of(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_mtime(1_000_000_000);
        b.append_data(&mut h, path, &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn small() -> Vec<u8> {
    gzip(&tar_of(&[("pkg-1.0/pkg.c", b"int x;\n".to_vec())]))
}

fn list(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

const MIB: u64 = 1024 * 1024;

/// Unpacking `gz` with `limits` fails naming the archive and containing
/// `reason_part`, leaving nothing in the destination.
fn refused(gz: &[u8], limits: UnpackLimits, reason_part: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let err = unpack_bytes_limited(gz, "pkg-1.0.tar.gz", &REL, tmp.path(), &limits).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("pkg-1.0.tar.gz: "), "{msg}");
    assert!(msg.contains(reason_part), "{reason_part:?} not in: {msg}");
    assert_eq!(list(tmp.path()), Vec::<String>::new(), "left behind: {msg}");
}

fn limits(max_bytes: u64, max_entries: u64) -> UnpackLimits {
    UnpackLimits {
        max_bytes,
        max_entries,
    }
}

#[test]
fn defaults_are_the_documented_values() {
    assert_eq!(DEFAULT_MAX_UNPACKED_BYTES, 256 * MIB);
    assert_eq!(DEFAULT_MAX_ENTRIES, 20_000);
    assert_eq!(UnpackLimits::default(), limits(256 * MIB, 20_000));
}

#[test]
fn a_gzip_bomb_file_is_refused_at_the_size_limit() {
    let bomb = gzip(&tar_of(&[("pkg-1.0/zeros", vec![0u8; 3 * MIB as usize])]));
    assert!(bomb.len() < 64 * 1024);
    refused(
        &bomb,
        limits(MIB, 100),
        "would unpack to more than 1048576 bytes, the limit",
    );
    // Under a large enough limit the same archive is fine.
    let tmp = tempfile::tempdir().unwrap();
    let root = unpack_bytes_limited(
        &bomb,
        "pkg-1.0.tar.gz",
        &REL,
        tmp.path(),
        &limits(4 * MIB, 100),
    )
    .unwrap();
    assert_eq!(
        std::fs::metadata(root.join("zeros")).unwrap().len(),
        3 * MIB
    );
}

#[test]
fn zeros_after_the_tar_end_count_towards_the_size_limit() {
    let mut t = tar_of(&[("pkg-1.0/pkg.c", b"x\n".to_vec())]);
    t.resize(t.len() + 3 * MIB as usize, 0);
    refused(
        &gzip(&t),
        limits(MIB, 100),
        "unpacks to more than 1048576 bytes",
    );
}

#[test]
fn too_many_entries_are_refused() {
    let files: Vec<(String, Vec<u8>)> =
        (0..30).map(|i| (format!("pkg-1.0/f{i}"), vec![])).collect();
    let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, d)| (n.as_str(), d.clone())).collect();
    let gz = gzip(&tar_of(&refs));
    refused(&gz, limits(MIB, 20), "more than 20 entries, the limit");
    let tmp = tempfile::tempdir().unwrap();
    unpack_bytes_limited(&gz, "pkg-1.0.tar.gz", &REL, tmp.path(), &limits(MIB, 30)).unwrap();
}

#[test]
fn data_after_the_tar_end_is_refused() {
    let mut t = tar_of(&[("pkg-1.0/pkg.c", b"x\n".to_vec())]);
    t.extend_from_slice(b"hidden payload after the end-of-archive blocks");
    refused(
        &gzip(&t),
        UnpackLimits::default(),
        "data after the end of the tar archive",
    );
}

#[test]
fn data_after_the_gzip_member_is_refused() {
    let mut garbage = small();
    garbage.extend_from_slice(b"trailing garbage");
    refused(
        &garbage,
        UnpackLimits::default(),
        "data after the end of the gzip stream",
    );
    // A second gzip member (which a multi-member decoder would read).
    let mut two = small();
    two.extend_from_slice(&gzip(&tar_of(&[("pkg-1.0/evil", b"e".to_vec())])));
    refused(
        &two,
        UnpackLimits::default(),
        "only one gzip member is allowed",
    );
    // Zero padding after the member is tolerated, as by gzip(1).
    let mut padded = small();
    padded.extend_from_slice(&[0u8; 512]);
    let tmp = tempfile::tempdir().unwrap();
    let root = unpack_bytes(&padded, "pkg-1.0.tar.gz", &REL, tmp.path()).unwrap();
    assert_eq!(std::fs::read(root.join("pkg.c")).unwrap(), b"int x;\n");
}

#[test]
fn a_fifo_as_the_archive_is_refused_without_blocking() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("pkg-1.0.tar.gz");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let dest = tmp.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let (f, d) = (fifo.clone(), dest.clone());
    std::thread::spawn(move || {
        let r = unpack_archive_limited(&f, &REL, &d, &UnpackLimits::default());
        let _ = tx.send(r.map_err(|e| e.to_string()));
    });
    let msg = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("blocked on a FIFO")
        .unwrap_err();
    assert!(
        msg.contains(&format!("not a regular file: {} (a FIFO)", fifo.display())),
        "{msg}"
    );
    assert_eq!(list(&dest), Vec::<String>::new());
}

#[test]
fn stale_staging_directories_are_removed_live_ones_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let dest: PathBuf = tmp.path().join("work");
    let stale = dest.join(".unpack-DEAD01");
    std::fs::create_dir_all(stale.join("pkg-1.0/sub")).unwrap();
    std::fs::write(stale.join("pkg-1.0/sub/f"), b"x").unwrap();
    // A live run's staging directory: its lock is held.
    let live = dest.join(".unpack-LIVE01");
    std::fs::create_dir_all(&live).unwrap();
    let lock = qmail_verify::lock::DirLock::try_exclusive(&live)
        .unwrap()
        .unwrap();
    // Look-alikes that are not directories are not touched.
    std::fs::write(dest.join(".unpack-file"), b"f").unwrap();
    std::os::unix::fs::symlink(tmp.path(), dest.join(".unpack-link")).unwrap();

    unpack_bytes(&small(), "pkg-1.0.tar.gz", &REL, &dest).unwrap();
    assert_eq!(
        list(&dest),
        vec![".unpack-LIVE01", ".unpack-file", ".unpack-link", "pkg-1.0"]
    );
    drop(lock);
    std::fs::remove_dir_all(dest.join("pkg-1.0")).unwrap();
    unpack_bytes(&small(), "pkg-1.0.tar.gz", &REL, &dest).unwrap();
    assert_eq!(list(&dest), vec![".unpack-file", ".unpack-link", "pkg-1.0"]);
}

#[test]
fn the_size_limit_is_the_unpacked_size_itself() {
    // a tar stream of exactly `n` bytes unpacks under a limit of `n`
    // bytes, not under `n - 1`
    let tar = tar_of(&[("pkg-1.0/pkg.c", b"int x;\n".to_vec())]);
    let n = tar.len() as u64;
    let gz = gzip(&tar);
    let tmp = tempfile::tempdir().unwrap();
    unpack_bytes_limited(&gz, "pkg-1.0.tar.gz", &REL, tmp.path(), &limits(n, 100)).unwrap();
    refused(
        &gz,
        limits(n - 1, 100),
        &format!("more than {} bytes, the limit", n - 1),
    );
}
