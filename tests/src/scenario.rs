//! The seeded scenario generator of `spec/differential.md`.
//!
//! A [`Scenario`] is a complete qmail world described as data: the control
//! files, `users/assign` (and how `users/cdb` is to be made), a passwd and
//! group pair for nss_wrapper, a file tree of home directories holding
//! `.qmail` objects of every kind of resolution.md §13, and the addresses to
//! resolve. [`generate`] makes one from a seed and an index (the same pair
//! always gives the same scenario); [`Scenario::materialize`] writes it into
//! a directory, and [`Scenario::save`]/[`Scenario::load`] keep it as JSON so
//! that a failure directory can be replayed on its own.
//!
//! Paths inside the world that must be absolute (passwd homes, assign
//! homes, symlink targets) are stored with the token `{ROOT}`, replaced by
//! the directory the world is materialised in.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The token replaced by the world's root directory.
pub const ROOT_TOKEN: &[u8] = b"{ROOT}";

/// uid of the alias account (`auto_uida` of the test build).
pub const UID_ALIAS: u32 = 41000;
/// uid of qmaild, the account qmail-smtpd and qmail-qmtpd run as.
pub const UID_QMAILD: u32 = 41001;
/// uid of qmaill.
pub const UID_QMAILL: u32 = 41002;
/// uid of qmailp, the account qmail-getpw runs as.
pub const UID_QMAILP: u32 = 41003;
/// uid of qmailq, the owner of the queue files.
pub const UID_QMAILQ: u32 = 41004;
/// uid of qmailr.
pub const UID_QMAILR: u32 = 41005;
/// uid of qmails.
pub const UID_QMAILS: u32 = 41006;
/// gid of the qmail group.
pub const GID_QMAIL: u32 = 41100;
/// gid of the nofiles group.
pub const GID_NOFILES: u32 = 41101;
/// gid of the scenario users' group.
pub const GID_USERS: u32 = 41200;
/// First uid given to scenario accounts.
pub const UID_FIRST_USER: u32 = 42000;

/// A byte string kept readable in JSON: printable ASCII as is, a backslash
/// as `\\`, every other byte as `\xNN`. The mapping is reversible.
#[derive(Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Esc(pub Vec<u8>);

impl Esc {
    /// The escaped text form.
    pub fn to_text(&self) -> String {
        escape(&self.0)
    }
}

impl From<&[u8]> for Esc {
    fn from(b: &[u8]) -> Self {
        Esc(b.to_vec())
    }
}

impl From<&str> for Esc {
    fn from(s: &str) -> Self {
        Esc(s.as_bytes().to_vec())
    }
}

impl fmt::Debug for Esc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", escape(&self.0))
    }
}

impl fmt::Display for Esc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape(&self.0))
    }
}

/// Escapes bytes as described for [`Esc`].
pub fn escape(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for &c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s
}

/// Reverses [`escape`].
pub fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'\\') => {
                out.push(b'\\');
                i += 2;
            }
            Some(b'x') => {
                let hex = s
                    .get(i + 2..i + 4)
                    .ok_or_else(|| format!("truncated \\x escape in {s:?}"))?;
                let v = u8::from_str_radix(hex, 16)
                    .map_err(|_| format!("bad \\x escape {hex:?} in {s:?}"))?;
                out.push(v);
                i += 4;
            }
            _ => return Err(format!("bad escape at byte {i} in {s:?}")),
        }
    }
    Ok(out)
}

impl Serialize for Esc {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&escape(&self.0))
    }
}

impl<'de> Deserialize<'de> for Esc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        unescape(&s).map(Esc).map_err(serde::de::Error::custom)
    }
}

/// The control files; `None` means the file does not exist.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ControlSet {
    /// control/me.
    pub me: Option<Esc>,
    /// control/envnoathost.
    pub envnoathost: Option<Esc>,
    /// control/locals.
    pub locals: Option<Esc>,
    /// control/percenthack.
    pub percenthack: Option<Esc>,
    /// control/virtualdomains.
    pub virtualdomains: Option<Esc>,
}

/// What `users/cdb` is (resolution.md §13 item 23).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CdbState {
    /// Compiled from users/assign (when assign is valid; else absent).
    FromAssign,
    /// No users/cdb: every lookup goes to qmail-getpw.
    Missing,
    /// users/cdb is a directory.
    Directory,
    /// users/cdb is a zero-length file.
    Empty,
    /// A valid cdb compiled from assign, but without the `""` key.
    NoWildchars,
}

/// A passwd entry served through nss_wrapper.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Account {
    /// pw_name.
    pub name: Esc,
    /// pw_uid.
    pub uid: u32,
    /// pw_gid.
    pub gid: u32,
    /// pw_dir, with `{ROOT}`.
    pub home: Esc,
}

/// What a file-tree node is.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NodeKind {
    /// A directory.
    Dir,
    /// A regular file.
    File {
        /// Its content.
        content: Esc,
    },
    /// A FIFO.
    Fifo,
    /// A symbolic link.
    Symlink {
        /// Its target, with `{ROOT}`.
        target: Esc,
    },
}

/// One object of the world's file tree, created in list order.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Node {
    /// Path relative to the world root.
    pub path: Esc,
    /// What it is.
    pub kind: NodeKind,
    /// Permission bits (ignored for symlinks).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// A `.qmail` name the generator created, and how to recognise its use in
/// qmail-local's `-n` listing.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct QmailFile {
    /// The home directory it lives in, relative to the world root.
    pub home: Esc,
    /// Its name relative to that home (e.g. `.qmail-foo`).
    pub name: Esc,
    /// The marker forward (`qfN`) its content carries, if any.
    pub marker: Option<u32>,
    /// Whether opening it gives a 0-byte regular file (so aliasempty is
    /// used).
    pub empty: bool,
    /// A short word for the kind of object (for the coverage table).
    pub kind: String,
}

/// A complete generated qmail world.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Scenario {
    /// The run seed.
    pub seed: u64,
    /// The index of this scenario within the run.
    pub index: u64,
    /// The control files.
    pub control: ControlSet,
    /// users/assign (with `{ROOT}`), if it exists.
    pub assign: Option<Esc>,
    /// How users/cdb is made.
    pub cdb: CdbState,
    /// The passwd database (the qmail accounts included).
    pub passwd: Vec<Account>,
    /// The file tree.
    pub nodes: Vec<Node>,
    /// The `.qmail` names made, for reading the oracles' answers.
    pub qmail_files: Vec<QmailFile>,
    /// The default delivery (qmail-lspawn's argv\[1\]).
    pub aliasempty: Esc,
    /// The envelope recipients to resolve.
    pub addresses: Vec<Esc>,
    /// conf-break (`auto_break`, resolution.md §13 #36) the resolver and
    /// the realrcptto core are given. The qmail programs (G, S/Q) are
    /// built with [`DEFAULT_BREAK`]; a scenario with another byte is
    /// compared R vs C only.
    #[serde(default = "default_break")]
    pub conf_break: u8,
    /// An error only an `LD_PRELOAD` shim can make (resolution.md G2, G4),
    /// given to R and C (compared R vs C only); `None` in most scenarios.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_fault: Option<ErrnoFault>,
}

/// An injected system error (`tests/c/rrt-errno-shim.c`): both give the
/// realrcptto verdict `tempfail-sys`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ErrnoFault {
    /// `getpwnam(name)` fails with ETXTBSY (G2).
    Etxtbsy {
        /// The name as looked up (lower case).
        name: Esc,
    },
    /// `stat(home)` fails with EIO (G4, a temporary errno).
    Eio {
        /// The passwd home whose stat fails, with `{ROOT}`.
        home: Esc,
    },
}

impl ErrnoFault {
    /// The environment the shim reads for this fault, for a world at
    /// `root`.
    pub fn shim_env(&self, root: &Path) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
        use std::os::unix::ffi::OsStringExt;
        match self {
            ErrnoFault::Etxtbsy { name } => vec![(
                "RRT_SHIM_TXTBSY".into(),
                std::ffi::OsString::from_vec(name.0.clone()),
            )],
            ErrnoFault::Eio { home } => vec![(
                "RRT_SHIM_EIO".into(),
                std::ffi::OsString::from_vec(subst_root(&home.0, root)),
            )],
        }
    }
}

/// How often (percent) a scenario has an [`ErrnoFault`].
pub const ERRNO_FAULT_PERCENT: u32 = 5;

/// How often (percent) a scenario has the account [`EMPTY_HOME_USER`]
/// with an empty passwd home, owning the qmail home.
pub const EMPTY_HOME_PERCENT: u32 = 3;

/// The account with an empty passwd home (see [`EMPTY_HOME_PERCENT`]).
pub const EMPTY_HOME_USER: &str = "nohome";

/// The conf-break the qmail builds use (`-`).
pub const DEFAULT_BREAK: u8 = b'-';

fn default_break() -> u8 {
    DEFAULT_BREAK
}

/// The non-default conf-break some scenarios use.
pub const OTHER_BREAK: u8 = b'+';

/// How often (percent) a scenario uses [`OTHER_BREAK`].
pub const OTHER_BREAK_PERCENT: u32 = 10;

/// The world's directory names, relative to its root.
pub mod layout {
    /// QMAILHOME.
    pub const QMAIL: &str = "qmail";
    /// The passwd file for nss_wrapper.
    pub const PASSWD: &str = "etc/passwd";
    /// The group file for nss_wrapper.
    pub const GROUP: &str = "etc/group";
    /// Where the scenario's JSON is written.
    pub const SCENARIO_JSON: &str = "scenario.json";
}

/// Replaces `{ROOT}` in `b` by `root`.
pub fn subst_root(b: &[u8], root: &Path) -> Vec<u8> {
    let r = root.as_os_str().as_bytes();
    let mut out = Vec::with_capacity(b.len() + 16);
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(ROOT_TOKEN) {
            out.extend_from_slice(r);
            i += ROOT_TOKEN.len();
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

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

    /// The group file text.
    pub fn group_text(&self) -> Vec<u8> {
        format!("root:x:0:\nqmail:x:{GID_QMAIL}:\nnofiles:x:{GID_NOFILES}:\nusers:x:{GID_USERS}:\n")
            .into_bytes()
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

// ---------------------------------------------------------------- generator

struct Gen {
    rng: ChaCha8Rng,
    nodes: Vec<Node>,
    qmail_files: Vec<QmailFile>,
    passwd: Vec<Account>,
    next_marker: u32,
    next_uid: u32,
    /// (account name, home rel path, list of (ext, qmail name)) for users
    /// whose home the generator filled.
    targets: Vec<Target>,
}

#[derive(Clone)]
struct Target {
    /// Local parts that reach this home with dash "" (e.g. the user name).
    base: Vec<u8>,
    /// Exts with files, as written in addresses (original case).
    exts: Vec<Vec<u8>>,
}

const USER_POOL: &[&str] = &[
    "joe",
    "mary",
    "bob",
    "ann",
    "joe-foo",
    "list",
    "x",
    "Upper",
    "dot.user",
    "a234567890123456789012345678901",  // 31 bytes: found
    "b2345678901234567890123456789012", // 32 bytes: never found
    "lspam",
    "carol",
];

const EXT_POOL: &[&str] = &[
    "foo",
    "foo-bar",
    "foo-default",
    "default",
    "bar",
    "a.b",
    "sub/x",
    "sub/default",
    "list-default",
    "Up",
    "",
    "x-y-z",
    "foo-owner",
    "foo-owner-default",
];

impl Gen {
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        v.choose(&mut self.rng).unwrap_or(&v[0])
    }
    fn chance(&mut self, pct: u32) -> bool {
        self.rng.gen_range(0..100) < pct
    }
    fn node(&mut self, path: Vec<u8>, kind: NodeKind, mode: u32, uid: u32, gid: u32) {
        self.nodes.push(Node {
            path: Esc(path),
            kind,
            mode,
            uid,
            gid,
        });
    }
    fn marker(&mut self) -> u32 {
        self.next_marker += 1;
        self.next_marker
    }

    /// Makes a home directory for `name` and returns the passwd home (with
    /// `{ROOT}`) and whether the home is usable for .qmail files.
    fn home(&mut self, name: &str, uid: u32, gid: u32) -> (Vec<u8>, Option<Vec<u8>>, &'static str) {
        let rel = format!("home/{}", name.replace('/', "_"));
        let abs = |r: &str| [ROOT_TOKEN, b"/", r.as_bytes()].concat();
        let roll = self.rng.gen_range(0..100);
        match roll {
            0..=54 => {
                self.node(rel.clone().into_bytes(), NodeKind::Dir, 0o755, uid, gid);
                (abs(&rel), Some(rel.into_bytes()), "home 755")
            }
            55..=61 => {
                self.node(rel.clone().into_bytes(), NodeKind::Dir, 0o775, uid, gid);
                (abs(&rel), Some(rel.into_bytes()), "home 775")
            }
            62..=65 => {
                self.node(rel.clone().into_bytes(), NodeKind::Dir, 0o777, uid, gid);
                (abs(&rel), Some(rel.into_bytes()), "home 777")
            }
            66..=68 => {
                self.node(rel.clone().into_bytes(), NodeKind::Dir, 0o1755, uid, gid);
                (abs(&rel), Some(rel.into_bytes()), "home sticky")
            }
            69..=70 => {
                self.node(rel.clone().into_bytes(), NodeKind::Dir, 0o000, uid, gid);
                (abs(&rel), Some(rel.into_bytes()), "home 000")
            }
            71..=74 => (abs(&rel), None, "home missing"),
            75..=78 => {
                self.node(
                    rel.clone().into_bytes(),
                    NodeKind::Dir,
                    0o755,
                    UID_ALIAS + 999,
                    gid,
                );
                (abs(&rel), Some(rel.into_bytes()), "home owned by other")
            }
            79..=83 => {
                let real = format!("real/{}", name.replace('/', "_"));
                self.node(b"real".to_vec(), NodeKind::Dir, 0o755, 0, 0);
                self.node(real.clone().into_bytes(), NodeKind::Dir, 0o755, uid, gid);
                self.node(
                    rel.clone().into_bytes(),
                    NodeKind::Symlink {
                        target: Esc(abs(&real)),
                    },
                    0o777,
                    0,
                    0,
                );
                (abs(&rel), Some(real.into_bytes()), "home symlink")
            }
            84..=85 => {
                self.node(
                    rel.clone().into_bytes(),
                    NodeKind::Symlink {
                        target: Esc(abs("nowhere")),
                    },
                    0o777,
                    0,
                    0,
                );
                (abs(&rel), None, "home dangling symlink")
            }
            86..=88 => {
                let h = format!("hidden/{}", name.replace('/', "_"));
                self.node(b"hidden".to_vec(), NodeKind::Dir, 0o700, 0, 0);
                self.node(h.clone().into_bytes(), NodeKind::Dir, 0o755, uid, gid);
                (abs(&h), Some(h.into_bytes()), "home under root 0700")
            }
            89..=92 => {
                let parent = format!("priv-{}", name.replace('/', "_"));
                let h = format!("{parent}/home");
                self.node(parent.into_bytes(), NodeKind::Dir, 0o700, uid, gid);
                self.node(h.clone().into_bytes(), NodeKind::Dir, 0o755, uid, gid);
                (abs(&h), Some(h.into_bytes()), "home under user 0700")
            }
            93..=94 => {
                self.node(
                    rel.clone().into_bytes(),
                    NodeKind::File {
                        content: Esc::from("not a dir\n"),
                    },
                    0o644,
                    uid,
                    gid,
                );
                (abs(&rel), None, "home not a dir")
            }
            95..=96 => {
                self.node(rel.clone().into_bytes(), NodeKind::Dir, 0o755, uid, gid);
                (
                    rel.clone().into_bytes(),
                    Some(rel.into_bytes()),
                    "home relative",
                )
            }
            _ => {
                self.node(rel.clone().into_bytes(), NodeKind::Dir, 0o2755, uid, gid);
                (abs(&rel), Some(rel.into_bytes()), "home setgid")
            }
        }
    }

    fn content(&mut self, marker: u32) -> (Vec<u8>, bool) {
        let m = format!("&qf{marker}\n");
        let roll = self.rng.gen_range(0..100);
        let (c, has_marker): (String, bool) = match roll {
            0..=49 => (m, true),
            50..=59 => (format!("# a comment\n{m}./Maildir/\n|echo hi\n\n"), true),
            60..=63 => (format!("\n{m}"), false),
            64..=66 => (format!("  \t\n{m}"), false),
            67..=70 => ("# only a comment\n".to_string(), false),
            71..=74 => (format!("+list\n{m}|prog\n"), true),
            75..=78 => (format!("&qf{marker}\r\n./Maildir/\r\n"), true),
            79..=81 => (format!("{m}+other\n ./spaced\n-dash\n<angle\n&\n"), true),
            82..=85 => (format!("{m}.\n/abs/mbox\n./Maildir/  \t\n"), true),
            86..=88 => (format!("{m}|exit 99\n&after99\n"), true),
            89..=91 => (format!("qf{marker}\nno-amp@forward\n"), true),
            92..=94 => (format!("{m}\n\n# blank lines later\n"), true),
            _ => (format!("{m}./Mbox"), true), // no final newline
        };
        (c.into_bytes(), has_marker)
    }

    /// Creates one `.qmail` object `name` in `home` (relative to root).
    fn qmail_object(&mut self, home: &[u8], name: &[u8], uid: u32, gid: u32) {
        let path = [home, b"/", name].concat();
        // Subdirectory names (`.qmail-sub/x`): make the directory first.
        if let Some(slash) = name.iter().position(|&c| c == b'/') {
            let dir = [home, b"/", &name[..slash]].concat();
            if !self.nodes.iter().any(|n| n.path.0 == dir) {
                let mode = if self.chance(12) { 0o000 } else { 0o755 };
                self.node(dir, NodeKind::Dir, mode, uid, gid);
            }
        }
        if self.nodes.iter().any(|n| n.path.0 == path) {
            return;
        }
        let marker = self.marker();
        let roll = self.rng.gen_range(0..100);
        // (object, marker its content leaves, empty, kind for the report, mode)
        let (kind, marker_used, empty, what, mode): (NodeKind, Option<u32>, bool, &str, u32) =
            match roll {
                0..=44 => {
                    let (c, m) = self.content(marker);
                    let mode = *self.pick(&[0o644, 0o644, 0o444, 0o664]);
                    let what = if mode == 0o664 {
                        "file group-writable"
                    } else {
                        "file"
                    };
                    let content = Esc(c);
                    (
                        NodeKind::File { content },
                        m.then_some(marker),
                        false,
                        what,
                        mode,
                    )
                }
                45..=52 => {
                    let content = Esc::default();
                    (NodeKind::File { content }, None, true, "empty file", 0o644)
                }
                53..=57 => (NodeKind::Dir, None, false, "directory", 0o644),
                58..=61 => (NodeKind::Fifo, None, false, "fifo", 0o644),
                62..=67 => {
                    let t = format!("targets/t{marker}");
                    let tpath = [home, b"/", t.as_bytes()].concat();
                    let tdir = [home, b"/targets"].concat();
                    if !self.nodes.iter().any(|n| n.path.0 == tdir) {
                        self.node(tdir, NodeKind::Dir, 0o755, uid, gid);
                    }
                    let (c, m) = self.content(marker);
                    let wmode = if self.chance(20) { 0o666 } else { 0o644 };
                    self.node(tpath, NodeKind::File { content: Esc(c) }, wmode, uid, gid);
                    let target = Esc([ROOT_TOKEN, b"/", home, b"/", t.as_bytes()].concat());
                    let what = if wmode == 0o666 {
                        "symlink to world-writable file"
                    } else {
                        "symlink to file"
                    };
                    (
                        NodeKind::Symlink { target },
                        m.then_some(marker),
                        false,
                        what,
                        0o644,
                    )
                }
                68..=71 => {
                    let target = Esc::from("/nonexistent/qmail-target");
                    (
                        NodeKind::Symlink { target },
                        None,
                        false,
                        "dangling symlink",
                        0o644,
                    )
                }
                72..=73 => {
                    let target = Esc::from(".");
                    (
                        NodeKind::Symlink { target },
                        None,
                        false,
                        "symlink to directory",
                        0o644,
                    )
                }
                74..=78 => {
                    let (c, m) = self.content(marker);
                    let content = Esc(c);
                    let what = "unreadable file";
                    (
                        NodeKind::File { content },
                        m.then_some(marker),
                        false,
                        what,
                        0o000,
                    )
                }
                79..=84 => {
                    let (c, m) = self.content(marker);
                    let content = Esc(c);
                    let what = "world-writable file";
                    (
                        NodeKind::File { content },
                        m.then_some(marker),
                        false,
                        what,
                        0o666,
                    )
                }
                85..=90 => {
                    let content = Esc(format!("&qf{marker}\nplain@forward\n").into_bytes());
                    let what = "x bit, forwards";
                    (NodeKind::File { content }, Some(marker), false, what, 0o744)
                }
                91..=94 => {
                    let content = Esc(format!("&qf{marker}\n./Mbox\n").into_bytes());
                    let what = "x bit, file delivery";
                    (NodeKind::File { content }, Some(marker), false, what, 0o755)
                }
                _ => {
                    let content = Esc::default();
                    (
                        NodeKind::File { content },
                        None,
                        true,
                        "empty file, x bit",
                        0o755,
                    )
                }
            };
        self.node(path, kind, mode, uid, gid);
        self.qmail_files.push(QmailFile {
            home: Esc(home.to_vec()),
            name: Esc(name.to_vec()),
            marker: marker_used,
            empty,
            kind: what.into(),
        });
    }

    /// Fills a home with `.qmail` objects and returns the exts used.
    fn fill_home(&mut self, home: &[u8], uid: u32, gid: u32) -> Vec<Vec<u8>> {
        let n = self.rng.gen_range(1..=5);
        let mut exts = Vec::new();
        if self.chance(50) {
            self.qmail_object(home, b".qmail", uid, gid);
        }
        if self.chance(12) {
            self.qmail_object(home, b".qmaildefault", uid, gid);
        }
        for _ in 0..n {
            let ext = *self.pick(EXT_POOL);
            let name = qmail_name(b"-", ext.as_bytes());
            self.qmail_object(home, &name, uid, gid);
            exts.push(ext.as_bytes().to_vec());
        }
        exts
    }
}

/// The `.qmail` name for dash and ext (L4: ASCII-fold, `.` → `:`).
pub fn qmail_name(dash: &[u8], ext: &[u8]) -> Vec<u8> {
    let mut v = b".qmail".to_vec();
    v.extend_from_slice(dash);
    for &c in ext {
        let c = c.to_ascii_lowercase();
        v.push(if c == b'.' { b':' } else { c });
    }
    v
}

fn lines(v: &[String]) -> Esc {
    let mut out = Vec::new();
    for l in v {
        out.extend_from_slice(l.as_bytes());
        out.push(b'\n');
    }
    Esc(out)
}

fn random_case(rng: &mut ChaCha8Rng, s: &[u8]) -> Vec<u8> {
    s.iter()
        .map(|&c| {
            if rng.gen_range(0..4) == 0 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

/// (name, uid, passwd home, usable home path) of a generated account.
type UserRow = (String, u32, Vec<u8>, Option<Vec<u8>>);

/// Generates scenario `index` of the run with `seed`.
pub fn generate(seed: u64, index: u64) -> Scenario {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index);
    let mut g = Gen {
        rng,
        nodes: Vec::new(),
        qmail_files: Vec::new(),
        passwd: Vec::new(),
        next_marker: 0,
        next_uid: UID_FIRST_USER,
        targets: Vec::new(),
    };

    // ------------------------------------------------------ control files
    let me_roll = g.rng.gen_range(0..100);
    let me: Option<&str> = match me_roll {
        0..=84 => Some("mail.example.com"),
        85..=92 => Some("Mail.Example.COM \t"),
        93..=96 => None,
        _ => Some(""),
    };
    let env_roll = g.rng.gen_range(0..100);
    let envnoathost: Option<&str> = match env_roll {
        0..=29 => None,
        30..=54 => Some("example.com"),
        55..=74 => Some("remote.example.net"),
        75..=84 => Some(""),
        85..=92 => Some("ph.net"),
        _ => Some("virt.org"),
    };
    let locals_pool = [
        "example.com",
        "  lead.example",
        "Local.Org \t",
        "crlf.example\r",
        "# a comment",
        "",
        "ph.net",
        "LOCAL.EXAMPLE",
        "example.com.",
        "b..c",
        "caf\u{e9}.example",
    ];
    let locals = match g.rng.gen_range(0..100) {
        0..=7 => None,
        8..=11 => Some(Esc::default()),
        _ => {
            let mut v: Vec<String> = vec!["example.com".into()];
            for l in locals_pool.iter() {
                if g.chance(40) {
                    v.push((*l).to_string());
                }
            }
            v.shuffle(&mut g.rng);
            Some(lines(&v))
        }
    };
    let percenthack = if g.chance(40) {
        None
    } else {
        let mut v = Vec::new();
        for d in [
            "example.com",
            "ph.net",
            "remote.example.net",
            "virt.org",
            "Ph.Net",
        ] {
            if g.chance(45) {
                v.push(d.to_string());
            }
        }
        Some(lines(&v))
    };

    // -------------------------------------------------------- accounts
    let mut names: Vec<&str> = USER_POOL.to_vec();
    names.shuffle(&mut g.rng);
    let nusers = g.rng.gen_range(3..=7);
    let mut users: Vec<UserRow> = Vec::new();
    g.passwd.push(Account {
        name: "root".into(),
        uid: 0,
        gid: 0,
        home: "/root".into(),
    });
    for (n, u) in [
        ("qmaild", UID_QMAILD),
        ("qmaill", UID_QMAILL),
        ("qmailp", UID_QMAILP),
        ("qmailq", UID_QMAILQ),
        ("qmailr", UID_QMAILR),
        ("qmails", UID_QMAILS),
    ] {
        g.passwd.push(Account {
            name: n.into(),
            uid: u,
            gid: if u == UID_QMAILP {
                GID_NOFILES
            } else {
                GID_QMAIL
            },
            home: Esc([ROOT_TOKEN, b"/qmail"].concat()),
        });
    }
    // The alias account.
    let alias_roll = g.rng.gen_range(0..100);
    if alias_roll < 92 {
        let uid = if alias_roll < 88 { UID_ALIAS } else { 0 };
        g.node(
            b"home/alias".to_vec(),
            NodeKind::Dir,
            0o755,
            UID_ALIAS,
            GID_NOFILES,
        );
        g.passwd.push(Account {
            name: "alias".into(),
            uid,
            gid: GID_NOFILES,
            home: Esc([ROOT_TOKEN, b"/home/alias"].concat()),
        });
        let exts = g.fill_home(b"home/alias", UID_ALIAS, GID_NOFILES);
        let mut exts2 = exts.clone();
        for e in ["postmaster", "mailer-daemon", "root"] {
            if g.chance(50) {
                let name = qmail_name(b"-", e.as_bytes());
                g.qmail_object(b"home/alias", &name, UID_ALIAS, GID_NOFILES);
                exts2.push(e.as_bytes().to_vec());
            }
        }
        g.targets.push(Target {
            base: Vec::new(),
            exts: exts2,
        });
    }
    if g.chance(50) {
        g.node(b"home/toor".to_vec(), NodeKind::Dir, 0o755, 0, 0);
        g.passwd.push(Account {
            name: "toor".into(),
            uid: 0,
            gid: 0,
            home: Esc([ROOT_TOKEN, b"/home/toor"].concat()),
        });
        users.push(("toor".into(), 0, Vec::new(), None));
    }
    for name in names.iter().take(nusers) {
        let uid = g.next_uid;
        g.next_uid += 1;
        let (home, usable, _what) = g.home(name, uid, GID_USERS);
        g.passwd.push(Account {
            name: Esc::from(*name),
            uid,
            gid: GID_USERS,
            home: Esc(home.clone()),
        });
        let mut exts = Vec::new();
        if let Some(h) = &usable {
            exts = g.fill_home(h, uid, GID_USERS);
        }
        g.targets.push(Target {
            base: name.as_bytes().to_vec(),
            exts,
        });
        users.push((name.to_string(), uid, home, usable));
    }

    // ---------------------------------------------------- virtualdomains
    let user_names: Vec<String> = users.iter().map(|u| u.0.clone()).collect();
    let some_user = |g: &mut Gen| -> String {
        if user_names.is_empty() {
            "nobody".into()
        } else {
            g.pick(&user_names).clone()
        }
    };
    let virtualdomains = if g.chance(12) {
        None
    } else {
        let mut v: Vec<String> = Vec::new();
        let cands: Vec<String> = vec![
            format!("virt.org:{}", some_user(&mut g)),
            format!(".virt.org:{}-sub", some_user(&mut g)),
            format!("joe@other.net:{}", some_user(&mut g)),
            "noway.virt.org:".into(),
            format!(".deep.virt.org:{}", some_user(&mut g)),
            format!("dup.org:{}", some_user(&mut g)),
            format!("dup.org:{}", some_user(&mut g)),
            format!("space.org: {}", some_user(&mut g)),
            "nocolon.org".into(),
            format!("example.com:{}", some_user(&mut g)),
            "x.example.com:Pre-Fix".into(),
            format!("UPPER.ORG:{}", some_user(&mut g).to_uppercase()),
            format!("crlf.org:{}\r", some_user(&mut g)),
            "# comment".into(),
            String::new(),
            format!("example.com.:{}", some_user(&mut g)),
            format!("caf\u{e9}.org:{}", some_user(&mut g)),
            "a@b.org:a@b".into(),
            "colon.org:x:y".into(),
            format!("ph.net:{}", some_user(&mut g)),
            format!(".:{}", some_user(&mut g)),
        ];
        for c in cands {
            if g.chance(45) {
                v.push(c);
            }
        }
        v.shuffle(&mut g.rng);
        if g.chance(15) {
            v.push(format!(":{}", some_user(&mut g)));
        }
        if g.chance(5) {
            v.push(":alias".into());
        }
        let mut e = lines(&v);
        if g.chance(8) {
            // A CRLF file.
            e = Esc(e
                .0
                .iter()
                .flat_map(|&c| {
                    if c == b'\n' {
                        vec![b'\r', b'\n']
                    } else {
                        vec![c]
                    }
                })
                .collect());
        }
        Some(e)
    };

    // ---------------------------------------------------- users/assign
    let mut cdb = if g.chance(30) {
        CdbState::Missing
    } else {
        CdbState::FromAssign
    };
    let roll = g.rng.gen_range(0..100);
    if cdb == CdbState::FromAssign {
        cdb = match roll {
            0..=1 => CdbState::Directory,
            2..=3 => CdbState::Empty,
            4..=5 => CdbState::NoWildchars,
            _ => CdbState::FromAssign,
        };
    }
    let assign = if cdb == CdbState::Missing && g.chance(70) {
        None
    } else {
        let mut v: Vec<Vec<u8>> = Vec::new();
        let entry = |ty: &str, key: &str, u: &UserRow, dash: &str, ext: &str| -> Vec<u8> {
            let mut l = format!("{ty}{key}:{}:{}:{}:", u.0, u.1, GID_USERS).into_bytes();
            l.extend_from_slice(&u.2);
            l.extend_from_slice(format!(":{dash}:{ext}:").as_bytes());
            l
        };
        let k = g.rng.gen_range(1..=8);
        for _ in 0..k {
            if users.is_empty() {
                break;
            }
            let u = g.pick(&users).clone();
            let line = match g.rng.gen_range(0..14) {
                0..=2 => entry("=", &u.0, &u, "", ""),
                3 => entry("=", &format!("{}.Alias", u.0), &u, "-", "foo"),
                4..=5 => entry("+", &format!("{}-", u.0), &u, "-", ""),
                6 => entry("+", &u.0[..u.0.len().min(2)], &u, "-", "pre-"),
                7 => entry("+", "BIG", &u, "-", "b-"),
                8 => entry("x", &u.0, &u, "", ""),
                9 => entry("+", "list-", &u, "-", "list-"),
                10 => entry("+", "", &u, "-", ""),
                11 => {
                    let mut l = entry("=", &u.0, &u, "", "");
                    l.extend_from_slice(b"extra:fields");
                    l
                }
                12 => entry("=", &u.0, &u, "+", "plus"),
                _ => entry("+", "q", &u, "-", ""),
            };
            v.push(line);
        }
        if g.chance(20) {
            v.push(b"=root0:r:abc:0:/root:::".to_vec());
        }
        if g.chance(15) {
            v.push(
                format!("=zero:z:0:{GID_USERS}:")
                    .into_bytes()
                    .into_iter()
                    .chain(ROOT_TOKEN.iter().copied())
                    .chain(b"/home/alias:::".iter().copied())
                    .collect(),
            );
        }
        if g.chance(15) {
            v.push(
                format!("=rel:rel:{}:{GID_USERS}:home/rel:::", UID_FIRST_USER + 90).into_bytes(),
            );
        }
        if g.chance(15) {
            let mut l = format!("=gone:gone:{}:{GID_USERS}:", UID_FIRST_USER + 91).into_bytes();
            l.extend_from_slice(ROOT_TOKEN);
            l.extend_from_slice(b"/home/gone-nowhere:::");
            v.push(l);
        }
        // Format errors (qmail-newu refuses; the old cdb stays, i.e. none).
        let mut terminator = true;
        match g.rng.gen_range(0..100) {
            0..=1 => v.push(Vec::new()),
            2..=3 => terminator = false,
            4 => v.push(b"=short:a:1:2:/x:".to_vec()),
            5 => v.push(b":nokey:a:1:2:/x:::".to_vec()),
            _ => {}
        }
        let mut out = Vec::new();
        for l in v {
            out.extend_from_slice(&l);
            out.push(b'\n');
        }
        if terminator {
            out.extend_from_slice(b".\n");
            if g.chance(10) {
                out.extend_from_slice(b"=after:terminator:ignored\n");
            }
        }
        Some(Esc(out))
    };

    // ---------------------------------------------------- addresses
    let domains_local = [
        "example.com",
        "EXAMPLE.COM",
        "local.org",
        "Local.Org",
        "ph.net",
        "LOCAL.EXAMPLE",
    ];
    let domains_any = [
        "example.com",
        "virt.org",
        "a.b.virt.org",
        "noway.virt.org",
        "x.noway.virt.org",
        "q.deep.virt.org",
        "other.net",
        "OTHER.NET",
        "dup.org",
        "space.org",
        "nocolon.org",
        "x.example.com",
        "example.com.",
        "remote.example.net",
        "ph.net",
        "",
        "b..c",
        ".lead.dot",
        "upper.org",
        "crlf.org",
        "caf\u{e9}.org",
        "b.org",
        "colon.org",
        "mail.example.com",
    ];
    let mut addrs: Vec<Vec<u8>> = Vec::new();
    let ntargeted = g.rng.gen_range(12..=22);
    let targets = g.targets.clone();
    for _ in 0..ntargeted {
        if targets.is_empty() {
            break;
        }
        let t = g.pick(&targets).clone();
        let mut local = t.base.clone();
        let ext: Vec<u8> = if t.exts.is_empty() || g.chance(15) {
            Vec::new()
        } else {
            let e = g.pick(&t.exts).clone();
            // `default` names are reached by any ext at that level.
            let e = if e.ends_with(b"default") && g.chance(70) {
                let mut x = e[..e.len() - 7].to_vec();
                let opts: [&[u8]; 3] = [b"zz", b"Any.Thing", b"a-b"];
                let chosen: &[u8] = g.pick::<&[u8]>(&opts[..]);
                x.extend_from_slice(chosen);
                x
            } else {
                e
            };
            e
        };
        if !ext.is_empty() || (t.base.is_empty()) || g.chance(20) {
            if !local.is_empty() {
                local.push(b'-');
            }
            local.extend_from_slice(&ext);
        }
        let local = if g.chance(25) {
            random_case(&mut g.rng, &local)
        } else {
            local
        };
        let roll = g.rng.gen_range(0..100);
        let addr = match roll {
            0..=59 => [&local[..], b"@", g.pick(&domains_local).as_bytes()].concat(),
            60..=69 => local.clone(),
            70..=84 => {
                // Through a virtualdomains prepend: prepend-rest.
                let vd = [
                    &ext[..],
                    b"@",
                    g.pick(&[
                        "virt.org",
                        "a.b.virt.org",
                        "dup.org",
                        "q.deep.virt.org",
                        "upper.org",
                    ])
                    .as_bytes(),
                ]
                .concat();
                vd
            }
            _ => [&local[..], b"@", g.pick(&domains_any).as_bytes()].concat(),
        };
        addrs.push(addr);
    }
    let nrandom = g.rng.gen_range(8..=14);
    let specials: &[&[u8]] = &[
        b"",
        b"@",
        b"@example.com",
        b"a%b@example.com",
        b"a%b%c@ph.net",
        b"%x@ph.net",
        b"a@b%c@ph.net",
        b"joe%remote.example.net@ph.net",
        b"x@",
        b"joe@example.com.",
        b"JOE@OTHER.NET",
        b"joe",
        b"Joe.Alias@example.com",
        b"bigx@example.com",
        b"bobby@example.com",
        b"root@example.com",
        b"root-x@example.com",
        b"root0@example.com",
        b"zero@example.com",
        b"rel@example.com",
        b"gone@example.com",
        b"-man@example.com",
        b"joe--x@example.com",
        b"joe-foo-bar@example.com",
        b"joe-@example.com",
        b"joe-foo@example.com",
        b"x@nocolon.org",
        b"postmaster@example.com",
        b"mailer-daemon@example.com",
        b"../../etc/passwd@example.com",
        b" lead@example.com",
        b"a+b@example.com",
        b"dot.user@example.com",
        b"a/b@example.com",
        b"caf\xc3\xa9@example.com",
        b"\xe9@caf\xe9.org",
        b"x@caf\xc3\xa9.example",
        b"line\nbreak@example.com",
        b"x@a@b.org",
    ];
    for _ in 0..nrandom {
        let roll = g.rng.gen_range(0..100);
        let a: Vec<u8> = match roll {
            0..=44 => g.pick(specials).to_vec(),
            45..=89 => {
                let alphabet = b"abjoeqxyz-._%@/ABJQ+";
                let n = g.rng.gen_range(0..12);
                let mut l: Vec<u8> = (0..n).map(|_| *g.pick(alphabet)).collect();
                if g.chance(70) {
                    l.push(b'@');
                    l.extend_from_slice(g.pick(&domains_any).as_bytes());
                }
                l
            }
            90..=94 => {
                // ext over 255 bytes (ENAMETOOLONG → absent).
                let u = some_user(&mut g);
                let mut l = format!("{u}-").into_bytes();
                l.extend_from_slice(&[b'y'; 300]);
                l.extend_from_slice(b"@example.com");
                l
            }
            _ => {
                let u = some_user(&mut g);
                format!("{u}-{}@example.com", "deep-".repeat(g.rng.gen_range(1..6))).into_bytes()
            }
        };
        addrs.push(a);
    }
    // errno fault: its own stream, so the rest of the scenario is the
    // same as without it. An ordinary account whose getpwnam fails with
    // ETXTBSY or whose (absolute) home's stat fails with EIO, and
    // addresses that reach it.
    let mut frng = ChaCha8Rng::seed_from_u64(seed ^ 0x6572_726e_6f2d_666c);
    frng.set_stream(index);
    let mut errno_fault = None;
    if frng.gen_range(0..100) < ERRNO_FAULT_PERCENT {
        let lookup = |a: &Account| a.name.0.to_ascii_lowercase();
        let ordinary: Vec<&Account> = g
            .passwd
            .iter()
            .filter(|a| a.uid >= UID_FIRST_USER && a.name.0.len() < 32)
            .collect();
        let with_home: Vec<&Account> = ordinary
            .iter()
            .copied()
            .filter(|a| lookup(a) == a.name.0 && a.home.0.starts_with(ROOT_TOKEN))
            .collect();
        let fault = if frng.gen_range(0..2) == 0 || with_home.is_empty() {
            ordinary.choose(&mut frng).map(|a| {
                (
                    lookup(a),
                    ErrnoFault::Etxtbsy {
                        name: Esc(lookup(a)),
                    },
                )
            })
        } else {
            with_home.choose(&mut frng).map(|a| {
                (
                    lookup(a),
                    ErrnoFault::Eio {
                        home: a.home.clone(),
                    },
                )
            })
        };
        if let Some((name, f)) = fault {
            for tail in ["@example.com", "-fault@example.com", "@mail.example.com"] {
                addrs.push([name.as_slice(), tail.as_bytes()].concat());
            }
            errno_fault = Some(f);
        }
    }
    // An empty passwd home (pw_dir ""), from its own stream so the rest of
    // the scenario is unchanged: qmail-getpw's stat("") fails (ENOENT), so
    // the user is never found and its addresses go to the alias user,
    // although the qmail home (qmail-getpw's cwd, what "" would name if
    // it were joined to it) is owned by that user.
    let mut hrng = ChaCha8Rng::seed_from_u64(seed ^ 0x656d_7074_792d_686d);
    hrng.set_stream(index);
    if hrng.gen_range(0..100) < EMPTY_HOME_PERCENT {
        let uid = g.next_uid;
        g.next_uid += 1;
        g.passwd.push(Account {
            name: Esc::from(EMPTY_HOME_USER),
            uid,
            gid: GID_USERS,
            home: Esc::default(),
        });
        g.node(
            layout::QMAIL.as_bytes().to_vec(),
            NodeKind::Dir,
            0o755,
            uid,
            GID_USERS,
        );
        for tail in ["@example.com", "-ext@example.com", "@mail.example.com"] {
            addrs.push([EMPTY_HOME_USER.as_bytes(), tail.as_bytes()].concat());
        }
    }
    // conf-break: drawn from its own stream, so that the rest of the
    // scenario is the same as with the default break. With `+`, local
    // parts with `-` are also tried with `+` in its place (qmail-getpw's
    // split, G1).
    let mut brng = ChaCha8Rng::seed_from_u64(seed ^ 0x636f_6e66_2d62_726b);
    brng.set_stream(index);
    let conf_break = if brng.gen_range(0..100) < OTHER_BREAK_PERCENT {
        OTHER_BREAK
    } else {
        DEFAULT_BREAK
    };
    if conf_break != DEFAULT_BREAK {
        let extra: Vec<Vec<u8>> = addrs
            .iter()
            .filter_map(|a| {
                let at = a.iter().rposition(|&c| c == b'@').unwrap_or(a.len());
                a[..at].contains(&b'-').then(|| {
                    let mut b = a.clone();
                    for c in &mut b[..at] {
                        if *c == b'-' {
                            *c = conf_break;
                        }
                    }
                    b
                })
            })
            .collect();
        addrs.extend(extra);
    }
    let mut seen = std::collections::HashSet::new();
    addrs.retain(|a| seen.insert(a.clone()));

    let aliasempty = if g.chance(85) {
        Esc::from("./Maildir-aliasempty/\n")
    } else {
        Esc::from("./Mailbox-aliasempty\n|deliver --second-line\n")
    };
    let aliasempty = Esc(aliasempty.0[..aliasempty.0.len() - 1].to_vec());

    Scenario {
        seed,
        index,
        control: ControlSet {
            me: me.map(Esc::from),
            envnoathost: envnoathost.map(|e| Esc(format!("{e}\n").into_bytes())),
            locals,
            percenthack,
            virtualdomains,
        },
        assign,
        cdb,
        passwd: g.passwd,
        nodes: g.nodes,
        qmail_files: g.qmail_files,
        aliasempty,
        addresses: addrs.into_iter().map(Esc).collect(),
        conf_break,
        errno_fault,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_scenario() {
        let a = generate(7, 3).to_json();
        let b = generate(7, 3).to_json();
        assert_eq!(a, b);
        assert_ne!(a, generate(7, 4).to_json());
        assert_ne!(a, generate(8, 3).to_json());
    }

    #[test]
    fn some_scenarios_use_another_conf_break() {
        let scs: Vec<Scenario> = (0..200).map(|i| generate(1, i)).collect();
        let other: Vec<&Scenario> = scs.iter().filter(|s| s.conf_break == OTHER_BREAK).collect();
        assert!(!other.is_empty() && other.len() < 60, "{}", other.len());
        assert!(scs
            .iter()
            .all(|s| s.conf_break == OTHER_BREAK || s.conf_break == DEFAULT_BREAK));
        // their addresses also try the break byte in place of '-'
        for s in &other {
            for a in &s.addresses {
                let at = a.0.iter().rposition(|&c| c == b'@').unwrap_or(a.0.len());
                if a.0[..at].contains(&b'-') {
                    let mut b = a.0.clone();
                    for c in &mut b[..at] {
                        if *c == b'-' {
                            *c = OTHER_BREAK;
                        }
                    }
                    assert!(s.addresses.contains(&Esc(b)), "{a} without its + form");
                }
            }
        }
        // an old scenario.json without the field means the default
        let mut v: serde_json::Value = serde_json::from_str(&scs[0].to_json()).unwrap();
        v.as_object_mut().unwrap().remove("conf_break");
        let back: Scenario = serde_json::from_value(v).unwrap();
        assert_eq!(back.conf_break, DEFAULT_BREAK);
    }

    #[test]
    fn some_scenarios_have_an_errno_fault() {
        let scs: Vec<Scenario> = (0..400).map(|i| generate(1, i)).collect();
        let faulted: Vec<&Scenario> = scs.iter().filter(|s| s.errno_fault.is_some()).collect();
        assert!(
            faulted.len() >= 5 && faulted.len() < 60,
            "{}",
            faulted.len()
        );
        let mut kinds = (0, 0);
        for s in &faulted {
            let name = match s.errno_fault.as_ref().unwrap() {
                ErrnoFault::Etxtbsy { name } => {
                    kinds.0 += 1;
                    name.0.clone()
                }
                ErrnoFault::Eio { home } => {
                    kinds.1 += 1;
                    let a = s.passwd.iter().find(|a| &a.home == home).unwrap();
                    assert!(home.0.starts_with(ROOT_TOKEN), "{home}");
                    a.name.0.clone()
                }
            };
            // an ordinary account, and addresses that reach it
            assert!(s
                .passwd
                .iter()
                .any(|a| a.uid >= UID_FIRST_USER && a.name.0.to_ascii_lowercase() == name));
            let want = [name.as_slice(), b"@example.com"].concat();
            assert!(s.addresses.contains(&Esc(want)), "{:?}", s.addresses);
            // the rest is the scenario without the fault: the same
            // generator stream gives the same world
            let json = s.to_json();
            assert!(json.contains("\"errno_fault\""));
            let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
            v.as_object_mut().unwrap().remove("errno_fault");
            let back: Scenario = serde_json::from_value(v).unwrap();
            assert_eq!(back.errno_fault, None, "old scenario.json loads");
        }
        assert!(kinds.0 > 0 && kinds.1 > 0, "{kinds:?}");
        // scenarios without a fault do not mention it
        let plain = scs.iter().find(|s| s.errno_fault.is_none()).unwrap();
        assert!(!plain.to_json().contains("errno_fault"));
        // ETXTBSY and EIO go to the shim as its variables
        let root = Path::new("/w");
        let e = ErrnoFault::Eio {
            home: Esc(b"{ROOT}/home/joe".to_vec()),
        };
        assert_eq!(
            e.shim_env(root),
            [("RRT_SHIM_EIO".into(), "/w/home/joe".into())]
        );
    }

    #[test]
    fn escape_round_trips() {
        let all: Vec<u8> = (0..=255u8).collect();
        assert_eq!(unescape(&escape(&all)).unwrap(), all);
        assert_eq!(escape(b"a\\b\n"), "a\\\\b\\x0a");
        assert!(unescape("\\q").is_err());
        assert!(unescape("\\x4").is_err());
    }

    #[test]
    fn json_round_trip_keeps_addresses() {
        let s = generate(1, 1);
        let back: Scenario = serde_json::from_str(&s.to_json()).unwrap();
        assert_eq!(back.addresses, s.addresses);
        assert_eq!(back.to_json(), s.to_json());
    }

    #[test]
    fn qmail_name_folds_and_maps_dots() {
        assert_eq!(qmail_name(b"-", b"A-x.B"), b".qmail-a-x:b");
        assert_eq!(qmail_name(b"", b""), b".qmail");
    }
}
