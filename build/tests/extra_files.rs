//! The toolkit's own files (qtraceaddr and its page) go through the same
//! installer as upstream's: mode, SOURCE_DATE_EPOCH mtime, temporary name
//! and rename, no link followed, and a manifest record with the digest
//! and the intended owner. No upstream tree needed.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use qmail_build::install::{install_extra_files, ExtraFile, Target, EXTRA_PACKAGE};
use qmail_build::manifest::FileRecord;
use qmail_build::IdMap;
use sha2::{Digest, Sha256};

fn target(prefix: &Path) -> Target {
    Target {
        prefix: prefix.to_path_buf(),
        destdir: None,
        ids: IdMap::parse(
            "alias=7790,qmaild=7791,qmaill=7792,root=0,qmailp=7794,qmailq=7795,qmailr=7796,qmails=7797,qmail=7800,nofiles=7801",
        )
        .unwrap(),
        apply_owner: false,
        follow_symlinked_prefix: false,
        mtime: 1_234_567_890,
    }
}

/// A fake binary and man page in `src`, as the caller would build them.
fn sources(src: &Path) -> Vec<ExtraFile> {
    std::fs::create_dir_all(src).unwrap();
    std::fs::write(src.join("qtraceaddr"), "#!/bin/sh\necho traced\n").unwrap();
    std::fs::write(src.join("qtraceaddr.1"), ".TH QTRACEADDR 1\n").unwrap();
    vec![
        ExtraFile {
            src: src.join("qtraceaddr"),
            dest_rel: "bin/qtraceaddr".into(),
            mode: 0o755,
        },
        ExtraFile {
            src: src.join("qtraceaddr.1"),
            dest_rel: "man/man1/qtraceaddr.1".into(),
            mode: 0o644,
        },
    ]
}

#[test]
fn installs_binary_and_page_with_modes_digests_and_owner_records() {
    let t = tempfile::tempdir().unwrap();
    let prefix = t.path().join("qmail");
    std::fs::create_dir_all(prefix.join("bin")).unwrap();
    // bin/ comes from netqmail's hier(); man/ and man/man1 do not exist yet.
    let installed = vec![FileRecord::build_dir(format!("{}/bin", prefix.display()))];
    let files: Vec<_> = sources(&t.path().join("src"))
        .iter()
        .map(|f| f.read().unwrap())
        .collect();
    let recs = install_extra_files(&target(&prefix), &prefix, &files, &installed).unwrap();
    let paths: Vec<&str> = recs.iter().map(|r| r.path.as_str()).collect();
    let p = prefix.display().to_string();
    assert_eq!(
        paths,
        [
            format!("{p}/bin/qtraceaddr"),
            format!("{p}/man"),
            format!("{p}/man/man1"),
            format!("{p}/man/man1/qtraceaddr.1"),
        ]
    );
    for (rel, mode, text) in [
        ("bin/qtraceaddr", 0o755, "#!/bin/sh\necho traced\n"),
        ("man/man1/qtraceaddr.1", 0o644, ".TH QTRACEADDR 1\n"),
    ] {
        let path = prefix.join(rel);
        let m = std::fs::symlink_metadata(&path).unwrap();
        assert_eq!(m.mode() & 0o7777, mode, "{rel}: mode");
        assert_eq!(m.mtime(), 1_234_567_890, "{rel}: mtime");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        let r = recs.iter().find(|r| r.path.ends_with(rel)).unwrap();
        assert_eq!(r.package, EXTRA_PACKAGE);
        assert_eq!(r.kind, "file");
        assert_eq!(r.mode, format!("0{mode:o}"));
        assert_eq!(
            r.sha256.as_deref(),
            Some(hex::encode(Sha256::digest(text)).as_str())
        );
        let user = r.user.as_ref().map(|u| (u.name.as_str(), u.id));
        let group = r.group.as_ref().map(|g| (g.name.as_str(), g.id));
        assert_eq!((user, group), (Some(("root", 0)), Some(("qmail", 7800))));
    }
    let out = std::process::Command::new(prefix.join("bin/qtraceaddr"))
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"traced\n");
    // No temporaries left next to the installed files.
    let names: Vec<_> = std::fs::read_dir(prefix.join("bin"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["qtraceaddr"]);
}

#[test]
fn a_link_at_the_destination_is_refused_and_not_written_through() {
    let t = tempfile::tempdir().unwrap();
    let prefix = t.path().join("qmail");
    std::fs::create_dir_all(prefix.join("bin")).unwrap();
    let secret = t.path().join("secret");
    std::fs::write(&secret, "secret\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&secret, prefix.join("bin/qtraceaddr")).unwrap();
    let files: Vec<_> = sources(&t.path().join("src"))
        .iter()
        .map(|f| f.read().unwrap())
        .collect();
    let err = install_extra_files(&target(&prefix), &prefix, &files, &[])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "{}: is a symbolic link; refusing to replace it",
            prefix.join("bin/qtraceaddr").display()
        )
    );
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "secret\n");
    assert_eq!(
        std::fs::metadata(&secret).unwrap().mode() & 0o7777,
        0o600,
        "the link's target was chmod'ed"
    );
}

#[test]
fn a_linked_source_or_a_path_leaving_the_prefix_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let mut files = sources(&t.path().join("src"));
    let link = t.path().join("link");
    std::os::unix::fs::symlink(&files[0].src, &link).unwrap();
    let linked = ExtraFile {
        src: link.clone(),
        ..files[0].clone()
    };
    let err = linked.read().unwrap_err().to_string();
    assert!(err.starts_with(&format!("{}: ", link.display())), "{err}");
    files[1].dest_rel = "../etc/qtraceaddr.1".into();
    let err = files[1].read().unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}: install path \"../etc/qtraceaddr.1\" is not a plain path below the prefix",
            PathBuf::from(&files[1].src).display()
        )
    );
}
