//! `cargo xtask build` installs qtraceaddr and its man page into the
//! prefix, lists both in the manifest, and a second build does nothing.
//! Needs QMAIL_SOURCE_NETQMAIL and QMAIL_SOURCE_MESS822 (skipped
//! otherwise).

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use qmail_build::manifest::Manifest;
use sha2::{Digest, Sha256};

const PREFIX: &str = "/opt/qtk-xtask-qtraceaddr-test";

fn xtask_build(dest: &Path, work: &Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["build", "--prefix", PREFIX, "--offline"])
        .arg("--destdir")
        .arg(dest)
        .arg("--work")
        .arg(work)
        .args([
            "--uid-map",
            "alias=7790,qmaild=7791,qmaill=7792,root=0,qmailp=7794,qmailq=7795,qmailr=7796,qmails=7797,qmail=7800,nofiles=7801",
        ])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn build_installs_qtraceaddr_and_its_page_into_the_prefix() {
    for var in ["QMAIL_SOURCE_NETQMAIL", "QMAIL_SOURCE_MESS822"] {
        if std::env::var_os(var).is_none_or(|v| v.is_empty()) {
            println!("SKIPPED: {var} is not set (directory of the unpacked upstream tree)");
            return;
        }
    }
    let t = tempfile::tempdir().unwrap();
    let (dest, work) = (t.path().join("dest"), t.path().join("work"));
    let (ok, stdout, stderr) = xtask_build(&dest, &work);
    assert!(ok, "xtask build failed:\n{stdout}\n{stderr}");
    let staged = dest.join(PREFIX.trim_start_matches('/'));
    let m = Manifest::read(&staged.join("share/qmail-toolkit/manifest.json"))
        .unwrap()
        .expect("manifest written");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    for (rel, mode) in [("bin/qtraceaddr", 0o755), ("man/man1/qtraceaddr.1", 0o644)] {
        let path = format!("{PREFIX}/{rel}");
        let rec = m
            .files
            .iter()
            .find(|f| f.path == path)
            .unwrap_or_else(|| panic!("{path} not in the manifest"));
        let bytes = std::fs::read(staged.join(rel)).unwrap();
        assert_eq!(
            rec.sha256.as_deref(),
            Some(hex::encode(Sha256::digest(&bytes)).as_str()),
            "{rel}: digest"
        );
        assert_eq!(rec.mode, format!("0{mode:o}"), "{rel}: recorded mode");
        assert_eq!(rec.package, "qmail-toolkit");
        assert_eq!(rec.user.as_ref().map(|u| u.name.as_str()), Some("root"));
        assert_eq!(rec.group.as_ref().map(|g| g.id), Some(7800));
        let meta = std::fs::symlink_metadata(staged.join(rel)).unwrap();
        assert_eq!(meta.mode() & 0o7777, mode, "{rel}: installed mode");
        let needle = root.to_str().unwrap().as_bytes();
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "{rel} mentions the workspace {}",
            root.display()
        );
    }
    assert_eq!(
        std::fs::read(staged.join("man/man1/qtraceaddr.1")).unwrap(),
        std::fs::read(root.join("resolver/qtraceaddr.1")).unwrap()
    );
    let help = Command::new(staged.join("bin/qtraceaddr"))
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(help.status.code(), Some(0), "qtraceaddr --help: {help:?}");
    assert!(String::from_utf8_lossy(&help.stdout).contains("--stdin"));

    let (ok, stdout, stderr) = xtask_build(&dest, &work);
    assert!(ok, "second xtask build failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.starts_with("up to date: "),
        "second build was not a no-op:\n{stdout}\n{stderr}"
    );
}
