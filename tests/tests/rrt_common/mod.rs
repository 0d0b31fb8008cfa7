//! Fixtures shared by the realrcptto tests: small qmail worlds in temp
//! dirs (control files, users/cdb, passwd for nss_wrapper, home dirs).
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use qmail_difftest::cc::{self, Sanitize};
use qmail_difftest::oracle::c::{CDriver, COutcome, CVerdict, CheckOptions};
use qmail_difftest::oracle::sq::{SqBuild, SqOptions};

/// The unprivileged uid/gid used for EACCES cases.
pub const NOBODY: (u32, u32) = (65534, 65534);

pub fn driver() -> &'static CDriver {
    static D: OnceLock<CDriver> = OnceLock::new();
    D.get_or_init(|| CDriver::build(Sanitize::None).expect("building the realrcptto driver"))
}

pub fn asan_driver() -> &'static CDriver {
    static D: OnceLock<CDriver> = OnceLock::new();
    D.get_or_init(|| {
        CDriver::build(Sanitize::AddressUndefined).expect("building the ASan realrcptto driver")
    })
}

/// The errno-injecting LD_PRELOAD shim (tests/c/rrt-errno-shim.c), built
/// once per content into the cache dir.
pub fn shim() -> &'static Path {
    static S: OnceLock<PathBuf> = OnceLock::new();
    S.get_or_init(|| cc::errno_shim().unwrap_or_else(|e| panic!("building the errno shim: {e}")))
}

/// A qmail world: `root/qmail` is the qmail home, `root/homes/*` are user
/// homes, `root/passwd` is served through nss_wrapper.
pub struct World {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    passwd: Vec<String>,
    pub alias: String,
    pub brk: u8,
}

pub fn write(p: &Path, data: impl AsRef<[u8]>) {
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(p, data).unwrap();
}

pub fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

pub fn chown(p: &Path, uid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), None).unwrap();
}

impl World {
    /// me = locals = example.com; an alias user `alias` (uid 7790) whose
    /// home has no .qmail files; no users/cdb.
    pub fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        chmod(dir.path(), 0o755);
        let home = dir.path().join("qmail");
        let mut w = World {
            dir,
            home,
            passwd: Vec::new(),
            alias: "alias".into(),
            brk: b'-',
        };
        w.control("me", "example.com\n");
        w.control("locals", "example.com\n");
        w.user("alias", 7790);
        w
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn control(&self, name: &str, text: &str) {
        write(&self.home.join("control").join(name), text);
    }

    pub fn rm_control(&self, name: &str) {
        let _ = std::fs::remove_file(self.home.join("control").join(name));
    }

    /// A passwd user with a home dir `homes/NAME` owned by uid (mode 0755).
    pub fn user(&mut self, name: &str, uid: u32) -> PathBuf {
        let h = self.root().join("homes").join(name);
        std::fs::create_dir_all(&h).unwrap();
        chmod(&h, 0o755);
        chown(&h, uid);
        self.pw(name, uid, &h.display().to_string());
        h
    }

    /// A raw passwd entry.
    pub fn pw(&mut self, name: &str, uid: u32, dir: &str) {
        self.passwd
            .push(format!("{name}:x:{uid}:{uid}:{name}:{dir}:/bin/sh"));
    }

    /// A passwd entry for `name` (uid `uid`) whose home directory exists,
    /// owned by `uid`, inside `private/`, a directory (mode 700) that an
    /// unprivileged uid cannot search. Returns the home.
    pub fn unsearchable_home(&mut self, name: &str, uid: u32) -> PathBuf {
        let private = self.root().join("private");
        std::fs::create_dir_all(&private).unwrap();
        chmod(&private, 0o700);
        let home = private.join(name);
        std::fs::create_dir(&home).unwrap();
        chown(&home, uid);
        self.pw(name, uid, &home.display().to_string());
        home
    }

    pub fn homedir(&self, name: &str) -> PathBuf {
        self.root().join("homes").join(name)
    }

    /// Create a .qmail file (regular, mode 0644) in a user's home.
    pub fn dotqmail(&self, user: &str, name: &str) -> PathBuf {
        let p = self.homedir(user).join(name);
        write(&p, "./Maildir/\n");
        chmod(&p, 0o644);
        p
    }

    /// users/cdb from users/assign lines (qmail-newu rules U1–U7; the
    /// terminating "." is implied).
    pub fn assign(&self, lines: &[&str]) {
        let mut wild: Vec<u8> = Vec::new();
        let mut recs: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for l in lines {
            let b = l.as_bytes();
            let colon = b.iter().position(|&c| c == b':').unwrap();
            assert!(colon > 0);
            let name = &b[1..colon];
            let rest = &b[colon + 1..];
            let f: Vec<&[u8]> = rest.split(|&c| c == b':').collect();
            assert!(f.len() >= 7, "assign line needs 6 fields: {l}");
            let value = f[..6].join(&0u8);
            let mut key = b"!".to_vec();
            key.extend(name.iter().map(|c| c.to_ascii_lowercase()));
            if b[0] == b'+' {
                if let Some(&last) = name.last() {
                    if !wild.contains(&last) {
                        wild.push(last);
                    }
                }
            } else {
                key.push(0);
            }
            recs.push((key, value));
        }
        std::fs::create_dir_all(self.home.join("users")).unwrap();
        let f = std::fs::File::create(self.home.join("users/cdb")).unwrap();
        let mut c = cdb::CDBMake::new(f).unwrap();
        c.add(b"", &wild).unwrap();
        for (k, v) in &recs {
            c.add(k, v).unwrap();
        }
        c.finish().unwrap();
    }

    /// The passwd file (and the group file next to it), with the qmail
    /// accounts notqmail's qmail-lspawn looks up when it starts (qmailp,
    /// qmailq, the group nofiles) after the world's own entries: without
    /// them notqmail's patched programs accept every local recipient.
    pub fn passwd_file(&self) -> PathBuf {
        let p = self.root().join("passwd");
        let mut lines = self.passwd.clone();
        for (name, uid) in [("qmailp", 41004), ("qmailq", 41005)] {
            if !lines.iter().any(|l| l.starts_with(&format!("{name}:"))) {
                lines.push(format!("{name}:x:{uid}:41100:{name}:/nonexistent:/bin/sh"));
            }
        }
        write(&p, lines.join("\n") + "\n");
        let g = self.root().join("group");
        write(&g, "nogroup:x:65534:\nnofiles:x:41101:\n");
        p
    }

    pub fn opts(&self) -> CheckOptions {
        CheckOptions {
            passwd: Some(self.passwd_file()),
            group: Some(self.root().join("group")),
            ..CheckOptions::default()
        }
    }

    pub fn check_with(&self, addrs: &[&[u8]], opts: &CheckOptions) -> Vec<CVerdict> {
        let a: Vec<Vec<u8>> = addrs.iter().map(|x| x.to_vec()).collect();
        driver()
            .check(&self.home, self.brk, self.alias.as_bytes(), &a, opts)
            .unwrap()
    }

    pub fn check(&self, addrs: &[&str]) -> Vec<CVerdict> {
        let a: Vec<&[u8]> = addrs.iter().map(|x| x.as_bytes()).collect();
        self.check_with(&a, &self.opts())
    }

    /// The outcome for one address.
    pub fn one(&self, addr: &str) -> CVerdict {
        self.check(&[addr]).remove(0)
    }

    pub fn one_with(&self, addr: &str, opts: &CheckOptions) -> CVerdict {
        self.check_with(&[addr.as_bytes()], opts).remove(0)
    }
}

pub fn accept(v: &CVerdict) -> bool {
    v.outcome == COutcome::Accept
}

pub fn reject(v: &CVerdict) -> bool {
    v.outcome == COutcome::Reject
}

/// The world of the S tests (realrcptto_sq.rs, sq_sessions.rs): joe (uid
/// 1001) with .qmail-foo; alias user present; rcpthosts lists
/// example.com; the queue stub of `b` installed.
pub fn sq_world(b: &SqBuild) -> World {
    let mut w = World::new();
    w.user("joe", 1001);
    w.dotqmail("joe", ".qmail-foo");
    w.control("rcpthosts", "example.com\n");
    b.install_queue_stub(&w.home).unwrap();
    w
}

/// How the S tests start qmail-smtpd/qmail-qmtpd in `w`: its passwd and
/// group through nss_wrapper, `PROTO=TCP`, `TCPREMOTEIP=192.0.2.7`.
pub fn sq_opts(w: &World) -> SqOptions {
    SqOptions {
        passwd: Some(w.passwd_file()),
        group: Some(w.root().join("group")),
        ..SqOptions::default()
    }
    .with("PROTO", "TCP")
    .with("TCPREMOTEIP", "192.0.2.7")
}
