//! The seeded scenario generator of `spec/differential.md`.
//!
//! A [`Scenario`] is a complete qmail world described as data: the control
//! files, `users/assign` (and how `users/cdb` is to be made), a passwd and
//! group pair for nss_wrapper, a file tree of home directories holding
//! `.qmail` objects of every kind of resolution.md §13, and the addresses to
//! resolve. [`generate`] makes one from a seed and an index (the same pair
//! always gives the same scenario); [`Scenario::materialize`] writes it into
//! a directory, and [`Scenario::save`]/[`Scenario::load`] keep it as JSON so
//! that a failure directory can be replayed on its own.
//!
//! Paths inside the world that must be absolute (passwd homes, assign
//! homes, symlink targets) are stored with the token `{ROOT}`, replaced by
//! the directory the world is materialised in.

//!
//! The model is here; [`generate`] lives in `generate.rs` (one function
//! per part of the world, drawn in a fixed order) and the JSON files,
//! validation and materialisation in `materialize.rs`.

mod generate;
mod materialize;

pub use generate::{generate, qmail_name};
pub use materialize::{AssignCompiler, MAX_SCENARIO_BYTES};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The token replaced by the world's root directory.
pub const ROOT_TOKEN: &[u8] = b"{ROOT}";

/// uid of the alias account (`auto_uida` of the test build).
pub const UID_ALIAS: u32 = 41000;
/// uid of qmaild, the account qmail-smtpd and qmail-qmtpd run as.
pub const UID_QMAILD: u32 = 41001;
/// uid of qmaill.
pub const UID_QMAILL: u32 = 41002;
/// uid of qmailp, the account qmail-getpw runs as.
pub const UID_QMAILP: u32 = 41003;
/// uid of qmailq, the owner of the queue files.
pub const UID_QMAILQ: u32 = 41004;
/// uid of qmailr.
pub const UID_QMAILR: u32 = 41005;
/// uid of qmails.
pub const UID_QMAILS: u32 = 41006;
/// gid of the qmail group.
pub const GID_QMAIL: u32 = 41100;
/// gid of the nofiles group.
pub const GID_NOFILES: u32 = 41101;
/// gid of the scenario users' group.
pub const GID_USERS: u32 = 41200;
/// First uid given to scenario accounts.
pub const UID_FIRST_USER: u32 = 42000;

/// A byte string kept readable in JSON: printable ASCII as is, a backslash
/// as `\\`, every other byte as `\xNN`. The mapping is reversible.
#[derive(Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Esc(pub Vec<u8>);

impl Esc {
    /// The escaped text form.
    pub fn to_text(&self) -> String {
        escape(&self.0)
    }
}

impl From<&[u8]> for Esc {
    fn from(b: &[u8]) -> Self {
        Esc(b.to_vec())
    }
}

impl From<&str> for Esc {
    fn from(s: &str) -> Self {
        Esc(s.as_bytes().to_vec())
    }
}

impl fmt::Debug for Esc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", escape(&self.0))
    }
}

impl fmt::Display for Esc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape(&self.0))
    }
}

/// Escapes bytes as described for [`Esc`].
pub fn escape(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for &c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s
}

/// Reverses [`escape`].
pub fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'\\') => {
                out.push(b'\\');
                i += 2;
            }
            Some(b'x') => {
                let hex = s
                    .get(i + 2..i + 4)
                    .ok_or_else(|| format!("truncated \\x escape in {s:?}"))?;
                let v = u8::from_str_radix(hex, 16)
                    .map_err(|_| format!("bad \\x escape {hex:?} in {s:?}"))?;
                out.push(v);
                i += 4;
            }
            _ => return Err(format!("bad escape at byte {i} in {s:?}")),
        }
    }
    Ok(out)
}

impl Serialize for Esc {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&escape(&self.0))
    }
}

impl<'de> Deserialize<'de> for Esc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        unescape(&s).map(Esc).map_err(serde::de::Error::custom)
    }
}

/// The control files; `None` means the file does not exist.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ControlSet {
    /// control/me.
    pub me: Option<Esc>,
    /// control/envnoathost.
    pub envnoathost: Option<Esc>,
    /// control/locals.
    pub locals: Option<Esc>,
    /// control/percenthack.
    pub percenthack: Option<Esc>,
    /// control/virtualdomains.
    pub virtualdomains: Option<Esc>,
}

/// What `users/cdb` is (resolution.md §13 item 23).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CdbState {
    /// Compiled from users/assign (when assign is valid; else absent).
    FromAssign,
    /// No users/cdb: every lookup goes to qmail-getpw.
    Missing,
    /// users/cdb is a directory.
    Directory,
    /// users/cdb is a zero-length file.
    Empty,
    /// A valid cdb compiled from assign, but without the `""` key.
    NoWildchars,
}

/// A passwd entry served through nss_wrapper.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Account {
    /// pw_name.
    pub name: Esc,
    /// pw_uid.
    pub uid: u32,
    /// pw_gid.
    pub gid: u32,
    /// pw_dir, with `{ROOT}`.
    pub home: Esc,
}

/// What a file-tree node is.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NodeKind {
    /// A directory.
    Dir,
    /// A regular file.
    File {
        /// Its content.
        content: Esc,
    },
    /// A FIFO.
    Fifo,
    /// A symbolic link.
    Symlink {
        /// Its target, with `{ROOT}`.
        target: Esc,
    },
}

/// One object of the world's file tree, created in list order.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Node {
    /// Path relative to the world root.
    pub path: Esc,
    /// What it is.
    pub kind: NodeKind,
    /// Permission bits (ignored for symlinks).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// A `.qmail` name the generator created, and how to recognise its use in
/// qmail-local's `-n` listing.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct QmailFile {
    /// The home directory it lives in, relative to the world root.
    pub home: Esc,
    /// Its name relative to that home (e.g. `.qmail-foo`).
    pub name: Esc,
    /// The marker forward (`qfN`) its content carries, if any.
    pub marker: Option<u32>,
    /// Whether opening it gives a 0-byte regular file (so aliasempty is
    /// used).
    pub empty: bool,
    /// A short word for the kind of object (for the coverage table).
    pub kind: String,
}

/// A complete generated qmail world.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Scenario {
    /// The run seed.
    pub seed: u64,
    /// The index of this scenario within the run.
    pub index: u64,
    /// The control files.
    pub control: ControlSet,
    /// users/assign (with `{ROOT}`), if it exists.
    pub assign: Option<Esc>,
    /// How users/cdb is made.
    pub cdb: CdbState,
    /// The passwd database (the qmail accounts included).
    pub passwd: Vec<Account>,
    /// The file tree.
    pub nodes: Vec<Node>,
    /// The `.qmail` names made, for reading the oracles' answers.
    pub qmail_files: Vec<QmailFile>,
    /// The default delivery (qmail-lspawn's argv\[1\]).
    pub aliasempty: Esc,
    /// The envelope recipients to resolve.
    pub addresses: Vec<Esc>,
    /// conf-break (`auto_break`, resolution.md §13 #36) the resolver and
    /// the realrcptto core are given. The qmail programs (G, S/Q) are
    /// built with [`DEFAULT_BREAK`]; a scenario with another byte is
    /// compared R vs C only.
    #[serde(default = "default_break")]
    pub conf_break: u8,
    /// An error only an `LD_PRELOAD` shim can make (resolution.md G2, G4),
    /// given to R and C (compared R vs C only); `None` in most scenarios.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_fault: Option<ErrnoFault>,
    /// One of [`LSPAWN_ACCOUNTS`] left out of the world (the passwd
    /// entry, or the group `nofiles`), in [`LSPAWN_MISSING_PERCENT`] of
    /// the scenarios: notqmail-1.09's qmail-lspawn then does not start and
    /// every local delivery defers; netqmail-1.06 (ids compiled in) does
    /// not notice. `None` in most scenarios.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lspawn_missing: Option<String>,
}

/// An injected system error (`tests/c/rrt-errno-shim.c`): both give the
/// realrcptto verdict `tempfail-sys`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ErrnoFault {
    /// `getpwnam(name)` fails with ETXTBSY (G2).
    Etxtbsy {
        /// The name as looked up (lower case).
        name: Esc,
    },
    /// `stat(home)` fails with EIO (G4, a temporary errno).
    Eio {
        /// The passwd home whose stat fails, with `{ROOT}`.
        home: Esc,
    },
}

impl ErrnoFault {
    /// The environment the shim reads for this fault, for a world at
    /// `root`.
    pub fn shim_env(&self, root: &Path) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
        use std::os::unix::ffi::OsStringExt;
        match self {
            ErrnoFault::Etxtbsy { name } => vec![(
                "RRT_SHIM_TXTBSY".into(),
                std::ffi::OsString::from_vec(name.0.clone()),
            )],
            ErrnoFault::Eio { home } => vec![(
                "RRT_SHIM_EIO".into(),
                std::ffi::OsString::from_vec(subst_root(&home.0, root)),
            )],
        }
    }
}

/// The accounts notqmail-1.09's qmail-lspawn looks up when it starts:
/// the users qmailp and qmailq, the group nofiles.
pub const LSPAWN_ACCOUNTS: [&str; 3] = ["qmailp", "qmailq", "nofiles"];

/// How often (percent) a scenario leaves one of [`LSPAWN_ACCOUNTS`] out.
pub const LSPAWN_MISSING_PERCENT: u32 = 3;

/// How often (percent) a scenario has an [`ErrnoFault`].
pub const ERRNO_FAULT_PERCENT: u32 = 5;

/// How often (percent) a scenario has the account [`EMPTY_HOME_USER`]
/// with an empty passwd home, owning the qmail home.
pub const EMPTY_HOME_PERCENT: u32 = 3;

/// The account with an empty passwd home (see [`EMPTY_HOME_PERCENT`]).
pub const EMPTY_HOME_USER: &str = "nohome";

/// The conf-break the qmail builds use (`-`).
pub const DEFAULT_BREAK: u8 = b'-';

fn default_break() -> u8 {
    DEFAULT_BREAK
}

/// The non-default conf-break some scenarios use.
pub const OTHER_BREAK: u8 = b'+';

/// How often (percent) a scenario uses [`OTHER_BREAK`].
pub const OTHER_BREAK_PERCENT: u32 = 10;

/// The world's directory names, relative to its root.
pub mod layout {
    /// QMAILHOME.
    pub const QMAIL: &str = "qmail";
    /// The passwd file for nss_wrapper.
    pub const PASSWD: &str = "etc/passwd";
    /// The group file for nss_wrapper.
    pub const GROUP: &str = "etc/group";
    /// Where the scenario's JSON is written.
    pub const SCENARIO_JSON: &str = "scenario.json";
}

/// Replaces `{ROOT}` in `b` by `root`.
pub fn subst_root(b: &[u8], root: &Path) -> Vec<u8> {
    let r = root.as_os_str().as_bytes();
    let mut out = Vec::with_capacity(b.len() + 16);
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(ROOT_TOKEN) {
            out.extend_from_slice(r);
            i += ROOT_TOKEN.len();
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_round_trips() {
        let all: Vec<u8> = (0..=255u8).collect();
        assert_eq!(unescape(&escape(&all)).unwrap(), all);
        assert_eq!(escape(b"a\\b\n"), "a\\\\b\\x0a");
        assert!(unescape("\\q").is_err());
        assert!(unescape("\\x4").is_err());
    }

    #[test]
    fn json_round_trip_keeps_addresses() {
        let s = generate(1, 1);
        let back: Scenario = serde_json::from_str(&s.to_json()).unwrap();
        assert_eq!(back.addresses, s.addresses);
        assert_eq!(back.to_json(), s.to_json());
    }
}
