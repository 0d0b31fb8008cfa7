//! `--destdir` staging: everything under DESTDIR/PREFIX, the programs
//! refer to PREFIX, nothing is written outside DESTDIR, ownership is only
//! recorded, the manifest lists every staged path with its mode, and two
//! builds of the same inputs are byte-identical; for netqmail-1.06 and
//! for notqmail-1.09.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use qmail_build::manifest::Manifest;
use qmail_build::{build, IdMap};

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn destdir_staging_is_reproducible_and_refers_to_the_prefix() {
    if let Some((q, m8)) = common::netqmail_case() {
        staging(&q, &m8, "/opt/qtk-destdir-test-prefix");
    }
}

#[test]
fn notqmail_destdir_staging_is_reproducible_and_refers_to_the_prefix() {
    if let Some((q, m8)) = common::notqmail_case() {
        staging(&q, &m8, "/opt/qtk-destdir-test-notqmail");
    }
}

/// Every path of the manifest is staged with its mode, and every staged
/// path is in the manifest.
fn manifest_matches_the_stage(m: &Manifest, dest: &Path) {
    let staged = common::tree_contents(dest);
    let prefix = m.prefix.trim_start_matches('/');
    let mut listed = std::collections::BTreeSet::new();
    for f in &m.files {
        let rel = f.path.trim_start_matches('/');
        let (mode, bytes) = staged
            .get(rel)
            .unwrap_or_else(|| panic!("{} in the manifest but not staged", f.path));
        assert_eq!(
            qmail_build::manifest::mode_string(*mode),
            f.mode,
            "{}: mode",
            f.path
        );
        if let Some(sha) = &f.sha256 {
            use sha2::Digest;
            assert_eq!(*sha, hex::encode(sha2::Sha256::digest(bytes)), "{}", f.path);
        }
        listed.insert(rel.to_string());
    }
    for rel in staged.keys() {
        let inside = rel.starts_with(&format!("{prefix}/")) || rel == prefix;
        let manifest = rel.ends_with("share/qmail-toolkit/manifest.json");
        if inside && !manifest {
            assert!(
                listed.contains(rel),
                "/{rel} staged but not in the manifest"
            );
        }
    }
}

fn staging(q: &common::Qmail, m8: &Path, prefix: &'static str) {
    let nq = &q.tree;
    assert!(
        !Path::new(prefix).exists(),
        "{prefix} exists before the test"
    );
    let t = tempfile::tempdir().unwrap();
    let ids = IdMap::parse(
        "alias=7790,qmaild=7791,qmaill=7792,root=0,qmailp=7794,qmailq=7795,qmailr=7796,qmails=7797,qmail=7800,nofiles=7801",
    )
    .unwrap();
    let before_etc = common::snapshot(Path::new("/etc"), &[]);
    let mut trees = Vec::new();
    for run in ["one", "two-with-a-longer-name"] {
        let dest = t.path().join(format!("dest-{run}"));
        let work = t.path().join(format!("work-{run}"));
        let mut o = common::options_for(q.release, nq, m8, Path::new(prefix), &work);
        o.destdir = Some(dest.clone());
        o.ids = ids;
        o.ids_source = "uid-map".into();
        let out = build(&o).unwrap();
        assert!(!out.up_to_date);
        assert!(
            !out.manifest.ownership_applied,
            "ownership applied while staging"
        );
        assert_eq!(
            out.manifest_path,
            dest.join(prefix.trim_start_matches('/'))
                .join("share/qmail-toolkit/manifest.json")
        );
        let staged = dest.join(prefix.trim_start_matches('/'));
        let smtpd = std::fs::read(staged.join("bin/qmail-smtpd")).unwrap();
        assert!(
            contains(&smtpd, prefix),
            "prefix not compiled into qmail-smtpd"
        );
        let dest_s = dest.to_str().unwrap();
        let work_s = work.to_str().unwrap();
        for f in [
            "bin/qmail-smtpd",
            "bin/qmail-local",
            "bin/qmail-send",
            "mess822/bin/822date",
        ] {
            let b = std::fs::read(staged.join(f)).unwrap();
            assert!(!contains(&b, dest_s), "{f} mentions the destdir");
            assert!(!contains(&b, work_s), "{f} mentions the build directory");
        }
        // Intended ownership is recorded, not applied.
        let m = Manifest::read(&out.manifest_path).unwrap().unwrap();
        let alias = m
            .files
            .iter()
            .find(|f| f.path == format!("{prefix}/alias"))
            .unwrap();
        assert_eq!(
            alias.user.as_ref().map(|u| (u.name.as_str(), u.id)),
            Some(("alias", 7790))
        );
        assert_eq!(
            alias.group.as_ref().map(|g| (g.name.as_str(), g.id)),
            Some(("qmail", 7800))
        );
        assert_eq!(alias.mode, "02755");
        let meta = std::fs::metadata(staged.join("alias")).unwrap();
        assert_ne!(meta.uid(), 7790, "ownership applied while staging");
        assert_eq!(meta.mode() & 0o7777, 0o2755);
        assert!(m.files.iter().all(|f| f.path.starts_with(prefix)));
        assert!(m.releases.iter().any(|r| r.name == q.release.full_name));
        // Every selected patch of this qmail (and of mess822) was applied.
        for d in o.patches.iter().filter(|d| d.release.name != "mess822") {
            if d.release.name == q.release.name {
                let f = qmail_patches::file_name(d);
                assert!(m.patches.iter().any(|p| p.file == f), "{f} not applied");
            }
        }
        manifest_matches_the_stage(&m, &dest);
        // Every installed path has SOURCE_DATE_EPOCH as its mtime (the
        // build's default is 0), and a rebuild still sees it up to date.
        let epoch: i64 = std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let stamps = common::snapshot(&staged, &[]);
        assert!(stamps.len() > 200);
        for (p, v) in &stamps {
            let mtime = v.split(' ').nth(2).unwrap();
            assert_eq!(mtime, format!("{epoch}.0"), "{p}: mtime");
        }
        let m = std::fs::symlink_metadata(&staged).unwrap();
        assert_eq!(m.mtime(), epoch, "{}: mtime", staged.display());
        if run == "one" {
            let again = build(&o).unwrap();
            assert!(again.up_to_date, "a rebuild of the same inputs did work");
        }
        trees.push(common::tree_contents(&dest));
    }
    assert!(
        !Path::new(prefix).exists(),
        "the build wrote to the prefix itself"
    );
    let etc = common::changed(&before_etc, &common::snapshot(Path::new("/etc"), &[]));
    assert!(
        !etc.iter().any(|(k, _)| k == "/etc/leapsecs.dat"),
        "/etc/leapsecs.dat was written"
    );
    // Nothing next to the destdirs and work dirs was created.
    let mut names: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "dest-one",
            "dest-two-with-a-longer-name",
            "work-one",
            "work-two-with-a-longer-name"
        ]
    );
    let (a, b) = (&trees[0], &trees[1]);
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, v) in a {
        assert!(
            b[k] == *v,
            "{k} differs between two builds of the same inputs"
        );
    }
    assert!(a.len() > 200, "only {} paths staged", a.len());
}
