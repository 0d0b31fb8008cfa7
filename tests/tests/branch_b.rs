//! Oracle B (the branch C core, through `tests/c/qbranch-driver.c`) against
//! the reference model of spec/branch.md, on named cases for each rule of
//! branch.md Part 1 and on a seeded corpus of generated `.qmail`
//! programs; and the driver under ASan+UBSan on the corpus. Needs only a C
//! compiler.

use std::path::PathBuf;
use std::sync::OnceLock;

use qmail_difftest::cc::Sanitize;
use qmail_difftest::oracle::b::{
    generate_program, reference_model, Driver, GenOptions, Mode, Step, Trace,
};

/// Programs in the corpus (each run in both modes).
const CORPUS: u64 = 3000;
/// Programs run under the sanitizers.
const CORPUS_ASAN: u64 = 600;

fn work() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("branch-b");
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn driver() -> &'static Driver {
    static D: OnceLock<Driver> = OnceLock::new();
    D.get_or_init(|| Driver::build(&work(), Sanitize::None).unwrap())
}

/// Run the driver and the model; they must agree. Returns the trace.
fn check(name: &str, program: &[u8], forward_only: bool, mode: Mode, statuses: &[u8]) -> Trace {
    let file = work().join(format!("{name}-{mode:?}.qmail"));
    let b = driver()
        .run(&file, program, forward_only, mode, statuses)
        .unwrap();
    let m = reference_model(program, forward_only, mode, statuses);
    let rerun = driver().rerun_command(&file, forward_only, mode, statuses);
    assert_eq!(
        b,
        m,
        "{name}: oracle B and the model disagree on {:?} (x bit {forward_only}, {mode:?}, statuses {statuses:?})\nre-run: {rerun}\nB:\n{}model:\n{}",
        String::from_utf8_lossy(program),
        b.render(),
        m.render()
    );
    // and the resolver's model, where it can express the case
    resolver_cmp::compare(name, program, forward_only, mode, statuses, &b);
    b
}

fn deliver(name: &str, program: &str, statuses: &[u8]) -> Trace {
    check(name, program.as_bytes(), false, Mode::Deliver, statuses)
}

fn steps(t: &Trace) -> Vec<(usize, Step)> {
    t.steps.clone()
}

fn prog(status: Option<u8>, cmd: &str) -> Step {
    Step::Program {
        status,
        cmd: cmd.as_bytes().to_vec(),
    }
}

fn jump(next: Option<usize>, label: &str) -> Step {
    Step::Jump {
        next,
        label: label.as_bytes().to_vec(),
    }
}

fn bytes(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

// ---------------------------------------------------------------- rule 1

#[test]
fn rule1_syntax_label_command_and_whitespace() {
    // label up to the first space or tab; command after the blanks; the
    // trailing blanks are stripped first (P2)
    let t = deliver(
        "rule1",
        "?lab \t cmd one  \t\n?x\t\n:x trailing words\n?\tcmd2\n:\n",
        &[0, 0],
    );
    assert_eq!(
        steps(&t),
        vec![
            (1, prog(Some(0), "cmd one")),
            (2, jump(Some(4), "x")),
            (3, Step::Skip),
            (4, prog(Some(0), "cmd2")),
            (5, Step::Target(vec![])),
        ]
    );
    assert_eq!(t.did, Some((0, 0, 2)));
    // a ? line with only blanks after the label is unconditional
    let t = deliver("rule1-blanks", "?a \t \n./skipped\n:a\n", &[]);
    assert_eq!(steps(&t)[0], (1, jump(Some(4), "a")));
    // bytes that are not space or tab belong to the label (CR included)
    let t = deliver("rule1-cr", "?a\r\n:a\n:a\r\n./m\n", &[]);
    assert_eq!(steps(&t)[0], (1, jump(Some(4), "a\r")));
    assert_eq!(steps(&t)[3], (4, Step::Mbox(bytes("./m"))));
}

// ---------------------------------------------------------------- rule 2

#[test]
fn rule2_jump_skips_to_first_exactly_equal_label() {
    let t = deliver(
        "rule2",
        "|true\n?a exit99\n./mbox1\n&f1@x.org\n+list\n:A\n:ab\n:a first\n./mbox2\n:a second\n",
        &[0, 99],
    );
    assert_eq!(
        steps(&t),
        vec![
            (1, prog(Some(0), "true")),
            (2, prog(Some(99), "exit99")),
            (2, jump(Some(9), "a")),
            (3, Step::Skip),
            (4, Step::Skip),
            (5, Step::Skip),
            (6, Step::Skip),
            (7, Step::Skip),
            (8, Step::Skip),
            (9, Step::Mbox(bytes("./mbox2"))),
            (10, Step::Target(bytes("a"))),
        ]
    );
    // skipped lines are not delivered or counted, the forward is not sent,
    // and the skipped +list has no effect (./mbox2 was delivered)
    assert!(t.sent.is_empty());
    assert_eq!(t.did, Some((1, 0, 2)));
    assert_eq!(t.exit, 0);
}

// ---------------------------------------------------------------- rule 3

#[test]
fn rule3_missing_label_skips_everything_but_keeps_earlier_forwards() {
    let t = deliver(
        "rule3",
        ":a before\nf0@x.org\n?a\n./mbox\nf1@x.org\n:b\n",
        &[],
    );
    assert_eq!(steps(&t)[2], (3, jump(None, "a")));
    assert!(steps(&t)[3..].iter().all(|(_, s)| *s == Step::Skip));
    assert_eq!(t.sent, vec![bytes("f0@x.org")]);
    assert_eq!(t.did, Some((0, 1, 0)));
    // no backward jumps: the label before the ? line is not used
    let t = deliver("rule3-cond", ":z\n?z cmd\n./m\n", &[99]);
    assert_eq!(steps(&t)[2], (2, jump(None, "z")));
    assert_eq!(steps(&t)[3], (3, Step::Skip));
}

// ---------------------------------------------------------------- rule 4

#[test]
fn rule4_pipe_exit_99_still_stops() {
    let t = deliver("rule4", "&f0@x.org\n|cmd\n?a\n:a\n./m\n", &[99]);
    assert_eq!(
        steps(&t),
        vec![
            (1, Step::Forward(bytes("f0@x.org"))),
            (2, prog(Some(99), "cmd")),
            (2, Step::Stop),
        ]
    );
    assert_eq!(t.sent, vec![bytes("f0@x.org")]);
    assert_eq!(t.did, Some((0, 1, 1)));
}

#[test]
fn rule4_other_exit_codes_of_a_question_command_mean_what_they_mean_for_pipe() {
    for (st, exit) in [
        (0u8, 0u8),
        (100, 100),
        (64, 100),
        (112, 100),
        (111, 111),
        (1, 111),
    ] {
        let t = deliver(
            &format!("rule4-status{st}"),
            "&f@x.org\n?a cmd\n./m\n:a\n",
            &[st],
        );
        assert_eq!(t.exit, exit, "status {st}");
        if exit != 0 {
            assert!(t.sent.is_empty(), "forwards are not sent after a failure");
            assert_eq!(t.did, None);
        } else {
            assert_eq!(steps(&t)[2], (3, Step::Mbox(bytes("./m"))));
        }
    }
}

// ---------------------------------------------------------------- rule 5

#[test]
fn rule5_question_with_command_is_a_program_for_x_bit_and_counts() {
    let prog_x = "Uh-oh: .qmail has prog delivery but has x bit set. (#4.7.0)";
    for mode in [Mode::Deliver, Mode::Print] {
        let t = check("rule5-x", b"f@x.org\n?a cmd\n:a\n", true, mode, &[0]);
        assert_eq!(t.exit, 111);
        assert_eq!(t.message.as_deref(), Some(prog_x));
        let t = check("rule5-list", b"+list\n?a cmd\n:a\n", false, mode, &[0]);
        assert_eq!(t.exit, 111);
        assert_eq!(t.message.as_deref(), Some(prog_x));
        // an unconditional ? runs nothing: allowed in forward-only mode
        let t = check(
            "rule5-uncond",
            b"f@x.org\n?a\n|cmd\n:a\ng@x.org\n",
            true,
            mode,
            &[0],
        );
        assert_eq!(t.exit, 0);
        assert_eq!(t.did, Some((0, 2, 0)));
    }
    let t = deliver("rule5-count", "?a c1\n?b c2\n:b\n", &[0, 99]);
    assert_eq!(t.did, Some((0, 0, 2)));
}

// ---------------------------------------------------------------- rule 6

#[test]
fn rule6_dash_n_prints_commands_and_takes_only_unconditional_jumps() {
    let p = b"?a cmd1\n./m1\n:a\n?b\n./m2\n:b\n|cmd3\n";
    let t = check("rule6", p, false, Mode::Print, &[99, 99]);
    assert_eq!(
        steps(&t),
        vec![
            (1, prog(None, "cmd1")),
            (2, Step::Mbox(bytes("./m1"))),
            (3, Step::Target(bytes("a"))),
            (4, jump(Some(7), "b")),
            (5, Step::Skip),
            (6, Step::Skip),
            (7, prog(None, "cmd3")),
        ]
    );
    assert_eq!(t.did, Some((1, 0, 2)));
    // -n sends nothing
    let t = check("rule6-fwd", b"f@x.org\n", false, Mode::Print, &[]);
    assert!(t.sent.is_empty());
    assert_eq!(steps(&t), vec![(1, Step::Forward(bytes("f@x.org")))]);
}

// ---------------------------------------------------------------- rule 7

#[test]
fn rule7_first_line_blank_is_an_error_but_question_or_colon_is_fine() {
    for p in ["\n?a\n", " \t\n:a\n", "\n"] {
        let t = deliver("rule7-blank", p, &[]);
        assert_eq!(t.exit, 111);
        assert_eq!(
            t.message.as_deref(),
            Some("Uh-oh: first line of .qmail file is blank. (#4.2.1)")
        );
    }
    let t = deliver("rule7-q", "?a\n\n:a\n./m\n", &[]);
    assert_eq!(t.exit, 0);
    assert_eq!(t.did, Some((1, 0, 0)));
    let t = deliver("rule7-c", ":a\n\n./m\n", &[]);
    assert_eq!(t.exit, 0);
    assert_eq!(steps(&t)[1], (2, Step::Blank));
}

// ---------------------------------------------------------------- rule 8

#[test]
fn rule8_the_generated_patch_documents_the_lines_in_dot_qmail() {
    // the patched man page must carry the two line types, the label rules
    // and exit 99 under ERROR HANDLING
    let Some(tree) = qmail_difftest::upstream::qmail_or_skip("branch rule 8") else {
        return;
    };
    let p = qmail_patches::branch::generate(&tree).unwrap();
    let dot = p.files.iter().find(|f| f.path == "dot-qmail.9").unwrap();
    let errors = &dot.new[dot.new.find(".SH \"ERROR HANDLING\"").unwrap()..];
    assert!(errors.contains("branch line returns exit code 99"));
    assert!(dot.new.contains("(6) branch; (7) label."));
    assert!(dot.new.contains("up to the first space or tab"));
    assert!(dot.new.contains("Jumps only go forward."));
}

// ---------------------------------------------------------------- rule 9

#[test]
fn rule9_core_compiles_alone_and_is_sanitizer_clean() {
    // the core and driver compile with -std=c89 -Wall -Wextra -Werror under
    // every available compiler, and run clean under ASan+UBSan
    for cc in ["gcc", "clang"] {
        if std::process::Command::new(cc)
            .arg("--version")
            .output()
            .is_err()
        {
            println!("SKIPPED: {cc} not installed");
            continue;
        }
        let d = Driver::build_with(cc, &work(), Sanitize::AddressUndefined).unwrap();
        let file = work().join(format!("rule9-{cc}.qmail"));
        let t = d
            .run(
                &file,
                b"?a c\n./m\n:a\n&f@x.org\n",
                false,
                Mode::Deliver,
                &[99],
            )
            .unwrap();
        assert_eq!(t.sent, vec![bytes("f@x.org")]);
    }
}

#[test]
fn nul_bytes_end_a_line_for_branch_purposes() {
    // qmail-local works on C strings: a NUL ends the label and the command
    let t = check("nul", b"?a\0b cmd\n:a\n./m\n", false, Mode::Deliver, &[]);
    assert_eq!(steps(&t)[0], (1, jump(Some(3), "a")));
    let t = check(
        "nul-target",
        b"?ab\n:a\0b\n:ab\0x\n./m\n",
        false,
        Mode::Deliver,
        &[],
    );
    assert_eq!(steps(&t)[0], (1, jump(Some(4), "ab")));
}

// ---------------------------------------------------------------- corpus

#[test]
fn corpus_driver_agrees_with_model() {
    let mut jumps = 0usize;
    let mut missing = 0usize;
    let mut failures = 0usize;
    for seed in 0..CORPUS {
        let g = generate_program(seed, GenOptions::default());
        for mode in [Mode::Deliver, Mode::Print] {
            let t = check(
                &format!("corpus{seed}"),
                &g.bytes,
                g.forward_only,
                mode,
                &g.statuses,
            );
            for (_, s) in &t.steps {
                match s {
                    Step::Jump { next: Some(_), .. } => jumps += 1,
                    Step::Jump { next: None, .. } => missing += 1,
                    _ => {}
                }
            }
            if t.exit != 0 {
                failures += 1;
            }
        }
    }
    println!(
        "{} passed, 0 failed ({CORPUS} programs x 2 modes; {jumps} jumps to a label, {missing} to no label, {failures} failing runs)",
        CORPUS * 2
    );
    // the corpus must exercise what it is for
    assert!(jumps > 1000 && missing > 300 && failures > 300);
}

#[test]
fn corpus_under_asan_and_ubsan() {
    let d = Driver::build(&work(), Sanitize::AddressUndefined).unwrap();
    for seed in 0..CORPUS_ASAN {
        let g = generate_program(
            1_000_000 + seed,
            GenOptions {
                branches: true,
                max_lines: 30,
            },
        );
        let file = work().join("asan.qmail");
        let t = d
            .run(&file, &g.bytes, g.forward_only, Mode::Deliver, &g.statuses)
            .unwrap();
        let m = reference_model(&g.bytes, g.forward_only, Mode::Deliver, &g.statuses);
        assert_eq!(t, m, "seed {seed}");
    }
}

#[test]
fn resolver_view_is_not_vacuous() {
    // the adapter must carry the resolver's decisions through
    let p = b"?a c1\n./m1\n:a\n|c2\n./m2\n&f@x.org\n";
    let v = qmail_difftest::oracle::b::resolver_view(p, false, Mode::Deliver, &[99, 99]);
    assert_eq!(v.skipped, vec![2, 5, 6]);
    assert_eq!(v.deliveries.len(), 2);
    assert_eq!(v.did, Some((0, 0, 2)));
    let v = qmail_difftest::oracle::b::resolver_view(p, false, Mode::Print, &[]);
    assert_eq!(v.listing.len(), 6);
    assert!(v.skipped.is_empty());
}

#[test]
fn generator_is_seeded() {
    let a = generate_program(42, GenOptions::default());
    let b = generate_program(42, GenOptions::default());
    assert_eq!(a, b);
    let differ = (0..20).any(|s| generate_program(s, GenOptions::default()) != a);
    assert!(differ);
}

/// Comparison with the Rust resolver's `.qmail` model
/// (`qmail_resolver::dotqmail`), through [`View`]s.
mod resolver_cmp {
    use super::*;
    use qmail_difftest::oracle::b::compare_resolver;

    pub fn compare(
        name: &str,
        program: &[u8],
        forward_only: bool,
        mode: Mode,
        statuses: &[u8],
        b: &Trace,
    ) {
        let Err(views) = compare_resolver(program, forward_only, mode, statuses, b) else {
            return;
        };
        let (got, want) = *views;
        assert_eq!(
            got,
            want,
            "{name}: oracle B and the resolver disagree on {:?} (x bit {forward_only}, {mode:?}, statuses {statuses:?})\nB:\n{}",
            String::from_utf8_lossy(program),
            b.render()
        );
    }
}
