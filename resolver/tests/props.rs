//! Property tests against naive models.
mod common;
use common::*;
use proptest::prelude::*;
use qmail_resolver::dotqmail::{
    parse_instructions, run_instructions, search_names, DeliveryKind, LineKind, ProgramExit,
    RunStatus,
};
use qmail_resolver::rewrite::{rewrite, Channel, Decision};
use qmail_resolver::users::{compile_assign, parse_record, UsersDb};
use qmail_resolver::{ControlFiles, Controls, Outcome, StaticPasswd};

fn ctl(vd: &str, ph: &str) -> Controls {
    Controls::from_files(&ControlFiles {
        me: Some(b"me.example".to_vec()),
        envnoathost: None,
        locals: Some(b"loc.example\nLoc2.Example\n".to_vec()),
        percenthack: Some(ph.as_bytes().to_vec()),
        virtualdomains: Some(vd.as_bytes().to_vec()),
    })
    .unwrap()
}

const VD: &str = "v.org:pv\n.w.org:pw\nu@x.org:pu\nex.w.org:\nM.ORG:Pm\n";

fn domain() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "v.org",
        "V.ORG",
        "a.w.org",
        "ex.w.org",
        "b.ex.w.org",
        "x.org",
        "m.org",
        "loc.example",
        "LOC2.example",
        "other.net",
        "",
        ".w.org",
        "w.org",
    ])
    .prop_map(String::from)
}

proptest! {
    #[test]
    fn prop_rewrite_virtual_output_contains_input(local in "[a-zA-Z.%-]{0,6}", d in domain()) {
        let c = ctl(VD, "");
        let input = format!("{local}@{d}");
        let r = rewrite(&c, input.as_bytes());
        match &r.decision {
            Decision::Virtual { prepend, .. } => {
                prop_assert_eq!(r.channel, Channel::Local);
                let want = [prepend.as_bytes(), b"-", input.as_bytes()].concat();
                prop_assert_eq!(r.address.as_bytes(), want.as_slice());
            }
            Decision::Locals => prop_assert_eq!(r.address.as_bytes(), input.as_bytes()),
            _ => {
                prop_assert_eq!(r.channel, Channel::Remote);
                prop_assert_eq!(r.address.as_bytes(), input.as_bytes());
            }
        }
    }

    #[test]
    fn prop_rewrite_local_results_are_fixed_points(local in "[a-z%-]{0,6}", d in domain()) {
        // without a catch-all and without percenthack, a Locals result
        // rewrites to itself, and the channel does not depend on case
        let c = ctl(VD, "");
        let input = format!("{local}@{d}");
        let r = rewrite(&c, input.as_bytes());
        if r.decision == Decision::Locals {
            prop_assert_eq!(rewrite(&c, &r.address).address, r.address.clone());
        }
        let up = rewrite(&c, input.to_ascii_uppercase().as_bytes());
        prop_assert_eq!(up.channel, r.channel);
    }

    #[test]
    fn prop_percenthack_leaves_no_percent_before_a_hacked_domain(local in "[ab%]{0,6}") {
        let c = ctl("", "ph\n");
        let r = rewrite(&c, format!("{local}@ph").as_bytes());
        let a = r.after_percenthack.as_bytes();
        let at = a.iter().rposition(|&b| b == b'@').unwrap();
        // either the domain is no longer ph, or there was no % left
        prop_assert!(&a[at + 1..] != b"ph" || !a[..at].contains(&b'%'));
        // the domain after the converted % is never in percenthack here: one step
        prop_assert_eq!(r.percenthack_steps, usize::from(local.contains('%')));
    }
}

/// A naive model of U10/U11 straight from the assign lines.
fn naive_lookup(lines: &[(u8, String, String)], local: &str) -> Option<(String, String)> {
    let lf = local.to_ascii_lowercase();
    if let Some((_, _, user)) = lines
        .iter()
        .find(|(t, n, _)| *t != b'+' && n.to_ascii_lowercase() == lf)
    {
        return Some((user.clone(), String::new()));
    }
    let wild: Vec<u8> = lines
        .iter()
        .filter(|(t, n, _)| *t == b'+' && !n.is_empty())
        .map(|(_, n, _)| *n.as_bytes().last().unwrap())
        .collect();
    for k in (0..=local.len()).rev() {
        if k > 0 && !wild.contains(&lf.as_bytes()[k - 1]) {
            continue;
        }
        if let Some((_, _, user)) = lines
            .iter()
            .find(|(t, n, _)| *t == b'+' && n.to_ascii_lowercase() == lf[..k])
        {
            return Some((user.clone(), local[k..].to_string()));
        }
    }
    None
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn prop_cdb_roundtrip_matches_naive_model(
        lines in prop::collection::vec((prop::sample::select(vec![b'=', b'+', b'x']), "[abAB-]{0,3}"), 0..8),
        locals in prop::collection::vec("[abAB-]{1,5}", 1..8),
    ) {
        let lines: Vec<(u8, String, String)> = lines
            .into_iter()
            .enumerate()
            .filter(|(_, (t, n))| !(n.is_empty() && *t != b'+'))
            .map(|(i, (t, n))| (t, n, format!("u{i}")))
            .collect();
        let mut assign = Vec::new();
        for (t, n, u) in &lines {
            assign.extend_from_slice(format!("{}{}:{}:1:1:/h:-::\n", *t as char, n, u).as_bytes());
        }
        assign.extend_from_slice(b".\n");
        let db = UsersDb::from_records(&compile_assign(&assign).unwrap()).unwrap();
        for l in &locals {
            let got = db.lookup(l.as_bytes()).unwrap().map(|h| {
                let r = parse_record(&h.record).unwrap();
                (r.user.to_text(), r.ext.to_text())
            });
            prop_assert_eq!(got, naive_lookup(&lines, l), "local {}", l);
        }
    }
}

/// Naive search order: split safeext on '-' and rebuild prefixes.
fn naive_names(dash: &str, ext: &str) -> Vec<String> {
    let se: String = ext.to_ascii_lowercase().replace('.', ":");
    let mut v = vec![format!(".qmail{dash}{se}")];
    let pieces: Vec<&str> = se.split('-').collect();
    for j in (1..pieces.len()).rev() {
        v.push(format!(".qmail{dash}{}-default", pieces[..j].join("-")));
    }
    v.push(format!(".qmail{dash}default"));
    v
}

proptest! {
    #[test]
    fn prop_search_order_matches_naive_model(dash in prop::sample::select(vec!["", "-", "+"]), ext in "[aB.-]{0,8}") {
        let got: Vec<String> = search_names(dash.as_bytes(), ext.as_bytes()).into_iter().map(|n| n.name.to_text()).collect();
        prop_assert_eq!(got, naive_names(dash, &ext));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn prop_resolve_picks_first_existing_candidate(ext in "[ab-]{1,5}", mask in any::<u8>()) {
        let sb = Sandbox::new();
        let home = String::from_utf8(sb.home("h")).unwrap();
        let names = naive_names("-", &ext);
        for (i, n) in names.iter().enumerate() {
            if mask & (1 << (i % 8)) != 0 {
                sb.file(&format!("h/{n}"), b"&x\n", 0o644);
            }
        }
        let assign = format!("+:u:{}:1:{home}:-::\n.\n", ouid());
        let r = resolver(controls(), Some(assign.as_bytes()), StaticPasswd::new(), sb.path());
        let t = r.resolve(format!("{ext}@example.com").as_bytes());
        let first = names.iter().enumerate().find(|(i, _)| mask & (1 << (i % 8)) != 0).map(|(_, n)| n.clone());
        match (&t.outcome, first) {
            (Outcome::Deliver { file, .. }, Some(f)) => prop_assert_eq!(file.to_text(), f),
            (Outcome::Bounce { .. }, None) => prop_assert_eq!(t.verdict, qmail_resolver::Verdict::Reject),
            (o, f) => prop_assert!(false, "outcome {:?} vs expected {:?}", o, f),
        }
    }
}

/// Naive branch interpreter: a "skipping until" state machine.
fn naive_run(src: &[&str], exits: &[i32]) -> (Vec<String>, Vec<usize>) {
    let mut out = Vec::new();
    let mut fwd = Vec::new();
    let mut skipped = Vec::new();
    let mut skip: Option<Option<String>> = None;
    let mut ex = exits.iter();
    for (n, line) in src.iter().enumerate() {
        let n = n + 1;
        if let Some(target) = &skip {
            if let (Some(t), Some(l)) = (target, line.strip_prefix(':')) {
                if l.split(' ').next() == Some(t.as_str()) {
                    skip = None;
                    continue;
                }
            }
            skipped.push(n);
            continue;
        }
        if let Some(rest) = line.strip_prefix('?') {
            let mut parts = rest.splitn(2, ' ');
            let label = parts.next().unwrap().to_string();
            match parts.next() {
                None => skip = Some(Some(label)),
                Some(cmd) => {
                    out.push(format!("program {cmd}"));
                    if *ex.next().unwrap_or(&0) == 99 {
                        skip = Some(Some(label));
                    }
                }
            }
        } else if let Some(cmd) = line.strip_prefix('|') {
            out.push(format!("program {cmd}"));
            if *ex.next().unwrap_or(&0) == 99 {
                skip = Some(None);
            }
        } else if let Some(a) = line.strip_prefix('&') {
            fwd.push(format!("forward {a}"));
        }
    }
    out.extend(fwd);
    (out, skipped)
}

proptest! {
    #[test]
    fn prop_branch_skipping_matches_naive_model(
        lines in prop::collection::vec(prop::sample::select(vec!["?a", "?b", "?a c1", "?b c2", ":a", ":b x", "&f1", "&f2", "|p", "#c"]), 1..12),
        exits in prop::collection::vec(prop::sample::select(vec![0, 99]), 12),
    ) {
        let mut src = vec!["#first"];
        src.extend(lines.iter().copied());
        let text: String = src.iter().map(|l| format!("{l}\n")).collect();
        let instr = parse_instructions(text.as_bytes(), true);
        let mut ex = exits.iter();
        let r = run_instructions(&instr, false, |_, _| ProgramExit::Code(*ex.next().unwrap_or(&0)));
        let ok = matches!(r.status, RunStatus::Ok { .. });
        prop_assert!(ok);
        let got: Vec<String> = r.deliveries.iter().map(|d| match &d.kind {
            DeliveryKind::Program { command, .. } => format!("program {command}"),
            DeliveryKind::Forward { address } => format!("forward {address}"),
            k => format!("{k:?}"),
        }).collect();
        let (want, want_skipped) = naive_run(&src, &exits);
        prop_assert_eq!(got, want);
        prop_assert_eq!(r.skipped, want_skipped);
        let no_blank = instr.iter().all(|i| !matches!(i.kind, LineKind::Blank));
        prop_assert!(no_blank);
    }
}

// ---------------------------------------------------------------------------
// Hostile bytes: every parser on arbitrary input, no panic and output
// bounded by the input.

/// Arbitrary bytes, half of the time drawn from the bytes the parsers care
/// about (so that lines, colons, NULs and `.` terminators are common).
fn hostile(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..max),
        prop::collection::vec(
            prop::sample::select(b"\n\n\0:::#.-+=@%? \t\r|&/aAbx\xff".to_vec()),
            0..max
        ),
    ]
}

fn count(b: &[u8], c: u8) -> usize {
    b.iter().filter(|&&x| x == c).count()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn prop_control_parsers_bounded(b in hostile(300)) {
        use qmail_resolver::control::{control_lines, first_line, ConstMap};
        let l = control_lines(&b);
        // one entry per line, plus one per NUL (qmail splits there)
        prop_assert!(l.len() <= count(&b, b'\n') + count(&b, 0) + 1);
        for e in &l {
            prop_assert!(!e.contains(&b'\n') && !e.contains(&0));
            // an empty entry only comes from a NUL (constmap_init keeps the
            // empty segment after it, as qmail does)
            prop_assert!(!e.is_empty() || b.contains(&0));
        }
        let f = first_line(&b);
        prop_assert!(f.len() <= b.len() && !f.contains(&b'\n'));
        let vd = ConstMap::new(control_lines(&b), true);
        prop_assert!(vd.len() <= l.len());
        for (k, v) in vd.entries() {
            prop_assert!(!k.contains(&b':') && k.len() + v.len() < b.len());
            prop_assert!(vd.get(k).is_some());
        }
    }

    #[test]
    fn prop_rewrite_on_hostile_controls_and_address(
        me in prop::option::of(hostile(40)),
        env in prop::option::of(hostile(40)),
        loc in prop::option::of(hostile(80)),
        ph in prop::option::of(hostile(80)),
        vd in prop::option::of(hostile(120)),
        addr in hostile(80),
    ) {
        use qmail_resolver::rewrite::bounce_display;
        let f = ControlFiles {
            me: me.clone(),
            envnoathost: env,
            locals: loc.clone(),
            percenthack: ph,
            virtualdomains: vd,
        };
        let c = match Controls::from_files(&f) {
            Ok(c) => c,
            Err(_) => {
                // C4 is the only refusal
                prop_assert!(loc.is_none() && me.is_none());
                return Ok(());
            }
        };
        let r = rewrite(&c, &addr);
        let longest_prepend = c.virtualdomains.entries().iter().map(|(_, v)| v.len()).max().unwrap_or(0);
        prop_assert!(r.address.len() <= addr.len() + 1 + c.envnoathost.len() + longest_prepend + 1);
        prop_assert!(r.after_percenthack.len() <= addr.len() + 1 + c.envnoathost.len());
        prop_assert!(r.percenthack_steps <= count(&addr, b'%'));
        if r.channel == Channel::Local {
            let shown = bounce_display(&c, &r.address);
            prop_assert!(shown.len() <= r.address.len());
        }
        prop_assert_eq!(rewrite(&c, &addr), r, "deterministic");
    }

    #[test]
    fn prop_compile_assign_bounded(b in hostile(400)) {
        use qmail_resolver::users::AssignError;
        let lines = count(&b, b'\n') + 1;
        match compile_assign(&b) {
            Ok(recs) => {
                // one record per line before the '.' line, plus wildchars
                prop_assert!(recs.len() <= lines + 1);
                let (k, w) = recs.last().unwrap();
                prop_assert!(k.is_empty() && w.len() <= lines);
                for (k, d) in &recs[..recs.len() - 1] {
                    prop_assert_eq!(k.first(), Some(&b'!'));
                    prop_assert_eq!(count(d, 0), 5, "six fields");
                    prop_assert!(k.len() + d.len() <= b.len() + 1);
                }
            }
            Err(AssignError::MissingDot) => prop_assert!(!b.starts_with(b".")),
            Err(AssignError::NoNewline { line } | AssignError::Nul { line }
                | AssignError::NoColon { line } | AssignError::TooFewFields { line }) => {
                prop_assert!(line >= 1 && line <= lines);
            }
        }
    }

    #[test]
    fn prop_users_records_and_cdb_bytes(rec in hostile(200), cdb in hostile(3000), local in hostile(40)) {
        use qmail_resolver::users::{lookup_users, CdbSlice};
        if let Some(r) = parse_record(&rec) {
            prop_assert!(count(&rec, 0) >= 6);
            prop_assert!(r.user.len() + r.home.len() + r.dash.len() + r.ext.len() <= rec.len());
        } else {
            prop_assert!(count(&rec, 0) < 6);
        }
        // a corrupt or truncated cdb is trouble or a miss, never a panic,
        // and a hit is made of bytes that are in the file and the address
        if let Ok(Some(hit)) = lookup_users(&CdbSlice(&cdb), &local) {
            prop_assert!(hit.record.len() <= cdb.len() + local.len() + 1);
        }
    }

    #[test]
    fn prop_dotqmail_parse_run_listing_bounded(b in hostile(400), branch in any::<bool>(), fo in any::<bool>(), exits in prop::collection::vec(prop::sample::select(vec![0, 99, 100, 111]), 0..8)) {
        use qmail_resolver::dotqmail::listing;
        let instr = parse_instructions(&b, branch);
        prop_assert!(!instr.is_empty());
        prop_assert!(instr.len() <= count(&b, b'\n') + 1);
        for (i, l) in instr.iter().enumerate() {
            prop_assert_eq!(l.line_no, i + 1);
            if !branch {
                let plain = !matches!(l.kind, LineKind::Branch { .. } | LineKind::Label { .. });
                prop_assert!(plain, "line {} is a branch line without branch rules", l.line_no);
            }
        }
        let l = listing(&instr, fo);
        prop_assert!(l.lines.len() <= instr.len() + 1);
        prop_assert!(l.skipped.len() <= instr.len());
        let mut ex = exits.iter().cycle();
        let r = run_instructions(&instr, fo, |_, _| ProgramExit::Code(*ex.next().unwrap_or(&0)));
        prop_assert!(r.deliveries.len() + r.forwards_dropped.len() <= instr.len());
        prop_assert!(r.skipped.len() <= instr.len());
        let mut s = r.skipped.clone();
        s.dedup();
        prop_assert_eq!(s.len(), r.skipped.len(), "a line is skipped once");
    }

    #[test]
    fn prop_search_names_bounded(dash in hostile(8), ext in hostile(200)) {
        use qmail_resolver::dotqmail::{too_long_names, NAME_LIMIT};
        let names = search_names(&dash, &ext);
        // qmail-local probes the exact name and one default per '-' and one
        // more: those not listed are exactly the ones too long to open
        prop_assert_eq!(names.len() + too_long_names(&dash, &ext), count(&ext, b'-') + 2);
        for n in &names {
            prop_assert!(n.name.len() < NAME_LIMIT);
            if let Some(d) = n.default_value(&ext) {
                prop_assert!(ext.ends_with(d));
            }
        }
    }

    #[test]
    fn prop_address_helpers(s in hostile(60), r in hostile(60)) {
        use qmail_resolver::handoff::senderadd;
        use qmail_resolver::rewrite::split_last_at;
        let (l, d) = split_last_at(&r);
        prop_assert!(l.len() + d.len() + 1 >= r.len() && l.len() + d.len() <= r.len());
        prop_assert!(!d.contains(&b'@'));
        prop_assert!(senderadd(&s, &r).len() <= s.len() + r.len());
    }
}

/// Long `ext`s around the 4096-byte name limit: the names kept are the
/// short ones, in qmail-local's order, and the count of the others adds up.
#[test]
fn search_names_at_the_name_limit() {
    use qmail_resolver::dotqmail::{too_long_names, NAME_LIMIT};
    for n in [4081usize, 4082, 4088, 4089] {
        let ext = "-".repeat(n);
        let names = search_names(b"-", ext.as_bytes());
        let all = naive_names("-", &ext);
        let short: Vec<String> = all.into_iter().filter(|x| x.len() < NAME_LIMIT).collect();
        let got: Vec<String> = names.iter().map(|x| x.name.to_text()).collect();
        assert_eq!(got, short, "{n} dashes");
        assert_eq!(names.len() + too_long_names(b"-", ext.as_bytes()), n + 2);
    }
    // a long dash (a users/cdb record's field): `.qmail`, a dash of 4082
    // bytes and `default` are 4095 bytes and fit; a dash of 4083 is too long
    for d in [600usize, 4081, 4082, 4083, 4090] {
        let dash = "+".repeat(d);
        let names = search_names(dash.as_bytes(), b"a-b");
        let short: Vec<String> = naive_names(&dash, "a-b")
            .into_iter()
            .filter(|x| x.len() < NAME_LIMIT)
            .collect();
        let got: Vec<String> = names.iter().map(|x| x.name.to_text()).collect();
        assert_eq!(got, short, "dash of {d} bytes");
        assert_eq!(names.len() + too_long_names(dash.as_bytes(), b"a-b"), 3);
        assert_eq!(d <= 4082, got.iter().any(|n| n.ends_with("default")), "{d}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// The whole chain and both reports on hostile controls, users/assign and
    /// address: no panic, and the text report bounded by the inputs.
    #[test]
    fn prop_resolve_and_report_on_hostile_input(
        vd in hostile(120),
        assign in hostile(200),
        addr in hostile(60),
    ) {
        use qmail_resolver::report::{format_trace, write_explain};
        use qmail_resolver::{Config, ResolveOptions, Resolver, UsersDb};
        let sb = Sandbox::new();
        sb.home("h");
        let c = Controls::from_files(&files(&vd)).unwrap();
        let users = match compile_assign(&assign) {
            Ok(recs) => UsersDb::from_records(&recs).unwrap(),
            Err(_) => UsersDb::Missing,
        };
        let mut pw = StaticPasswd::new();
        pw.add(b"alias", 4242, 1, &sb.pb("h"));
        let r = Resolver::from_parts(Config::with_home(sb.path()), c, users, pw);
        let opts = ResolveOptions { instructions: true, ..Default::default() };
        let t = r.resolve_with(&addr, &opts);
        let text = format_trace(&t);
        prop_assert!(text.ends_with(b"\n\n"));
        // a handful of lines, each at most a few copies of the inputs
        prop_assert!(text.len() <= 64 * (vd.len() + assign.len() + addr.len() + 4096 + 200));
        // the --explain section is there exactly when stage P ran
        let mut explain = Vec::new();
        write_explain(&t, &mut explain).unwrap();
        prop_assert_eq!(explain.is_empty(), t.instructions.is_none() || t.listing.is_none());
        prop_assert!(serde_json::to_string(&t).is_ok());
    }
}
