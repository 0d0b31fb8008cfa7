//! Shared fixtures: the resolution.md §12 configuration.
#![allow(dead_code)]

use qmail_resolver::{
    compile_assign, Config, ControlFiles, Controls, Resolver, StaticPasswd, UsersDb,
};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub const ME: &[u8] = b"mail.example.com\n";
pub const LOCALS: &[u8] = b"example.com\n  lead.example\nLocal.Org \t\ncrlf.example\r\n";
pub const PERCENTHACK: &[u8] = b"example.com\nph.net\n";
pub const VIRTUALDOMAINS: &[u8] = b"virt.org:vu\n.virt.org:sub\njoe@other.net:jo\nnoway.virt.org:\n.deep.virt.org:deep\ndup.org:first\ndup.org:second\nspace.org: sp\n:catch\nnocolon.org\nexample.com:shadowed\nx.example.com:Pre-Fix\n";

pub const ASSIGN: &[u8] = b"=joe:joe:1001:100:/home/joe:::
=Joe.Shmoe:joe:1001:100:/home/joe:-:shmoe:
=joe:dupe:1002:100:/home/dupe:::
+joe-:joe:1001:100:/home/joe:-::
+list-:lists:1003:100:/home/lists:-:list-:
+BIG:big:1004:100:/home/big:-:b-:
+bob:bob:1005:100:/home/bob:-::
xmary:mary:1006:100:/home/mary:::
=root0:r:abc:0:/root:::
+:alias:7790:2108:/var/qmail/alias:-::
.
";

pub fn files(vd: &[u8]) -> ControlFiles {
    ControlFiles {
        me: Some(ME.to_vec()),
        envnoathost: None,
        locals: Some(LOCALS.to_vec()),
        percenthack: Some(PERCENTHACK.to_vec()),
        virtualdomains: Some(vd.to_vec()),
    }
}

pub fn controls() -> Controls {
    Controls::from_files(&files(VIRTUALDOMAINS)).unwrap()
}

/// §12 controls without the `:catch` line.
pub fn controls_nocatch() -> Controls {
    let vd: Vec<u8> = VIRTUALDOMAINS
        .split(|&c| c == b'\n')
        .filter(|l| *l != b":catch")
        .flat_map(|l| l.iter().copied().chain(std::iter::once(b'\n')))
        .collect();
    Controls::from_files(&files(&vd)).unwrap()
}

pub fn uid() -> u32 {
    unsafe { libc::geteuid() }
}

/// The uid that owns homes made by [`Sandbox::home`]: this process's uid,
/// or 4242 when running as root (uid 0 is refused by G3 and H6).
pub fn ouid() -> u32 {
    if is_root() {
        4242
    } else {
        uid()
    }
}

pub fn gid() -> u32 {
    unsafe { libc::getegid() }
}

pub fn is_root() -> bool {
    uid() == 0
}

/// A temp dir with helpers.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // tempdir is 0700; make it reachable for setpriv children
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        Sandbox { dir }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    pub fn pb(&self, rel: &str) -> Vec<u8> {
        self.p(rel).to_str().unwrap().as_bytes().to_vec()
    }
    /// Creates a home directory with mode 0755.
    pub fn home(&self, rel: &str) -> Vec<u8> {
        let p = self.p(rel);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        if is_root() {
            std::os::unix::fs::chown(&p, Some(ouid()), None).unwrap();
        }
        self.pb(rel)
    }
    pub fn file(&self, rel: &str, content: &[u8], mode: u32) {
        let p = self.p(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(&p, content).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    pub fn chmod(&self, rel: &str, mode: u32) {
        std::fs::set_permissions(self.p(rel), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    /// Writes control files and an optional users/assign (compiled).
    pub fn qmail_home(&self, f: &ControlFiles, assign: Option<&[u8]>) -> PathBuf {
        let q = self.p("qmail");
        std::fs::create_dir_all(q.join("control")).unwrap();
        std::fs::create_dir_all(q.join("users")).unwrap();
        let w = |n: &str, b: &Option<Vec<u8>>| {
            if let Some(b) = b {
                std::fs::write(q.join("control").join(n), b).unwrap();
            }
        };
        w("me", &f.me);
        w("envnoathost", &f.envnoathost);
        w("locals", &f.locals);
        w("percenthack", &f.percenthack);
        w("virtualdomains", &f.virtualdomains);
        if let Some(a) = assign {
            std::fs::write(q.join("users/assign"), a).unwrap();
            qmail_resolver::users::compile_assign_file(
                &q.join("users/assign"),
                &q.join("users/cdb"),
            )
            .unwrap();
        }
        q
    }
}

/// A resolver over in-memory controls and records, with a given passwd.
pub fn resolver(
    controls: Controls,
    assign: Option<&[u8]>,
    pw: StaticPasswd,
    home: &Path,
) -> Resolver<StaticPasswd> {
    let users = match assign {
        Some(a) => UsersDb::from_records(&compile_assign(a).unwrap()).unwrap(),
        None => UsersDb::Missing,
    };
    Resolver::from_parts(Config::with_home(home), controls, users, pw)
}

/// Runs the calling test's body as an unprivileged user. Returns `true` when
/// the caller should run the body now (this process is not root: either a
/// normal user, or already the `setpriv` child); as root it re-runs this one
/// test under `setpriv --reuid=65534 --regid=65534 --clear-groups`, asserts
/// that it passed, and returns `false`.
pub fn unprivileged(test: &str) -> bool {
    if !is_root() {
        return true;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("TMPDIR", "/tmp")
        .output()
        .expect("setpriv must be installed to run permission tests as root");
    let so = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && so.contains("1 passed"),
        "unprivileged run of {test} failed:\n{so}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    false
}
