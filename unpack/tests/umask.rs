//! The unpacked tree's directories are 0755 whatever the archive and the
//! caller's umask say, so that the build (perhaps another user) can read
//! it. Its own test binary: the umask is per process.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;

use qmail_unpack::{unpack_bytes, Tarball};

const REL: Tarball = Tarball {
    name: "pkg",
    file_name: "pkg-1.0.tar.gz",
    full_name: "pkg-1.0",
    size: 0,
    sha256: "",
    sha512: "",
    mirrors: &[],
};

#[test]
fn directories_are_0755_under_umask_077_whatever_the_archive_says() {
    let mut b = tar::Builder::new(Vec::new());
    for (path, mode) in [("pkg-1.0/", 0o700), ("pkg-1.0/sub/", 0o500)] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(mode);
        h.set_size(0);
        h.set_mtime(1_000_000_000);
        b.append_data(&mut h, path, &[][..]).unwrap();
    }
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(7);
    h.set_mtime(1_000_000_000);
    b.append_data(&mut h, "pkg-1.0/sub/deep/pkg.c", &b"int x;\n"[..])
        .unwrap();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&b.into_inner().unwrap()).unwrap();
    let gz = enc.finish().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    // SAFETY: umask only sets the process's file mode creation mask.
    let old = unsafe { libc::umask(0o077) };
    let root = unpack_bytes(&gz, "pkg-1.0.tar.gz", &REL, tmp.path());
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let root = root.unwrap();
    for d in [root.clone(), root.join("sub"), root.join("sub/deep")] {
        let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o755, "{}", d.display());
    }
}
