//! The scenario as files: its JSON (save, load with validation) and the
//! world it describes, materialised in a directory.

use super::{
    escape, layout, subst_root, CdbState, Esc, Node, NodeKind, Scenario, GID_NOFILES, GID_QMAIL,
    GID_USERS,
};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn ioc(what: &str, path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// The largest `scenario.json` [`Scenario::load`] reads (64 MiB).
pub const MAX_SCENARIO_BYTES: u64 = 64 << 20;

/// Directories [`Scenario::materialize`] makes itself (a node may be one
/// of them only as a directory).
const FIXED_DIRS: &[&str] = &["qmail", "home"];
/// Trees [`Scenario::materialize`] fills itself (no node at or under them).
const RESERVED_TREES: &[&str] = &["etc", "qmail/control", "qmail/users"];
/// Files [`Scenario::materialize`] writes itself at the root.
const RESERVED_FILES: &[&str] = &[
    layout::SCENARIO_JSON,
    "scenario.json.tmp",
    ".cdb-src.tmp",
    ".cdb-dst.tmp",
];

/// Why a node path is not a plain relative path, if it is not.
fn check_rel_path(path: &[u8]) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("is empty");
    }
    if path.contains(&0) {
        return Err("has a NUL byte");
    }
    if path[0] == b'/' {
        return Err("is absolute");
    }
    for c in path.split(|&c| c == b'/') {
        match c {
            b"" => return Err("has an empty component (`//` or a final `/`)"),
            b"." => return Err("has a `.` component"),
            b".." => return Err("has a `..` component"),
            _ => {}
        }
    }
    Ok(())
}

/// Reads the regular file `path` (refusing a symlink, FIFO, device or
/// directory without blocking on it) if it has at most `max` bytes.
fn read_bounded(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| ioc("cannot read", path, e))?;
    let md = f.metadata().map_err(|e| ioc("cannot stat", path, e))?;
    if !md.file_type().is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a regular file", path.display()),
        ));
    }
    if md.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: {} bytes, more than the limit of {max}",
                path.display(),
                md.len()
            ),
        ));
    }
    let mut out = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut out)
        .map_err(|e| ioc("cannot read", path, e))?;
    if out.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: more than the limit of {max} bytes", path.display()),
        ));
    }
    Ok(out)
}

/// A users/cdb compiler: users/assign bytes → cdb bytes, or why the
/// assign file is rejected (qmail-newu's format errors).
pub type AssignCompiler<'a> = &'a dyn Fn(&[u8]) -> Result<Vec<u8>, String>;

impl Scenario {
    /// The scenario's JSON (pretty).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Writes the JSON to `path` (temp name + rename).
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, self.to_json()).map_err(|e| ioc("cannot write", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| ioc("cannot rename to", path, e))
    }

    /// Reads a scenario from its JSON file and [validates](Scenario::validate)
    /// it. The file must be a regular file (not a symlink, FIFO or
    /// device; opened without blocking) of at most [`MAX_SCENARIO_BYTES`].
    pub fn load(path: &Path) -> io::Result<Scenario> {
        let bytes = read_bounded(path, MAX_SCENARIO_BYTES)?;
        let bad = |why: String| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: not a scenario: {why}", path.display()),
            )
        };
        let sc: Scenario = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        sc.validate().map_err(bad)?;
        Ok(sc)
    }

    /// Checks what a hostile `scenario.json` could abuse, before anything
    /// is made: every node path is relative, non-empty, free of NUL bytes
    /// and of empty, `.` and `..` components; no node is under a node that
    /// is not a directory (a symlink, file or FIFO made earlier), nor at or
    /// under what [`Scenario::materialize`] writes itself (`etc`,
    /// `qmail/control`, `qmail/users`, `scenario.json`); only directories
    /// may be listed twice, or at `qmail` or `home`; modes are permission
    /// bits only, never set-user-ID, and set-group-ID only on directories.
    /// The error names the first bad node path.
    pub fn validate(&self) -> Result<(), String> {
        let mut seen: std::collections::HashMap<&[u8], bool> = std::collections::HashMap::new();
        for n in &self.nodes {
            let path = &n.path.0;
            let is_dir = matches!(n.kind, NodeKind::Dir);
            let bad = |why: &str| Err(format!("node path {:?}: {why}", escape(path)));
            if let Err(why) = check_rel_path(path) {
                return bad(why);
            }
            let comps: Vec<&[u8]> = path.split(|&c| c == b'/').collect();
            for k in 1..=comps.len() {
                let prefix = &path[..comps[..k].iter().map(|c| c.len() + 1).sum::<usize>() - 1];
                if RESERVED_TREES.iter().any(|r| r.as_bytes() == prefix)
                    || RESERVED_FILES.iter().any(|r| r.as_bytes() == prefix)
                {
                    return bad("is where the world's own files go");
                }
                if k < comps.len() && seen.get(prefix) == Some(&false) {
                    return bad(&format!(
                        "is under the node {:?}, which is not a directory",
                        escape(prefix)
                    ));
                }
            }
            if !is_dir && FIXED_DIRS.iter().any(|r| r.as_bytes() == path.as_slice()) {
                return bad("must be a directory");
            }
            match seen.get(path.as_slice()) {
                Some(true) if is_dir => {}
                Some(_) => return bad("is listed twice"),
                None => {}
            }
            if n.mode & !0o7777 != 0 || n.mode & 0o4000 != 0 || (!is_dir && n.mode & 0o2000 != 0) {
                return bad(&format!("mode {:o} is not allowed", n.mode));
            }
            if let NodeKind::Symlink { target } = &n.kind {
                if target.0.is_empty() || target.0.contains(&0) {
                    return bad("symlink target is empty or has a NUL byte");
                }
            }
            seen.insert(path, is_dir);
        }
        Ok(())
    }

    /// The same world with only the given addresses.
    pub fn with_addresses(&self, addrs: Vec<Esc>) -> Scenario {
        let mut s = self.clone();
        s.addresses = addrs;
        s
    }

    /// The passwd file text for a world at `root`.
    pub fn passwd_text(&self, root: &Path) -> Vec<u8> {
        let mut out = Vec::new();
        for a in &self.passwd {
            out.extend_from_slice(&a.name.0);
            out.extend_from_slice(format!(":x:{}:{}:test:", a.uid, a.gid).as_bytes());
            out.extend_from_slice(&subst_root(&a.home.0, root));
            out.extend_from_slice(b":/bin/sh\n");
        }
        out
    }

    /// The group file text (without `nofiles` when the scenario leaves
    /// it out, [`Scenario::lspawn_missing`]).
    pub fn group_text(&self) -> Vec<u8> {
        let nofiles = if self.lspawn_missing.as_deref() == Some("nofiles") {
            String::new()
        } else {
            format!("nofiles:x:{GID_NOFILES}:\n")
        };
        format!("root:x:0:\nqmail:x:{GID_QMAIL}:\n{nofiles}users:x:{GID_USERS}:\n").into_bytes()
    }

    /// QMAILHOME of a world at `root`.
    pub fn qmail_home(root: &Path) -> PathBuf {
        root.join(layout::QMAIL)
    }

    /// Writes the world into `root` (an empty directory, made 0755): the
    /// control files, users/assign and users/cdb (made with `compile`), the
    /// passwd and group files and the file tree, with owners and modes.
    /// Must run as root for the owners to be set; as another user the
    /// owners are left alone (and permission cases lose their meaning).
    ///
    /// The scenario is [validated](Scenario::validate) first; a bad one is
    /// refused (`InvalidData`, naming the node path) before anything is
    /// made.
    pub fn materialize(&self, root: &Path, compile: AssignCompiler<'_>) -> io::Result<()> {
        self.validate()
            .map_err(|why| io::Error::new(io::ErrorKind::InvalidData, why))?;
        let is_root = unsafe { libc::geteuid() } == 0;
        std::fs::create_dir_all(root).map_err(|e| ioc("cannot create", root, e))?;
        set_mode(root, 0o755)?;
        for d in ["qmail", "qmail/control", "qmail/users", "etc", "home"] {
            let dir = root.join(d);
            std::fs::create_dir_all(&dir).map_err(|e| ioc("cannot create", &dir, e))?;
            set_mode(&dir, 0o755)?;
        }
        let qh = Self::qmail_home(root);
        let c = &self.control;
        for (name, v) in [
            ("me", &c.me),
            ("envnoathost", &c.envnoathost),
            ("locals", &c.locals),
            ("percenthack", &c.percenthack),
            ("virtualdomains", &c.virtualdomains),
        ] {
            if let Some(v) = v {
                let f = qh.join("control").join(name);
                std::fs::write(&f, &v.0).map_err(|e| ioc("cannot write", &f, e))?;
                set_mode(&f, 0o644)?;
            }
        }
        let assign = self.assign.as_ref().map(|a| subst_root(&a.0, root));
        if let Some(a) = &assign {
            let f = qh.join("users/assign");
            std::fs::write(&f, a).map_err(|e| ioc("cannot write", &f, e))?;
            set_mode(&f, 0o644)?;
        }
        let cdbp = qh.join("users/cdb");
        match self.cdb {
            CdbState::FromAssign => {
                if let Some(a) = &assign {
                    if let Ok(bytes) = compile(a) {
                        std::fs::write(&cdbp, bytes).map_err(|e| ioc("cannot write", &cdbp, e))?;
                        set_mode(&cdbp, 0o644)?;
                    }
                }
            }
            CdbState::Missing => {}
            CdbState::Directory => {
                std::fs::create_dir(&cdbp).map_err(|e| ioc("cannot create", &cdbp, e))?;
                set_mode(&cdbp, 0o755)?;
            }
            CdbState::Empty => {
                std::fs::write(&cdbp, b"").map_err(|e| ioc("cannot write", &cdbp, e))?;
                set_mode(&cdbp, 0o644)?;
            }
            CdbState::NoWildchars => {
                let a = assign.clone().unwrap_or_default();
                let full = compile(&a).unwrap_or_default();
                let bytes = strip_cdb_key(&full, b"", root)?;
                std::fs::write(&cdbp, bytes).map_err(|e| ioc("cannot write", &cdbp, e))?;
                set_mode(&cdbp, 0o644)?;
            }
        }
        let pw = root.join(layout::PASSWD);
        std::fs::write(&pw, self.passwd_text(root)).map_err(|e| ioc("cannot write", &pw, e))?;
        let gr = root.join(layout::GROUP);
        std::fs::write(&gr, self.group_text()).map_err(|e| ioc("cannot write", &gr, e))?;
        for f in [&pw, &gr] {
            set_mode(f, 0o644)?;
        }
        // Written before the nodes: none of them can be in its way.
        self.save(&root.join(layout::SCENARIO_JSON))?;
        // Create every node with a permissive mode first, then fix owners
        // and modes from the deepest node up; never following a symlink.
        let tree = crate::tree::Root::open(root)?;
        for n in &self.nodes {
            let target = match &n.kind {
                NodeKind::Symlink { target } => subst_root(&target.0, root),
                _ => Vec::new(),
            };
            tree.make(&n.path.0, n.make(&target))?;
        }
        for n in self.nodes.iter().rev() {
            let owner = is_root.then_some((n.uid, n.gid));
            tree.own(&n.path.0, n.make(&[]), owner, n.mode)?;
        }
        Ok(())
    }
}

impl Node {
    /// What [`crate::tree::Root`] makes for this node (`target` is the
    /// symlink target with `{ROOT}` replaced).
    fn make<'a>(&'a self, target: &'a [u8]) -> crate::tree::Make<'a> {
        use crate::tree::Make;
        match &self.kind {
            NodeKind::Dir => Make::Dir,
            NodeKind::File { content } => Make::File(&content.0),
            NodeKind::Fifo => Make::Fifo,
            NodeKind::Symlink { .. } => Make::Symlink(target),
        }
    }
}

fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| ioc("cannot chmod", path, e))
}

/// A copy of the cdb `full` without the records whose key is `key`.
fn strip_cdb_key(full: &[u8], key: &[u8], scratch: &Path) -> io::Result<Vec<u8>> {
    // Not a cdb at all (the assign file did not compile): nothing to keep.
    // (The cdb crate must never be handed a file shorter than its header.)
    if full.len() < 2048 {
        return Ok(Vec::new());
    }
    let src = scratch.join(".cdb-src.tmp");
    let dst = scratch.join(".cdb-dst.tmp");
    std::fs::write(&src, full)?;
    let mut out = Vec::new();
    if let Ok(r) = cdb::CDB::open(&src) {
        let mut w = cdb::CDBWriter::create(dst.display().to_string())?;
        for kv in r.iter() {
            let (k, v) = kv?;
            if k != key {
                w.add(&k, &v)?;
            }
        }
        w.finish()?;
        out = std::fs::read(&dst)?;
    }
    let _ = std::fs::remove_file(&src);
    let _ = std::fs::remove_file(&dst);
    Ok(out)
}
