//! `source_required`: which missing upstream tree fails a test rather than
//! skipping it. It reads the process's environment, so this binary holds
//! one test, which sets the variables itself, one case after another.

use std::env;

use upstream_hashes::source_required;

const TREES: [&str; 3] = [
    "QMAIL_SOURCE_NETQMAIL",
    "QMAIL_SOURCE_MESS822",
    "QMAIL_SOURCE_NOTQMAIL",
];

/// `source_required` of each tree and of a third-party patch file, with
/// `QMAIL_REQUIRE_UPSTREAM` and `QMAIL_SOURCE_NOTQMAIL` as given.
fn required(require: Option<&str>, notqmail: Option<&str>) -> [bool; 4] {
    for (var, value) in [
        ("QMAIL_REQUIRE_UPSTREAM", require),
        ("QMAIL_SOURCE_NOTQMAIL", notqmail),
    ] {
        match value {
            Some(v) => env::set_var(var, v),
            None => env::remove_var(var),
        }
    }
    let [a, b, c] = TREES.map(source_required);
    [a, b, c, source_required("QMAIL_PATCH_SMTP_TLS")]
}

#[test]
fn a_run_requires_the_qmail_it_proves_and_mess822_only_when_asked_to() {
    for v in ["QMAIL_SOURCE_NETQMAIL", "QMAIL_SOURCE_MESS822"] {
        env::remove_var(v);
    }
    // [netqmail, mess822, notqmail, a patch file]
    assert_eq!(required(None, None), [false; 4], "not asked");
    assert_eq!(required(Some("0"), None), [false; 4], "=0");
    assert_eq!(required(Some(""), Some("/t")), [false; 4], "empty");
    assert_eq!(required(Some("1"), None), [true, true, false, false]);
    assert_eq!(
        required(Some("1"), Some("/src/notqmail")),
        [false, true, false, false],
        "a notqmail run does not prove netqmail"
    );
    assert_eq!(
        required(Some("1"), Some("")),
        [true, true, false, false],
        "an empty QMAIL_SOURCE_NOTQMAIL is not given"
    );
}
