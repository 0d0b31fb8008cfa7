//! Pair R-G: does the resolver's answer for an address agree with what
//! pristine netqmail (oracle G) did, as differential.md "What agree means"
//! says? R's own [`Outcome`](qmail_resolver::Outcome) class and text are
//! compared with G's (a P3 structural error is a deferral in both), a
//! delivery must name the `.qmail` file G's listing shows, and R's
//! `qmail-local -n` listing must be G's. Also here: how either answer is
//! described in the report, and when a disagreement is excused
//! (`r_view_limited`).

use crate::oracle::g::{self, GAnswer, GClass};
use crate::oracle::r::RAnswer;
use crate::scenario::{self, Scenario};

/// R's answer as the report shows it.
pub(crate) fn r_desc(a: &RAnswer) -> String {
    let mut s = format!("R {}", a.class);
    if let Some(f) = &a.file {
        s.push_str(&format!(" {}", f));
        if a.empty {
            s.push_str(" (empty)");
        }
    }
    if let Some(t) = &a.text {
        s.push_str(&format!(" {:?}", t.to_text()));
    }
    if a.class == "remote" {
        s.push_str(&format!(" {}", a.address));
    }
    if a.uncertain > 0 {
        s.push_str(&format!(" [uncertain {}]", a.uncertain_stages.join(",")));
    }
    s
}

/// G's answer as the report shows it.
pub(crate) fn g_desc(c: &GClass, a: &GAnswer) -> String {
    let base = match c {
        GClass::NoStart => "G nostart".to_string(),
        GClass::Remote => "G remote".to_string(),
        GClass::Trash => "G trash".to_string(),
        GClass::Deliver { marker, aliasempty } => format!(
            "G deliver{}{}",
            marker.map(|m| format!(" marker qf{m}")).unwrap_or_default(),
            if *aliasempty { " (aliasempty)" } else { "" }
        ),
        GClass::Bounce(t) => format!("G bounce {t:?}"),
        GClass::Defer(t) => format!("G defer {t:?}"),
    };
    match a {
        GAnswer::Local {
            address,
            letter,
            text,
            ..
        } => format!(
            "{base} [rewritten {}, lspawn {}{}]",
            scenario::escape(address),
            *letter as char,
            scenario::escape(text)
        ),
        GAnswer::Remote { address } => format!("{base} {}", scenario::escape(address)),
        GAnswer::NoStart => base,
    }
}

/// The class name of a G answer in R's vocabulary.
pub(crate) fn g_class_name(c: &GClass) -> &'static str {
    match c {
        GClass::NoStart => "nostart",
        GClass::Remote => "remote",
        GClass::Trash => "trash",
        GClass::Deliver {
            aliasempty: true, ..
        } => "deliver-or-default",
        GClass::Deliver { .. } => "deliver",
        GClass::Bounce(_) => "bounce",
        GClass::Defer(_) => "defer",
    }
}

/// Does R's answer match G's? `Ok(())`, or why not.
pub(crate) fn agree_rg(
    sc: &Scenario,
    ra: &RAnswer,
    gc: &GClass,
    ga: &GAnswer,
) -> Result<(), String> {
    let text = |a: &RAnswer| {
        a.text
            .as_ref()
            .map(|t| g::last_line(&t.0))
            .unwrap_or_default()
    };
    // W12: how a bounce would show the recipient (qmail-send's
    // stripvdomprepend on the rewritten address).
    if let (GAnswer::Local { display, .. }, Some(d)) = (ga, &ra.display) {
        if &d.0 != display {
            return Err(format!("bounce display: G {}", scenario::escape(display)));
        }
    }
    match gc {
        GClass::NoStart => Err("G: qmail-send would not start, R resolved".into()),
        GClass::Remote => {
            let GAnswer::Remote { address } = ga else {
                return Err("internal".into());
            };
            if ra.class != "remote" {
                return Err("class".into());
            }
            if &ra.address.0 != address {
                return Err("remote address".into());
            }
            Ok(())
        }
        GClass::Trash => (ra.class == "trash")
            .then_some(())
            .ok_or_else(|| "class".into()),
        GClass::Bounce(t) => {
            if ra.class != "bounce" {
                return Err("class".into());
            }
            (&text(ra) == t)
                .then_some(())
                .ok_or_else(|| "bounce text".into())
        }
        GClass::Defer(t) => {
            if ra.class != "defer" {
                return Err("class".into());
            }
            (&text(ra) == t)
                .then_some(())
                .ok_or_else(|| "defer text".into())
        }
        GClass::Deliver { marker, aliasempty } => {
            let GAnswer::Local { text: gtext, .. } = ga else {
                return Err("internal".into());
            };
            if *aliasempty {
                let ok = ra.class == "default" || (ra.class == "deliver" && ra.empty);
                if !ok {
                    return Err("class (G used aliasempty)".into());
                }
            } else {
                if ra.class != "deliver" {
                    return Err("class".into());
                }
                let file = ra.file.as_ref().map(|f| f.0.clone()).unwrap_or_default();
                let known: Vec<&scenario::QmailFile> =
                    sc.qmail_files.iter().filter(|q| q.name.0 == file).collect();
                if let Some(m) = marker {
                    if !known.iter().any(|q| q.marker == Some(*m)) {
                        return Err(format!("file: G's listing shows marker qf{m}"));
                    }
                } else if !known.iter().any(|q| q.marker.is_none()) {
                    return Err("file: G's listing has no marker".into());
                }
            }
            // The listing itself, when R produced one.
            if let Some(lines) = &ra.listing {
                if ra.listing_error.is_none() {
                    let mut mine = Vec::new();
                    for l in lines {
                        mine.extend_from_slice(&l.0);
                        mine.push(b'\n');
                    }
                    let theirs: Vec<u8> = String::from_utf8_lossy(gtext)
                        .split('\n')
                        .filter(|l| !l.starts_with("Warning"))
                        .collect::<Vec<_>>()
                        .join("\n")
                        .into_bytes();
                    if scenario::escape(&mine) != scenario::escape(&theirs) {
                        return Err(format!(
                            "qmail-local -n listing: R {:?}",
                            scenario::escape(&mine)
                        ));
                    }
                }
            }
            Ok(())
        }
    }
}

/// R runs with qmaild's privileges (realrcptto's point of view), while G's
/// qmail-getpw runs as qmailp and qmail-local as the user. Where R could
/// not see something that the user can, it records an uncertain step
/// (EACCES/EPERM in G3, L2 or Q1); those disagreements are excused (listed
/// in the report, not failures). Nothing else is.
pub(crate) fn r_view_limited(r: &RAnswer) -> bool {
    r.uncertain > 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Esc;

    fn ra(class: &str) -> RAnswer {
        RAnswer {
            class: class.into(),
            address: Esc::from("a@b"),
            display: None,
            file: None,
            empty: false,
            text: None,
            verdict: "accept".into(),
            uncertain: 0,
            uncertain_stages: Vec::new(),
            listing: None,
            listing_error: None,
        }
    }

    fn local(letter: u8, text: &str) -> GAnswer {
        GAnswer::Local {
            address: b"a@b".to_vec(),
            display: b"a@b".to_vec(),
            letter,
            text: text.as_bytes().to_vec(),
        }
    }

    fn sc() -> Scenario {
        let mut s = scenario::generate(1, 0);
        s.qmail_files = vec![scenario::QmailFile {
            home: Esc::from("home/joe"),
            name: Esc::from(".qmail-foo"),
            marker: Some(7),
            empty: false,
            kind: "file".into(),
        }];
        s
    }

    #[test]
    fn classes_and_texts_must_match() {
        let s = sc();
        let g = local(b'D', "Sorry, no mailbox here by that name. (#5.1.1)\n");
        let gc = g::classify(&g, b"./Maildir/");
        let mut r = ra("bounce");
        r.text = Some(Esc::from("Sorry, no mailbox here by that name. (#5.1.1)"));
        assert!(agree_rg(&s, &r, &gc, &g).is_ok());
        r.text = Some(Esc::from("Sorry, no mailbox here by that name."));
        assert!(
            agree_rg(&s, &r, &gc, &g).is_err(),
            "a different text must disagree"
        );
        assert!(
            agree_rg(&s, &ra("defer"), &gc, &g).is_err(),
            "another class must disagree"
        );
    }

    #[test]
    fn a_delivery_must_name_the_file_g_used() {
        let s = sc();
        let g = local(b'K', "forward qf7\ndid 0+1+0\n");
        let gc = g::classify(&g, b"./Maildir/");
        let mut r = ra("deliver");
        r.file = Some(Esc::from(".qmail-foo"));
        r.listing = Some(vec![Esc::from("forward qf7"), Esc::from("did 0+1+0")]);
        assert!(agree_rg(&s, &r, &gc, &g).is_ok());
        r.listing = Some(vec![Esc::from("forward qf7"), Esc::from("did 0+0+0")]);
        assert!(
            agree_rg(&s, &r, &gc, &g).is_err(),
            "a different listing must disagree"
        );
        r.listing = None;
        r.file = Some(Esc::from(".qmail-bar"));
        assert!(
            agree_rg(&s, &r, &gc, &g).is_err(),
            "another file must disagree"
        );
    }

    #[test]
    fn aliasempty_matches_default_or_an_empty_file() {
        let s = sc();
        let g = local(b'K', "maildir ./Maildir/\ndid 1+0+0\n");
        let gc = g::classify(&g, b"./Maildir/");
        assert!(agree_rg(&s, &ra("default"), &gc, &g).is_ok());
        let mut r = ra("deliver");
        r.empty = true;
        assert!(agree_rg(&s, &r, &gc, &g).is_ok());
        r.empty = false;
        assert!(agree_rg(&s, &r, &gc, &g).is_err());
    }

    #[test]
    fn p3_errors_compare_rs_own_outcome() {
        let s = sc();
        let text = "Uh-oh: first line of .qmail file is blank. (#4.2.1)";
        let g = local(b'Z', &format!("forward qf7\n{text}\n"));
        let gc = g::classify(&g, b"./Maildir/");
        let mut r = ra("defer");
        r.text = Some(Esc::from(text));
        r.listing_error = Some(Esc::from(text));
        assert!(agree_rg(&s, &r, &gc, &g).is_ok());
        // R's listing error alone no longer turns a delivery into a
        // deferral: the outcome must say it
        let mut r = ra("deliver");
        r.file = Some(Esc::from(".qmail-foo"));
        r.listing_error = Some(Esc::from(text));
        assert!(agree_rg(&s, &r, &gc, &g).is_err());
    }

    #[test]
    fn only_uncertain_answers_are_excused() {
        let mut r = ra("defer");
        r.text = Some(Esc::from(
            "Unable to switch to /home/x: access denied. (#4.3.0)",
        ));
        assert!(!r_view_limited(&r), "the text alone is no excuse");
        r.uncertain = 1;
        r.uncertain_stages = vec!["home".into()];
        assert!(r_view_limited(&r));
    }
}
