//! The man page `qtraceaddr.1` against the command line: every flag of
//! `qtraceaddr --help` (clap's definitions) is documented in it, and groff
//! formats it without a warning.
use std::path::Path;
use std::process::Command;

fn page() -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("qtraceaddr.1");
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The long flags `--help` lists (`      --json  …`, `  -0, --null  …`).
fn help_flags() -> Vec<String> {
    let o = Command::new(env!("CARGO_BIN_EXE_qtraceaddr"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(o.status.success());
    let help = String::from_utf8(o.stdout).unwrap();
    // the flag lines are indented; the paragraphs after them are not
    help.lines()
        .filter(|l| l.starts_with("  "))
        .filter_map(|l| {
            let l = l.trim_start();
            let l = match l.as_bytes() {
                [b'-', c, b',', b' ', ..] if *c != b'-' => &l[4..],
                _ => l,
            };
            let flag = l.strip_prefix("--")?.split([' ', '<']).next()?;
            Some(flag.to_string())
        })
        .collect()
}

#[test]
fn every_flag_of_help_is_in_the_man_page() {
    let page = page();
    let flags = help_flags();
    assert!(flags.len() >= 11, "{flags:?}");
    for f in &flags {
        let roff = format!("\\-\\-{}", f.replace('-', "\\-"));
        assert!(
            page.contains(&roff),
            "--{f} is not documented in qtraceaddr.1"
        );
    }
    for env in ["QMAIL", "QMAILBREAK", "QMAILALIAS"] {
        assert!(page.contains(&format!(".B {env}\n")), "{env} missing");
    }
    assert!(page.contains("\\-0"), "-0 missing");
}

#[test]
fn groff_formats_the_man_page_without_warnings() {
    let Ok(o) = Command::new("groff")
        .args(["-man", "-ww", "-z"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("qtraceaddr.1"))
        .output()
    else {
        println!("SKIPPED: groff not found (install groff)");
        return;
    };
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stderr), "", "groff warnings");
}
