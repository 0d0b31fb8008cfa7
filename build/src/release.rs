//! Which qmail a build installs: one of netqmail-1.06 and notqmail-1.09,
//! chosen by the release of the tree it is given.

use upstream_hashes::SourceTree;

use crate::BuildError;

/// The qmail releases this build installs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qmail {
    /// netqmail-1.06: ids compiled in (`auto_uids.c`, written by the
    /// build), installed by the build from `hier()`.
    Netqmail,
    /// notqmail-1.09: user names compiled in, ids looked up at run time;
    /// staged by its own `instpackage` (see [`crate::notqmail`]).
    Notqmail,
}

impl Qmail {
    /// The qmail of `tree`, by its release's short name (`netqmail`,
    /// `notqmail`); any other release is refused.
    pub fn of(tree: &SourceTree) -> Result<Self, BuildError> {
        match tree.release.name {
            "netqmail" => Ok(Qmail::Netqmail),
            "notqmail" => Ok(Qmail::Notqmail),
            other => Err(BuildError::Invalid(format!(
                "{}: {other} is not a qmail release the build installs (netqmail, notqmail)",
                tree.root.display()
            ))),
        }
    }
}

/// The one qmail tree among `trees` (the others, such as mess822, are
/// ignored). One build installs one qmail: given trees of both netqmail
/// and notqmail, it refuses, naming both; given neither, it says what is
/// missing.
pub fn select_qmail(trees: &[SourceTree]) -> Result<SourceTree, BuildError> {
    let qmails: Vec<&SourceTree> = trees.iter().filter(|t| Qmail::of(t).is_ok()).collect();
    match qmails.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(BuildError::Invalid(
            "no qmail source tree: give --source netqmail=DIR or --source notqmail=DIR".into(),
        )),
        many => Err(BuildError::Invalid(format!(
            "one build installs one qmail, but {} were given ({}); build each into its own --prefix with only its --source",
            many.len(),
            many.iter()
                .map(|t| format!("{}={}", t.release.name, t.root.display()))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use upstream_hashes::{MESS822, NETQMAIL, NOTQMAIL};

    #[test]
    fn one_qmail_is_chosen_by_release_and_two_are_refused() {
        let nq = SourceTree::unverified(&NETQMAIL, "/src/netqmail-1.06");
        let no = SourceTree::unverified(&NOTQMAIL, "/src/notqmail-1.09");
        let m8 = SourceTree::unverified(&MESS822, "/src/mess822-0.58");
        let got = select_qmail(&[m8.clone(), no.clone()]).unwrap();
        assert_eq!(
            (got.release.name, Qmail::of(&got).unwrap()),
            ("notqmail", Qmail::Notqmail)
        );
        let got = select_qmail(&[nq.clone(), m8.clone()]).unwrap();
        assert_eq!(Qmail::of(&got).unwrap(), Qmail::Netqmail);
        let err = select_qmail(&[nq, m8.clone(), no]).unwrap_err().to_string();
        assert_eq!(
            err,
            "one build installs one qmail, but 2 were given (netqmail=/src/netqmail-1.06, notqmail=/src/notqmail-1.09); build each into its own --prefix with only its --source"
        );
        let err = select_qmail(std::slice::from_ref(&m8))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("no qmail source tree"), "{err}");
        let err = Qmail::of(&m8).unwrap_err().to_string();
        assert!(err.contains("mess822 is not a qmail release"), "{err}");
    }
}
