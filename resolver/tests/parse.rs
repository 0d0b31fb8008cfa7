//! Stage P (resolution.md §9) with branch.md Part 1, and §13 items 44–52.
use qmail_resolver::dotqmail::{
    effective_instructions, listing, parse_instructions, run_instructions, DeliveryKind, LineKind,
    ProgramExit, RunResult, RunStatus,
};

fn list(b: &[u8], fo: bool) -> (Vec<String>, Option<String>) {
    let l = listing(&parse_instructions(b, true), fo);
    (
        l.lines.iter().map(|x| x.to_text()).collect(),
        l.error.map(|e| e.to_text()),
    )
}

fn run(b: &[u8], fo: bool, exits: &[(usize, i32)]) -> RunResult {
    run_instructions(&parse_instructions(b, true), fo, |_, n| {
        ProgramExit::Code(exits.iter().find(|(l, _)| *l == n).map_or(0, |e| e.1))
    })
}

fn said(r: &RunResult) -> Vec<String> {
    r.deliveries
        .iter()
        .map(|d| match &d.kind {
            DeliveryKind::Mbox { path } => format!("mbox {path}"),
            DeliveryKind::Maildir { path } => format!("maildir {path}"),
            DeliveryKind::Program { command, .. } => format!("program {command}"),
            DeliveryKind::Forward { address } => format!("forward {address}"),
        })
        .collect()
}

const BLANK: &str = "Uh-oh: first line of .qmail file is blank. (#4.2.1)";

#[test]
fn p1_empty_or_missing_file_uses_aliasempty_and_clears_x() {
    let (i, fo) = effective_instructions(Some(b""), true, b"./Mailbox\n", true);
    assert!(!fo);
    assert_eq!(listing(&i, fo).lines.len(), 2);
    let (i, fo) = effective_instructions(None, false, b"./Maildir/", true);
    assert_eq!(
        listing(&i, fo).lines[0],
        "maildir ./Maildir/",
        "missing final newline added"
    );
    let (i, fo) = effective_instructions(Some(b"&a\n"), true, b"./Mailbox\n", true);
    assert!(fo);
    assert_eq!(i.len(), 1);
}

#[test]
fn p2_trailing_space_tab_stripped_cr_kept_nul_cuts() {
    assert_eq!(list(b"./Maildir/ \t\n", false).0[0], "maildir ./Maildir/");
    assert_eq!(list(b"./Maildir/\r\n", false).0[0], "mbox ./Maildir/\r");
    let r = run(b"&a\0b\n", false, &[]);
    assert_eq!(said(&r), ["forward a"]);
}

#[test]
fn p3_line_classes() {
    let (l, e) = list(
        b"# c\n./mbox\n/abs/maildir/\n|prog arg\n+list\n&fwd\nplain@x\n",
        false,
    );
    assert!(e.is_none());
    assert_eq!(
        l,
        [
            "mbox ./mbox",
            "maildir /abs/maildir/",
            "program prog arg",
            "forward fwd",
            "forward plain@x",
            "did 2+2+1"
        ]
    );
    let (l, _) = list(b"+other\n-dash\n<lt\n", false);
    assert_eq!(l, ["forward -dash", "forward <lt", "did 0+2+0"]);
}

#[test]
fn p3_plus_list_makes_later_lines_forward_only() {
    let (l, e) = list(b"./before\n+list\n&x\n./after\n", false);
    assert_eq!(l, ["mbox ./before", "forward x"]);
    assert_eq!(
        e.unwrap(),
        "Uh-oh: .qmail has file delivery but has x bit set. (#4.7.0)"
    );
    let (_, e) = list(b"&x\n|prog\n", true);
    assert_eq!(
        e.unwrap(),
        "Uh-oh: .qmail has prog delivery but has x bit set. (#4.7.0)"
    );
}

#[test]
fn p4_files_programs_immediately_forwards_after() {
    let r = run(b"&f1\n./mbox\n|prog\n&f2\n", false, &[]);
    assert_eq!(
        said(&r),
        ["mbox ./mbox", "program prog", "forward f1", "forward f2"]
    );
    assert_eq!(
        r.status,
        RunStatus::Ok {
            files: 1,
            forwards: 2,
            programs: 1
        }
    );
    let r = run(b"&f1\n|stop\n&f2\n./m\n", false, &[(2, 99)]);
    assert_eq!(
        said(&r),
        ["program stop", "forward f1"],
        "exit 99 keeps earlier forwards"
    );
    assert_eq!(r.skipped, [3, 4]);
}

#[test]
fn p5_program_exit_codes() {
    for c in [100, 64, 65, 70, 76, 77, 78, 112] {
        assert!(
            matches!(
                run(b"|p\n", false, &[(1, c)]).status,
                RunStatus::Hard { .. }
            ),
            "{c}"
        );
    }
    for c in [111, 75, 1, 2] {
        assert!(
            matches!(
                run(b"|p\n", false, &[(1, c)]).status,
                RunStatus::Soft { .. }
            ),
            "{c}"
        );
    }
    let r = run_instructions(&parse_instructions(b"|p\n", true), false, |_, _| {
        ProgramExit::Crash
    });
    assert_eq!(
        r.status,
        RunStatus::Soft {
            text: "Aack, child crashed. (#4.3.0)".into()
        }
    );
}

#[test]
fn p8_first_failure_ends_run_forwards_dropped() {
    let r = run(b"&f1\n./m\n|bad\n&f2\n", false, &[(3, 100)]);
    assert_eq!(said(&r), ["mbox ./m", "program bad"]);
    assert_eq!(r.forwards_dropped.len(), 1);
    assert!(matches!(r.status, RunStatus::Hard { .. }));
}

#[test]
fn p9_listing_ignores_exit_99() {
    let (l, e) = list(b"|a\n&b\n", false);
    assert_eq!(l, ["program a", "forward b", "did 0+1+1"]);
    assert!(e.is_none());
}

#[test]
fn branch_rule1_syntax() {
    let i = parse_instructions(b"?lab cmd  arg\n?lab\n?\t\n:lab rest\n?x\tc\n", true);
    assert_eq!(
        i[0].kind,
        LineKind::Branch {
            label: "lab".into(),
            command: Some("cmd  arg".into())
        }
    );
    assert_eq!(
        i[1].kind,
        LineKind::Branch {
            label: "lab".into(),
            command: None
        }
    );
    assert_eq!(
        i[2].kind,
        LineKind::Branch {
            label: "".into(),
            command: None
        },
        "trailing tab stripped"
    );
    assert_eq!(
        i[3].kind,
        LineKind::Label {
            label: "lab".into()
        }
    );
    assert_eq!(
        i[4].kind,
        LineKind::Branch {
            label: "x".into(),
            command: Some("c".into())
        }
    );
    // without the patch they are forwards
    let i = parse_instructions(b"?lab\n:lab\n", false);
    assert!(
        matches!(i[0].kind, LineKind::Forward { .. })
            && matches!(i[1].kind, LineKind::Forward { .. })
    );
}

#[test]
fn branch_rule2_jump_skips_through_matching_label() {
    let r = run(b"?a\n&skipped\n+list\n:b\n:a here\n&after\n", false, &[]);
    assert_eq!(said(&r), ["forward after"]);
    assert_eq!(r.skipped, [2, 3, 4]);
    // the listing (qmail-local -n) skips the same lines
    let f = b"?a\n&skipped\n+list\n:b\n:a here\n&after\n";
    assert_eq!(
        listing(&parse_instructions(f, true), false).skipped,
        [2, 3, 4]
    );
    let r = run(b"?A\n&x\n:a\n&y\n", false, &[]);
    assert_eq!(
        said(&r),
        Vec::<String>::new(),
        "labels are case-sensitive; no target skips all"
    );
    let r = run(b"?\n&x\n:\n&y\n", false, &[]);
    assert_eq!(said(&r), ["forward y"], "empty label");
}

#[test]
fn branch_rule3_no_target_skips_rest_keeps_earlier_forwards() {
    let r = run(b"&early\n?missing\n&late\n./m\n", false, &[]);
    assert_eq!(said(&r), ["forward early"]);
    assert_eq!(r.skipped, [3, 4]);
    let f = b"&early\n?missing\n&late\n./m\n";
    assert_eq!(listing(&parse_instructions(f, true), false).skipped, [3, 4]);
    let r = run(b":a\n&x\n?a\n&y\n", false, &[]);
    assert_eq!(said(&r), ["forward x"], "no backward jumps");
}

#[test]
fn branch_rule4_pipe_99_still_stops() {
    let r = run(b"|p\n:x\n&y\n", false, &[(1, 99)]);
    assert_eq!(said(&r), ["program p"]);
}

#[test]
fn branch_rule5_conditional_is_a_program() {
    let r = run(b"?a test\n&x\n:a\n&y\n", false, &[(1, 99)]);
    assert_eq!(said(&r), ["program test", "forward y"]);
    assert_eq!(
        r.status,
        RunStatus::Ok {
            files: 0,
            forwards: 1,
            programs: 1
        }
    );
    let r = run(b"?a test\n&x\n:a\n&y\n", false, &[(1, 0)]);
    assert_eq!(said(&r), ["program test", "forward x", "forward y"]);
    assert!(matches!(
        run(b"?a test\n", false, &[(1, 100)]).status,
        RunStatus::Hard { .. }
    ));
    assert!(matches!(
        run(b"?a test\n", false, &[(1, 111)]).status,
        RunStatus::Soft { .. }
    ));
    let r = run(b"?a test\n", true, &[]);
    assert_eq!(
        r.status,
        RunStatus::Soft {
            text: "Uh-oh: .qmail has prog delivery but has x bit set. (#4.7.0)".into()
        }
    );
    let r = run(b"?a\n&x\n:a\n&y\n", true, &[]);
    assert_eq!(
        said(&r),
        ["forward y"],
        "unconditional jump allowed when forward-only"
    );
    assert_eq!(
        r.status,
        RunStatus::Ok {
            files: 0,
            forwards: 1,
            programs: 0
        }
    );
}

#[test]
fn branch_rule6_listing() {
    let (l, _) = list(b"?a cmd\n&x\n:a\n?b\n&skipped\n:b\n&y\n", false);
    assert_eq!(l, ["program cmd", "forward x", "forward y", "did 0+2+1"]);
}

#[test]
fn branch_rule7_first_line_blank_still_error() {
    assert_eq!(list(b"\n?a\n", false).1.unwrap(), BLANK);
    assert_eq!(list(b"?a\n:a\n&x\n", false).0, ["forward x", "did 0+1+0"]);
    assert_eq!(list(b":a\n&x\n", false).0, ["forward x", "did 0+1+0"]);
}

#[test]
fn edge_44_blank_first_line() {
    assert_eq!(list(b"\n&x\n", false).1.unwrap(), BLANK);
    assert_eq!(list(b" \t\n&x\n", false).1.unwrap(), BLANK);
    assert_eq!(
        list(b"&x\n\n\n&y\n", false).0,
        ["forward x", "forward y", "did 0+2+0"]
    );
    assert_eq!(
        run(b"\n", false, &[]).status,
        RunStatus::Soft { text: BLANK.into() }
    );
    // blank lines after the first are skipped when the file is run too
    let r = run(b"&x\n\n\n&y\n", false, &[]);
    assert_eq!(said(&r), ["forward x", "forward y"]);
    assert!(
        !matches!(r.status, RunStatus::Soft { .. }),
        "{:?}",
        r.status
    );
}

#[test]
fn edge_45_trailing_whitespace_and_crlf() {
    assert_eq!(list(b"&a@b  \t\n", false).0[0], "forward a@b");
    assert_eq!(list(b"./Maildir/\r\n", false).0[0], "mbox ./Maildir/\r");
}

#[test]
fn edge_46_leading_space_forward() {
    assert_eq!(list(b" addr\n", false).0[0], "forward  addr");
}

#[test]
fn edge_47_ampersand_alone() {
    assert_eq!(list(b"&\n", false).0, ["forward ", "did 0+1+0"]);
}

#[test]
fn edge_48_plus_list_then_program_or_file() {
    assert!(list(b"+list\n|p\n", false).1.is_some());
    assert!(list(b"+list\n./m\n", false).1.is_some());
    assert_eq!(list(b"+other\n|p\n", false).0, ["program p", "did 0+0+1"]);
}

#[test]
fn edge_49_dot_alone_is_mbox() {
    assert_eq!(list(b".\n", false).0[0], "mbox .");
}

#[test]
fn edge_50_comments_only_did_000() {
    let r = run(b"# nothing\n#\n", false, &[]);
    assert!(r.deliveries.is_empty());
    assert_eq!(
        r.status,
        RunStatus::Ok {
            files: 0,
            forwards: 0,
            programs: 0
        }
    );
}

#[test]
fn edge_51_exit_codes_and_99_in_middle() {
    let r = run(b"&f\n|p\n./m\n", false, &[(2, 99)]);
    assert_eq!(said(&r), ["program p", "forward f"]);
    for (c, hard) in [
        (0, None),
        (99, None),
        (100, Some(true)),
        (64, Some(true)),
        (65, Some(true)),
        (70, Some(true)),
        (76, Some(true)),
        (77, Some(true)),
        (78, Some(true)),
        (112, Some(true)),
        (111, Some(false)),
        (75, Some(false)),
        (1, Some(false)),
    ] {
        let s = run(b"|p\n", false, &[(1, c)]).status;
        match hard {
            None => assert!(matches!(s, RunStatus::Ok { .. }), "{c}"),
            Some(true) => assert!(matches!(s, RunStatus::Hard { .. }), "{c}"),
            Some(false) => assert!(matches!(s, RunStatus::Soft { .. }), "{c}"),
        }
    }
}

#[test]
fn edge_52_multiline_aliasempty() {
    let (i, fo) = effective_instructions(None, false, b"./Mailbox\n|prog\n&fwd\n", true);
    assert_eq!(listing(&i, fo).lines.len(), 4);
}

#[test]
fn p6_file_errors_are_soft_and_stop() {
    use qmail_resolver::dotqmail::run_instructions_with;
    let i = parse_instructions(b"./ok\n./Maildir/\n&f\n./never\n", true);
    let r = run_instructions_with(
        &i,
        false,
        |_, _| ProgramExit::Code(0),
        |p, _| {
            (p == b"./Maildir/").then(|| b"Temporary error on maildir delivery. (#4.3.0)".to_vec())
        },
        Ok(()),
    );
    assert_eq!(said(&r), ["mbox ./ok", "maildir ./Maildir/"]);
    assert_eq!(
        r.status,
        RunStatus::Soft {
            text: "Temporary error on maildir delivery. (#4.3.0)".into()
        }
    );
    assert!(
        r.forwards_dropped.is_empty(),
        "the forward line comes later and was never read"
    );
}

#[test]
fn p7_forward_result_d_is_hard_else_soft() {
    use qmail_resolver::dotqmail::{run_instructions_with, QueueFailure};
    let i = parse_instructions(b"&a\n./m\n", true);
    let run = |q| run_instructions_with(&i, false, |_, _| ProgramExit::Code(0), |_, _| None, q);
    let r = run(Err(QueueFailure::Permanent(b"sorry".to_vec())));
    assert_eq!(
        r.status,
        RunStatus::Hard {
            text: "Unable to forward message: sorry.".into()
        }
    );
    assert_eq!(said(&r), ["mbox ./m"], "the file delivery already happened");
    assert_eq!(r.forwards_dropped.len(), 1);
    let r = run(Err(QueueFailure::Temporary(b"qq busy".to_vec())));
    assert!(matches!(r.status, RunStatus::Soft { .. }));
    // without forwards qmail-queue is not run at all
    let i = parse_instructions(b"./m\n", true);
    let r = run_instructions_with(
        &i,
        false,
        |_, _| ProgramExit::Code(0),
        |_, _| None,
        Err(QueueFailure::Temporary(vec![])),
    );
    assert!(matches!(r.status, RunStatus::Ok { .. }));
}
