//! Stages C and W (resolution.md §2, §3) and §13 items 1–12.
mod common;
use common::*;
use qmail_resolver::control::{control_lines, first_line, ConstMap};
use qmail_resolver::rewrite::{bounce_display, rewrite, Channel, Decision};
use qmail_resolver::{ControlFiles, Controls};

fn rw(c: &Controls, a: &str) -> (Channel, String) {
    let r = rewrite(c, a.as_bytes());
    (r.channel, String::from_utf8(r.address.into_vec()).unwrap())
}

fn ctl(
    me: Option<&str>,
    env: Option<&str>,
    locals: Option<&str>,
    ph: Option<&str>,
    vd: Option<&str>,
) -> Controls {
    let o = |s: Option<&str>| s.map(|s| s.as_bytes().to_vec());
    Controls::from_files(&ControlFiles {
        me: o(me),
        envnoathost: o(env),
        locals: o(locals),
        percenthack: o(ph),
        virtualdomains: o(vd),
    })
    .unwrap()
}

use Channel::{Local as L, Remote as R};

#[test]
fn section12_all_rewrite_rows() {
    let c = controls();
    let rows: &[(&str, Channel, &str)] = &[
        ("joe", L, "catch-joe@mail.example.com"),
        ("JOE@EXAMPLE.COM", L, "JOE@EXAMPLE.COM"),
        ("a%b@example.com", L, "catch-a@b"),
        ("a@b%c@ph.net", L, "catch-a@b@c"),
        ("%x@ph.net", L, "catch-@x"),
        ("x@virt.org", L, "vu-x@virt.org"),
        ("X@A.B.VIRT.ORG", L, "sub-X@A.B.VIRT.ORG"),
        ("x@noway.virt.org", R, "x@noway.virt.org"),
        ("x@sub.noway.virt.org", L, "sub-x@sub.noway.virt.org"),
        ("x@q.deep.virt.org", L, "deep-x@q.deep.virt.org"),
        ("JOE@OTHER.NET", L, "jo-JOE@OTHER.NET"),
        ("x@example.com.", L, "catch-x@example.com."),
        ("x@", L, "catch-x@"),
        ("x@dup.org", L, "second-x@dup.org"),
        ("x@space.org", L, " sp-x@space.org"),
        ("x@local.org", L, "x@local.org"),
        ("x@lead.example", L, "catch-x@lead.example"),
        ("x@crlf.example", L, "catch-x@crlf.example"),
        ("x@x.example.com", L, "Pre-Fix-x@x.example.com"),
        ("", L, "catch-@mail.example.com"),
    ];
    for (inp, ch, out) in rows {
        assert_eq!(rw(&c, inp), (*ch, out.to_string()), "input {inp:?}");
    }
    // without :catch, the catch rows become remote and unchanged
    let n = controls_nocatch();
    for (inp, _, out) in rows {
        if let Some(rest) = out.strip_prefix("catch-") {
            assert_eq!(
                rw(&n, inp),
                (R, rest.to_string()),
                "input {inp:?} without catch-all"
            );
        }
    }
    assert_eq!(bounce_display(&c, b"jo-JOE@OTHER.NET"), b"jo-JOE@OTHER.NET");
}

#[test]
fn c1_me_first_line_stripped() {
    assert_eq!(first_line(b"host.example \t\nsecond\n"), b"host.example");
    assert_eq!(first_line(b""), b"");
    let c = ctl(Some("m.example  \nignored\n"), None, None, None, None);
    assert_eq!(c.me.as_ref().unwrap(), &"m.example");
}

#[test]
fn c2_envnoathost_fallbacks() {
    assert_eq!(
        ctl(Some("me.x"), Some(""), Some("l"), None, None).envnoathost,
        ""
    );
    assert_eq!(
        ctl(Some("me.x"), None, Some("l"), None, None).envnoathost,
        "me.x"
    );
    assert_eq!(
        ctl(None, None, Some("l"), None, None).envnoathost,
        "envnoathost"
    );
    assert_eq!(
        ctl(None, Some("e.x\t\n"), Some("l"), None, None).envnoathost,
        "e.x"
    );
}

#[test]
fn c3_list_file_line_rules() {
    let l = control_lines(b"a \t\n  b\n\n#c\nd\r\ne");
    assert_eq!(l, vec![&b"a"[..], b"  b", b"d\r", b"e"]);
}

#[test]
fn c4_locals_missing_uses_me_empty_means_none() {
    let c = ctl(Some("me.x"), None, None, None, None);
    assert!(c.locals.contains(b"me.x"));
    let c = ctl(Some("me.x"), None, Some(""), None, None);
    assert!(!c.locals.contains(b"me.x"));
    assert!(c.locals.is_empty());
    let e = Controls::from_files(&ControlFiles::default());
    assert!(e.is_err(), "locals and me missing must be an error");
}

#[test]
fn c5_percenthack_missing_is_empty() {
    let c = ctl(Some("me.x"), None, None, None, None);
    assert!(c.percenthack.is_empty());
    assert_eq!(rw(&c, "a%b@me.x"), (L, "a%b@me.x".into()));
}

#[test]
fn c6_virtualdomains_first_colon_and_no_colon_lines() {
    let m = ConstMap::new(
        control_lines(b"a.org:x:y\nnocolon\nb.org :z\nc.org: w\n"),
        true,
    );
    assert_eq!(m.get(b"a.org"), Some(&b"x:y"[..]));
    assert_eq!(m.get(b"nocolon"), None);
    assert_eq!(m.len(), 3);
    assert!(!m.is_empty());
    assert!(ConstMap::new(control_lines(b"nocolon\n"), true).is_empty());
    assert_eq!(m.get(b"b.org"), None);
    assert_eq!(m.get(b"b.org "), Some(&b"z"[..]));
    assert_eq!(m.get(b"c.org"), Some(&b" w"[..]));
}

#[test]
fn c7_fold_equal_length_last_wins() {
    let m = ConstMap::new(control_lines(b"Dup.Org:first\ndup.org:second\n"), true);
    assert_eq!(m.get(b"DUP.ORG"), Some(&b"second"[..]));
    assert_eq!(m.get(b"dup.or"), None);
    // non-ASCII is byte-exact
    let m = ConstMap::new(control_lines("\u{c4}.org:x\n".as_bytes()), true);
    assert_eq!(m.get("\u{e4}.org".as_bytes()), None);
    assert_eq!(m.get("\u{c4}.ORG".as_bytes()), Some(&b"x"[..]));
}

#[test]
fn c8_reread_keeps_locals_on_failure_and_empties_missing_vdoms() {
    let mut c = ctl(None, None, Some("a.org\n"), None, Some("v.org:p\n"));
    c.reread(&ControlFiles {
        me: None,
        locals: None,
        virtualdomains: None,
        ..Default::default()
    });
    assert!(
        c.locals.contains(b"a.org"),
        "failed locals re-read keeps the old map"
    );
    assert!(c.virtualdomains.contains(b"v.org"));
    c.reread(&ControlFiles {
        locals: Some(b"b.org\n".to_vec()),
        virtualdomains: None,
        ..Default::default()
    });
    assert!(c.locals.contains(b"b.org") && !c.locals.contains(b"a.org"));
    assert!(c.virtualdomains.is_empty());
}

#[test]
fn w1_no_normalisation() {
    let c = controls_nocatch();
    assert_eq!(
        rw(&c, "  X@Remote.Example.."),
        (R, "  X@Remote.Example..".into())
    );
}

#[test]
fn w2_no_at_appends_envnoathost_even_empty() {
    let c = ctl(Some("me.x"), Some(""), Some("me.x"), None, None);
    let r = rewrite(&c, b"user");
    assert_eq!(r.after_envnoathost.as_ref().unwrap(), &"user@");
    assert_eq!(r.address, "user@");
    assert_eq!(r.channel, R);
}

#[test]
fn w3_percent_hack_repeats() {
    let c = ctl(Some("me"), None, Some("me"), Some("ph\nc\n"), None);
    let r = rewrite(&c, b"a%b%c@ph");
    assert_eq!(r.after_percenthack, "a@b");
    assert_eq!(r.percenthack_steps, 2);
    let c = ctl(Some("me"), None, Some("me"), Some("ph\n"), None);
    assert_eq!(rewrite(&c, b"a%b%c@ph").after_percenthack, "a%b@c");
    assert_eq!(rewrite(&c, b"%x@ph").after_percenthack, "@x");
    assert_eq!(rewrite(&c, b"a%b@ph").after_percenthack, "a@b");
}

#[test]
fn w4_domain_after_last_at_after_hack() {
    // a%b@c@ph -> cut at last @, % -> @: "a@b@c", domain "c"
    let c = ctl(Some("me"), None, Some("c"), Some("ph\n"), None);
    let r = rewrite(&c, b"a%b@c@ph");
    assert_eq!(r.address, "a@b@c");
    assert_eq!(r.channel, L);
    assert_eq!(r.local_part(), b"a@b");
    assert_eq!(r.domain(), b"c");
    // without any `@`, envnoathost (here me) is the domain
    let r = rewrite(&c, b"c");
    assert_eq!((r.local_part(), r.domain()), (&b"c"[..], &b"me"[..]));
}

#[test]
fn w5_locals_shadow_virtualdomains() {
    let c = controls();
    let r = rewrite(&c, b"joe@example.com");
    assert_eq!(r.decision, Decision::Locals);
    assert_eq!(r.address, "joe@example.com");
    let c = ctl(Some("me"), None, Some("l.org"), None, Some("u@l.org:vu\n"));
    assert_eq!(rw(&c, "u@l.org"), (L, "u@l.org".into()));
}

#[test]
fn w6_probe_order_whole_domain_longest_suffix_catchall() {
    let vd = ":all\n.c:c\n.b.c:bc\na.b.c:abc\nu@a.b.c:user\n";
    let c = ctl(Some("me"), None, Some("me"), None, Some(vd));
    assert_eq!(rw(&c, "u@a.b.c").1, "user-u@a.b.c");
    assert_eq!(rw(&c, "v@a.b.c").1, "abc-v@a.b.c");
    assert_eq!(rw(&c, "v@x.b.c").1, "bc-v@x.b.c");
    assert_eq!(rw(&c, "v@x.c").1, "c-v@x.c");
    assert_eq!(
        rw(&c, "v@c").1,
        "all-v@c",
        ".c does not match the bare domain"
    );
    assert_eq!(
        rw(&c, "v@.c").1,
        "c-v@.c",
        "a dot right after @ probed once"
    );
}

#[test]
fn w7_empty_prepend_stops_search() {
    let c = controls();
    let r = rewrite(&c, b"x@noway.virt.org");
    assert_eq!(r.channel, R);
    assert!(matches!(r.decision, Decision::Exception { .. }));
    assert_eq!(rw(&c, "x@sub.noway.virt.org").1, "sub-x@sub.noway.virt.org");
}

#[test]
fn w8_no_match_remote_unchanged() {
    let c = controls_nocatch();
    let r = rewrite(&c, b"X@Elsewhere.Example");
    assert_eq!((r.channel, r.decision), (R, Decision::NoMatch));
    assert_eq!(r.address, "X@Elsewhere.Example");
}

#[test]
fn w9_literal_dash_joiner_and_prepend_verbatim() {
    let c = ctl(Some("me"), None, Some("me"), None, Some("v.org:A@b-C:d\n"));
    assert_eq!(rw(&c, "U@V.ORG").1, "A@b-C:d-U@V.ORG");
}

#[test]
fn w10_catchall_swallows_remote() {
    let c = controls();
    for a in ["x@example.net", "x@example.com.", "x@"] {
        assert_eq!(rw(&c, a).0, L, "{a}");
    }
}

#[test]
fn w11_trailing_dot_is_different() {
    let c = ctl(
        Some("me"),
        None,
        Some("example.com"),
        None,
        Some("example.com:v\n"),
    );
    assert_eq!(rw(&c, "x@example.com."), (R, "x@example.com.".into()));
    let c = ctl(
        Some("me"),
        None,
        Some("example.com"),
        None,
        Some(".com.:dot\n"),
    );
    assert_eq!(rw(&c, "x@example.com.").1, "dot-x@example.com.");
}

#[test]
fn w12_bounce_display() {
    let c = controls();
    assert_eq!(bounce_display(&c, b"vu-x@virt.org"), b"x@virt.org");
    assert_eq!(bounce_display(&c, b"sub-X@A.B.VIRT.ORG"), b"X@A.B.VIRT.ORG");
    assert_eq!(bounce_display(&c, b"jo-JOE@OTHER.NET"), b"jo-JOE@OTHER.NET");
    assert_eq!(
        bounce_display(&c, b"VU-x@virt.org"),
        b"VU-x@virt.org",
        "case-sensitive prefix"
    );
    assert_eq!(bounce_display(&c, b"x@noway.virt.org"), b"x@noway.virt.org");
    assert_eq!(
        bounce_display(&c, b"catch-joe@mail.example.com"),
        b"joe@mail.example.com"
    );
    assert_eq!(bounce_display(&c, b"noat"), b"noat");
}

#[test]
fn edge_01_no_at_variants() {
    let c = ctl(Some("me.x"), None, Some("me.x"), None, None);
    assert_eq!(rw(&c, "u"), (L, "u@me.x".into()));
    let c = ctl(Some("me.x"), Some("other.x"), Some("me.x"), None, None);
    assert_eq!(rw(&c, "u"), (R, "u@other.x".into()));
    let c = ctl(Some("me.x"), Some(""), Some("me.x"), None, None);
    assert_eq!(rw(&c, "u").1, "u@");
    let c = ctl(None, None, Some("l"), None, None);
    assert_eq!(rw(&c, "u").1, "u@envnoathost");
}

#[test]
fn edge_02_empty_recipient_and_bare_at() {
    let c = controls();
    assert_eq!(rw(&c, "").1, "catch-@mail.example.com");
    assert_eq!(rw(&c, "@").1, "catch-@");
    let c = ctl(Some("me"), None, Some("me"), None, None);
    let r = rewrite(&c, b"");
    assert_eq!((r.channel, r.local_part()), (L, &b""[..]));
}

#[test]
fn edge_03_trailing_dot() {
    let c = controls_nocatch();
    assert_eq!(rw(&c, "x@virt.org.").0, R);
}

#[test]
fn edge_04_empty_label() {
    let c = ctl(Some("me"), None, Some("me"), None, Some(".c:c\n"));
    assert_eq!(rw(&c, "a@b..c").1, "c-a@b..c");
    let c = ctl(Some("me"), None, Some("me"), None, Some("..c:dd\n.c:c\n"));
    assert_eq!(rw(&c, "a@b..c").1, "dd-a@b..c", "longer suffix ..c first");
}

#[test]
fn edge_05_domain_starting_with_dot() {
    let c = ctl(Some("me"), None, Some(".lead"), None, None);
    assert_eq!(rw(&c, "a@.lead").0, L);
}

#[test]
fn edge_06_case_folded_lookup_kept_output() {
    let c = ctl(
        Some("me"),
        None,
        Some("me"),
        None,
        Some("Virt.ORG:PreFix\n"),
    );
    assert_eq!(rw(&c, "MiXeD@vIrT.oRg").1, "PreFix-MiXeD@vIrT.oRg");
}

#[test]
fn edge_07_non_ascii_byte_exact() {
    let vd = "\u{c9}t\u{e9}.org:v\n";
    let c = ctl(Some("me"), None, Some("me"), None, Some(vd));
    assert_eq!(rw(&c, "a@\u{c9}T\u{e9}.org").0, L);
    assert_eq!(
        rw(&c, "a@\u{e9}t\u{e9}.org").0,
        R,
        "bytes >= 0x80 are not folded"
    );
}

#[test]
fn edge_08_percenthack_cases() {
    let c = ctl(
        Some("me"),
        Some("ph"),
        Some("me\nph\n"),
        Some("ph\n"),
        Some("v.org:vv\n"),
    );
    assert_eq!(rw(&c, "plain@ph").1, "plain@ph", "no % unchanged");
    assert_eq!(
        rw(&c, "a%b@other").1,
        "a%b@other",
        "domain not in percenthack"
    );
    assert_eq!(
        rw(&c, "a%me"),
        (L, "a@me".into()),
        "envnoathost in percenthack"
    );
    assert_eq!(rw(&c, "%me@ph"), (L, "@me".into()), "empty local part");
    assert_eq!(
        rw(&c, "a@b%v.org@ph"),
        (L, "vv-a@b@v.org".into()),
        "several @, then virtualdomains"
    );
    assert_eq!(rw(&c, "a%ph@ph").1, "a@ph", "percenthack domain also local");
}

#[test]
fn edge_09_locals_shadow_virtual_user_entries() {
    let c = ctl(
        Some("me"),
        None,
        Some("d.org"),
        None,
        Some("joe@d.org:j\nd.org:dd\n"),
    );
    assert_eq!(rw(&c, "joe@d.org"), (L, "joe@d.org".into()));
}

#[test]
fn edge_10_virtualdomains_file_forms() {
    let vd = "# comment\n\n.b.c:suffix\nnoway.b.c:\nx.b.c:one\nX.B.C:two\nnocolon\nsp.org : s\ncr.org:v\r\nmix.org:a-b@c:d\n";
    let c = ctl(Some("me"), None, Some("me"), None, Some(vd));
    assert_eq!(rw(&c, "u@x.b.c").1, "two-u@x.b.c");
    assert_eq!(rw(&c, "u@noway.b.c").0, R);
    assert_eq!(rw(&c, "u@deep.noway.b.c").1, "suffix-u@deep.noway.b.c");
    assert_eq!(rw(&c, "u@nocolon").0, R);
    assert_eq!(
        rw(&c, "u@sp.org").0,
        R,
        "key with trailing space never matches"
    );
    assert_eq!(
        rw(&c, "u@cr.org").1,
        "v\r-u@cr.org",
        "CR kept in the prepend"
    );
    assert_eq!(rw(&c, "u@mix.org").1, "a-b@c:d-u@mix.org");
}

#[test]
fn edge_11_catchall() {
    let c = ctl(Some("me"), None, Some("me"), None, Some(":x\nkeep.org:\n"));
    assert_eq!(rw(&c, "a@anything.example").1, "x-a@anything.example");
    assert_eq!(rw(&c, "a@keep.org").0, R);
}

#[test]
fn edge_12_bounce_display_virtual_user_not_stripped() {
    let c = controls();
    let r = rewrite(&c, b"JOE@OTHER.NET");
    assert_eq!(bounce_display(&c, &r.address), b"jo-JOE@OTHER.NET");
    let r = rewrite(&c, b"x@virt.org");
    assert_eq!(bounce_display(&c, &r.address), b"x@virt.org");
}
