//! A `scenario.json` from a failure directory is hostile input: replaying
//! or materialising it must never create or change anything outside the
//! world root, and must not block or eat memory on a strange file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use qmail_difftest::options::RunOptions;
use qmail_difftest::runner;
use qmail_difftest::scenario::{self, Esc, Node, NodeKind, Scenario};
use qmail_difftest::tree::{Make, Root};

fn no_compile(_: &[u8]) -> Result<Vec<u8>, String> {
    Err("not compiled in this test".into())
}

fn node(path: &[u8], kind: NodeKind, mode: u32) -> Node {
    Node {
        path: Esc(path.to_vec()),
        kind,
        mode,
        uid: 0,
        gid: 0,
    }
}

fn setuid_file(path: &[u8]) -> Node {
    node(
        path,
        NodeKind::File {
            content: Esc::from("#!/bin/sh\nid\n"),
        },
        0o755,
    )
}

/// A generated scenario with `extra` appended to its nodes.
fn crafted(extra: Vec<Node>) -> Scenario {
    let mut s = scenario::generate(1, 0);
    s.nodes.extend(extra);
    s
}

/// Every path under `dir` (empty when it is empty or missing).
fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            if std::fs::symlink_metadata(&p).unwrap().is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

fn opts(out: &Path) -> RunOptions {
    RunOptions {
        stack: None,
        release: None,
        seed: 1,
        scenarios: 1,
        out_dir: out.to_path_buf(),
        exe: PathBuf::from(env!("CARGO_BIN_EXE_difftest")),
        qmail: None,
        require_upstream: false,
        progress: false,
        require_coverage: false,
        tamper: None,
    }
}

/// The crafted node lists, each with the node path the error must name.
fn hostile(outside: &Path) -> Vec<(Vec<Node>, String)> {
    let abs = outside.join("evil");
    let abs = abs.as_os_str().as_encoded_bytes().to_vec();
    let link_target = [scenario::ROOT_TOKEN, b"/../outside"].concat();
    vec![
        (vec![setuid_file(&abs)], String::from_utf8(abs).unwrap()),
        (
            vec![setuid_file(b"../outside/evil")],
            "../outside/evil".into(),
        ),
        (
            vec![setuid_file(b"home/../../outside/evil")],
            "home/../../outside/evil".into(),
        ),
        (
            vec![
                node(
                    b"link",
                    NodeKind::Symlink {
                        target: Esc(link_target),
                    },
                    0o777,
                ),
                setuid_file(b"link/evil"),
            ],
            "link/evil".into(),
        ),
        (vec![setuid_file(b"home//evil")], "home//evil".into()),
        (vec![setuid_file(b"./evil")], "./evil".into()),
        (vec![setuid_file(b"")], String::new()),
        (vec![setuid_file(b"etc/passwd")], "etc/passwd".into()),
        (
            vec![setuid_file(b"scenario.json.tmp")],
            "scenario.json.tmp".into(),
        ),
    ]
}

#[test]
fn hostile_node_paths_are_refused_before_anything_is_made() {
    let t = tempfile::tempdir().unwrap();
    let outside = t.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    for (i, (extra, bad)) in hostile(&outside).into_iter().enumerate() {
        let root = t.path().join(format!("w{i}"));
        let err = crafted(extra)
            .materialize(&root, &no_compile)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("node path {:?}", bad)),
            "case {i}: the error must name {bad:?}: {err}"
        );
        assert!(
            !root.exists(),
            "case {i}: the root was created before refusing"
        );
        assert_eq!(listing(&outside), Vec::<PathBuf>::new(), "case {i}");
    }
}

#[test]
fn setuid_modes_and_repeated_nodes_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let mut f = setuid_file(b"home/qq-suid");
    f.mode = 0o4755;
    let err = crafted(vec![f]).validate().unwrap_err();
    assert!(
        err.contains("\"home/qq-suid\"") && err.contains("4755"),
        "{err}"
    );
    let mut g = setuid_file(b"home/qq-sgid");
    g.mode = 0o2755;
    let err = crafted(vec![g]).validate().unwrap_err();
    assert!(err.contains("2755"), "{err}");
    let twice = vec![setuid_file(b"home/qq-twice"), setuid_file(b"home/qq-twice")];
    let err = crafted(twice).validate().unwrap_err();
    assert!(
        err.contains("\"home/qq-twice\"") && err.contains("twice"),
        "{err}"
    );
    // a directory listed twice is fine (the generator does that)
    let dirs = vec![
        node(b"d", NodeKind::Dir, 0o755),
        node(b"d", NodeKind::Dir, 0o700),
    ];
    crafted(dirs)
        .materialize(&t.path().join("w"), &no_compile)
        .unwrap();
}

#[test]
fn generated_scenarios_all_pass_validation() {
    for seed in [1, 4242] {
        for i in 0..300 {
            let s = scenario::generate(seed, i);
            if let Err(e) = s.validate() {
                panic!("generate({seed}, {i}) is refused: {e}");
            }
        }
    }
}

#[test]
fn the_tree_layer_never_follows_a_symlink() {
    // Even without validation: a symlink node made earlier is not
    // followed, for creating or for chown/chmod.
    let t = tempfile::tempdir().unwrap();
    let outside = t.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("victim"), "x").unwrap();
    use std::os::unix::fs::PermissionsExt;
    let victim_mode = || {
        std::fs::metadata(outside.join("victim"))
            .unwrap()
            .permissions()
            .mode()
    };
    let before = victim_mode();
    let root = t.path().join("w");
    std::fs::create_dir(&root).unwrap();
    let tree = Root::open(&root).unwrap();
    let target = outside.as_os_str().as_encoded_bytes();
    tree.make(b"link", Make::Symlink(target)).unwrap();
    let err = tree
        .make(b"link/evil", Make::File(b"x"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("link/evil") && err.contains("symlink"),
        "{err}"
    );
    let err = tree.make(b"link/sub", Make::Dir).unwrap_err().to_string();
    assert!(err.contains("link/sub"), "{err}");
    let err = tree
        .own(b"link/victim", Make::File(b""), None, 0o4777)
        .unwrap_err()
        .to_string();
    assert!(err.contains("link/victim"), "{err}");
    // the symlink itself, opened as a file to chmod: refused
    let err = tree
        .own(b"link", Make::File(b""), None, 0o777)
        .unwrap_err()
        .to_string();
    assert!(err.contains("link"), "{err}");
    assert_eq!(listing(&outside), vec![outside.join("victim")]);
    assert_eq!(victim_mode(), before, "the victim's mode changed");
    // an existing file is never overwritten
    tree.make(b"f", Make::File(b"one")).unwrap();
    assert!(tree.make(b"f", Make::File(b"two")).is_err());
    assert_eq!(std::fs::read(root.join("f")).unwrap(), b"one");
}

#[test]
fn replay_refuses_a_crafted_scenario_and_names_the_node() {
    let t = tempfile::tempdir().unwrap();
    let outside = t.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let out = t.path().join("out");
    for (i, (extra, bad)) in hostile(&outside).into_iter().enumerate() {
        let fail = t.path().join(format!("failure{i}"));
        std::fs::create_dir(&fail).unwrap();
        crafted(extra).save(&fail.join("scenario.json")).unwrap();
        let err = runner::replay(&fail, &opts(&out)).unwrap_err().to_string();
        assert!(
            err.contains(&format!("node path {bad:?}")),
            "case {i}: {err}"
        );
        assert!(err.contains("scenario.json"), "case {i}: {err}");
        assert_eq!(listing(&outside), Vec::<PathBuf>::new(), "case {i}");
        assert!(!fail.join("replay").exists(), "case {i}");
    }
    assert!(
        !out.exists(),
        "nothing may be made before the scenario is checked"
    );
}

#[test]
fn replay_refuses_a_symlinked_replay_dir() {
    let t = tempfile::tempdir().unwrap();
    let outside = t.path().join("outside");
    std::fs::create_dir_all(outside.join("failures")).unwrap();
    let fail = t.path().join("failure");
    std::fs::create_dir(&fail).unwrap();
    scenario::generate(1, 0)
        .save(&fail.join("scenario.json"))
        .unwrap();
    std::os::unix::fs::symlink(&outside, fail.join("replay")).unwrap();
    let err = runner::replay(&fail, &opts(&t.path().join("out")))
        .unwrap_err()
        .to_string();
    assert!(err.contains("replay") && err.contains("symlink"), "{err}");
    assert_eq!(listing(&outside), vec![outside.join("failures")]);
}

#[test]
fn strange_scenario_files_are_refused_without_blocking() {
    let t = tempfile::tempdir().unwrap();
    // a FIFO: nobody writes to it; opening it must not wait
    let fifo = t.path().join("fifo.json");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let (tx, rx) = std::sync::mpsc::channel();
    let f = fifo.clone();
    std::thread::spawn(move || {
        let _ = tx.send(Scenario::load(&f).map(|_| ()).map_err(|e| e.to_string()));
    });
    let got = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("loading a FIFO blocked");
    let err = got.unwrap_err();
    assert!(
        err.contains("fifo.json") && err.contains("not a regular file"),
        "{err}"
    );
    // too big (sparse, so cheap): refused by size, not read
    let big = t.path().join("big.json");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(scenario::MAX_SCENARIO_BYTES + 1).unwrap();
    let err = Scenario::load(&big).unwrap_err().to_string();
    assert!(
        err.contains("big.json") && err.contains("67108864"),
        "{err}"
    );
    // a symlink to a good scenario: not followed
    let good = t.path().join("good.json");
    scenario::generate(1, 0).save(&good).unwrap();
    Scenario::load(&good).unwrap();
    let link = t.path().join("link.json");
    std::os::unix::fs::symlink(&good, &link).unwrap();
    let err = Scenario::load(&link).unwrap_err().to_string();
    assert!(err.contains("link.json"), "{err}");
}
