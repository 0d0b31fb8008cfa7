//! What differs between the qmail releases our qmail patches support
//! (netqmail-1.06 and notqmail-1.09) where those patches touch them.
//!
//! The realrcptto and branch generators are one function each for both
//! releases: every C, Makefile, `TARGETS` and man-page anchor they use
//! occurs exactly once in both pristine trees (notqmail-1.09 changed the
//! code around them — ANSI prototypes, `unsigned int` loop indexes,
//! `int main`, `_noreturn_` — but not the lines the hooks attach to).
//! What does differ is listed here, per release:
//!
//! * notqmail-1.09 has no `FILES` list (its `TARGETS` and `.gitignore`
//!   are the only lists of files), so the patches add nothing there;
//! * notqmail-1.09 declares `auto_usera` (the alias user's name) in
//!   `auto_users.h`, with the other user names; netqmail-1.06 in
//!   `auto_usera.h`. The object is `auto_usera.o` in both;
//! * notqmail-1.09's qmail-lspawn looks up `qmailp`, `qmailq` and the
//!   group `nofiles` when it starts and exits 111 when one is missing,
//!   deferring every local delivery; its realrcptto hooks call
//!   `realrcptto_lspawn_users(auto_userp,auto_userq,auto_groupn)` so that
//!   the check then accepts every local recipient (qmail defers them), and
//!   link `auto_userp.o auto_userq.o auto_groupn.o`;
//! * the patch descriptions name the release.

use upstream_hashes::{Release, NETQMAIL};

use crate::PatchError;

/// notqmail-1.09, re-exported for the generators and their tests.
pub use upstream_hashes::NOTQMAIL;

/// The differences between the qmail releases that matter to our
/// generators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QmailLayout {
    /// The release.
    pub release: &'static Release,
    /// Whether the tree has a `FILES` list of source files (netqmail) that
    /// new source files are added to.
    pub files_list: bool,
    /// The header that declares `auto_usera`.
    pub usera_header: &'static str,
    /// Whether qmail-lspawn looks its users up when it starts (notqmail):
    /// the hooks then tell the check their names.
    pub lspawn_users: bool,
}

/// The hook line that tells the check which users qmail-lspawn looks up
/// (see [`QmailLayout::lspawn_users`]), without the error handling.
pub const LSPAWN_USERS_CALL: &str = "realrcptto_lspawn_users(auto_userp,auto_userq,auto_groupn)";

/// The objects that define the names of [`LSPAWN_USERS_CALL`].
pub const LSPAWN_USERS_OBJS: &str = "auto_userp.o auto_userq.o auto_groupn.o";

static LAYOUTS: [QmailLayout; 2] = [
    QmailLayout {
        release: &NETQMAIL,
        files_list: true,
        usera_header: "auto_usera.h",
        lspawn_users: false,
    },
    QmailLayout {
        release: &NOTQMAIL,
        files_list: false,
        usera_header: "auto_users.h",
        lspawn_users: true,
    },
];

/// The layout of `release`, for the generator of `patch`; a release that
/// is not a qmail release our patches support is refused, naming both.
pub fn layout(patch: &str, release: &Release) -> Result<&'static QmailLayout, PatchError> {
    LAYOUTS
        .iter()
        .find(|l| l.release == release)
        .ok_or_else(|| {
            PatchError::Refused(format!(
                "the {patch} patch is generated for {} only, not for {}",
                LAYOUTS
                    .iter()
                    .map(|l| l.release.full_name)
                    .collect::<Vec<_>>()
                    .join(" and "),
                release.full_name
            ))
        })
}
