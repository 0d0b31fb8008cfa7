//! The generated qmail home both benchmarks use (`resolve` in process,
//! `trace` through the qtraceaddr binary).
//!
//! locals, percenthack and virtualdomains (200 virtual domains with
//! subdomain keys, an exception, a user@domain key); users/assign compiled
//! to users/cdb (200 exact users with `-` wildcards and `.qmail`,
//! `.qmail-list` and some `.qmail-default` files; 200 virtual-domain
//! wildcards); 600 passwd users (the first 200 with `.qmail-news`) and the
//! alias user; a passwd and a group file for nss_wrapper.
#![allow(dead_code)]

use qmail_resolver::{compile_assign, StaticPasswd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The generated world.
pub struct World {
    /// Owns the files.
    pub dir: tempfile::TempDir,
    /// The qmail home.
    pub qmail: PathBuf,
    /// The passwd users, for the library.
    pub passwd: StaticPasswd,
    /// The same users as an nss_wrapper passwd file.
    pub passwd_file: PathBuf,
    /// An nss_wrapper group file.
    pub group_file: PathBuf,
}

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The uid that owns the homes (4242 as root: uid 0 is refused by G3).
pub fn owner() -> u32 {
    if is_root() {
        4242
    } else {
        // SAFETY: geteuid cannot fail.
        unsafe { libc::geteuid() }
    }
}

fn mkhome(root: &Path, name: &str) -> String {
    let p = root.join("home").join(name);
    std::fs::create_dir_all(&p).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    if is_root() {
        std::os::unix::fs::chown(&p, Some(owner()), None).unwrap();
    }
    p.to_str().unwrap().to_string()
}

fn qfile(home: &str, name: &str, body: &str) {
    std::fs::write(format!("{home}/{name}"), body).unwrap();
}

fn controls(q: &Path) {
    let mut locals = String::from("example.com\nmail.example.com\n");
    for i in 0..50 {
        locals.push_str(&format!("local{i}.example\n"));
    }
    let mut vd = String::new();
    for i in 0..200 {
        vd.push_str(&format!("virt{i}.example:v{i}\n.virt{i}.example:w{i}\n"));
    }
    vd.push_str("nope.virt1.example:\nboss@corp.example:boss\n");
    std::fs::write(q.join("control/me"), "mail.example.com\n").unwrap();
    std::fs::write(q.join("control/locals"), locals).unwrap();
    std::fs::write(q.join("control/percenthack"), "example.com\n").unwrap();
    std::fs::write(q.join("control/virtualdomains"), vd).unwrap();
}

/// users/assign: exact users, list wildcards, virtual-domain owners.
fn users(root: &Path, q: &Path) {
    let owner = owner();
    let mut assign = String::new();
    for i in 0..200 {
        let h = mkhome(root, &format!("cdb{i}"));
        assign.push_str(&format!("=cdb{i}:cdb{i}:{owner}:100:{h}:::\n"));
        assign.push_str(&format!("+cdb{i}-:cdb{i}:{owner}:100:{h}:-::\n"));
        qfile(&h, ".qmail", "./Maildir/\n");
        qfile(&h, ".qmail-list", "&a@b.example\n&c@d.example\n");
        if i % 2 == 0 {
            qfile(&h, ".qmail-default", "|/usr/bin/true\n");
        }
    }
    for i in 0..200 {
        let h = mkhome(root, &format!("v{i}"));
        assign.push_str(&format!("+v{i}-:vdom{i}:{owner}:100:{h}:-::\n"));
        qfile(&h, ".qmail-postmaster", "&admin@example.com\n");
        if i % 3 == 0 {
            qfile(&h, ".qmail-default", "./Maildir/\n");
        }
    }
    assign.push_str(".\n");
    let recs = compile_assign(assign.as_bytes()).unwrap();
    qmail_resolver::users::write_cdb(&q.join("users/cdb"), &recs).unwrap();
}

/// Passwd users for the addresses that users/cdb does not catch, as a
/// [`StaticPasswd`] and as passwd/group files.
fn passwd(root: &Path) -> (StaticPasswd, PathBuf, PathBuf) {
    let owner = owner();
    let mut pw = StaticPasswd::new();
    let mut file = String::from("root:x:0:0:root:/root:/bin/sh\n");
    let mut add = |pw: &mut StaticPasswd, name: &str, gid: u32, h: &str| {
        pw.add(name.as_bytes(), owner, gid, h.as_bytes());
        file.push_str(&format!("{name}:x:{owner}:{gid}:{name}:{h}:/bin/sh\n"));
    };
    for i in 0..600 {
        let h = mkhome(root, &format!("pw{i}"));
        add(&mut pw, &format!("user{i}"), 100, &h);
        if i < 200 {
            qfile(&h, ".qmail-news", "&news@example.com\n");
        }
    }
    let ah = mkhome(root, "alias");
    add(&mut pw, "alias", 101, &ah);
    qfile(&ah, ".qmail-postmaster", "&root@example.com\n");
    qfile(&ah, ".qmail-root", "&root@example.com\n");
    let pf = root.join("passwd");
    std::fs::write(&pf, file).unwrap();
    let gf = root.join("group");
    std::fs::write(&gf, "root:x:0:\nusers:x:100:\nalias:x:101:\n").unwrap();
    (pw, pf, gf)
}

/// Builds the world in a new temp dir.
pub fn build() -> World {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().to_path_buf();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let q = root.join("qmail");
    std::fs::create_dir_all(q.join("control")).unwrap();
    std::fs::create_dir_all(q.join("users")).unwrap();
    controls(&q);
    users(&root, &q);
    let (passwd, passwd_file, group_file) = passwd(&root);
    World {
        dir,
        qmail: q,
        passwd,
        passwd_file,
        group_file,
    }
}

/// The address mix, `n` of them: remote, virtual (found and missing),
/// users/cdb exact and wildcard, passwd with and without extensions,
/// missing mailboxes, the percent hack and the alias user.
pub fn addresses(n: u32) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let a = match i % 12 {
                0 => format!("someone{i}@remote{i}.example.net"),
                1 => format!("postmaster@virt{}.example", i % 200),
                2 => format!("nobody{i}@virt{}.example", i % 200),
                3 => format!("cdb{}@example.com", i % 200),
                4 => format!("cdb{}-list@example.com", i % 200),
                5 => format!("cdb{}-x{i}@example.com", i % 200),
                6 => format!("user{}@example.com", i % 600),
                7 => format!("user{}-news@local{}.example", i % 600, i % 50),
                8 => format!("user{}-nosuch-{i}@example.com", i % 600),
                9 => "postmaster@example.com".to_string(),
                10 => format!("a%user{}@example.com", i % 600),
                _ => format!("ghost{i}@example.com"),
            };
            a.into_bytes()
        })
        .collect()
}
