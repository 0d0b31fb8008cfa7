//! Which upstream release the model follows: netqmail-1.06 (the default)
//! or notqmail-1.09.
//!
//! The two releases were compared file by file for everything the
//! delivery decision uses: qmail-send.c (`rewrite`, `senderadd`,
//! `getcontrols`), qmail-lspawn.c, qmail-getpw.c, qmail-local.c, spawn.c,
//! qmail.c, qmail-newu.c, control.c, constmap.c, cdb, case, str, byte,
//! env, prot and the conf-* defaults. Almost every change is C
//! modernisation (ANSI prototypes, `unsigned int` counters, `str_*` as
//! libc macros, `fork` for `vfork`) with no observable effect. Two
//! changes decide differently, and both are modelled under
//! [`QmailRelease::Notqmail109`]:
//!
//! 1. **Run-time qmail users** (qmail-lspawn.c `initialize`, uid.c,
//!    gid.c). netqmail compiles the uids of qmailp and qmailq and the gid
//!    of nofiles into qmail-lspawn at build time. notqmail looks them up
//!    when qmail-lspawn starts (`getpwnam("qmailp")`, `getpwnam("qmailq")`,
//!    `getgrnam("nofiles")`, in that order) and, when one is missing,
//!    exits 111 with `fatal: unable to find user qmailp` (or `qmailq`, or
//!    `fatal: unable to find group nofiles`) before any delivery: every
//!    local recipient stays in the queue. Modelled by
//!    [`QmailRelease::lspawn_start`], which the resolver runs before stage
//!    H; the outcome is a deferral with that text.
//! 2. **qmail-queue's custom error** (qmail.c `qmail_open`,
//!    `qmail_close`). notqmail gives qmail-queue a pipe on descriptor 6;
//!    when qmail-queue exits 82 and wrote more than 2 bytes there, that
//!    text (up to 255 bytes, up to its first NUL) is qmail-local's
//!    forwarding result: `D…` is permanent, anything else temporary, and
//!    an empty string (a NUL first) is success. netqmail reports exit 82
//!    as `Zqq temporary problem (#4.3.0)`. Modelled by
//!    `dotqmail::queue_result` (a module above this one).
//!
//! Not modelled, because the verdict and outcome are the same: qmail-local's
//! maildir `tmp/` file creation (netqmail `stat`s the name and sleeps 2 s
//! up to twice on any error other than ENOENT; notqmail opens with
//! `O_EXCL` and only retries on EEXIST), which changes how long a failing
//! maildir delivery takes, not its exit code or text.
use serde::{Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// The upstream release whose delivery logic is modelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum QmailRelease {
    /// netqmail-1.06 (the default, and the release of resolution.md).
    #[default]
    Netqmail106,
    /// notqmail-1.09: run-time lookup of qmailp, qmailq and nofiles in
    /// qmail-lspawn, and qmail-queue's custom error text (module docs).
    Notqmail109,
}

/// A release name that is not one of [`QmailRelease::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown release {name:?} (known: {known})")]
pub struct UnknownRelease {
    /// The name given.
    pub name: String,
    /// The known names, comma-separated.
    pub known: String,
}

/// The users qmail-lspawn looks up when it starts (notqmail-1.09), in
/// order: `auto_userp`, `auto_userq` (conf-users lines 5 and 6).
pub const LSPAWN_USERS: [&str; 2] = ["qmailp", "qmailq"];
/// The group qmail-lspawn looks up after them: `auto_groupn` (conf-groups
/// line 2).
pub const LSPAWN_GROUP: &str = "nofiles";

impl QmailRelease {
    /// Every release, default first.
    pub const ALL: [QmailRelease; 2] = [QmailRelease::Netqmail106, QmailRelease::Notqmail109];

    /// The release's name: `netqmail-1.06` or `notqmail-1.09`.
    pub fn name(self) -> &'static str {
        match self {
            QmailRelease::Netqmail106 => "netqmail-1.06",
            QmailRelease::Notqmail109 => "notqmail-1.09",
        }
    }

    /// The known names, comma-separated (for error messages and help).
    pub fn known_names() -> String {
        Self::ALL.map(Self::name).join(", ")
    }

    /// Does qmail-lspawn look up its users when it starts (difference 1)?
    pub fn lspawn_looks_up_users(self) -> bool {
        self == QmailRelease::Notqmail109
    }

    /// Difference 1: qmail-lspawn's start. `user_exists` and
    /// `group_exists` answer getpwnam/getgrnam. `None` when qmail-lspawn
    /// starts (always for netqmail-1.06, whose ids are compiled in),
    /// otherwise the line it writes before exiting 111.
    pub fn lspawn_start(
        self,
        mut user_exists: impl FnMut(&[u8]) -> bool,
        group_exists: impl FnOnce(&[u8]) -> bool,
    ) -> Option<String> {
        if !self.lspawn_looks_up_users() {
            return None;
        }
        for u in LSPAWN_USERS {
            if !user_exists(u.as_bytes()) {
                return Some(format!("fatal: unable to find user {u}"));
            }
        }
        if !group_exists(LSPAWN_GROUP.as_bytes()) {
            return Some(format!("fatal: unable to find group {LSPAWN_GROUP}"));
        }
        None
    }

    /// Difference 2: does qmail_close use qmail-queue's descriptor-6 text
    /// on exit 82?
    pub fn qq_custom_error(self) -> bool {
        self == QmailRelease::Notqmail109
    }
}

impl fmt::Display for QmailRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for QmailRelease {
    type Err = UnknownRelease;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| UnknownRelease {
                name: s.to_string(),
                known: Self::known_names(),
            })
    }
}

/// Serialised as its name (`"notqmail-1.09"`).
impl Serialize for QmailRelease {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}
