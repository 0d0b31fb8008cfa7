//! The man pages the patches change: realrcptto documents its check in
//! qmail-smtpd.8 and qmail-qmtpd.8, branch documents `?LABEL`/`:LABEL` in
//! qmail-local.8 (and dot-qmail.9). The new sections must be there once,
//! render without groff warnings, and the anchors must survive the kind of
//! edits third-party patches (TLS, SMTP AUTH) make to qmail-smtpd.8.
//! Stand-in pages written here run without upstream; the real pages need
//! `QMAIL_SOURCE_NETQMAIL` (else SKIPPED).

mod common;

use std::path::Path;

use common::{groff_warnings, netqmail_or_skip, new_text};
use qmail_patches::{branch, realrcptto, FileChange};
use upstream_hashes::{SourceTree, NETQMAIL};

/// A stand-in qmail-smtpd.8 (our own text) with the lines the generator
/// anchors on: the SEE ALSO heading and entries.
const SMTPD_8: &str = r#".TH qmail-smtpd 8
.SH NAME
qmail-smtpd \- receive mail via SMTP
.SH DESCRIPTION
.B qmail-smtpd
is a stand-in page for the tests.
.SH "CONTROL FILES"
.TP 5
.I rcpthosts
Allowed RCPT domains.
.SH "SEE ALSO"
tcp-env(1),
qmail-control(5),
qmail-newmrh(8),
qmail-queue(8)
"#;

/// A stand-in qmail-qmtpd.8.
const QMTPD_8: &str = r#".TH qmail-qmtpd 8
.SH NAME
qmail-qmtpd \- receive mail via QMTP
.SH DESCRIPTION
A stand-in page.
.SH "SEE ALSO"
qmail-control(5),
qmail-smtpd(8)
"#;

/// A stand-in qmail-local.8 with the anchor lines of the branch patch.
const LOCAL_8: &str = r#".TH qmail-local 8
.SH NAME
qmail-local \- deliver or forward a mail message
.SH DESCRIPTION
The standard input must be seekable, so that
.B qmail-local
can read it more than once.
.SH "OPTIONS"
.TP
.B \-n
Instead of delivering the message,
print a description of the delivery instructions.
.SH "SEE ALSO"
dot-qmail(5)
"#;

/// A stand-in dot-qmail.9 with the anchor lines of the branch patch.
const DOT_QMAIL_9: &str = r#".TH dot-qmail 5
.SH NAME
dot-qmail \- control the delivery of mail messages
.SH DESCRIPTION
There are five types of delivery instructions:
(1) comment; (2) program; (3) forward; (4) mbox; (5) maildir.
.TP 5
(5)
A maildir line; see
.BR maildir(5)
for more details.
.SH "ERROR HANDLING"
It refuses program lines,
.I mbox
lines and maildir lines in forward-only mode,
but it still pays attention to previous forward lines.
"#;

fn stand_in(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn text_of<'a>(changes: &'a [FileChange], path: &str) -> &'a str {
    &changes.iter().find(|f| f.path == path).unwrap().new
}

/// The realrcptto text a user looks for in a patched qmail-smtpd.8.
fn assert_smtpd_page(page: &str) {
    assert_eq!(page.matches(".SH \"MAILBOX CHECK\"\n").count(), 1, "{page}");
    let section = &page[page.find(".SH \"MAILBOX CHECK\"").unwrap()..];
    let see_also = section
        .find(".SH \"SEE ALSO\"")
        .expect("MAILBOX CHECK before SEE ALSO");
    let section = &section[..see_also];
    for want in [
        "550 sorry, no mailbox here by that name. (#5.1.1)",
        "554 sorry, no mailbox here by that name. (#5.1.1)",
        ".B QMAILRRTDENYALL\n",
        "realrcptto \\fIpid\\fP \\fIremoteip\\fP \\fIaddress\\fP",
        "realrcptto: unable to stat \\fIpath\\fP: \\fIreason\\fP",
        "421 unable to read controls (#4.3.0)",
        "421 unable to read cdb user database (#4.3.0)",
        "421 unable to read system user database (#4.3.0)",
        "421 out of memory (#4.3.0)",
        "Whenever it cannot be sure,\nit accepts",
        ".BR qmail-newu ,\n",
    ] {
        assert!(section.contains(want), "MAILBOX CHECK lacks {want:?}");
    }
    assert!(
        page.contains("\nqmail-newu(8),\n"),
        "SEE ALSO lacks qmail-newu(8)"
    );
}

fn assert_qmtpd_page(page: &str) {
    assert_eq!(page.matches(".SH \"MAILBOX CHECK\"\n").count(), 1, "{page}");
    for want in [
        "sorry, no mailbox here by that name. (#5.1.1)",
        ".B QMAILRRTDENYALL\n",
        "exits with status 111",
        "MAILBOX CHECK section of\n.BR qmail-smtpd(8) ),",
    ] {
        assert!(page.contains(want), "qmail-qmtpd.8 lacks {want:?}");
    }
}

fn assert_renders(test: &str, name: &str, page: &str) {
    if let Some(w) = groff_warnings(test, name, page) {
        assert!(w.is_empty(), "{name}: groff -man -ww warns:\n{w}");
    }
}

#[test]
fn realrcptto_documents_the_check_in_both_pages_of_a_stand_in_tree() {
    let dir = stand_in(&[("qmail-smtpd.8", SMTPD_8), ("qmail-qmtpd.8", QMTPD_8)]);
    let m = realrcptto::man_pages(&SourceTree::unverified(&NETQMAIL, dir.path())).unwrap();
    let smtpd = text_of(&m, "qmail-smtpd.8");
    let qmtpd = text_of(&m, "qmail-qmtpd.8");
    assert_smtpd_page(smtpd);
    assert_qmtpd_page(qmtpd);
    assert_renders("realrcptto stand-in", "qmail-smtpd.8", smtpd);
    assert_renders("realrcptto stand-in", "qmail-qmtpd.8", qmtpd);
}

#[test]
fn realrcptto_page_anchors_survive_third_party_edits_of_qmail_smtpd_8() {
    // what a TLS or SMTP AUTH patch does to the page (our own words): a
    // paragraph in DESCRIPTION, new control files, a section before SEE
    // ALSO
    let stacked = SMTPD_8
        .replace(
            "is a stand-in page for the tests.\n",
            "is a stand-in page for the tests.\n\nA third-party paragraph.\n",
        )
        .replace(
            "Allowed RCPT domains.\n",
            "Allowed RCPT domains.\n\n.TP 5\n.I extra.pem\nA third-party control file.\n",
        )
        .replace(
            ".SH \"SEE ALSO\"",
            ".SH \"THIRD PARTY\"\nA third-party section.\n\n.SH \"SEE ALSO\"",
        );
    let dir = stand_in(&[("qmail-smtpd.8", &stacked), ("qmail-qmtpd.8", QMTPD_8)]);
    let m = realrcptto::man_pages(&SourceTree::unverified(&NETQMAIL, dir.path())).unwrap();
    let smtpd = text_of(&m, "qmail-smtpd.8");
    assert_smtpd_page(smtpd);
    let third = smtpd.find(".SH \"THIRD PARTY\"").unwrap();
    let ours = smtpd.find(".SH \"MAILBOX CHECK\"").unwrap();
    assert!(third < ours, "the third-party section stays where it was");
    assert!(smtpd.contains(".I extra.pem\n") && smtpd.contains("A third-party paragraph.\n"));
    assert_renders("realrcptto stacked stand-in", "qmail-smtpd.8", smtpd);
}

#[test]
fn branch_documents_label_lines_in_qmail_local_8_of_a_stand_in_tree() {
    let dir = stand_in(&[("qmail-local.8", LOCAL_8), ("dot-qmail.9", DOT_QMAIL_9)]);
    let m = branch::man_pages(&SourceTree::unverified(&NETQMAIL, dir.path())).unwrap();
    let local = text_of(&m, "qmail-local.8");
    assert_local_page(local);
    assert_renders("branch stand-in", "qmail-local.8", local);
    assert_renders("branch stand-in", "dot-qmail.9", text_of(&m, "dot-qmail.9"));
}

fn assert_local_page(page: &str) {
    assert_eq!(page.matches("follows branch and label lines:\n").count(), 1);
    for want in [
        "?\\fIlabel\\fP \\fIcommand\\fP\n",
        ":\\fIlabel\\fP \\fIanything\\fP\n",
        "if it exits 99,\n.B qmail-local\njumps.",
        "A branch line without a command always jumps.",
    ] {
        assert!(page.contains(want), "qmail-local.8 lacks {want:?}");
    }
    // what -n does with the new lines, under OPTIONS
    let n = page.find(".B \\-n\n").unwrap();
    assert!(page[n..].contains("A branch line with a command is printed as a program line,"));
}

fn real_tree(test: &str) -> Option<std::path::PathBuf> {
    netqmail_or_skip(test)
}

#[test]
fn real_pages_have_the_new_sections_and_render_cleanly() {
    let Some(src) = real_tree("man_pages") else {
        return;
    };
    let tree = SourceTree::unverified(&NETQMAIL, Path::new(&src));
    let r = realrcptto::generate(&tree).unwrap();
    assert_smtpd_page(new_text(&r, "qmail-smtpd.8"));
    assert_qmtpd_page(new_text(&r, "qmail-qmtpd.8"));
    let b = branch::generate(&tree).unwrap();
    assert_local_page(new_text(&b, "qmail-local.8"));
    for (p, f) in [
        (&r, "qmail-smtpd.8"),
        (&r, "qmail-qmtpd.8"),
        (&b, "qmail-local.8"),
        (&b, "dot-qmail.9"),
    ] {
        assert_renders("man_pages", f, new_text(p, f));
    }
    let diff = r.to_diff();
    assert!(diff.contains("+++ b/qmail-smtpd.8\n") && diff.contains("+++ b/qmail-qmtpd.8\n"));
    assert!(b.to_diff().contains("+++ b/qmail-local.8\n"));
}
