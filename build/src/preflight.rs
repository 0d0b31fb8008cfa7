//! Checks made before anything is compiled: the prefix, mess822 home and
//! destdir are usable, the ids are not dangerous, `SOURCE_DATE_EPOCH` is
//! a number.

use std::path::{Path, PathBuf};

use crate::install::SYMLINK_HINT;
use crate::safefs::{has_dot_component, writable};
use crate::{ids, io_err, BuildError, IdMap};

/// The install paths of a build, absolute and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallPaths {
    /// `--prefix`.
    pub prefix: PathBuf,
    /// mess822's home (`--mess822-home`, default `PREFIX/mess822`).
    pub mess822_home: PathBuf,
    /// `--destdir`, made absolute.
    pub destdir: Option<PathBuf>,
}

fn invalid(s: String) -> BuildError {
    BuildError::Invalid(s)
}

/// Check the install paths before anything is built, and return them
/// absolute:
///
/// * none of them may have a `.` or `..` component (a `..` would install
///   outside the destdir);
/// * the prefix and mess822 home must be absolute and must not be `/`
///   (qmail needs a directory of its own);
/// * every existing component of `DESTDIR/PREFIX` (and of a mess822 home
///   outside the prefix) must be a directory, and not a symbolic link
///   unless `allow_symlinked_prefix`;
/// * the directory itself, or if it does not exist yet its nearest
///   existing ancestor, must be writable by this process; without a
///   destdir that ancestor must be its parent (nothing outside the
///   prefix is created).
pub fn check_install_paths(
    prefix: &Path,
    mess822_home: Option<&Path>,
    destdir: Option<&Path>,
    allow_symlinked_prefix: bool,
) -> Result<InstallPaths, BuildError> {
    let given = [
        ("--prefix", Some(prefix)),
        ("--mess822-home", mess822_home),
        ("--destdir", destdir),
    ];
    for (what, p) in given {
        let Some(p) = p else { continue };
        if has_dot_component(p) {
            return Err(invalid(format!(
                "{what} {}: has a `.` or `..` component; give the path without them (a `..` could install outside it)",
                p.display()
            )));
        }
        if what == "--destdir" {
            continue;
        }
        if !p.is_absolute() {
            return Err(invalid(format!(
                "{what} {}: must be an absolute path (it is compiled into the programs)",
                p.display()
            )));
        }
        if p.parent().is_none() {
            return Err(invalid(format!(
                "{what} {}: refusing to install into the root directory itself; give qmail a directory of its own, e.g. /var/qmail",
                p.display()
            )));
        }
    }
    let destdir = match destdir {
        Some(d) if d.is_relative() => Some(
            std::env::current_dir()
                .map_err(io_err(Path::new(".")))?
                .join(d),
        ),
        d => d.map(Path::to_path_buf),
    };
    let paths = InstallPaths {
        prefix: prefix.to_path_buf(),
        mess822_home: mess822_home
            .map(Path::to_path_buf)
            .unwrap_or_else(|| prefix.join("mess822")),
        destdir,
    };
    check_root(&paths.prefix, "--prefix", &paths, allow_symlinked_prefix)?;
    if !paths.mess822_home.starts_with(&paths.prefix) {
        check_root(
            &paths.mess822_home,
            "--mess822-home",
            &paths,
            allow_symlinked_prefix,
        )?;
    }
    Ok(paths)
}

/// The checks of [`check_install_paths`] for one install root.
fn check_root(
    root: &Path,
    what: &str,
    paths: &InstallPaths,
    follow: bool,
) -> Result<(), BuildError> {
    let (staged, label) = match &paths.destdir {
        Some(d) => (
            d.join(root.strip_prefix("/").unwrap_or(root)),
            format!("{what} {} under --destdir {}", root.display(), d.display()),
        ),
        None => (root.to_path_buf(), format!("{what} {}", root.display())),
    };
    let mut nearest = PathBuf::from("/");
    let mut cur = PathBuf::from("/");
    for c in staged.components().skip(1) {
        cur.push(c);
        let meta = match std::fs::symlink_metadata(&cur) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(e) => return Err(io_err(&cur)(e)),
        };
        let meta = if meta.file_type().is_symlink() {
            if !follow {
                return Err(invalid(format!(
                    "{label}: {} is a symbolic link; refusing to follow it{SYMLINK_HINT}",
                    cur.display()
                )));
            }
            match std::fs::metadata(&cur) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) => return Err(io_err(&cur)(e)),
            }
        } else {
            meta
        };
        if !meta.is_dir() {
            return Err(invalid(format!(
                "{label}: {} exists and is not a directory",
                cur.display()
            )));
        }
        nearest = cur.clone();
    }
    if nearest != staged && paths.destdir.is_none() {
        if let Some(parent) = staged.parent().filter(|p| *p != nearest) {
            return Err(invalid(format!(
                "{label}: its parent directory {} does not exist (the build creates nothing outside the prefix)",
                parent.display()
            )));
        }
    }
    if !writable(&nearest) {
        // SAFETY: geteuid cannot fail.
        let uid = unsafe { libc::geteuid() };
        return Err(invalid(if nearest == staged {
            format!(
                "{label}: {} is not writable by this user (uid {uid})",
                nearest.display()
            )
        } else {
            format!(
                "{label}: {} is not writable by this user (uid {uid}), so {} cannot be created",
                nearest.display(),
                staged.display()
            )
        }));
    }
    Ok(())
}

/// The qmail users other than `root` that `ids` gives uid 0.
pub fn root_users(ids: &IdMap) -> Vec<&'static str> {
    ids::USERS
        .iter()
        .zip(ids.uids)
        .filter(|(n, uid)| **n != "root" && *uid == 0)
        .map(|(n, _)| *n)
        .collect()
}

/// Refuse ids that give qmail users other than `root` uid 0, unless
/// `allow` (`--allow-root-ids`); `how` says where they came from. With
/// `allow`, returns the warning to print.
pub fn check_root_ids(ids: &IdMap, how: &str, allow: bool) -> Result<Option<String>, BuildError> {
    let users = root_users(ids);
    if users.is_empty() {
        return Ok(None);
    }
    let why = format!(
        "{how}, the qmail users {} would get uid 0. qmail keeps its parts apart by uid: with these ids \
         qmail-queue is installed setuid root and qmail-send, qmail-smtpd (qmaild), qmail-remote (qmailr) \
         and the logger (qmaill) run as root, so a bug in any of them, or in what they parse from the \
         network, gives root",
        users.join(" ")
    );
    if allow {
        return Ok(Some(format!(
            "WARNING: {why} (allowed by --allow-root-ids)"
        )));
    }
    Err(invalid(format!(
        "{why}. Run the build as an unprivileged user, create the qmail users, or give --uid-map; \
         give --allow-root-ids only to accept this"
    )))
}

/// `SOURCE_DATE_EPOCH` (seconds since 1970), default 0: the time every
/// installed path is stamped with.
pub fn source_date_epoch() -> Result<i64, BuildError> {
    match std::env::var_os("SOURCE_DATE_EPOCH") {
        None => Ok(0),
        Some(v) => v
            .to_str()
            .and_then(|s| s.parse::<i64>().ok())
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                invalid(format!(
                    "SOURCE_DATE_EPOCH={v:?}: not a whole number of seconds since 1970"
                ))
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(prefix: &str, m8: Option<&str>, destdir: Option<&Path>) -> String {
        check_install_paths(Path::new(prefix), m8.map(Path::new), destdir, false)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn dot_dot_and_root_prefixes_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let e = err("/../../x", None, Some(t.path()));
        assert!(e.starts_with("--prefix /../../x: has a `.` or `..`"), "{e}");
        let e = err("/opt/q", Some("/opt/./m"), None);
        assert!(e.starts_with("--mess822-home /opt/./m: has"), "{e}");
        let d = t.path().join("d/../..");
        let e = err("/opt/q", None, Some(&d));
        assert!(
            e.contains(&format!("--destdir {}: has", d.display())),
            "{e}"
        );
        let e = err("/", None, None);
        assert!(
            e.contains("--prefix /: refusing to install into the root directory"),
            "{e}"
        );
        let e = err("/", None, Some(t.path()));
        assert!(e.contains("--prefix /: refusing"), "{e}");
        let e = err("opt/q", None, None);
        assert!(e.contains("must be an absolute path"), "{e}");
    }

    #[test]
    fn a_file_prefix_a_missing_parent_and_links_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let file = t.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let e = err(file.to_str().unwrap(), None, None);
        assert!(
            e.contains(&format!("{} exists and is not a directory", file.display())),
            "{e}"
        );
        let deep = t.path().join("no/such/q");
        let e = err(deep.to_str().unwrap(), None, None);
        assert!(
            e.contains(&format!(
                "its parent directory {} does not exist",
                t.path().join("no/such").display()
            )),
            "{e}"
        );
        // Staging creates the missing directories.
        let dest = t.path().join("dest");
        check_install_paths(Path::new("/no/such/q"), None, Some(&dest), false).unwrap();
        let real = t.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let via = link.join("q");
        let e = err(via.to_str().unwrap(), None, None);
        assert!(
            e.contains(&format!("{} is a symbolic link", link.display()))
                && e.contains("--allow-symlinked-prefix"),
            "{e}"
        );
        check_install_paths(&via, None, None, true).unwrap();
        let e = err("/opt/q", None, Some(&link));
        assert!(e.contains("is a symbolic link"), "{e}");
    }

    #[test]
    fn root_ids_are_refused_unless_allowed() {
        let mut ids = IdMap::uniform(7000, 7000);
        assert_eq!(check_root_ids(&ids, "x", false).unwrap(), None);
        ids.uids[3] = 0; // "root" itself is uid 0 normally.
        assert_eq!(check_root_ids(&ids, "x", false).unwrap(), None);
        ids.uids[5] = 0; // qmailq
        let e = check_root_ids(&ids, "with --uid-map", false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("qmail users qmailq would get uid 0")
                && e.contains("setuid root")
                && e.contains("--allow-root-ids"),
            "{e}"
        );
        let w = check_root_ids(&ids, "x", true).unwrap().unwrap();
        assert!(w.starts_with("WARNING: "), "{w}");
    }

    #[test]
    fn a_relative_destdir_is_made_absolute() {
        let t = tempfile::tempdir().unwrap();
        let prefix = t.path().join("q");
        let cwd = std::env::current_dir().unwrap();
        let abs = cwd.join("qtk-rel-dest");
        // Where the tests run may be read-only to this user: then the
        // refusal names the absolute destdir.
        match check_install_paths(&prefix, None, Some(Path::new("qtk-rel-dest")), false) {
            Ok(p) => assert_eq!(p.destdir, Some(abs.clone())),
            Err(e) => assert!(
                e.to_string()
                    .contains(&format!("under --destdir {}: ", abs.display())),
                "{e}"
            ),
        }
        assert!(!abs.exists(), "created by the check");
        let p = check_install_paths(&prefix, None, Some(t.path()), false).unwrap();
        assert_eq!(p.destdir.as_deref(), Some(t.path()));
        assert_eq!(p.mess822_home, prefix.join("mess822"));
    }

    #[test]
    fn followed_links_that_dangle_are_missing_and_loops_or_bad_names_are_errors() {
        let t = tempfile::tempdir().unwrap();
        let dangling = t.path().join("dangling");
        std::os::unix::fs::symlink(t.path().join("missing"), &dangling).unwrap();
        let prefix = Path::new("/opt/qtk-preflight");
        check_install_paths(prefix, None, Some(&dangling), true).unwrap();
        let looped = t.path().join("loop");
        std::os::unix::fs::symlink(&looped, &looped).unwrap();
        let err = check_install_paths(prefix, None, Some(&looped), true).unwrap_err();
        assert!(
            matches!(&err, BuildError::Io { path, .. } if path == &looped),
            "{err}"
        );
        let long = t.path().join("x".repeat(300));
        let err = check_install_paths(prefix, None, Some(&long), false).unwrap_err();
        assert!(
            matches!(&err, BuildError::Io { path, .. } if path == &long),
            "{err}"
        );
    }

    #[test]
    fn source_date_epoch_is_read_from_the_environment() {
        let name = "preflight::tests::child_source_date_epoch";
        for (v, want) in [
            ("1234567", "1234567"),
            ("0", "0"),
            ("-5", "error"),
            ("x", "error"),
        ] {
            crate::testutil::run_self(name, &[("SOURCE_DATE_EPOCH", v), ("QTK_WANT", want)]);
        }
    }

    #[test]
    #[ignore = "run by source_date_epoch_is_read_from_the_environment"]
    fn child_source_date_epoch() {
        let want = std::env::var("QTK_WANT").unwrap();
        match source_date_epoch() {
            Ok(n) => assert_eq!(n.to_string(), want),
            Err(e) => {
                assert_eq!(want, "error", "{e}");
                assert!(e.to_string().starts_with("SOURCE_DATE_EPOCH="), "{e}");
            }
        }
    }

    /// An unwritable prefix, and one that cannot be created, are refused
    /// saying which (for a user the permissions apply to).
    fn check_unwritable() {
        use std::os::unix::fs::PermissionsExt;
        if crate::testutil::euid_is_root() {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let ro = t.path().join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        let err = check_install_paths(&ro, None, None, false)
            .unwrap_err()
            .to_string();
        let want = format!("{} is not writable by this user (uid ", ro.display());
        assert!(
            err.contains(&want) && !err.contains("cannot be created"),
            "{err}"
        );
        let new = ro.join("q");
        let err = check_install_paths(&new, None, None, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("so {} cannot be created", new.display())),
            "{err}"
        );
    }

    #[test]
    fn an_unwritable_prefix_is_refused_saying_why() {
        check_unwritable();
        crate::testutil::run_as_nobody("preflight::tests::child_unwritable");
    }

    #[test]
    #[ignore = "run by an_unwritable_prefix_is_refused_saying_why"]
    fn child_unwritable() {
        check_unwritable();
    }
}
