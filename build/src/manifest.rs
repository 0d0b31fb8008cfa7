//! The build manifest: what was built from what, and every installed
//! file with its mode, intended owner and digest.
//!
//! Written as JSON to `PREFIX/share/qmail-toolkit/manifest.json` (under
//! `DESTDIR` when staging). Neither package's `hier()` lists
//! `PREFIX/share`, so neither `instcheck` looks at it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{io_err, BuildError};

/// Where the manifest goes, relative to the prefix.
pub const MANIFEST_PATH: &str = "share/qmail-toolkit/manifest.json";

/// The largest manifest [`Manifest::read`] accepts, in bytes.
pub const MAX_LEN: u64 = 16 << 20;

/// The manifest format version.
pub const FORMAT: u32 = 1;

/// The whole manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// The tool that wrote it (`qmail-build <version>`).
    pub tool: String,
    /// The prefix the programs were compiled for (qmail's `conf-qmail`).
    pub prefix: String,
    /// mess822's `conf-home`.
    pub mess822_home: String,
    /// SHA-256 over every input of the build (sources, patches, compiler,
    /// options); a build with the same value has nothing to do.
    pub inputs_sha256: String,
    /// The upstream releases built.
    pub releases: Vec<ReleaseRecord>,
    /// The patches applied, in order.
    pub patches: Vec<PatchRecord>,
    /// The compiler.
    pub compiler: CompilerRecord,
    /// The qmail ids: compiled into netqmail; for notqmail (which looks
    /// the users up by name when its programs start) only the ids the
    /// owners below are recorded (and, as root without a destdir, applied)
    /// with.
    pub ids: IdsRecord,
    /// Whether the installer applied the intended ownership (only as root
    /// without a destdir); otherwise every file belongs to the installing
    /// user and `files[].user/group` say what root should `chown` later.
    pub ownership_applied: bool,
    /// Every installed directory, file and fifo, in install order.
    pub files: Vec<FileRecord>,
}

/// One upstream release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRecord {
    /// `netqmail-1.06`, `notqmail-1.09` or `mess822-0.58`.
    pub name: String,
    /// `sha256:HEX` of the verified tarball, or `unverified: DIR`.
    pub digest: String,
    /// SHA-256 over the unpacked tree's files (names, modes, contents).
    pub tree_sha256: String,
}

/// One applied patch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchRecord {
    /// Its file name, e.g. `mess822-0.58-nonroot.patch`.
    pub file: String,
    /// SHA-256 of its bytes.
    pub sha256: String,
    /// `third-party` (a `--with-patch` file, applied first) or
    /// `generated` (ours).
    #[serde(default = "generated")]
    pub origin: String,
    /// The `-pN` it was applied with.
    #[serde(default = "strip_one")]
    pub strip: u32,
}

fn generated() -> String {
    "generated".into()
}

fn strip_one() -> u32 {
    1
}

impl PatchRecord {
    /// The record of one of our generated patches.
    pub fn generated(p: &qmail_patches::Patch) -> Self {
        PatchRecord {
            file: p.file_name.clone(),
            sha256: p.sha256(),
            origin: generated(),
            strip: 1,
        }
    }

    /// The record of a third-party patch of the stack.
    pub fn third_party(p: &qmail_patches::ThirdPartyPatch) -> Self {
        PatchRecord {
            file: p.file_name.clone(),
            sha256: p.sha256.clone(),
            origin: "third-party".into(),
            strip: p.strip,
        }
    }
}

/// The compiler and flags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompilerRecord {
    /// `--cc`.
    pub cc: String,
    /// First line of `cc --version`.
    pub version: String,
    /// First line of `conf-cc`.
    pub conf_cc: String,
    /// First line of `conf-ld`.
    pub conf_ld: String,
}

/// The qmail ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdsRecord {
    /// Where they came from: `system`, `uid-map` or `build-user`.
    pub source: String,
    /// User name → uid.
    pub users: BTreeMap<String, u32>,
    /// Group name → gid.
    pub groups: BTreeMap<String, u32>,
}

/// A user or group: name and numeric id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// The qmail user or group name.
    pub name: String,
    /// Its numeric id.
    pub id: u32,
}

/// One installed path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// Absolute path as the programs see it (under the prefix, without
    /// the destdir).
    pub path: String,
    /// `netqmail-1.06` or `notqmail-1.09`, `mess822-0.58`, `qmail-toolkit` (qtraceaddr and
    /// its man page) or `qmail-build` (leapsecs.dat, the manifest's
    /// directory and the directories above them).
    pub package: String,
    /// `dir`, `file` or `fifo`.
    pub kind: String,
    /// Permission bits in octal, e.g. `0755`, `02755`.
    pub mode: String,
    /// Intended owner; `null` = whoever installs (upstream uid -1).
    pub user: Option<Owner>,
    /// Intended group; `null` = whoever installs (upstream gid -1).
    pub group: Option<Owner>,
    /// SHA-256 of the contents (files only).
    pub sha256: Option<String>,
}

impl FileRecord {
    /// A directory the build itself adds (mode 0755, owned by whoever
    /// installs), such as `share/qmail-toolkit`.
    pub fn build_dir(path: String) -> Self {
        FileRecord {
            path,
            package: "qmail-build".into(),
            kind: "dir".into(),
            mode: "0755".into(),
            user: None,
            group: None,
            sha256: None,
        }
    }
}

/// A mode as the manifest writes it: octal with a leading 0 (`0755`,
/// `02755`, `0644`).
pub fn mode_string(mode: u32) -> String {
    format!("0{:o}", mode & 0o7777)
}

impl Manifest {
    /// Read a manifest; `Ok(None)` if there is none. A symbolic link,
    /// FIFO or other non-regular file, or more than 16 MiB, is refused.
    pub fn read(path: &Path) -> Result<Option<Manifest>, BuildError> {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let f = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(path)(e)),
        };
        let meta = f.metadata().map_err(io_err(path))?;
        if !meta.is_file() || meta.len() > MAX_LEN {
            return Err(BuildError::Invalid(format!(
                "{}: not a regular file of at most {MAX_LEN} bytes",
                path.display()
            )));
        }
        let mut bytes = Vec::new();
        f.take(MAX_LEN)
            .read_to_end(&mut bytes)
            .map_err(io_err(path))?;
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            BuildError::Invalid(format!("{}: not a build manifest: {e}", path.display()))
        })
    }

    /// The JSON text (pretty, with a final newline; byte-stable).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::PatchRecord;

    #[test]
    fn a_patch_record_of_an_older_manifest_reads_as_ours_with_p1() {
        // Manifests written before --with-patch have no origin or strip: a
        // rebuild must still read them (and then find the inputs changed).
        let r: PatchRecord =
            serde_json::from_str(r#"{"file":"netqmail-1.06-realrcptto.patch","sha256":"ab"}"#)
                .unwrap();
        assert_eq!((r.origin.as_str(), r.strip), ("generated", 1));
        let t: PatchRecord = serde_json::from_str(
            r#"{"file":"tls.patch","sha256":"cd","origin":"third-party","strip":0}"#,
        )
        .unwrap();
        assert_eq!((t.origin.as_str(), t.strip), ("third-party", 0));
    }

    use super::*;

    fn sample() -> Manifest {
        Manifest {
            format: FORMAT,
            tool: "qmail-build 0.1.0".into(),
            prefix: "/var/qmail".into(),
            mess822_home: "/usr/local".into(),
            inputs_sha256: "ab".repeat(32),
            releases: vec![ReleaseRecord {
                name: "netqmail-1.06".into(),
                digest: "sha256:00".into(),
                tree_sha256: "11".into(),
            }],
            patches: vec![],
            compiler: CompilerRecord {
                cc: "cc".into(),
                version: "gcc 12".into(),
                conf_cc: "cc -O2".into(),
                conf_ld: "cc -s".into(),
            },
            ids: IdsRecord {
                source: "build-user".into(),
                users: BTreeMap::from([("alias".into(), 7001)]),
                groups: BTreeMap::from([("qmail".into(), 7100)]),
            },
            ownership_applied: false,
            files: vec![FileRecord::build_dir("/var/qmail/share".into())],
        }
    }

    #[test]
    fn a_written_manifest_reads_back_and_a_missing_one_is_none() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("manifest.json");
        assert_eq!(Manifest::read(&p).unwrap(), None);
        let m = sample();
        let json = m.to_json();
        assert!(json.starts_with("{\n  \"format\": 1,\n") && json.ends_with("}\n"));
        std::fs::write(&p, &json).unwrap();
        assert_eq!(Manifest::read(&p).unwrap(), Some(m));
    }

    #[test]
    fn links_directories_fifos_big_files_and_garbage_are_refused_by_name() {
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("real.json");
        std::fs::write(&real, sample().to_json()).unwrap();
        let link = t.path().join("link.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = Manifest::read(&link).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}: ", link.display())), "{err}");
        let dir = t.path().join("dir.json");
        std::fs::create_dir(&dir).unwrap();
        let err = Manifest::read(&dir).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        // A FIFO without a writer does not block the read (after the link
        // check: a reader that follows links would also block here).
        let fifo = t.path().join("fifo.json");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        let err = Manifest::read(&fifo).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        // MAX_LEN bytes are read (and are no JSON); one more is refused.
        let big = t.path().join("big.json");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(MAX_LEN).unwrap();
        let err = Manifest::read(&big).unwrap_err().to_string();
        assert!(err.contains("not a build manifest"), "{err}");
        f.set_len(MAX_LEN + 1).unwrap();
        let err = Manifest::read(&big).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}: not a regular file of at most 16777216 bytes",
                big.display()
            )
        );
        let bad = t.path().join("bad.json");
        std::fs::write(&bad, "{\"format\": 1}").unwrap();
        let err = Manifest::read(&bad).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}: not a build manifest", bad.display())));
    }
}
