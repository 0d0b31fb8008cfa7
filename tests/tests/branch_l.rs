//! Oracle L: real qmail-local built from `QMAIL_SOURCE_NETQMAIL` (or
//! `QMAIL_SOURCE_NOTQMAIL`) with the
//! branch patch, delivering a message through generated `.qmail` programs
//! (maildirs, mboxes, commands that leave markers and exit with chosen
//! codes, forwards to a stub qmail-queue), against the model; `-n`
//! listings against branch.md rule 6; and programs without `?`/`:` lines
//! against pristine qmail-local. Prints SKIPPED without the sources.

use std::path::PathBuf;
use std::sync::OnceLock;

use qmail_difftest::oracle::b::{generate_program, reference_model, GenOptions, Mode};
use qmail_difftest::oracle::l::{expected, resolver_expected, LocalBuild, Observed};
use qmail_difftest::upstream::qmail_or_skip;
use upstream_hashes::SourceTree;

/// Generated programs run through patched qmail-local (each in -N and -n).
const CORPUS: u64 = 800;
/// Classic programs run through patched and pristine qmail-local.
const CLASSIC: u64 = 200;

fn work() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("branch-l")
}

fn builds(tree: &SourceTree) -> &'static (LocalBuild, LocalBuild) {
    static B: OnceLock<(LocalBuild, LocalBuild)> = OnceLock::new();
    B.get_or_init(|| {
        let patched = LocalBuild::build(tree, &work().join("patched"), true).unwrap();
        let pristine = LocalBuild::build(tree, &work().join("pristine"), false).unwrap();
        let homes = work().join("homes");
        let _ = std::fs::remove_dir_all(&homes);
        std::fs::create_dir_all(&homes).unwrap();
        (patched, pristine)
    })
}

fn home(name: &str) -> PathBuf {
    work().join("homes").join(name)
}

fn run(
    b: &LocalBuild,
    name: &str,
    program: &[u8],
    fo: bool,
    dirs: &[String],
    mode: Mode,
) -> Observed {
    b.run(&home(name), program, fo, dirs, mode).unwrap()
}

fn maildirs_of(program: &[u8]) -> Vec<String> {
    let mut v = Vec::new();
    for l in program.split(|&b| b == b'\n') {
        let l = String::from_utf8_lossy(l);
        let l = l.trim_end_matches([' ', '\t']);
        if l.starts_with("./") && l.ends_with('/') {
            v.push(l.trim_end_matches('/').to_string());
        }
    }
    v
}

#[test]
fn patched_qmail_local_matches_the_model_on_the_corpus() {
    let Some(tree) = qmail_or_skip("branch L corpus") else {
        return;
    };
    let (patched, _) = builds(&tree);
    let mut n = 0;
    for seed in 0..CORPUS {
        let g = generate_program(seed, GenOptions::default());
        for mode in [Mode::Deliver, Mode::Print] {
            let name = format!("corpus{seed}-{mode:?}");
            let got = run(patched, &name, &g.bytes, g.forward_only, &g.maildirs, mode);
            let trace = reference_model(&g.bytes, g.forward_only, mode, &g.statuses);
            let want = expected(&trace, mode);
            assert_eq!(
                got,
                want,
                "seed {seed} {mode:?}: patched qmail-local differs from the model for\n{}\n(x bit {}; home {})\nmodel trace:\n{}",
                String::from_utf8_lossy(&g.bytes),
                g.forward_only,
                home(&name).display(),
                trace.render()
            );
            // and the Rust resolver's .qmail model (oracle R)
            let r = resolver_expected(&g, mode);
            assert_eq!(
                got,
                r,
                "seed {seed} {mode:?}: patched qmail-local differs from the resolver for\n{}\n(x bit {})",
                String::from_utf8_lossy(&g.bytes),
                g.forward_only,
            );
            n += 1;
        }
    }
    println!("{n} passed, 0 failed (patched qmail-local vs model and resolver)");
}

#[test]
fn classic_files_behave_the_same_patched_and_pristine() {
    let Some(tree) = qmail_or_skip("branch L classic") else {
        return;
    };
    let (patched, pristine) = builds(&tree);
    let mut n = 0;
    for seed in 0..CLASSIC {
        let g = generate_program(
            500_000 + seed,
            GenOptions {
                branches: false,
                max_lines: 10,
            },
        );
        for mode in [Mode::Deliver, Mode::Print] {
            let a = run(
                patched,
                &format!("classic{seed}-{mode:?}-p"),
                &g.bytes,
                g.forward_only,
                &g.maildirs,
                mode,
            );
            let b = run(
                pristine,
                &format!("classic{seed}-{mode:?}-o"),
                &g.bytes,
                g.forward_only,
                &g.maildirs,
                mode,
            );
            assert_eq!(
                a,
                b,
                "seed {seed} {mode:?}: patched and pristine differ on\n{}",
                String::from_utf8_lossy(&g.bytes)
            );
            // and the model agrees with pristine qmail on classic files
            let want = expected(
                &reference_model(&g.bytes, g.forward_only, mode, &g.statuses),
                mode,
            );
            assert_eq!(
                b, want,
                "seed {seed} {mode:?}: model differs from pristine qmail-local"
            );
            n += 1;
        }
    }
    println!("{n} passed, 0 failed (patched vs pristine on classic files)");
}

/// The example of the README and dot-qmail.9: spam to one maildir, the
/// rest to another.
#[test]
fn readme_example_spam_filter() {
    let Some(tree) = qmail_or_skip("branch L example") else {
        return;
    };
    let (patched, pristine) = builds(&tree);
    for (spam, want) in [(true, "./Spam"), (false, "./Maildir")] {
        let prog = format!(
            "# sort spam\n?spam exit {}\n./Maildir/\n?end\n:spam\n./Spam/\n:end\n&copy@example.net\n",
            if spam { 99 } else { 0 }
        );
        let dirs = maildirs_of(prog.as_bytes());
        let name = format!("example-{spam}");
        let o = run(patched, &name, prog.as_bytes(), false, &dirs, Mode::Deliver);
        assert_eq!(o.exit, 0, "{o:?}");
        assert_eq!(o.maildirs.len(), 1, "{o:?}");
        assert_eq!(o.maildirs.get(want), Some(&1), "{o:?}");
        assert_eq!(o.stdout, vec!["did 1+1+1".to_string()]);
        assert_eq!(
            o.queued,
            vec![vec![
                "Fs@example.com".to_string(),
                "Tcopy@example.net".to_string()
            ]]
        );
        // pristine qmail-local forwards the ? and : lines as addresses
        let p = run(
            pristine,
            &format!("{name}-pristine"),
            prog.as_bytes(),
            false,
            &dirs,
            Mode::Print,
        );
        assert!(p.stdout.iter().any(|l| l == "forward ?end"), "{p:?}");
    }
    // -n: the command is listed, not run, and the unconditional jump is
    // taken (branch.md rule 6)
    let prog = b"?spam exit 99\n./Maildir/\n?end\n:spam\n./Spam/\n:end\n";
    let o = run(
        patched,
        "example-n",
        prog,
        false,
        &maildirs_of(prog),
        Mode::Print,
    );
    assert_eq!(
        o.stdout,
        vec!["program exit 99", "maildir ./Maildir/", "did 1+0+1"]
    );
    assert!(o.maildirs.is_empty());
}

#[test]
fn question_command_gets_the_message_and_environment_of_a_pipe_command() {
    let Some(tree) = qmail_or_skip("branch L environment") else {
        return;
    };
    let (patched, _) = builds(&tree);
    let prog = b"|echo pipe `wc -c` $RECIPIENT $SENDER >>markers\n?x echo q `wc -c` $RECIPIENT $SENDER >>markers; exit 99\n./skipped\n:x\n";
    let o = run(patched, "env", prog, false, &[], Mode::Deliver);
    assert_eq!(o.exit, 0, "{o:?}");
    let len = qmail_difftest::oracle::l::MESSAGE.len();
    assert_eq!(
        o.programs,
        vec![
            format!("pipe {len} u@example.org s@example.com"),
            format!("q {len} u@example.org s@example.com"),
        ]
    );
    assert!(
        o.mboxes.is_empty(),
        "the skipped mbox line was delivered: {o:?}"
    );
    assert_eq!(o.stdout, vec!["did 0+0+2"]);
}

#[test]
fn x_bit_refuses_question_commands_but_not_unconditional_jumps() {
    let Some(tree) = qmail_or_skip("branch L x bit") else {
        return;
    };
    let (patched, _) = builds(&tree);
    let o = run(
        patched,
        "x-cond",
        b"f@example.net\n?a true\n:a\n",
        true,
        &[],
        Mode::Deliver,
    );
    assert_eq!(o.exit, 111);
    assert_eq!(
        o.message,
        "Uh-oh: .qmail has prog delivery but has x bit set. (#4.7.0)"
    );
    assert!(o.queued.is_empty());
    let o = run(
        patched,
        "x-jump",
        b"f@example.net\n?a\n./m\n:a\ng@example.net\n",
        true,
        &[],
        Mode::Deliver,
    );
    assert_eq!(o.exit, 0, "{o:?}");
    assert_eq!(
        o.queued,
        vec![vec![
            "Fs@example.com".to_string(),
            "Tf@example.net".to_string(),
            "Tg@example.net".to_string()
        ]]
    );
    assert_eq!(o.stdout, vec!["did 0+2+0"]);
}
