//! Shared by every stage of the pipeline (fetch → verify → unpack →
//! sources → patch → build → test): the upstream releases this toolkit
//! packages, netqmail-1.06 and mess822-0.58, and [`SourceTree`], an
//! unpacked tree of one of them.
//!
//! For each [`Release`]: its short name (`netqmail`), its full name
//! (`netqmail-1.06`, also the directory the tarball unpacks into), the
//! distfile name, the exact size and the SHA-256 and SHA-512 of the compressed
//! `.tar.gz`, and the mirrors to download it from, in the order packagers
//! use them. The same digests are kept in `SHA256SUMS` and `SHA512SUMS`
//! next to this crate's `Cargo.toml`, in the format `sha256sum -c` and
//! `sha512sum -c` accept; a unit test keeps the two in agreement.
//!
//! Beware of repacks: at least one distribution ships a different
//! `netqmail-1.06.tar.gz` (133282 bytes). Only the digests here are
//! upstream.
#![warn(missing_docs)]

use std::path::PathBuf;

/// One upstream release tarball and everything needed to fetch and check
/// it.
///
/// The constants returned by [`releases`] describe the real upstream
/// releases; other code (tests, mirrors given on a command line) may build
/// its own `Release` with different mirrors or digests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Release {
    /// Short name used on command lines, e.g. `netqmail` in
    /// `--source netqmail=DIR`.
    pub name: &'static str,
    /// File name of the distfile, e.g. `netqmail-1.06.tar.gz`.
    pub file_name: &'static str,
    /// The release's full name, `NAME-VERSION`, e.g. `netqmail-1.06`: the
    /// single top-level directory every archive member lives under
    /// (without a trailing slash), the directory a tree of it is unpacked
    /// or patched into, and the prefix of its patch files' names.
    pub full_name: &'static str,
    /// A file every genuine source tree of this release has directly in its
    /// top directory (`qmail-local.c`, `822date.c`); used to recognise an
    /// unpacked tree given by hand.
    pub marker_file: &'static str,
    /// Exact size of the `.tar.gz` in bytes.
    pub size: u64,
    /// SHA-256 of the `.tar.gz`, lowercase hex.
    pub sha256: &'static str,
    /// SHA-512 of the `.tar.gz`, lowercase hex.
    pub sha512: &'static str,
    /// Download URLs, tried in this order.
    pub mirrors: &'static [&'static str],
}

/// netqmail-1.06.
pub const NETQMAIL: Release = Release {
    name: "netqmail",
    file_name: "netqmail-1.06.tar.gz",
    full_name: "netqmail-1.06",
    marker_file: "qmail-local.c",
    size: 260_941,
    sha256: "8e7d98d15211fc9f9c28109e942e2268f42a6672d68df92a42f2afa90ff00532",
    sha512: "de40a6d8fac502bd785010434d99b99f2c0524e10aea3d0f2a0d35c70fce91e9\
             91eb1fb8f20a1276eb56d7e73130ea5e2c178f6075d138af47b28d9ca6e6046b",
    mirrors: &[
        "http://qmail.org/netqmail-1.06.tar.gz",
        "http://www.qmail.org/netqmail-1.06.tar.gz",
        "http://netqmail.org/netqmail-1.06.tar.gz",
        "https://cdn.netbsd.org/pub/pkgsrc/distfiles/netqmail-1.06.tar.gz",
    ],
};

/// mess822-0.58.
pub const MESS822: Release = Release {
    name: "mess822",
    file_name: "mess822-0.58.tar.gz",
    full_name: "mess822-0.58",
    marker_file: "822date.c",
    size: 64_287,
    sha256: "23d37a783474ad5cd9bda0a1309deaea27e570a0d5db0ed8cc2cb46da1c413e0",
    sha512: "5fb30f06dfa08f60dc8760f9c5d692e59397ff848441bc94313a079bac8fb53b\
             779133b48abae9b487dff6fbb277d5210a9690a138366bf4d34f052d661be65e",
    mirrors: &[
        "https://cr.yp.to/software/mess822-0.58.tar.gz",
        "http://cr.yp.to/software/mess822-0.58.tar.gz",
        "https://cdn.netbsd.org/pub/pkgsrc/distfiles/mess822-0.58.tar.gz",
    ],
};

static RELEASES: [Release; 2] = [NETQMAIL, MESS822];

/// Every upstream release, netqmail first.
pub fn releases() -> &'static [Release] {
    &RELEASES
}

/// The release with short name `name` (`netqmail`, `mess822`), if any.
pub fn release(name: &str) -> Option<&'static Release> {
    RELEASES.iter().find(|r| r.name == name)
}

/// Where a [`SourceTree`] came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provenance {
    /// Unpacked from the distfile, whose size and SHA-256/SHA-512 matched
    /// the release's.
    Verified {
        /// SHA-256 of the tarball it was unpacked from.
        sha256: String,
    },
    /// An unpacked tree given by hand (`--source name=DIR`, or
    /// `QMAIL_SOURCE_<NAME>` in the tests), used as is.
    Unverified {
        /// The directory given.
        dir: PathBuf,
    },
}

/// An unpacked source tree of one release: the one type every stage after
/// unpacking (sources, patch, build, the differential oracles) works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceTree {
    /// The release.
    pub release: &'static Release,
    /// The tree's top directory (the one containing e.g. `qmail-local.c`).
    pub root: PathBuf,
    /// Where it came from.
    pub provenance: Provenance,
}

impl SourceTree {
    /// The tree at `root`, taken as is ([`Provenance::Unverified`] with
    /// `root` as the directory given). Nothing is checked; `qmail-sources`
    /// checks a tree given on a command line.
    pub fn unverified(release: &'static Release, root: impl Into<PathBuf>) -> SourceTree {
        let root = root.into();
        SourceTree {
            release,
            provenance: Provenance::Unverified { dir: root.clone() },
            root,
        }
    }

    /// True if the tree was unpacked from a verified upstream tarball.
    pub fn is_verified(&self) -> bool {
        matches!(self.provenance, Provenance::Verified { .. })
    }

    /// The provenance as a build manifest records it: `sha256:HEX` of the
    /// verified tarball, or `unverified: DIR` with the directory given.
    pub fn digest(&self) -> String {
        match &self.provenance {
            Provenance::Verified { sha256 } => format!("sha256:{sha256}"),
            Provenance::Unverified { dir } => format!("unverified: {}", dir.display()),
        }
    }

    /// One line saying where the tree came from, for every stage to print,
    /// e.g. `netqmail-1.06: unpacked from netqmail-1.06.tar.gz (SHA-256
    /// 8e7d…, verified)` or `netqmail-1.06: taken as is from /src/nq;
    /// provenance NOT verified`.
    pub fn provenance_note(&self) -> String {
        match &self.provenance {
            Provenance::Verified { sha256 } => format!(
                "{}: unpacked from {} (size and SHA-256 {} verified)",
                self.release.full_name, self.release.file_name, sha256
            ),
            Provenance::Unverified { .. } => format!(
                "{}: taken as is from {}; provenance NOT verified",
                self.release.full_name,
                self.root.display()
            ),
        }
    }
}

/// The contents of `upstream-hashes/SHA256SUMS` (for `sha256sum -c`).
pub const SHA256SUMS: &str = include_str!("../SHA256SUMS");

/// The contents of `upstream-hashes/SHA512SUMS` (for `sha512sum -c`).
pub const SHA512SUMS: &str = include_str!("../SHA512SUMS");

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses a `sha256sum`-style file strictly: `<hex>  <name>` per line.
    fn parse_sums(text: &str, hex_len: usize) -> Vec<(String, String)> {
        assert!(text.ends_with('\n'), "sums file must end with a newline");
        text.lines()
            .map(|line| {
                let (digest, name) = line
                    .split_once("  ")
                    .unwrap_or_else(|| panic!("no two-space separator in {line:?}"));
                assert_eq!(digest.len(), hex_len, "digest length in {line:?}");
                assert!(
                    digest
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                    "digest is not lowercase hex in {line:?}"
                );
                assert!(!name.starts_with(' ') && !name.contains('/'), "{line:?}");
                (digest.to_string(), name.to_string())
            })
            .collect()
    }

    fn expected(f: impl Fn(&Release) -> &'static str) -> Vec<(String, String)> {
        releases()
            .iter()
            .map(|r| (f(r).to_string(), r.file_name.to_string()))
            .collect()
    }

    #[test]
    fn sha256sums_file_matches_constants() {
        assert_eq!(parse_sums(SHA256SUMS, 64), expected(|r| r.sha256));
    }

    #[test]
    fn sha512sums_file_matches_constants() {
        assert_eq!(parse_sums(SHA512SUMS, 128), expected(|r| r.sha512));
    }

    #[test]
    fn constants_are_consistent() {
        for r in releases() {
            assert_eq!(r.file_name, format!("{}.tar.gz", r.full_name));
            assert!(r.full_name.starts_with(r.name));
            assert!(!r.full_name.ends_with('/'));
            assert!(!r.mirrors.is_empty());
            for url in r.mirrors {
                assert!(url.ends_with(&format!("/{}", r.file_name)), "{url}");
                assert!(url.starts_with("http://") || url.starts_with("https://"));
            }
            assert_eq!(release(r.name), Some(r));
        }
        assert_eq!(release("qmail"), None);
    }

    #[test]
    fn a_tree_says_where_it_came_from() {
        let given = SourceTree::unverified(&NETQMAIL, "/src/nq");
        assert!(!given.is_verified());
        assert_eq!(given.digest(), "unverified: /src/nq");
        assert_eq!(
            given.provenance_note(),
            "netqmail-1.06: taken as is from /src/nq; provenance NOT verified"
        );
        let verified = SourceTree {
            provenance: Provenance::Verified {
                sha256: MESS822.sha256.to_string(),
            },
            release: &MESS822,
            root: "/w/mess822-0.58".into(),
        };
        assert!(verified.is_verified());
        assert_eq!(verified.digest(), format!("sha256:{}", MESS822.sha256));
        assert!(verified
            .provenance_note()
            .starts_with("mess822-0.58: unpacked from mess822-0.58.tar.gz (size and SHA-256 "));
    }
}
