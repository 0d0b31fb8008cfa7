//! The patch series as the command line sees it, without any upstream
//! tree: what `--patches a,b` selects, the file names the patches get, the
//! `series` file, the digest printed for each patch, and which release's
//! generators run on a tree.

use qmail_patches::{
    file_name, generate, select, series, series_file, FileChange, Patch, PatchError,
};
use sha2::{Digest, Sha256};
use upstream_hashes::{SourceTree, MESS822, NETQMAIL};

fn names(defs: &[&qmail_patches::PatchDef]) -> Vec<&'static str> {
    defs.iter().map(|d| d.name).collect()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn no_patches_option_selects_every_patch_in_series_order() {
    let all = select(&[]).unwrap();
    assert_eq!(
        names(&all),
        [
            "realrcptto",
            "rcptcheck",
            "branch",
            "realrcptto",
            "rcptcheck",
            "branch",
            "errno",
            "nonroot"
        ]
    );
    let order: Vec<_> = series().iter().map(|d| d.name).collect();
    assert_eq!(names(&all), order);
}

#[test]
fn patches_option_keeps_series_order_not_command_line_order() {
    // a short name selects that patch of every release that has one;
    // `generate` later runs only those of the tree's release
    let got = select(&strings(&["nonroot", "realrcptto"])).unwrap();
    assert_eq!(names(&got), ["realrcptto", "realrcptto", "nonroot"]);
    let releases: Vec<_> = got.iter().map(|d| d.release.full_name).collect();
    assert_eq!(releases, ["netqmail-1.06", "notqmail-1.09", "mess822-0.58"]);
    let got = select(&strings(&["errno"])).unwrap();
    assert_eq!(names(&got), ["errno"]);
    // naming one twice does not apply it twice
    let got = select(&strings(&["branch", "branch"])).unwrap();
    assert_eq!(names(&got), ["branch", "branch"]);
    assert_ne!(got[0].release.full_name, got[1].release.full_name);
}

#[test]
fn an_unknown_patch_name_is_refused_listing_the_known_ones() {
    for given in [vec!["tls"], vec!["branch", "tls"], vec!["tls", "branch"]] {
        let err = select(&strings(&given)).unwrap_err();
        assert!(matches!(err, PatchError::Unknown(ref n, _) if n == "tls"));
        assert_eq!(
            err.to_string(),
            "unknown patch \"tls\"; known patches: realrcptto, rcptcheck, branch, errno, nonroot",
            "{given:?}"
        );
    }
    // names are matched exactly, not by prefix or case
    assert!(select(&strings(&["Branch"])).is_err());
    assert!(select(&strings(&["real"])).is_err());
}

#[test]
fn each_patch_is_named_after_its_release_and_short_name() {
    let got: Vec<_> = series().iter().map(file_name).collect();
    assert_eq!(
        got,
        [
            "netqmail-1.06-realrcptto.patch",
            "netqmail-1.06-rcptcheck.patch",
            "netqmail-1.06-branch.patch",
            "notqmail-1.09-realrcptto.patch",
            "notqmail-1.09-rcptcheck.patch",
            "notqmail-1.09-branch.patch",
            "mess822-0.58-errno.patch",
            "mess822-0.58-nonroot.patch",
        ]
    );
    let releases: Vec<_> = series().iter().map(|d| d.release.full_name).collect();
    assert_eq!(
        releases,
        [
            "netqmail-1.06",
            "netqmail-1.06",
            "netqmail-1.06",
            "notqmail-1.09",
            "notqmail-1.09",
            "notqmail-1.09",
            "mess822-0.58",
            "mess822-0.58"
        ]
    );
    let mission: Vec<_> = series().iter().map(|d| d.mission).collect();
    assert_eq!(
        mission,
        [true, true, true, true, true, true, false, true],
        "errno is a portability fix"
    );
}

fn patch(file_name: &str, description: &str) -> Patch {
    Patch {
        file_name: file_name.into(),
        release: &NETQMAIL,
        description: description.into(),
        files: vec![
            FileChange {
                path: "a.c".into(),
                old: Some("one\ntwo\n".into()),
                new: "one\n2\n".into(),
            },
            FileChange::added("new.c", "int x;\n"),
        ],
    }
}

#[test]
fn the_series_file_lists_one_patch_per_line_in_order() {
    let ps = [
        patch("netqmail-1.06-realrcptto.patch", "x"),
        patch("netqmail-1.06-branch.patch", "y"),
    ];
    assert_eq!(
        series_file(&[], &ps),
        "netqmail-1.06-realrcptto.patch\nnetqmail-1.06-branch.patch\n"
    );
    assert_eq!(series_file(&[], &[]), "");
}

#[test]
fn the_printed_sha256_is_the_digest_of_the_diff_written() {
    let p = patch("netqmail-1.06-test.patch", "A test patch.");
    let diff = p.to_diff();
    assert!(
        diff.contains("+2\n") && diff.contains("+++ b/new.c\n"),
        "{diff}"
    );
    let want = hex::encode(Sha256::digest(diff.as_bytes()));
    assert_eq!(p.sha256(), want);
    assert_eq!(p.sha256().len(), 64);
    // the same as sha256sum(1) of the file, if it is installed
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join(&p.file_name);
    std::fs::write(&f, &diff).unwrap();
    if let Ok(o) = std::process::Command::new("sha256sum").arg(&f).output() {
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(out.split_whitespace().next(), Some(want.as_str()));
    }
    // a different description is a different file, hence another digest
    assert_ne!(patch("x", "Another description.").sha256(), want);
}

#[test]
fn generate_runs_only_the_generators_of_the_trees_release_and_names_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let mess822 = select(&strings(&["errno", "nonroot"])).unwrap();
    // an (empty) netqmail tree: the mess822 generators are not run at all
    let netqmail = SourceTree::unverified(&NETQMAIL, dir.path());
    assert!(generate(&netqmail, &mess822).unwrap().is_empty());
    // on an empty mess822 tree the first one runs and fails, named
    let tree = SourceTree::unverified(&MESS822, dir.path());
    let err = generate(&tree, &mess822).unwrap_err().to_string();
    assert!(err.starts_with("generating errno: "), "{err}");
    assert!(err.contains("cannot read"), "{err}");
    let err = generate(&tree, &select(&strings(&["nonroot"])).unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("generating nonroot: "), "{err}");
}
