//! Fetch against hostile mirrors and a hostile distfiles directory:
//! redirects to other schemes, trickling servers, FIFOs at a distfile's
//! name, stale temporaries of dead runs, concurrent runs.

mod support;

use std::time::{Duration, Instant};

use qmail_fetch::{fetch_all, fetch_release, FetchOptions, Fetched};
use support::{dead_url, list_dir, payload, release_for, Reply, Server};

const PATH: &str = "/dist/pkg-1.0.tar.gz";
const BAD: &str = "/bad/pkg-1.0.tar.gz";

fn opts(dir: &std::path::Path) -> FetchOptions {
    let mut o = FetchOptions::new(dir.join("distfiles"));
    o.log = false;
    o
}

/// Runs `f` on another thread; fails the test instead of hanging if it
/// takes more than `secs`.
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .unwrap_or_else(|_| panic!("did not finish within {secs} s"))
}

/// The first mirror answers `first`, the second is good: the download
/// must come from the second, and the first's failure must mention
/// `reason_part` when it is the only mirror.
fn next_mirror_after(first: Reply, timeout: Duration, reason_part: &str) {
    let good = payload(20_000, 31);
    let server = Server::start(vec![(BAD, first), (PATH, Reply::Body(good.clone()))]);
    let rel = release_for("pkg", &good, vec![server.url(BAD), server.url(PATH)]);
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts(tmp.path());
    o.download_timeout = timeout;
    let o2 = o.clone();
    let got = within(30, move || fetch_release(&rel, &o2)).unwrap();
    assert_eq!(
        got,
        Fetched::Downloaded {
            path: o.distfiles.join("pkg-1.0.tar.gz"),
            url: server.url(PATH)
        }
    );
    assert_eq!(std::fs::read(got.path()).unwrap(), good);
    assert_eq!(list_dir(&o.distfiles), vec!["pkg-1.0.tar.gz"]);

    // As the only mirror: a failure naming the URL and the reason.
    let rel = release_for("pkg", &good, vec![server.url(BAD)]);
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts(tmp.path());
    o.download_timeout = timeout;
    let o2 = o.clone();
    let msg = within(30, move || fetch_release(&rel, &o2))
        .unwrap_err()
        .to_string();
    eprintln!("{msg}");
    assert!(msg.contains(&server.url(BAD)), "{msg}");
    assert!(msg.contains(reason_part), "{reason_part:?} not in: {msg}");
    assert_eq!(list_dir(&o.distfiles), Vec::<String>::new(), "{msg}");
}

#[test]
fn a_redirect_to_file_is_refused_and_the_next_mirror_tried() {
    next_mirror_after(
        Reply::Redirect("file:///etc/passwd".into()),
        Duration::from_secs(60),
        "redirected to file:///etc/passwd: only http and https redirects are followed",
    );
}

#[test]
fn other_schemes_are_refused_too() {
    next_mirror_after(
        Reply::Redirect("ftp://127.0.0.1/pkg-1.0.tar.gz".into()),
        Duration::from_secs(60),
        "redirected to ftp://127.0.0.1/pkg-1.0.tar.gz: only http and https",
    );
}

#[test]
fn a_failure_after_a_redirect_names_the_url_redirected_to() {
    let dead = dead_url(PATH);
    next_mirror_after(
        Reply::Redirect(dead.clone()),
        Duration::from_secs(60),
        &format!("{dead} (redirected): "),
    );
}

#[test]
fn a_redirect_loop_is_given_up() {
    next_mirror_after(
        Reply::Redirect(BAD.into()),
        Duration::from_secs(60),
        "more than 10 redirects",
    );
}

#[test]
fn a_trickling_server_is_given_up_at_the_deadline() {
    let start = Instant::now();
    next_mirror_after(
        Reply::Trickle {
            body: payload(20_000, 31),
            pause: Duration::from_millis(300),
        },
        Duration::from_secs(2),
        "download deadline of 2 s exceeded",
    );
    // Two attempts at the trickling mirror, 2 s each, plus the good one.
    assert!(start.elapsed() < Duration::from_secs(15));
}

#[test]
fn http_redirects_are_followed_relative_and_absolute() {
    let good = payload(5_000, 32);
    let server = Server::start(vec![
        ("/a/start", Reply::Redirect("next".into())),
        ("/a/next", Reply::Redirect("/dist/pkg-1.0.tar.gz".into())),
        (PATH, Reply::Body(good.clone())),
    ]);
    // An absolute redirect to another server, then two relative ones.
    let other = Server::start(vec![("/x", Reply::Redirect(server.url("/a/start")))]);
    let rel = release_for("pkg", &good, vec![other.url("/x")]);
    let tmp = tempfile::tempdir().unwrap();
    let o = opts(tmp.path());
    let got = fetch_release(&rel, &o).unwrap();
    assert_eq!(std::fs::read(got.path()).unwrap(), good);
    for path in ["/a/start", "/a/next", PATH] {
        assert_eq!(server.hits(path), 1, "{path}");
    }
}

fn mkfifo(path: &std::path::Path) {
    let st = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn a_fifo_at_a_distfile_name_is_reported_offline_and_online_without_blocking() {
    let a = payload(1000, 33);
    let b = payload(1200, 34);
    let server = Server::start(vec![
        ("/aaa-1.0.tar.gz", Reply::Body(a.clone())),
        ("/bbb-1.0.tar.gz", Reply::Body(b.clone())),
    ]);
    let ra = release_for("aaa", &a, vec![server.url("/aaa-1.0.tar.gz")]);
    let rb = release_for("bbb", &b, vec![server.url("/bbb-1.0.tar.gz")]);
    let tmp = tempfile::tempdir().unwrap();
    let o = opts(tmp.path());
    std::fs::create_dir_all(&o.distfiles).unwrap();
    let fifo = o.distfiles.join("aaa-1.0.tar.gz");
    mkfifo(&fifo);

    for offline in [true, false] {
        let mut o2 = o.clone();
        o2.offline = offline;
        let msg = within(20, move || fetch_all(&[ra, rb], &o2))
            .unwrap_err()
            .to_string();
        eprintln!("{msg}");
        assert!(
            msg.contains(&format!("not a regular file: {} (a FIFO)", fifo.display())),
            "{msg}"
        );
        assert!(msg.contains("left alone"), "{msg}");
        // The FIFO is still there, never replaced.
        let ft = std::fs::symlink_metadata(&fifo).unwrap().file_type();
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(&ft));
    }
    // The other release was still fetched, online.
    assert_eq!(server.hits("/aaa-1.0.tar.gz"), 0);
    assert_eq!(server.hits("/bbb-1.0.tar.gz"), 1);
    assert_eq!(
        std::fs::read(o.distfiles.join("bbb-1.0.tar.gz")).unwrap(),
        b
    );
}

#[test]
fn stale_part_files_of_dead_runs_are_removed_others_kept() {
    let good = payload(3000, 35);
    let server = Server::start(vec![(PATH, Reply::Body(good.clone()))]);
    let rel = release_for("pkg", &good, vec![server.url(PATH)]);
    let tmp = tempfile::tempdir().unwrap();
    let o = opts(tmp.path());
    std::fs::create_dir_all(&o.distfiles).unwrap();
    for name in [
        ".pkg-1.0.tar.gz.Ab12Cd.part",
        ".pkg-1.0.tar.gz.zz9.part",
        ".other-2.0.tar.gz.Ab12Cd.part",
        "notes.part",
    ] {
        std::fs::write(o.distfiles.join(name), b"partial").unwrap();
    }
    // A symbolic link that looks like ours is not followed nor removed.
    let outside = tmp.path().join("outside");
    std::fs::write(&outside, b"keep").unwrap();
    std::os::unix::fs::symlink(&outside, o.distfiles.join(".pkg-1.0.tar.gz.lnk.part")).unwrap();

    fetch_release(&rel, &o).unwrap();
    assert_eq!(
        list_dir(&o.distfiles),
        vec![
            ".other-2.0.tar.gz.Ab12Cd.part",
            ".pkg-1.0.tar.gz.lnk.part",
            "notes.part",
            "pkg-1.0.tar.gz"
        ]
    );
    assert_eq!(std::fs::read(&outside).unwrap(), b"keep");
}

#[test]
fn concurrent_fetches_are_serialised_and_download_once() {
    let good = payload(40_000, 36);
    let server = Server::start(vec![(
        PATH,
        Reply::Slow {
            body: good.clone(),
            pause: Duration::from_millis(800),
        },
    )]);
    let rel = release_for("pkg", &good, vec![server.url(PATH)]);
    let tmp = tempfile::tempdir().unwrap();
    let o = opts(tmp.path());
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let o = o.clone();
            std::thread::spawn(move || fetch_release(&rel, &o))
        })
        .collect();
    let results: Vec<Fetched> = runs
        .into_iter()
        .map(|h| h.join().unwrap().unwrap())
        .collect();
    // One of them downloaded; the other waited and found it there.
    assert_eq!(server.hits(PATH), 1);
    assert_eq!(
        results
            .iter()
            .filter(|f| matches!(f, Fetched::AlreadyPresent { .. }))
            .count(),
        1
    );
    assert_eq!(
        std::fs::read(o.distfiles.join("pkg-1.0.tar.gz")).unwrap(),
        good
    );
    assert_eq!(list_dir(&o.distfiles), vec!["pkg-1.0.tar.gz"]);
}
