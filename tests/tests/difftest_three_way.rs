//! The three-way differential run on generated scenarios: R vs C always;
//! G (pristine netqmail) and S/Q (patched qmail-smtpd/qmtpd) when
//! QMAIL_SOURCE_NETQMAIL is set. Also the failure path: a disagreement is
//! written out shrunk to one address, with a replay command that
//! reproduces it.

use qmail_difftest::options::{RunOptions, O4_CLASSES};
use qmail_difftest::runner;
use qmail_difftest::scenario::{self, Scenario};
use std::path::{Path, PathBuf};

fn opts(out: &Path, scenarios: u64, qmail: Option<upstream_hashes::SourceTree>) -> RunOptions {
    RunOptions {
        stack: None,
        seed: 4242,
        scenarios,
        out_dir: out.to_path_buf(),
        exe: PathBuf::from(env!("CARGO_BIN_EXE_difftest")),
        qmail,
        release: None,
        require_upstream: false,
        progress: false,
        require_coverage: scenarios >= 100,
        tamper: None,
    }
}

#[test]
fn r_and_c_agree_on_generated_scenarios() {
    let out = tempfile::tempdir().unwrap();
    let o = opts(out.path(), 120, None);
    let r = runner::run(&o).unwrap();
    let rc = &r.pairs["R-C"];
    assert!(
        rc.compared >= 120 * 20,
        "too few R-C comparisons: {}",
        rc.compared
    );
    assert_eq!(rc.disagreed, 0, "R and C disagree: {:#?}", r.failures);
    // the RCPTCHECK program answers for the same addresses (none is too
    // long for the environment)
    let rp = &r.pairs["R-P"];
    assert_eq!(rp.compared, rc.compared);
    assert_eq!(rp.disagreed, 0, "R and P disagree: {:#?}", r.failures);
    assert_eq!(r.failed, 0, "{:#?}", r.failures);
    for c in O4_CLASSES {
        assert!(
            r.classes["R"].get(*c).copied().unwrap_or(0) > 0,
            "class {c} never hit by R"
        );
    }
    // errno-fault scenarios (the shim in R and C) give tempfail-sys in
    // both, and the same number of times
    assert!(r.errno_fault_scenarios > 0);
    let sys = r.verdicts.get("tempfail-sys").copied().unwrap_or(0);
    assert!(sys > 0, "{:?}", r.verdicts);
    assert_eq!(r.c_verdicts.get("tempfail-sys"), Some(&sys));
    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(md.contains("scenarios have an errno fault"), "{md}");
    assert!(
        md.trim_end()
            .ends_with(&format!("{} passed, 0 failed", r.passed)),
        "report.md must end with the summary line"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(json["scenarios"], 120);
    assert!(
        r.skipped.iter().any(|s| s.starts_with("G ")),
        "the G tier must say it was skipped"
    );
}

#[test]
fn r_c_and_p_agree_modelling_notqmail_without_a_tree() {
    // the notqmail side of the C core and of the RCPTCHECK program
    // (qmail-lspawn's run-time users), proven without any qmail tree
    let out = tempfile::tempdir().unwrap();
    let o = RunOptions {
        release: Some(qmail_resolver::QmailRelease::Notqmail109),
        ..opts(out.path(), 150, None)
    };
    let r = runner::run(&o).unwrap();
    assert_eq!(r.release, "notqmail-1.09");
    let (rc, rp) = (&r.pairs["R-C"], &r.pairs["R-P"]);
    assert!(rc.compared >= 150 * 20, "too few R-C: {}", rc.compared);
    assert_eq!(rp.compared, rc.compared);
    assert_eq!(r.failed, 0, "{:#?}", r.failures);
    // some worlds lack qmailp, qmailq or nofiles: R defers their local
    // deliveries as qmail-lspawn would, and C and P still agree with R
    assert!(
        r.lspawn_missing_scenarios > 0,
        "no scenario without the qmail-lspawn users"
    );
    assert!(
        r.lspawn_defers > 0,
        "R never deferred for a missing qmail-lspawn user"
    );
    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(md.contains("notqmail-1.09"), "{md}");
}

#[test]
fn pristine_qmail_agrees_with_the_resolver() {
    let Some(src) = qmail_difftest::upstream::qmail_or_skip("difftest G and S/Q") else {
        return;
    };
    if unsafe { libc::geteuid() } != 0 {
        if qmail_difftest::upstream::required() {
            panic!("oracle G needs root (qmail-lspawn switches uids)");
        }
        println!("SKIPPED: difftest G: needs root (qmail-lspawn switches to each user's uid)");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let o = opts(out.path(), 100, Some(src));
    let r = runner::run(&o).unwrap();
    for pair in ["R-C", "R-G", "U:R-G", "R-S", "R-Q"] {
        let p = r
            .pairs
            .get(pair)
            .unwrap_or_else(|| panic!("pair {pair} was not compared"));
        assert!(p.compared > 0, "pair {pair} compared nothing");
        assert_eq!(p.disagreed, 0, "{pair} disagreements: {:#?}", r.failures);
    }
    assert!(r.pairs["R-G"].compared >= 2000);
    assert_eq!(r.failed, 0, "{:#?}", r.failures);
    for c in [
        "remote",
        "trash",
        "deliver",
        "deliver-or-default",
        "bounce",
        "defer",
    ] {
        assert!(
            r.classes["G"].get(c).copied().unwrap_or(0) > 0,
            "class {c} never produced by G"
        );
    }
}

#[test]
fn a_disagreement_is_saved_shrunk_and_replays() {
    let out = tempfile::tempdir().unwrap();
    // Find a scenario with an address that C rejects, and make R's answer
    // for it wrong on purpose.
    let (idx, addr) = (0..50u64)
        .find_map(|i| {
            let s = scenario::generate(4242, i);
            s.addresses
                .iter()
                .find(|a| a.0.starts_with(b"joe-foo-bar@"))
                .map(|a| (i, a.0.clone()))
        })
        .expect("some scenario has joe-foo-bar@…");
    let mut o = opts(out.path(), idx + 1, None);
    o.tamper = Some(addr.clone());
    let r = runner::run(&o).unwrap();
    assert!(r.failed >= 1, "the tampered verdict must be reported");
    let f = r
        .failures
        .iter()
        .find(|f| f.pair == "R-C" && f.scenario == idx)
        .expect("an R-C failure for the tampered scenario");
    assert!(f.shrunk, "the failure must be shrunk to its address");
    // the RCPTCHECK program's pair sees the same defect
    assert!(
        r.failures
            .iter()
            .any(|f| f.pair == "R-P" && f.scenario == idx),
        "an R-P failure for the tampered scenario: {:#?}",
        r.failures
    );
    let dir = f.dir.clone().unwrap();
    assert!(dir.starts_with(out.path().join("failures")));
    let saved = Scenario::load(&dir.join("scenario.json")).unwrap();
    assert_eq!(saved.addresses.len(), 1);
    assert!(saved.addresses[0]
        .0
        .windows(addr.len())
        .any(|w| w == addr.as_slice()));
    let cmd = std::fs::read_to_string(dir.join("replay.sh")).unwrap();
    assert!(
        cmd.contains(&format!("cargo xtask test --replay {}", dir.display())),
        "{cmd}"
    );
    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(
        md.contains("--replay"),
        "the report must give the replay command"
    );

    // Replaying with the same defect reproduces it; without, it passes.
    let again = runner::replay(&dir, &o).unwrap();
    let pairs: Vec<&str> = again.failures.iter().map(|f| f.pair.as_str()).collect();
    assert_eq!(pairs, ["R-C", "R-P"], "{:#?}", again.failures);
    let mut clean = o.clone();
    clean.tamper = None;
    let fixed = runner::replay(&dir, &clean).unwrap();
    assert_eq!(fixed.failed, 0);
    assert!(fixed.passed >= 1);
}
