//! Fetch tests against a loopback HTTP server started by each test.

mod support;

use qmail_fetch::{fetch_all, fetch_release, FetchError, FetchOptions, Fetched, Problem, Tarball};
use support::{dead_url, list_dir, payload, release_for, Reply, Server};

const PATH: &str = "/dist/pkg-1.0.tar.gz";

fn opts(dir: &std::path::Path) -> FetchOptions {
    FetchOptions::new(dir.join("distfiles"))
}

/// Asserts the error is about `release` (names its file) and that nothing
/// was left in the distfiles directory.
fn assert_failed_clean(err: &FetchError, release: &Tarball, o: &FetchOptions) -> String {
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(
        msg.contains(release.file_name),
        "error does not name the file: {msg}"
    );
    assert_eq!(
        list_dir(&o.distfiles),
        Vec::<String>::new(),
        "files left behind in distfiles after: {msg}"
    );
    msg
}

#[test]
fn downloads_verifies_and_does_not_download_again() {
    let good = payload(100_000, 1);
    let server = Server::start(vec![(PATH, Reply::Body(good.clone()))]);
    let rel = release_for("pkg", &good, vec![server.url(PATH)]);
    let tmp = tempfile::tempdir().unwrap();
    let o = opts(tmp.path());

    let got = fetch_release(&rel, &o).unwrap();
    let dest = o.distfiles.join("pkg-1.0.tar.gz");
    assert_eq!(
        got,
        Fetched::Downloaded {
            path: dest.clone(),
            url: server.url(PATH)
        }
    );
    assert_eq!(std::fs::read(&dest).unwrap(), good);
    assert_eq!(list_dir(&o.distfiles), vec!["pkg-1.0.tar.gz"]);
    assert_eq!(server.hits(PATH), 1);

    // Present and correct: no second request.
    let again = fetch_release(&rel, &o).unwrap();
    assert_eq!(again, Fetched::AlreadyPresent { path: dest });
    assert_eq!(server.hits(PATH), 1);
}

#[cfg(unix)]
#[test]
fn downloaded_file_is_world_readable() {
    use std::os::unix::fs::PermissionsExt;
    let good = payload(1000, 2);
    let server = Server::start(vec![(PATH, Reply::Body(good.clone()))]);
    let rel = release_for("pkg", &good, vec![server.url(PATH)]);
    let tmp = tempfile::tempdir().unwrap();
    let o = opts(tmp.path());
    let got = fetch_release(&rel, &o).unwrap();
    let mode = std::fs::metadata(got.path()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o644);
}

fn second_mirror_after(first: Reply) {
    let good = payload(50_000, 3);
    let server = Server::start(vec![
        ("/bad/pkg-1.0.tar.gz", first),
        (PATH, Reply::Body(good.clone())),
    ]);
    let rel = release_for(
        "pkg",
        &good,
        vec![server.url("/bad/pkg-1.0.tar.gz"), server.url(PATH)],
    );
    let tmp = tempfile::tempdir().unwrap();
    let o = opts(tmp.path());
    let got = fetch_release(&rel, &o).unwrap();
    assert_eq!(
        got,
        Fetched::Downloaded {
            path: o.distfiles.join("pkg-1.0.tar.gz"),
            url: server.url(PATH)
        }
    );
    assert_eq!(server.hits("/bad/pkg-1.0.tar.gz"), 1);
    assert_eq!(server.hits(PATH), 1);
    assert_eq!(std::fs::read(got.path()).unwrap(), good);
    assert_eq!(list_dir(&o.distfiles), vec!["pkg-1.0.tar.gz"]);
}

#[test]
fn http_404_on_first_mirror_uses_second() {
    second_mirror_after(Reply::Status(404));
}

#[test]
fn http_500_on_first_mirror_uses_second() {
    second_mirror_after(Reply::Status(500));
}

#[test]
fn wrong_digest_on_first_mirror_uses_second() {
    let mut bad = payload(50_000, 3);
    bad[100] ^= 1;
    second_mirror_after(Reply::Body(bad));
}

#[test]
fn truncated_body_on_first_mirror_uses_second() {
    let good = payload(50_000, 3);
    second_mirror_after(Reply::Truncated {
        body: good[..20_000].to_vec(),
        announced: good.len(),
    });
}

#[test]
fn connection_refused_on_first_mirror_uses_second() {
    let good = payload(50_000, 4);
    let server = Server::start(vec![(PATH, Reply::Body(good.clone()))]);
    let dead = dead_url(PATH);
    let rel = release_for("pkg", &good, vec![dead, server.url(PATH)]);
    let tmp = tempfile::tempdir().unwrap();
    let o = opts(tmp.path());
    let got = fetch_release(&rel, &o).unwrap();
    assert_eq!(std::fs::read(got.path()).unwrap(), good);
    assert_eq!(server.hits(PATH), 1);
}

/// Serves `reply` as the only mirror of a release whose true content is
/// `good`; the fetch must fail naming the file and URL, leaving nothing.
fn only_mirror_fails(good: &[u8], reply: Reply, reason_part: &str) {
    let server = Server::start(vec![(PATH, reply)]);
    let rel = release_for("pkg", good, vec![server.url(PATH)]);
    let tmp = tempfile::tempdir().unwrap();
    let o = opts(tmp.path());
    let err = fetch_release(&rel, &o).unwrap_err();
    let msg = assert_failed_clean(&err, &rel, &o);
    assert!(msg.contains(&server.url(PATH)), "{msg}");
    assert!(
        msg.contains(reason_part),
        "reason {reason_part:?} not in: {msg}"
    );
    assert_eq!(server.hits(PATH), 1);
    match err {
        FetchError::Unavailable { failures, .. } => {
            assert_eq!(failures.len(), 1);
            assert!(matches!(failures[0].problem, Problem::MirrorsFailed { .. }));
        }
        other => panic!("unexpected error {other:?}"),
    }
}

#[test]
fn wrong_digest_fails_and_leaves_nothing() {
    let good = payload(30_000, 5);
    let mut bad = good.clone();
    bad[29_999] ^= 0x80;
    only_mirror_fails(&good, Reply::Body(bad), "wrong digest (expected ");
}

#[test]
fn wrong_size_announced_fails_and_leaves_nothing() {
    let good = payload(30_000, 6);
    let bad = payload(30_001, 6);
    only_mirror_fails(&good, Reply::Body(bad), "wrong size (expected 30000");
}

#[test]
fn wrong_size_without_content_length_fails_and_leaves_nothing() {
    let good = payload(30_000, 7);
    // Longer than expected: detected while streaming.
    only_mirror_fails(
        &good,
        Reply::BodyNoLength(payload(40_000, 7)),
        "wrong size (expected 30000",
    );
    // Shorter than expected.
    only_mirror_fails(
        &good,
        Reply::BodyNoLength(good[..29_000].to_vec()),
        "wrong size (expected 30000, got 29000)",
    );
}

#[test]
fn truncated_body_fails_and_leaves_nothing() {
    let good = payload(30_000, 8);
    only_mirror_fails(
        &good,
        Reply::Truncated {
            body: good[..10_000].to_vec(),
            announced: good.len(),
        },
        "download failed after",
    );
}

#[test]
fn http_404_on_only_mirror_fails_and_leaves_nothing() {
    only_mirror_fails(&payload(10, 9), Reply::Status(404), "HTTP 404");
}

#[test]
fn http_500_on_only_mirror_fails_and_leaves_nothing() {
    only_mirror_fails(&payload(10, 9), Reply::Status(500), "HTTP 500");
}

#[test]
fn connection_refused_everywhere_fails_with_manual_instructions() {
    let good = payload(1234, 10);
    let (a, b) = (dead_url(PATH), dead_url(PATH));
    let rel = release_for("pkg", &good, vec![a.clone(), b.clone()]);
    let tmp = tempfile::tempdir().unwrap();
    let o = opts(tmp.path());
    let err = fetch_release(&rel, &o).unwrap_err();
    let msg = assert_failed_clean(&err, &rel, &o);
    assert!(msg.contains(&a) && msg.contains(&b), "{msg}");
    assert!(msg.to_lowercase().contains("refused"), "{msg}");
    assert!(!msg.contains("(redirected)"), "{msg}");
    assert!(msg.contains("1234 bytes"), "{msg}");
    assert!(msg.contains(rel.sha256), "{msg}");
}

#[test]
fn offline_with_files_present_succeeds_without_network() {
    let a = payload(5000, 11);
    let b = payload(7000, 12);
    let server = Server::start(vec![]);
    let ra = release_for("aaa", &a, vec![server.url("/aaa-1.0.tar.gz")]);
    let rb = release_for("bbb", &b, vec![server.url("/bbb-1.0.tar.gz")]);
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts(tmp.path());
    o.offline = true;
    std::fs::create_dir_all(&o.distfiles).unwrap();
    std::fs::write(o.distfiles.join("aaa-1.0.tar.gz"), &a).unwrap();
    std::fs::write(o.distfiles.join("bbb-1.0.tar.gz"), &b).unwrap();

    let got = fetch_all(&[ra, rb], &o).unwrap();
    assert_eq!(
        got,
        vec![
            Fetched::AlreadyPresent {
                path: o.distfiles.join("aaa-1.0.tar.gz")
            },
            Fetched::AlreadyPresent {
                path: o.distfiles.join("bbb-1.0.tar.gz")
            },
        ]
    );
    assert_eq!(server.total_hits(), 0);
}

#[test]
fn offline_missing_lists_urls_size_digest_and_directory() {
    let a = payload(5000, 13);
    let b = payload(7000, 14);
    let server = Server::start(vec![("/bbb-1.0.tar.gz", Reply::Body(b.clone()))]);
    let ra = release_for("aaa", &a, vec![server.url("/aaa-1.0.tar.gz")]);
    let rb = release_for(
        "bbb",
        &b,
        vec![
            server.url("/bbb-1.0.tar.gz"),
            "https://example.invalid/bbb-1.0.tar.gz".into(),
        ],
    );
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts(tmp.path());
    o.offline = true;
    std::fs::create_dir_all(&o.distfiles).unwrap();
    std::fs::write(o.distfiles.join("aaa-1.0.tar.gz"), &a).unwrap();

    let err = fetch_all(&[ra, rb], &o).unwrap_err();
    let msg = err.to_string();
    eprintln!("{msg}");
    assert_eq!(server.total_hits(), 0, "offline mode used the network");
    // Only the missing release is listed, with everything needed by hand.
    assert!(!msg.contains("aaa-1.0.tar.gz"), "{msg}");
    assert!(msg.contains("bbb-1.0.tar.gz: missing"), "{msg}");
    for url in rb.mirrors {
        assert!(msg.contains(url), "URL {url} not in: {msg}");
    }
    assert!(msg.contains("7000 bytes"), "{msg}");
    assert!(msg.contains(rb.sha256), "{msg}");
    assert!(msg.contains(&o.distfiles.display().to_string()), "{msg}");
    let head = format!(
        "offline: 1 distfile not present or not correct in {} (the network was not used)\n",
        o.distfiles.display()
    );
    assert!(msg.starts_with(&head), "{msg}");
    // with both missing, both are counted
    std::fs::remove_file(o.distfiles.join("aaa-1.0.tar.gz")).unwrap();
    let msg = fetch_all(&[ra, rb], &o).unwrap_err().to_string();
    assert!(msg.starts_with("offline: 2 distfiles not present"), "{msg}");
    std::fs::write(o.distfiles.join("aaa-1.0.tar.gz"), &a).unwrap();
    // Nothing was added or removed.
    assert_eq!(list_dir(&o.distfiles), vec!["aaa-1.0.tar.gz"]);
}

#[test]
fn offline_does_not_create_the_distfiles_directory() {
    let a = payload(10, 15);
    let rel = release_for("aaa", &a, vec![dead_url("/aaa-1.0.tar.gz")]);
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts(tmp.path());
    o.offline = true;
    let err = fetch_release(&rel, &o).unwrap_err();
    assert!(err.to_string().contains("aaa-1.0.tar.gz: missing"), "{err}");
    assert!(!o.distfiles.exists());
}

#[test]
fn offline_wrong_file_is_reported_and_left_alone() {
    let good = payload(3000, 16);
    let bad = payload(3001, 16);
    let rel = release_for("pkg", &good, vec![dead_url(PATH)]);
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts(tmp.path());
    o.offline = true;
    std::fs::create_dir_all(&o.distfiles).unwrap();
    let dest = o.distfiles.join("pkg-1.0.tar.gz");
    std::fs::write(&dest, &bad).unwrap();
    let err = fetch_release(&rel, &o).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("pkg-1.0.tar.gz: wrong size (expected 3000, got 3001)"),
        "{msg}"
    );
    assert_eq!(std::fs::read(&dest).unwrap(), bad);
}

#[test]
fn wrong_file_present_is_replaced_by_a_good_download() {
    let good = payload(3000, 17);
    let mut bad = good.clone();
    bad[0] ^= 1;
    let server = Server::start(vec![(PATH, Reply::Body(good.clone()))]);
    let rel = release_for("pkg", &good, vec![server.url(PATH)]);
    let tmp = tempfile::tempdir().unwrap();
    let o = opts(tmp.path());
    std::fs::create_dir_all(&o.distfiles).unwrap();
    let dest = o.distfiles.join("pkg-1.0.tar.gz");
    std::fs::write(&dest, &bad).unwrap();
    fetch_release(&rel, &o).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), good);
    assert_eq!(server.hits(PATH), 1);
    assert_eq!(list_dir(&o.distfiles), vec!["pkg-1.0.tar.gz"]);
}

#[test]
fn wrong_file_present_and_mirrors_failing_keeps_it_and_says_so() {
    let good = payload(3000, 18);
    let bad = payload(3000, 19);
    let server = Server::start(vec![(PATH, Reply::Status(404))]);
    let rel = release_for("pkg", &good, vec![server.url(PATH)]);
    let tmp = tempfile::tempdir().unwrap();
    let o = opts(tmp.path());
    std::fs::create_dir_all(&o.distfiles).unwrap();
    let dest = o.distfiles.join("pkg-1.0.tar.gz");
    std::fs::write(&dest, &bad).unwrap();
    let msg = fetch_release(&rel, &o).unwrap_err().to_string();
    assert!(msg.contains("left as is: wrong digest"), "{msg}");
    assert_eq!(std::fs::read(&dest).unwrap(), bad);
    assert_eq!(list_dir(&o.distfiles), vec!["pkg-1.0.tar.gz"]);
}

#[test]
fn one_failing_release_does_not_stop_the_others() {
    let a = payload(2000, 20);
    let b = payload(2500, 21);
    let server = Server::start(vec![("/bbb-1.0.tar.gz", Reply::Body(b.clone()))]);
    let ra = release_for("aaa", &a, vec![server.url("/aaa-1.0.tar.gz")]); // 404
    let rb = release_for("bbb", &b, vec![server.url("/bbb-1.0.tar.gz")]);
    let tmp = tempfile::tempdir().unwrap();
    let o = opts(tmp.path());
    let msg = fetch_all(&[ra, rb], &o).unwrap_err().to_string();
    assert!(msg.contains("aaa-1.0.tar.gz"), "{msg}");
    assert!(msg.contains("HTTP 404"), "{msg}");
    assert!(!msg.contains("bbb-1.0.tar.gz:"), "{msg}");
    assert_eq!(list_dir(&o.distfiles), vec!["bbb-1.0.tar.gz"]);
}
