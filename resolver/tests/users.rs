//! Stage U (resolution.md §5) and §13 items 13–26.
mod common;
use common::*;
use qmail_resolver::resolve::{HomeCheck, UsersStage};
use qmail_resolver::users::{
    compile_assign, lookup_users, parse_record, AssignError, CdbGet, CdbSlice, CdbTrouble, UsersDb,
    UsersMatch,
};
use qmail_resolver::{Config, Outcome, Resolver, StaticPasswd, Verdict};

fn db(assign: &[u8]) -> UsersDb {
    UsersDb::from_records(&compile_assign(assign).unwrap()).unwrap()
}

/// (user, dash, ext) for a local part through the compiled cdb.
fn look(d: &UsersDb, local: &str) -> Option<(String, String, String)> {
    let h = d.lookup(local.as_bytes()).unwrap()?;
    let r = parse_record(&h.record).unwrap();
    let s = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
    Some((s(&r.user), s(&r.dash), s(&r.ext)))
}

fn t(u: &str, d: &str, e: &str) -> Option<(String, String, String)> {
    Some((u.into(), d.into(), e.into()))
}

#[test]
fn section12_all_users_rows() {
    let d = db(ASSIGN);
    assert_eq!(look(&d, "JOE"), t("joe", "", ""));
    assert_eq!(look(&d, "JOE.SHMOE"), t("joe", "-", "shmoe"));
    assert_eq!(look(&d, "joe-Direct-X"), t("joe", "-", "Direct-X"));
    assert_eq!(look(&d, "joe-"), t("joe", "-", ""));
    assert_eq!(look(&d, "list-Foo-Bar"), t("lists", "-", "list-Foo-Bar"));
    for l in ["bigx", "BIGX", "bigE"] {
        assert_eq!(look(&d, l), t("alias", "-", l), "{l}");
    }
    assert_eq!(look(&d, "bobby"), t("bob", "-", "by"));
    assert_eq!(look(&d, "Bob-x"), t("bob", "-", "-x"));
    assert_eq!(look(&d, "mary"), t("mary", "", ""));
    assert_eq!(look(&d, "xmary"), t("alias", "-", "xmary"));
    assert_eq!(look(&d, "random"), t("alias", "-", "random"));
    let r = parse_record(&d.lookup(b"root0").unwrap().unwrap().record).unwrap();
    assert_eq!(r.uid, 0);
}

#[test]
fn section12_root0_and_trash_outcomes() {
    let sb = Sandbox::new();
    let r = resolver(controls(), Some(ASSIGN), StaticPasswd::new(), sb.path());
    let tr = r.resolve(b"root0@example.com");
    assert_eq!(
        tr.outcome,
        Outcome::Defer {
            text: "Not allowed to perform deliveries as root.".into()
        }
    );
    let tr = r.resolve(b"@example.com");
    assert_eq!(tr.outcome, Outcome::Trash);
    assert_eq!(tr.outcome.class(), "trash");
    assert_eq!(tr.verdict, Verdict::Accept);
}

#[test]
fn u1_stops_at_first_dot_line_and_requires_it() {
    let r = compile_assign(b"=a:a:1:1:/h:::\n.anything\ngarbage\n").unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(
        compile_assign(b"=a:a:1:1:/h:::\n"),
        Err(AssignError::MissingDot)
    );
    assert_eq!(compile_assign(b""), Err(AssignError::MissingDot));
}

#[test]
fn u2_line_format_errors() {
    assert_eq!(
        compile_assign(b"\n.\n"),
        Err(AssignError::NoColon { line: 1 })
    );
    assert_eq!(
        compile_assign(b"=a\0:a:1:1:/h:::\n.\n"),
        Err(AssignError::Nul { line: 1 })
    );
    assert_eq!(
        compile_assign(b":a:1:1:/h:::\n.\n"),
        Err(AssignError::NoColon { line: 1 })
    );
    assert_eq!(
        compile_assign(b"=a:a:1:1:/h:::"),
        Err(AssignError::NoNewline { line: 1 })
    );
}

#[test]
fn u3_type_byte_any_non_plus_is_exact() {
    let r = compile_assign(b"xmary:mary:1:1:/h:::\n.\n").unwrap();
    assert_eq!(r[0].0, b"!mary\0");
}

#[test]
fn u4_keys_fold_and_nul() {
    let r = compile_assign(b"=Joe:j:1:1:/h:::\n+Pre-:p:1:1:/h:-::\n+:a:1:1:/h:-::\n.\n").unwrap();
    assert_eq!(r[0].0, b"!joe\0");
    assert_eq!(r[1].0, b"!pre-");
    assert_eq!(r[2].0, b"!");
}

#[test]
fn u5_value_six_fields_rest_dropped() {
    let r = compile_assign(b"=a:u:1:2:/h:-:e:extra:more\n.\n").unwrap();
    assert_eq!(r[0].1, b"u\x001\x002\x00/h\x00-\x00e");
    assert_eq!(
        compile_assign(b"=a:u:1:2:/h:-:\n.\n"),
        Err(AssignError::TooFewFields { line: 1 })
    );
}

#[test]
fn u6_wildchars_unfolded_first_appearance() {
    let r = compile_assign(
        b"+aB:x:1:1:/h:-::\n+c-:x:1:1:/h:-::\n+zB:x:1:1:/h:-::\n+:x:1:1:/h:-::\n.\n",
    )
    .unwrap();
    let last = r.last().unwrap();
    assert_eq!(last.0, b"");
    assert_eq!(last.1, b"B-");
}

#[test]
fn u7_first_duplicate_wins_in_written_cdb() {
    let d = db(ASSIGN);
    assert_eq!(look(&d, "joe").unwrap().0, "joe");
    // the cdb keeps both records, in insertion order
    let UsersDb::Loaded(b) = &d else { panic!() };
    assert_eq!(
        CdbSlice(b).get_first(b"!joe\0").unwrap().unwrap()[..3],
        *b"joe"
    );
}

#[test]
fn u8_missing_goes_to_getpw_other_errors_defer() {
    let sb = Sandbox::new();
    let q = sb.qmail_home(&files(VIRTUALDOMAINS), None);
    let mut pw = StaticPasswd::new();
    pw.add(b"alias", 7790, 2108, &sb.home("alias"));
    let r = Resolver::new(Config::with_home(&q), pw.clone()).unwrap();
    assert!(matches!(r.users(), UsersDb::Missing));
    let tr = r.resolve(b"nobody-here@example.com");
    assert_eq!(tr.users, Some(UsersStage::Missing));
    assert!(tr.getpw.is_some());
    std::fs::create_dir(q.join("users/cdb")).unwrap();
    let r = Resolver::new(Config::with_home(&q), pw).unwrap();
    let tr = r.resolve(b"x@example.com");
    assert_eq!(
        tr.outcome,
        Outcome::Defer {
            text: "Trouble reading users/cdb in qmail-lspawn.".into()
        }
    );
    assert_eq!(
        tr.verdict,
        Verdict::TempFail(qmail_resolver::TempFailSource::Cdb)
    );
}

#[test]
fn u9_no_wildchars_key_or_corrupt_is_trouble() {
    let recs = vec![(b"!joe\0".to_vec(), b"joe\x001\x001\x00/h\x00\x00".to_vec())];
    let d = UsersDb::from_records(&recs).unwrap();
    assert_eq!(d.lookup(b"joe"), Err(CdbTrouble::NoWildchars));
    assert_eq!(
        UsersDb::Loaded(Vec::new()).lookup(b"joe"),
        Err(CdbTrouble::Read)
    );
    let UsersDb::Loaded(mut b) = db(ASSIGN) else {
        panic!()
    };
    b.truncate(b.len() - 100);
    assert_eq!(UsersDb::Loaded(b).lookup(b"joe"), Err(CdbTrouble::Read));
}

#[test]
fn u10_exact_key_record_plus_nul() {
    let recs = compile_assign(ASSIGN).unwrap();
    let h = lookup_users(recs.as_slice(), b"JOE").unwrap().unwrap();
    assert_eq!(h.matched, UsersMatch::Exact { name: "joe".into() });
    assert_eq!(h.record, b"joe\x001001\x00100\x00/home/joe\x00\x00\x00");
}

#[test]
fn u11_wildcard_longest_first_original_case_remainder() {
    let a = b"+jo:short:1:1:/h:-:s-:\n+joe-:long:1:1:/h:-:l-:\n+:all:1:1:/h:-::\n.\n";
    let d = db(a);
    assert_eq!(look(&d, "JOE-MiXed"), t("long", "-", "l-MiXed"));
    assert_eq!(look(&d, "Joker"), t("short", "-", "s-ker"));
    assert_eq!(look(&d, "x"), t("all", "-", "x"));
    // the naive model (a list searched in order, CdbGet's default hashed
    // probe) finds the same wildcard records as the cdb file
    let recs = compile_assign(a).unwrap();
    let h = lookup_users(recs.as_slice(), b"JOE-MiXed")
        .unwrap()
        .unwrap();
    assert_eq!(h, d.lookup(b"JOE-MiXed").unwrap().unwrap());
    assert!(
        matches!(h.matched, UsersMatch::Wildcard { .. }),
        "{:?}",
        h.matched
    );
}

#[test]
fn u12_uppercase_prefix_never_matches() {
    let d = db(ASSIGN);
    assert_eq!(look(&d, "BIGX").unwrap().0, "alias");
    // unless another prefix contributes the lowercase byte
    let d = db(b"+BIG:big:1:1:/h:-::\n+zig:zig:1:1:/h:-::\n+:a:1:1:/h:-::\n.\n");
    assert_eq!(look(&d, "bigx").unwrap().0, "big");
    // +loc matches loc itself with ext = pre
    let d = db(ASSIGN);
    assert_eq!(look(&d, "bob"), t("bob", "-", ""));
}

#[test]
fn u13_no_entry_goes_to_getpw() {
    let d = db(b"=only:o:1:1:/h:::\n.\n");
    assert_eq!(d.lookup(b"other"), Ok(None));
}

#[test]
fn edge_13_exact_wildcard_catchall() {
    let d = db(b"=a:exact:1:1:/h:::\n+a:wild:1:1:/h:-::\n+:all:1:1:/h:-::\n.\n");
    assert_eq!(look(&d, "a").unwrap().0, "exact");
    assert_eq!(look(&d, "ab"), t("wild", "-", "b"), "+a is undelimited");
    assert_eq!(
        look(&d, "ba").unwrap().0,
        "all",
        "only prefixes of the local part"
    );
}

#[test]
fn edge_14_exact_beats_longer_wildcard() {
    let d = db(b"+joe-x:w:1:1:/h:-::\n=joe-x:e:1:1:/h:::\n.\n");
    assert_eq!(look(&d, "joe-x").unwrap().0, "e");
}

#[test]
fn edge_15_longest_prefix_wins() {
    let d = db(b"+:all:1:1:/h:-::\n+jo:jo:1:1:/h:-::\n+joe-:joe:1:1:/h:-::\n.\n");
    assert_eq!(look(&d, "joe-x").unwrap().0, "joe");
    assert_eq!(look(&d, "jox").unwrap().0, "jo");
    assert_eq!(look(&d, "x").unwrap().0, "all");
}

#[test]
fn edge_16_undelimited_prefix() {
    assert_eq!(look(&db(ASSIGN), "bobby"), t("bob", "-", "by"));
}

#[test]
fn edge_17_uppercase_prefix() {
    assert_eq!(look(&db(ASSIGN), "bigE").unwrap().0, "alias");
}

#[test]
fn edge_18_unique_last_byte() {
    let d = db(b"+ab%:pct:1:1:/h:-::\n+:all:1:1:/h:-::\n.\n");
    assert_eq!(look(&d, "ab%rest"), t("pct", "-", "rest"));
    assert_eq!(look(&d, "ab"), t("all", "-", "ab"));
}

#[test]
fn edge_19_ext_keeps_case() {
    assert_eq!(look(&db(ASSIGN), "JOE-CaSe").unwrap().2, "CaSe");
}

#[test]
fn edge_20_first_duplicate() {
    let d = db(b"+x:first:1:1:/h:-::\n+x:second:1:1:/h:-::\n.\n");
    assert_eq!(look(&d, "xy").unwrap().0, "first");
}

#[test]
fn edge_21_type_byte() {
    assert_eq!(look(&db(ASSIGN), "mary").unwrap().0, "mary");
    assert!(db(ASSIGN)
        .lookup(b"xmary")
        .unwrap()
        .is_some_and(|h| matches!(h.matched, UsersMatch::Wildcard { .. })));
}

#[test]
fn edge_22_newu_format_errors() {
    assert!(
        compile_assign(b"=a:a:1:1:/h:::\n\n.\n").is_err(),
        "blank line"
    );
    assert!(compile_assign(b"=a:a:1:1:/h:::\n").is_err(), "missing dot");
    assert!(
        compile_assign(b"=a:a:1:1:/h::\n.\n").is_err(),
        "too few fields"
    );
    assert!(
        compile_assign(b":a:a:1:1:/h:::\n.\n").is_err(),
        "colon at 0"
    );
    let r = compile_assign(b"=a:a:1:1:/h:::x:y:z\n.\n").unwrap();
    assert_eq!(r[0].1, b"a\x001\x001\x00/h\x00\x00", "extra fields dropped");
    // a failed compile keeps the old cdb
    let sb = Sandbox::new();
    std::fs::write(sb.p("assign"), b"=a:a:1:1:/h:::\n.\n").unwrap();
    qmail_resolver::users::compile_assign_file(&sb.p("assign"), &sb.p("cdb")).unwrap();
    let before = std::fs::read(sb.p("cdb")).unwrap();
    std::fs::write(sb.p("assign"), b"broken\n").unwrap();
    assert!(qmail_resolver::users::compile_assign_file(&sb.p("assign"), &sb.p("cdb")).is_err());
    assert_eq!(std::fs::read(sb.p("cdb")).unwrap(), before);
    assert!(!sb.p("cdb.tmp").exists());
}

#[test]
fn edge_23_cdb_states() {
    let sb = Sandbox::new();
    let q = sb.qmail_home(&files(VIRTUALDOMAINS), None);
    let pw = StaticPasswd::new();
    // missing → getpw (alias missing here → defer "Unable to find alias user!")
    let r = Resolver::new(Config::with_home(&q), pw.clone()).unwrap();
    assert_eq!(
        r.resolve(b"x@example.com").outcome.text().unwrap(),
        &"Unable to find alias user!"
    );
    // zero length → trouble
    std::fs::write(q.join("users/cdb"), b"").unwrap();
    let r = Resolver::new(Config::with_home(&q), pw.clone()).unwrap();
    assert_eq!(r.resolve(b"x@example.com").verdict.as_str(), "tempfail-cdb");
    // without the "" key → trouble for every address
    qmail_resolver::users::write_cdb(
        &q.join("users/cdb"),
        &[(b"!x\0".to_vec(), b"x\x001\x001\x00/h\x00\x00".to_vec())],
    )
    .unwrap();
    let r = Resolver::new(Config::with_home(&q), pw).unwrap();
    assert_eq!(
        r.resolve(b"x@example.com").outcome.text().unwrap(),
        &"Trouble reading users/cdb in qmail-lspawn."
    );
}

#[test]
fn edge_24_uid_non_numeric_or_zero_is_root() {
    let sb = Sandbox::new();
    let r = resolver(
        controls(),
        Some(b"=a:a:abc:1:/h:::\n=b:b:0:1:/h:::\n=c:c:4294967296:1:/h:::\n.\n"),
        StaticPasswd::new(),
        sb.path(),
    );
    for a in ["a@example.com", "b@example.com", "c@example.com"] {
        let tr = r.resolve(a.as_bytes());
        assert_eq!(
            tr.outcome.text().unwrap(),
            &"Not allowed to perform deliveries as root.",
            "{a}"
        );
        assert_eq!(tr.verdict, Verdict::Accept);
    }
}

#[test]
fn edge_25_relative_home_bounces_usage() {
    let sb = Sandbox::new();
    let r = resolver(
        controls(),
        Some(b"=a:a:5:1:rel/home:::\n.\n"),
        StaticPasswd::new(),
        sb.path(),
    );
    let tr = r.resolve(b"a@example.com");
    assert_eq!(tr.outcome.class(), "bounce");
    assert!(tr
        .outcome
        .text()
        .unwrap()
        .starts_with(b"qmail-local: usage:"));
    assert_eq!(tr.home, Some(HomeCheck::Relative));
    assert_eq!(tr.verdict, Verdict::Accept);
}

#[test]
fn edge_26_missing_home_defers() {
    let sb = Sandbox::new();
    let home = sb.pb("nohome");
    let assign = [b"=a:a:5:1:".as_slice(), &home, b":-:x:\n.\n"].concat();
    let r = resolver(controls(), Some(&assign), StaticPasswd::new(), sb.path());
    let tr = r.resolve(b"a@example.com");
    let want = [
        b"Unable to switch to ".as_slice(),
        &home,
        b": file does not exist. (#4.3.0)",
    ]
    .concat();
    assert_eq!(tr.outcome, Outcome::Defer { text: want.into() });
    assert_eq!(tr.verdict, Verdict::Accept, "deliberate change 2");
}

#[test]
fn h6_short_record_is_usage_bug() {
    let sb = Sandbox::new();
    // a cdb written by hand whose value has too few fields
    let recs = vec![
        (b"!a\0".to_vec(), b"a\x001\x001".to_vec()),
        (b"".to_vec(), b"".to_vec()),
    ];
    let r = Resolver::from_parts(
        Config::with_home(sb.path()),
        controls(),
        UsersDb::from_records(&recs).unwrap(),
        StaticPasswd::new(),
    );
    let tr = r.resolve(b"a@example.com");
    assert_eq!(tr.outcome.text().unwrap(), &"Internal qmail-lspawn bug.");
}

/// What qmail-lspawn would do with the hand-written users/cdb value `val`
/// for the key `!a` (the address a@example.com). qmail-lspawn ends the
/// value with a NUL of its own before splitting it into fields.
fn outcome_of_value(sb: &Sandbox, val: &[u8]) -> Outcome {
    let recs = vec![
        (b"!a\0".to_vec(), val.to_vec()),
        (b"".to_vec(), b"".to_vec()),
    ];
    let r = Resolver::from_parts(
        Config::with_home(sb.path()),
        controls(),
        UsersDb::from_records(&recs).unwrap(),
        StaticPasswd::new(),
    );
    r.resolve(b"a@example.com").outcome
}

#[test]
fn h6_exactly_six_nul_terminated_fields_are_needed_more_are_ignored() {
    let sb = Sandbox::new();
    let home = sb.pb("nohome");
    // a value of `n` fields separated by NULs: a record of `n` fields
    let value = |n: usize| -> Vec<u8> {
        let all: [&[u8]; 8] = [b"a", b"7", b"8", &home, b"-", b"ext", b"x", b"y"];
        all[..n].join(&0u8)
    };
    let bug = Outcome::Defer {
        text: "Internal qmail-lspawn bug.".into(),
    };
    let no_home = Outcome::Defer {
        text: [
            b"Unable to switch to ".as_slice(),
            &home,
            b": file does not exist. (#4.3.0)",
        ]
        .concat()
        .into(),
    };
    assert_eq!(outcome_of_value(&sb, &value(5)), bug, "5 fields");
    assert_eq!(parse_record(&[value(5), vec![0]].concat()), None);
    // a sixth field, even an empty one, is enough
    let empty_ext = [value(5), vec![0]].concat();
    assert_eq!(
        outcome_of_value(&sb, &empty_ext),
        no_home,
        "empty 6th field"
    );
    // six, seven or eight: the first six are used
    for n in [6, 7, 8] {
        assert_eq!(outcome_of_value(&sb, &value(n)), no_home, "{n} fields");
        let r = parse_record(&[value(n), vec![0]].concat()).unwrap();
        assert_eq!((r.uid, r.gid), (7, 8), "{n} fields");
        assert_eq!(&r.home[..], &home[..], "{n} fields");
        assert_eq!(
            (&r.dash[..], &r.ext[..]),
            (&b"-"[..], &b"ext"[..]),
            "{n} fields"
        );
    }
}

#[test]
fn local_parts_around_the_stack_key_length_match_like_short_ones() {
    // 253, 254 and 255 bytes fit the lookup's stack key or just miss it
    let d = db(ASSIGN);
    for n in [250, 253, 254, 255, 256, 300, 5000] {
        let tail = "x".repeat(n - 4);
        let exact = format!("list-{tail}");
        let want = t("lists", "-", &exact);
        assert_eq!(look(&d, &exact), want, "wildcard, {n} bytes");
        let upper = format!("BOB{}", "Y".repeat(n - 3));
        let ext = "Y".repeat(n - 3);
        assert_eq!(
            look(&d, &upper),
            t("bob", "-", &ext),
            "mixed case, {n} bytes"
        );
    }
}

/// Local parts longer than the look-up's 256-byte stack buffers (the key
/// and the prefix hashes move to the heap): exact and wildcard records
/// are found as for short ones, also when the wildcard is the whole local
/// part.
#[test]
fn u10_u11_local_parts_longer_than_the_stack_buffers() {
    let long = "l".repeat(300);
    let assign =
        format!("={long}:exact:1:1:/h:::\n+{long}-:wild:1:1:/h:-:w-:\n+:all:1:1:/h:-::\n.\n");
    let d = db(assign.as_bytes());
    assert_eq!(look(&d, &long.to_uppercase()), t("exact", "", ""));
    assert_eq!(look(&d, &format!("{long}-")), t("wild", "-", "w-"));
    assert_eq!(look(&d, &format!("{long}-Tail")), t("wild", "-", "w-Tail"));
    assert_eq!(
        look(&d, &format!("{long}x")),
        t("all", "-", &format!("{long}x"))
    );
}
