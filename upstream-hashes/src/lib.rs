//! Shared by every stage of the pipeline (fetch → verify → unpack →
//! sources → patch → build → test): the upstream releases this toolkit
//! packages, netqmail-1.06, mess822-0.58 and notqmail-1.09, and [`SourceTree`], an
//! unpacked tree of one of them.
//!
//! For each [`Release`]: its short name (`netqmail`), its full name
//! (`netqmail-1.06`, also the directory the tarball unpacks into), the
//! digest of its pristine tree and, where one is known, its [`Tarball`]:
//! the distfile name, the exact size and the SHA-256 and SHA-512 of the
//! compressed `.tar.gz`, and the mirrors to download it from, in the order
//! packagers use them. The same digests are kept in `SHA256SUMS`,
//! `SHA512SUMS` and `TREESUMS` next to this crate's `Cargo.toml` (the first
//! two in the format `sha256sum -c` and `sha512sum -c` accept); a unit test
//! keeps the files and the constants in agreement.
//!
//! notqmail-1.09 has no tarball here: it is never fetched, only given
//! (`--source notqmail=DIR`), and recognised by its tree digest.
//!
//! Beware of repacks: at least one distribution ships a different
//! `netqmail-1.06.tar.gz` (133282 bytes). Only the digests here are
//! upstream.
#![warn(missing_docs)]

use std::path::PathBuf;

/// The distfile of a release: everything needed to fetch and check it
/// and to unpack it (fetch, verify and unpack work on this alone).
///
/// The constants in [`releases`] describe the real upstream tarballs;
/// other code (tests, mirrors given on a command line) may build its own
/// `Tarball` with different mirrors or digests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tarball {
    /// The release's short name, e.g. `netqmail`.
    pub name: &'static str,
    /// File name of the distfile, e.g. `netqmail-1.06.tar.gz`.
    pub file_name: &'static str,
    /// The release's full name, `NAME-VERSION`: the single top-level
    /// directory every archive member lives under (without a trailing
    /// slash).
    pub full_name: &'static str,
    /// Exact size of the `.tar.gz` in bytes.
    pub size: u64,
    /// SHA-256 of the `.tar.gz`, lowercase hex.
    pub sha256: &'static str,
    /// SHA-512 of the `.tar.gz`, lowercase hex.
    pub sha512: &'static str,
    /// Download URLs, tried in this order.
    pub mirrors: &'static [&'static str],
}

/// One upstream release, and how a tree of it is recognised as genuine:
/// by its tarball's digests ([`Tarball`], fetched and verified before it
/// is unpacked) or, for a release of which no tarball digest is known here
/// (notqmail-1.09), by the digest of its tree ([`Release::tree_sha256`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Release {
    /// Short name used on command lines, e.g. `netqmail` in
    /// `--source netqmail=DIR`.
    pub name: &'static str,
    /// The release's full name, `NAME-VERSION`, e.g. `netqmail-1.06`: the
    /// directory a tree of it is unpacked or patched into, and the prefix
    /// of its patch files' names.
    pub full_name: &'static str,
    /// A file every genuine source tree of this release has directly in its
    /// top directory (`qmail-local.c`, `822date.c`); used to recognise an
    /// unpacked tree given by hand.
    pub marker_file: &'static str,
    /// The distfile, if this toolkit can fetch and verify one.
    pub tarball: Option<Tarball>,
    /// SHA-256 of the pristine tree (every file's path, executable bit and
    /// contents, as `qmail_verify::tree_sha256` computes it and as the
    /// build manifest records `tree_sha256`), lowercase hex: a tree given
    /// with `--source` that has this digest is the release, byte for byte.
    pub tree_sha256: Option<&'static str>,
}

impl Release {
    /// The distfile's name, or the full name for a release without one.
    pub fn file_name(&self) -> &'static str {
        self.tarball.map_or(self.full_name, |t| t.file_name)
    }
}

const NETQMAIL_TARBALL: Tarball = Tarball {
    name: "netqmail",
    file_name: "netqmail-1.06.tar.gz",
    full_name: "netqmail-1.06",
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

/// netqmail-1.06.
pub const NETQMAIL: Release = Release {
    name: "netqmail",
    full_name: "netqmail-1.06",
    marker_file: "qmail-local.c",
    tarball: Some(NETQMAIL_TARBALL),
    tree_sha256: Some(NETQMAIL_TREE_SHA256),
};

const MESS822_TARBALL: Tarball = Tarball {
    name: "mess822",
    file_name: "mess822-0.58.tar.gz",
    full_name: "mess822-0.58",
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

/// mess822-0.58.
pub const MESS822: Release = Release {
    name: "mess822",
    full_name: "mess822-0.58",
    marker_file: "822date.c",
    tarball: Some(MESS822_TARBALL),
    tree_sha256: Some(MESS822_TREE_SHA256),
};

/// notqmail-1.09 (2024): no tarball digest is known here, so it is never
/// fetched; a tree given with `--source notqmail=DIR` is recognised by its
/// tree digest (`TREESUMS`), taken from `git archive` of the tag
/// `notqmail-1.09` of github.com/notqmail/notqmail.
pub const NOTQMAIL: Release = Release {
    name: "notqmail",
    full_name: "notqmail-1.09",
    marker_file: "qmail-local.c",
    tarball: None,
    tree_sha256: Some(NOTQMAIL_TREE_SHA256),
};

const NETQMAIL_TREE_SHA256: &str =
    "dade9df7a1ab924b3dc184a34e84be264a49434558712884110b22164ef16d52";
const MESS822_TREE_SHA256: &str =
    "6431ff95cf1dbe6b2000f1d73cb597267e6987c342e628d43931c3ffaaf03295";
const NOTQMAIL_TREE_SHA256: &str =
    "0764504bd18b2eb948e3718723ddad3f6e773e21c0ed2709676b110b7d14723a";

static RELEASES: [Release; 3] = [NETQMAIL, MESS822, NOTQMAIL];
static TARBALLS: [Tarball; 2] = [NETQMAIL_TARBALL, MESS822_TARBALL];

/// Every upstream release: netqmail, mess822, notqmail.
pub fn releases() -> &'static [Release] {
    &RELEASES
}

/// The releases fetched and verified by default (those with a tarball):
/// netqmail and mess822. notqmail is used only when its tree is given.
pub fn default_releases() -> impl Iterator<Item = &'static Release> {
    RELEASES.iter().filter(|r| r.tarball.is_some())
}

/// Every upstream tarball, netqmail first (what `SHA256SUMS` lists).
pub fn tarballs() -> &'static [Tarball] {
    &TARBALLS
}

/// The release with short name `name` (`netqmail`, `mess822`,
/// `notqmail`), if any.
pub fn release(name: &str) -> Option<&'static Release> {
    RELEASES.iter().find(|r| r.name == name)
}

/// Whether a test that needs the tree or file named by the environment
/// variable `var` must fail, rather than print `SKIPPED:`, when `var` is
/// not set: only with `QMAIL_REQUIRE_UPSTREAM=1`, and only for the trees
/// the run proves. A run proves one qmail (`cargo xtask test` passes one):
/// netqmail-1.06 (`QMAIL_SOURCE_NETQMAIL`) unless `QMAIL_SOURCE_NOTQMAIL`
/// is given, and always mess822 (`QMAIL_SOURCE_MESS822`). A notqmail tree
/// is required only where it is given, so never missing, and a
/// third-party patch file (`QMAIL_PATCH_*`) is never required.
pub fn source_required(var: &str) -> bool {
    if std::env::var("QMAIL_REQUIRE_UPSTREAM").as_deref() != Ok("1") {
        return false;
    }
    let set = |v: &str| std::env::var_os(v).is_some_and(|x| !x.is_empty());
    match var {
        "QMAIL_SOURCE_NETQMAIL" => !set("QMAIL_SOURCE_NOTQMAIL"),
        "QMAIL_SOURCE_MESS822" => true,
        _ => false,
    }
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
    /// A tree given by hand (`--source name=DIR`) whose tree digest is the
    /// release's pinned [`Release::tree_sha256`]: the pristine release,
    /// file for file.
    TreeMatched {
        /// The directory given.
        dir: PathBuf,
        /// Its tree digest (lowercase hex).
        tree_sha256: String,
    },
    /// An unpacked tree given by hand (`--source name=DIR`, or
    /// `QMAIL_SOURCE_<NAME>` in the tests), used as is: it matches no
    /// pinned digest (or was not checked).
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

    /// True if the tree was unpacked from a verified upstream tarball or
    /// matches the release's pinned tree digest.
    pub fn is_verified(&self) -> bool {
        !matches!(self.provenance, Provenance::Unverified { .. })
    }

    /// The provenance as a build manifest records it: `sha256:HEX` of the
    /// verified tarball, `tree-sha256:HEX` of a tree that matches the
    /// pinned tree digest, or `unverified: DIR` with the directory given.
    pub fn digest(&self) -> String {
        match &self.provenance {
            Provenance::Verified { sha256 } => format!("sha256:{sha256}"),
            Provenance::TreeMatched { tree_sha256, .. } => format!("tree-sha256:{tree_sha256}"),
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
                self.release.full_name,
                self.release.file_name(),
                sha256
            ),
            Provenance::TreeMatched { tree_sha256, .. } => format!(
                "{}: taken from {}; its tree matches {} (tree SHA-256 {} verified)",
                self.release.full_name,
                self.root.display(),
                self.release.full_name,
                tree_sha256
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

/// The contents of `upstream-hashes/TREESUMS`: `<tree SHA-256>  <full
/// name>` per release, the digests of the pristine trees.
pub const TREESUMS: &str = include_str!("../TREESUMS");

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

    fn expected(f: impl Fn(&Tarball) -> &'static str) -> Vec<(String, String)> {
        tarballs()
            .iter()
            .map(|r| (f(r).to_string(), r.file_name.to_string()))
            .collect()
    }

    #[test]
    fn treesums_file_matches_constants() {
        let want: Vec<_> = releases()
            .iter()
            .map(|r| (r.tree_sha256.unwrap().to_string(), r.full_name.to_string()))
            .collect();
        assert_eq!(parse_sums(TREESUMS, 64), want);
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
            assert_eq!(release(r.name), Some(r));
            assert!(r.full_name.starts_with(r.name));
            if let Some(t) = r.tarball {
                assert_eq!((t.name, t.full_name), (r.name, r.full_name));
                assert_eq!(r.file_name(), t.file_name);
            } else {
                assert_eq!(r.file_name(), r.full_name);
            }
        }
        let fetched: Vec<_> = default_releases().map(|r| r.name).collect();
        assert_eq!(fetched, ["netqmail", "mess822"]);
        assert_eq!(
            release("notqmail").map(|r| r.full_name),
            Some("notqmail-1.09")
        );
        for r in tarballs() {
            assert_eq!(r.file_name, format!("{}.tar.gz", r.full_name));
            assert!(r.full_name.starts_with(r.name));
            assert!(!r.full_name.ends_with('/'));
            assert!(!r.mirrors.is_empty());
            for url in r.mirrors {
                assert!(url.ends_with(&format!("/{}", r.file_name)), "{url}");
                assert!(url.starts_with("http://") || url.starts_with("https://"));
            }
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
                sha256: MESS822_TARBALL.sha256.to_string(),
            },
            release: &MESS822,
            root: "/w/mess822-0.58".into(),
        };
        let matched = SourceTree {
            provenance: Provenance::TreeMatched {
                dir: "/src/nq".into(),
                tree_sha256: NOTQMAIL_TREE_SHA256.to_string(),
            },
            release: &NOTQMAIL,
            root: "/src/nq".into(),
        };
        assert!(matched.is_verified());
        assert_eq!(
            matched.digest(),
            format!("tree-sha256:{NOTQMAIL_TREE_SHA256}")
        );
        assert_eq!(
            matched.provenance_note(),
            format!("notqmail-1.09: taken from /src/nq; its tree matches notqmail-1.09 (tree SHA-256 {NOTQMAIL_TREE_SHA256} verified)")
        );
        assert!(verified.is_verified());
        assert_eq!(
            verified.digest(),
            format!("sha256:{}", MESS822_TARBALL.sha256)
        );
        assert!(verified
            .provenance_note()
            .starts_with("mess822-0.58: unpacked from mess822-0.58.tar.gz (size and SHA-256 "));
    }
}
