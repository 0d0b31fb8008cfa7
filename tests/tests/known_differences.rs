//! Every known difference between the original realrcptto (2006.12.10)
//! and qmail (realrcptto.md Part 1, deliberate changes 1–9) is a scenario
//! in `tests/known/` that our patch gets right.
//!
//! Without QMAIL_SOURCE_NETQMAIL only R and C run; the rows that need
//! qmail-qmtpd (changes 6 and 7) are skipped, and qmail's outcome comes
//! from R. With it, G (pristine netqmail, as root), S and Q run too and
//! every row must be right (QMAIL_REQUIRE_UPSTREAM=1 makes a missing tree
//! a failure).

use qmail_difftest::known::{self, KnownRow, RowStatus};
use qmail_difftest::options::RunOptions;
use qmail_difftest::upstream;
use std::path::PathBuf;

fn opts(out: &std::path::Path, qmail: Option<upstream_hashes::SourceTree>) -> RunOptions {
    RunOptions {
        stack: None,
        release: None,
        seed: 0,
        scenarios: 0,
        out_dir: out.to_path_buf(),
        exe: PathBuf::from(env!("CARGO_BIN_EXE_difftest")),
        qmail,
        require_upstream: upstream::required(),
        progress: false,
        require_coverage: false,
        tamper: None,
    }
}

fn check(rows: &[KnownRow], with_sources: bool) {
    let md = known::render_markdown(rows);
    println!("{md}");
    assert!(md.starts_with("## Known differences from the original realrcptto\n"));
    for r in rows {
        match r.status {
            RowStatus::Right => assert!(r.right),
            RowStatus::Covered => assert!(!r.right),
            RowStatus::Skipped => assert!(
                !with_sources,
                "row {} {} skipped although the sources are present: {:?}",
                r.change, r.address, r.note
            ),
            RowStatus::Wrong => panic!(
                "change {} address {}: {}\n{md}",
                r.change,
                r.address,
                r.note.clone().unwrap_or_default()
            ),
        }
        if with_sources && r.status == RowStatus::Right {
            assert_eq!(r.qmail_source, "G", "{r:?}");
            assert!(
                r.q.is_some(),
                "Q must have answered for {}: {r:?}",
                r.address
            );
        }
    }
    // Every deliberate change has at least one row; every change but 9
    // (not observable per address) has a checked row when all oracles run.
    for ch in 1..=9u32 {
        assert!(
            rows.iter().any(|r| r.change == ch),
            "no row for change {ch}"
        );
    }
    let checked: Vec<u32> = rows
        .iter()
        .filter(|r| r.right && r.difference)
        .map(|r| r.change)
        .collect();
    let need: Vec<u32> = if with_sources {
        (1..=8).collect()
    } else {
        vec![1, 2, 3, 4, 5, 8]
    };
    for ch in need {
        assert!(
            checked.contains(&ch),
            "change {ch} has no difference row shown right"
        );
    }
    let json: serde_json::Value = serde_json::from_str(&known::to_json(rows)).unwrap();
    assert_eq!(json.as_array().unwrap().len(), rows.len());
}

#[test]
fn known_differences_r_and_c() {
    let out = tempfile::tempdir().unwrap();
    let rows = known::run_known(&RunOptions {
        require_upstream: false,
        ..opts(out.path(), None)
    })
    .unwrap();
    check(&rows, false);
    assert!(rows
        .iter()
        .filter(|r| r.status == RowStatus::Right)
        .all(|r| !r.qmail_source.starts_with('G') && r.s.is_none() && r.q.is_none()));
}

#[test]
fn known_differences_with_pristine_and_patched_qmail() {
    let Some(src) = upstream::qmail_or_skip("known_differences::with_pristine_and_patched_qmail")
    else {
        return;
    };
    if unsafe { libc::geteuid() } != 0 && !upstream::required() {
        println!("SKIPPED: known_differences: oracle G needs root");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let rows = known::run_known(&opts(out.path(), Some(src))).unwrap();
    check(&rows, true);
}

/// The check can fail: a case whose "original" verdict equals ours, or
/// whose documented qmail outcome is not what the oracle sees, is wrong.
#[test]
fn a_false_claim_makes_a_row_wrong() {
    let src = known::known_dir();
    let tmp = tempfile::tempdir().unwrap();
    for case in ["01-probes", "02-home"] {
        let d = tmp.path().join(case);
        std::fs::create_dir_all(&d).unwrap();
        for f in ["scenario.json", "known.json"] {
            std::fs::copy(src.join(case).join(f), d.join(f)).unwrap();
        }
    }
    let edit = |case: &str, addr: &str, f: &dyn Fn(&mut serde_json::Value)| {
        let p = tmp.path().join(case).join("known.json");
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        let c = v["cases"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|c| c["address"] == addr)
            .unwrap();
        f(c);
        std::fs::write(&p, v.to_string()).unwrap();
    };
    edit("01-probes", "joe-dir@example.com", &|c| {
        c["original"]["verdict"] = "reject".into()
    });
    edit("02-home", "ww-x@example.com", &|c| {
        c["qmail"]["text"] = "Something else. (#4.3.0)".into()
    });
    let out = tempfile::tempdir().unwrap();
    let o = RunOptions {
        require_upstream: false,
        ..opts(out.path(), None)
    };
    let rows = known::run_known_in(tmp.path(), &o).unwrap();
    for r in &rows {
        let tampered = r.address == "joe-dir@example.com" || r.address == "ww-x@example.com";
        assert_eq!(
            r.status == RowStatus::Wrong,
            tampered,
            "{} {:?}",
            r.address,
            r.note
        );
    }
    assert!(known::render_markdown(&rows).contains("**NO**"));
}
