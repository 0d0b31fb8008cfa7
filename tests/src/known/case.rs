//! The model of a known case: a `tests/known/NN-name/known.json` file
//! ([`KnownFile`], one [`KnownCase`] per address), how it is loaded, and
//! the errors of the known-differences run ([`KnownError`]).

use crate::oracle::c::CError;
use crate::oracle::g::GError;
use crate::oracle::r::RError;
use crate::oracle::setup::SetupError;
use crate::oracle::sq::SqError;
use crate::scenario::Esc;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// qmail's bounce text that the verdict rule turns into a rejection (Q5).
pub const NO_MAILBOX: &str = "Sorry, no mailbox here by that name. (#5.1.1)";
/// Our QMTP reply for a refused recipient (deliberate change 6).
pub const QMTP_NO_MAILBOX: &[u8] = b"Dsorry, no mailbox here by that name. (#5.1.1)";
/// Our SMTP reply for a refused recipient.
pub const SMTP_NO_MAILBOX: &str = "550 sorry, no mailbox here by that name. (#5.1.1)\r\n";
/// The name of the per-case description file.
pub const KNOWN_JSON: &str = "known.json";

/// Why the known-differences run could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum KnownError {
    /// A file could not be read or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done (names the file).
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// A `known.json` or `scenario.json` is malformed or inconsistent.
    #[error("{0}")]
    Data(String),
    /// The oracles could not be set up.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// Oracle C failed.
    #[error("oracle C: {0}")]
    C(#[from] CError),
    /// Oracle R failed.
    #[error(transparent)]
    R(#[from] RError),
    /// Oracle G failed.
    #[error("oracle G: {0}")]
    G(#[from] GError),
    /// Oracles S/Q failed.
    #[error("oracles S/Q: {0}")]
    Sq(#[from] SqError),
}

/// An [`KnownError::Io`] that names what was being done.
pub(super) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> KnownError {
    let what = what.into();
    move |source| KnownError::Io { what, source }
}

/// What a case observes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Observe {
    /// The accept/reject verdict of C, R, S and Q.
    #[default]
    Verdict,
    /// Q's reply text for the refused recipient (needs the sources).
    QmtpReply,
    /// QMTP deny-all: every recipient refused and nothing queued (needs the
    /// sources).
    QmtpDenyall,
    /// The log line written for the refused recipient.
    Log,
}

/// What the original patch did for a case.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Original {
    /// `accept`, `reject`, `crash`, or a short phrase.
    pub verdict: String,
    /// The realrcptto.md Part 2 rule it follows, with the reason.
    pub rule: String,
    /// Its QMTP reply text (`qmtp_reply` cases).
    #[serde(default)]
    pub reply: Option<String>,
    /// What happened to the message (`qmtp_denyall` cases: `queued`).
    #[serde(default)]
    pub queue: Option<String>,
    /// Its log line, with `PID` for the process id (`log` cases).
    #[serde(default)]
    pub log: Option<String>,
}

/// What qmail itself does (resolution.md), as documented in `known.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Documented {
    /// The outcome class (`bounce`, `defer`, `trash`, `deliver`, …).
    pub class: String,
    /// The bounce or deferral text; `{ROOT}` stands for the world's root.
    #[serde(default)]
    pub text: Option<String>,
}

/// One address of a `known.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KnownCase {
    /// The address (escaped as in [`Esc`]); must be in the scenario.
    pub address: Esc,
    /// What is special about it, in a few words.
    pub what: String,
    /// Whether the original patch differs from qmail here (default true).
    #[serde(default = "yes")]
    pub difference: bool,
    /// What is observed.
    #[serde(default)]
    pub observe: Observe,
    /// Environment changes for C, S and Q: a value sets, `null` unsets
    /// (the defaults are `PROTO=TCP` and `TCPREMOTEIP=192.0.2.7`).
    #[serde(default)]
    pub env: BTreeMap<String, Option<String>>,
    /// Other recipients of the same transaction, given before `address`.
    #[serde(default)]
    pub with: Vec<Esc>,
    /// The original patch's behaviour.
    pub original: Original,
    /// qmail's behaviour.
    pub qmail: Documented,
    /// For `log` cases: how our log line must end.
    #[serde(default)]
    pub expect_log_suffix: Option<String>,
    /// Named tests (`FILE.rs::fn_name` under `tests/tests/`) that show this
    /// change where no address-level check makes sense.
    #[serde(default)]
    pub covered_by: Vec<String>,
}

fn yes() -> bool {
    true
}

/// A `known.json` file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KnownFile {
    /// The deliberate change's number (realrcptto.md Part 1).
    pub change: u32,
    /// Its one-line title.
    pub title: String,
    /// One entry per address.
    pub cases: Vec<KnownCase>,
}

/// The directory of the known cases: `tests/known/`.
pub fn known_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("known")
}

/// Loads and parses a `known.json`.
pub(super) fn load_known(path: &Path) -> Result<KnownFile, KnownError> {
    let text =
        std::fs::read_to_string(path).map_err(io_err(format!("reading {}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| KnownError::Data(format!("{}: not a known-case file: {e}", path.display())))
}

/// Whether `tests/tests/FILE.rs` defines `fn NAME(` for `FILE.rs::NAME`.
pub(super) fn test_exists(spec: &str) -> bool {
    let Some((file, name)) = spec.split_once("::") else {
        return false;
    };
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(file);
    std::fs::read_to_string(p)
        .map(|t| t.contains(&format!("fn {name}(")))
        .unwrap_or(false)
}

/// The environment of C, S and Q for a case.
pub(super) fn case_env(k: &KnownCase) -> Vec<(OsString, OsString)> {
    let mut m: BTreeMap<String, Option<String>> = BTreeMap::new();
    m.insert("PROTO".into(), Some("TCP".into()));
    m.insert("TCPREMOTEIP".into(), Some("192.0.2.7".into()));
    for (key, v) in &k.env {
        m.insert(key.clone(), v.clone());
    }
    m.into_iter()
        .filter_map(|(key, v)| v.map(|v| (OsString::from(key), OsString::from(v))))
        .collect()
}

/// A log line with its pid field replaced by `PID`.
pub(super) fn normalise_log(line: &str) -> String {
    let mut f: Vec<&str> = line.splitn(3, ' ').collect();
    if f.len() >= 2 && f[0] == "realrcptto" {
        f[1] = "PID";
    }
    f.join(" ")
}

/// Our SMTP reply as a verdict (`accept`, `reject` for the no-mailbox
/// text, else the reply).
pub(super) fn smtp_verdict(code: u16, text: &str) -> String {
    match code {
        250 => "accept".into(),
        550 if text == SMTP_NO_MAILBOX => "reject".into(),
        _ => format!("{code} {:?}", text.trim_end()),
    }
}

/// Our QMTP reply as a verdict (`accept` for `K…`, `reject` for the
/// no-mailbox text, else the reply).
pub(super) fn qmtp_verdict(r: &[u8]) -> String {
    if r.first() == Some(&b'K') {
        "accept".into()
    } else if r == QMTP_NO_MAILBOX {
        "reject".into()
    } else {
        format!("{:?}", String::from_utf8_lossy(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;

    #[test]
    fn every_known_file_parses_and_names_its_change() {
        let mut changes = Vec::new();
        for e in std::fs::read_dir(known_dir()).unwrap() {
            let d = e.unwrap().path();
            let kf = load_known(&d.join(KNOWN_JSON)).unwrap();
            assert!(!kf.cases.is_empty(), "{}", d.display());
            if d.join("scenario.json").is_file() {
                let sc = Scenario::load(&d.join("scenario.json")).unwrap();
                for k in &kf.cases {
                    assert!(sc.addresses.contains(&k.address), "{}", k.address);
                }
            }
            changes.push(kf.change);
        }
        changes.sort();
        assert_eq!(changes, (1..=9).collect::<Vec<_>>());
    }

    #[test]
    fn log_lines_lose_their_pid() {
        assert_eq!(
            normalise_log("realrcptto 123 unknown a@b"),
            "realrcptto PID unknown a@b"
        );
        assert_eq!(normalise_log("realrcptto 9  a@b"), "realrcptto PID  a@b");
    }

    #[test]
    fn named_tests_are_found() {
        assert!(test_exists(
            "realrcptto_c.rs::deliberate_9_bytes_not_c_strings"
        ));
        assert!(!test_exists("realrcptto_c.rs::no_such_test"));
        assert!(!test_exists("no-colons"));
    }
}
