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
