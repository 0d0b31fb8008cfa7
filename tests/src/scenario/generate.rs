//! The seeded generator: [`generate`] draws one world from one random
//! stream, part by part in a fixed order (control files, accounts and
//! their homes with `.qmail` objects, virtualdomains, users/assign,
//! addresses), then the parts that have their own streams (the errno
//! fault, the empty-home account, conf-break), so that a scenario with
//! one of them is otherwise the scenario without it.
//!
//! The order of the draws is the scenario: moving a draw changes every
//! scenario of every seed, so a change here must keep it.

use super::{
    layout, Account, CdbState, ControlSet, ErrnoFault, Esc, Node, NodeKind, QmailFile, Scenario,
    DEFAULT_BREAK, EMPTY_HOME_PERCENT, EMPTY_HOME_USER, ERRNO_FAULT_PERCENT, GID_NOFILES,
    GID_QMAIL, GID_USERS, LSPAWN_ACCOUNTS, LSPAWN_MISSING_PERCENT, OTHER_BREAK,
    OTHER_BREAK_PERCENT, ROOT_TOKEN, UID_ALIAS, UID_FIRST_USER, UID_QMAILD, UID_QMAILL, UID_QMAILP,
    UID_QMAILQ, UID_QMAILR, UID_QMAILS,
};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The generator's state: the main random stream and the world so far.
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

/// A home as [`Gen::home`] makes it: the passwd home (with `{ROOT}`), the
/// path usable for `.qmail` files (relative to root), and its kind.
type HomeOf = (Vec<u8>, Option<Vec<u8>>, &'static str);

/// `{ROOT}/r`.
fn abs(r: &str) -> Vec<u8> {
    [ROOT_TOKEN, b"/", r.as_bytes()].concat()
}

/// A `.qmail` object as [`Gen::object`] draws it.
struct Object {
    kind: NodeKind,
    /// The marker its content leaves, if any.
    marker: Option<u32>,
    /// Whether it opens as a 0-byte file.
    empty: bool,
    /// Its kind for the report.
    what: &'static str,
    mode: u32,
}

impl Object {
    fn file(content: Esc, marker: Option<u32>, empty: bool, what: &'static str, mode: u32) -> Self {
        let kind = NodeKind::File { content };
        Object {
            kind,
            marker,
            empty,
            what,
            mode,
        }
    }
    fn other(kind: NodeKind, what: &'static str) -> Self {
        Object {
            kind,
            marker: None,
            empty: false,
            what,
            mode: 0o644,
        }
    }
}

impl Gen {
    fn new(seed: u64, index: u64) -> Gen {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(index);
        Gen {
            rng,
            nodes: Vec::new(),
            qmail_files: Vec::new(),
            passwd: Vec::new(),
            next_marker: 0,
            next_uid: UID_FIRST_USER,
            targets: Vec::new(),
        }
    }
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

    /// A home directory at `rel` with `mode`, owned by `owner`.
    fn dir_home(
        &mut self,
        rel: &str,
        mode: u32,
        owner: u32,
        gid: u32,
        what: &'static str,
    ) -> HomeOf {
        self.node(rel.as_bytes().to_vec(), NodeKind::Dir, mode, owner, gid);
        (abs(rel), Some(rel.as_bytes().to_vec()), what)
    }

    /// Makes a home directory for `name` and returns the passwd home (with
    /// `{ROOT}`) and whether the home is usable for .qmail files.
    fn home(&mut self, name: &str, uid: u32, gid: u32) -> HomeOf {
        let safe = name.replace('/', "_");
        let rel = format!("home/{safe}");
        let roll = self.rng.gen_range(0..100);
        match roll {
            0..=54 => self.dir_home(&rel, 0o755, uid, gid, "home 755"),
            55..=61 => self.dir_home(&rel, 0o775, uid, gid, "home 775"),
            62..=65 => self.dir_home(&rel, 0o777, uid, gid, "home 777"),
            66..=68 => self.dir_home(&rel, 0o1755, uid, gid, "home sticky"),
            69..=70 => self.dir_home(&rel, 0o000, uid, gid, "home 000"),
            71..=74 => (abs(&rel), None, "home missing"),
            75..=78 => self.dir_home(&rel, 0o755, UID_ALIAS + 999, gid, "home owned by other"),
            79..=83 => {
                let real = format!("real/{safe}");
                self.node(b"real".to_vec(), NodeKind::Dir, 0o755, 0, 0);
                self.node(real.clone().into_bytes(), NodeKind::Dir, 0o755, uid, gid);
                let target = Esc(abs(&real));
                self.node(
                    rel.clone().into_bytes(),
                    NodeKind::Symlink { target },
                    0o777,
                    0,
                    0,
                );
                (abs(&rel), Some(real.into_bytes()), "home symlink")
            }
            84..=85 => {
                let target = Esc(abs("nowhere"));
                self.node(
                    rel.clone().into_bytes(),
                    NodeKind::Symlink { target },
                    0o777,
                    0,
                    0,
                );
                (abs(&rel), None, "home dangling symlink")
            }
            86..=88 => {
                self.node(b"hidden".to_vec(), NodeKind::Dir, 0o700, 0, 0);
                self.dir_home(
                    &format!("hidden/{safe}"),
                    0o755,
                    uid,
                    gid,
                    "home under root 0700",
                )
            }
            89..=92 => {
                let parent = format!("priv-{safe}");
                let h = format!("{parent}/home");
                self.node(parent.into_bytes(), NodeKind::Dir, 0o700, uid, gid);
                self.dir_home(&h, 0o755, uid, gid, "home under user 0700")
            }
            93..=94 => {
                let content = Esc::from("not a dir\n");
                self.node(
                    rel.clone().into_bytes(),
                    NodeKind::File { content },
                    0o644,
                    uid,
                    gid,
                );
                (abs(&rel), None, "home not a dir")
            }
            95..=96 => {
                self.node(rel.clone().into_bytes(), NodeKind::Dir, 0o755, uid, gid);
                let r = rel.into_bytes();
                (r.clone(), Some(r), "home relative")
            }
            _ => self.dir_home(&rel, 0o2755, uid, gid, "home setgid"),
        }
    }

    /// The content of a `.qmail` file with `marker`, and whether the
    /// marker is found in qmail-local's listing.
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
        let roll: i32 = self.rng.gen_range(0..100);
        let o = self.object(roll, home, marker, uid, gid);
        self.node(path, o.kind, o.mode, uid, gid);
        self.qmail_files.push(QmailFile {
            home: Esc(home.to_vec()),
            name: Esc(name.to_vec()),
            marker: o.marker,
            empty: o.empty,
            kind: o.what.into(),
        });
    }

    /// The `.qmail` object of kind `roll` (0–99) carrying `marker`.
    fn object(&mut self, roll: i32, home: &[u8], marker: u32, uid: u32, gid: u32) -> Object {
        match roll {
            0..=44 => {
                let (c, m) = self.content(marker);
                let mode = *self.pick(&[0o644, 0o644, 0o444, 0o664]);
                let what = if mode == 0o664 {
                    "file group-writable"
                } else {
                    "file"
                };
                Object::file(Esc(c), m.then_some(marker), false, what, mode)
            }
            45..=52 => Object::file(Esc::default(), None, true, "empty file", 0o644),
            53..=57 => Object::other(NodeKind::Dir, "directory"),
            58..=61 => Object::other(NodeKind::Fifo, "fifo"),
            62..=67 => self.symlink_to_file(home, marker, uid, gid),
            68..=71 => {
                let target = Esc::from("/nonexistent/qmail-target");
                Object::other(NodeKind::Symlink { target }, "dangling symlink")
            }
            72..=73 => {
                let target = Esc::from(".");
                Object::other(NodeKind::Symlink { target }, "symlink to directory")
            }
            74..=78 => {
                let (c, m) = self.content(marker);
                Object::file(Esc(c), m.then_some(marker), false, "unreadable file", 0o000)
            }
            79..=84 => {
                let (c, m) = self.content(marker);
                Object::file(
                    Esc(c),
                    m.then_some(marker),
                    false,
                    "world-writable file",
                    0o666,
                )
            }
            85..=90 => {
                let content = Esc(format!("&qf{marker}\nplain@forward\n").into_bytes());
                Object::file(content, Some(marker), false, "x bit, forwards", 0o744)
            }
            91..=94 => {
                let content = Esc(format!("&qf{marker}\n./Mbox\n").into_bytes());
                Object::file(content, Some(marker), false, "x bit, file delivery", 0o755)
            }
            _ => Object::file(Esc::default(), None, true, "empty file, x bit", 0o755),
        }
    }

    /// A symlink to a file `targets/t<marker>` that it makes in `home`.
    fn symlink_to_file(&mut self, home: &[u8], marker: u32, uid: u32, gid: u32) -> Object {
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
        Object {
            marker: m.then_some(marker),
            ..Object::other(NodeKind::Symlink { target }, what)
        }
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
    let mut g = Gen::new(seed, index);
    let mut control = control_files(&mut g);
    let users = accounts(&mut g);
    let user_names: Vec<String> = users.iter().map(|u| u.0.clone()).collect();
    control.virtualdomains = virtualdomains(&mut g, &user_names);
    let (cdb, assign) = users_assign(&mut g, &users);
    let mut addrs = targeted_addresses(&mut g);
    random_addresses(&mut g, &user_names, &mut addrs);
    let errno_fault = errno_fault(seed, index, &g.passwd, &mut addrs);
    empty_home_account(seed, index, &mut g, &mut addrs);
    let conf_break = conf_break(seed, index, &mut addrs);
    let lspawn_missing = lspawn_missing(seed, index, &mut g.passwd);
    let mut seen = std::collections::HashSet::new();
    addrs.retain(|a| seen.insert(a.clone()));
    let aliasempty = aliasempty(&mut g);
    Scenario {
        seed,
        index,
        control,
        assign,
        cdb,
        passwd: g.passwd,
        nodes: g.nodes,
        qmail_files: g.qmail_files,
        aliasempty,
        addresses: addrs.into_iter().map(Esc).collect(),
        conf_break,
        errno_fault,
        lspawn_missing,
    }
}

/// The qmail account left out (in [`LSPAWN_MISSING_PERCENT`] of the
/// scenarios, each of [`LSPAWN_ACCOUNTS`] alike), from its own stream so
/// that the rest of the scenario is the same without it; a user is taken
/// out of `passwd` here, the group by [`Scenario::group_text`].
fn lspawn_missing(seed: u64, index: u64, passwd: &mut Vec<Account>) -> Option<String> {
    let mut lrng = side_stream(seed, 0x6c73_7061_776e_2d6d, index);
    if lrng.gen_range(0..100) >= LSPAWN_MISSING_PERCENT {
        return None;
    }
    let name = LSPAWN_ACCOUNTS[lrng.gen_range(0..LSPAWN_ACCOUNTS.len())];
    passwd.retain(|a| a.name.0 != name.as_bytes());
    Some(name.to_string())
}

// ------------------------------------------------------ control files

/// control/me, envnoathost, locals and percenthack (virtualdomains
/// comes after the accounts it names).
fn control_files(g: &mut Gen) -> ControlSet {
    let me = control_me(g);
    let envnoathost = control_envnoathost(g);
    let locals = control_locals(g);
    let percenthack = control_percenthack(g);
    ControlSet {
        me: me.map(Esc::from),
        envnoathost: envnoathost.map(|e| Esc(format!("{e}\n").into_bytes())),
        locals,
        percenthack,
        virtualdomains: None,
    }
}

fn control_me(g: &mut Gen) -> Option<&'static str> {
    let me_roll = g.rng.gen_range(0..100);
    match me_roll {
        0..=84 => Some("mail.example.com"),
        85..=92 => Some("Mail.Example.COM \t"),
        93..=96 => None,
        _ => Some(""),
    }
}

fn control_envnoathost(g: &mut Gen) -> Option<&'static str> {
    let env_roll = g.rng.gen_range(0..100);
    match env_roll {
        0..=29 => None,
        30..=54 => Some("example.com"),
        55..=74 => Some("remote.example.net"),
        75..=84 => Some(""),
        85..=92 => Some("ph.net"),
        _ => Some("virt.org"),
    }
}

const LOCALS_POOL: [&str; 11] = [
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

fn control_locals(g: &mut Gen) -> Option<Esc> {
    match g.rng.gen_range(0..100) {
        0..=7 => None,
        8..=11 => Some(Esc::default()),
        _ => {
            let mut v: Vec<String> = vec!["example.com".into()];
            for l in LOCALS_POOL.iter() {
                if g.chance(40) {
                    v.push((*l).to_string());
                }
            }
            v.shuffle(&mut g.rng);
            Some(lines(&v))
        }
    }
}

fn control_percenthack(g: &mut Gen) -> Option<Esc> {
    if g.chance(40) {
        return None;
    }
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
}

// -------------------------------------------------------- accounts

/// The passwd accounts (root, the qmail users, alias, maybe toor, 3–7
/// ordinary users) with their homes and `.qmail` objects; returns the
/// rows of toor and the ordinary users.
fn accounts(g: &mut Gen) -> Vec<UserRow> {
    let mut names: Vec<&str> = USER_POOL.to_vec();
    names.shuffle(&mut g.rng);
    let nusers: usize = g.rng.gen_range(3..=7);
    let mut users: Vec<UserRow> = Vec::new();
    system_accounts(g);
    alias_account(g);
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
        users.push(ordinary_account(g, name));
    }
    users
}

/// root and the qmail accounts (no draws).
fn system_accounts(g: &mut Gen) {
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
}

/// The alias account (in 92% of scenarios; uid 0 in 4%) and its
/// `.qmail` files, postmaster, mailer-daemon and root among them.
fn alias_account(g: &mut Gen) {
    let alias_roll = g.rng.gen_range(0..100);
    if alias_roll >= 92 {
        return;
    }
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
    let mut exts = g.fill_home(b"home/alias", UID_ALIAS, GID_NOFILES);
    for e in ["postmaster", "mailer-daemon", "root"] {
        if g.chance(50) {
            let name = qmail_name(b"-", e.as_bytes());
            g.qmail_object(b"home/alias", &name, UID_ALIAS, GID_NOFILES);
            exts.push(e.as_bytes().to_vec());
        }
    }
    g.targets.push(Target {
        base: Vec::new(),
        exts,
    });
}

/// An ordinary user `name`, its home and (if usable) its `.qmail` objects.
fn ordinary_account(g: &mut Gen, name: &str) -> UserRow {
    let uid = g.next_uid;
    g.next_uid += 1;
    let (home, usable, _what) = g.home(name, uid, GID_USERS);
    g.passwd.push(Account {
        name: Esc::from(name),
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
    (name.to_string(), uid, home, usable)
}

// ---------------------------------------------------- virtualdomains

/// One of the generated user names ("nobody" if there is none).
fn some_user(g: &mut Gen, user_names: &[String]) -> String {
    if user_names.is_empty() {
        "nobody".into()
    } else {
        g.pick(user_names).clone()
    }
}

/// control/virtualdomains (absent in 12%): some of the candidate lines,
/// shuffled, maybe a wildcard line, maybe with CRLF line ends.
fn virtualdomains(g: &mut Gen, user_names: &[String]) -> Option<Esc> {
    if g.chance(12) {
        return None;
    }
    let mut v: Vec<String> = Vec::new();
    for c in virtualdomain_candidates(g, user_names) {
        if g.chance(45) {
            v.push(c);
        }
    }
    v.shuffle(&mut g.rng);
    if g.chance(15) {
        v.push(format!(":{}", some_user(g, user_names)));
    }
    if g.chance(5) {
        v.push(":alias".into());
    }
    let e = lines(&v);
    if g.chance(8) {
        return Some(crlf(&e));
    }
    Some(e)
}

/// The candidate virtualdomains lines, users drawn in this order.
fn virtualdomain_candidates(g: &mut Gen, u: &[String]) -> Vec<String> {
    vec![
        format!("virt.org:{}", some_user(g, u)),
        format!(".virt.org:{}-sub", some_user(g, u)),
        format!("joe@other.net:{}", some_user(g, u)),
        "noway.virt.org:".into(),
        format!(".deep.virt.org:{}", some_user(g, u)),
        format!("dup.org:{}", some_user(g, u)),
        format!("dup.org:{}", some_user(g, u)),
        format!("space.org: {}", some_user(g, u)),
        "nocolon.org".into(),
        format!("example.com:{}", some_user(g, u)),
        "x.example.com:Pre-Fix".into(),
        format!("UPPER.ORG:{}", some_user(g, u).to_uppercase()),
        format!("crlf.org:{}\r", some_user(g, u)),
        "# comment".into(),
        String::new(),
        format!("example.com.:{}", some_user(g, u)),
        format!("caf\u{e9}.org:{}", some_user(g, u)),
        "a@b.org:a@b".into(),
        "colon.org:x:y".into(),
        format!("ph.net:{}", some_user(g, u)),
        format!(".:{}", some_user(g, u)),
    ]
}

/// `e` with every `\n` made `\r\n`.
fn crlf(e: &Esc) -> Esc {
    Esc(e
        .0
        .iter()
        .flat_map(|&c| {
            if c == b'\n' {
                vec![b'\r', b'\n']
            } else {
                vec![c]
            }
        })
        .collect())
}

// ---------------------------------------------------- users/assign

/// How users/cdb is made, and users/assign (absent in 70% of the
/// scenarios without a cdb).
fn users_assign(g: &mut Gen, users: &[UserRow]) -> (CdbState, Option<Esc>) {
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
        Some(assign_file(g, users))
    };
    (cdb, assign)
}

/// One users/assign line for user `u`.
fn assign_entry(ty: &str, key: &str, u: &UserRow, dash: &str, ext: &str) -> Vec<u8> {
    let mut l = format!("{ty}{key}:{}:{}:{}:", u.0, u.1, GID_USERS).into_bytes();
    l.extend_from_slice(&u.2);
    l.extend_from_slice(format!(":{dash}:{ext}:").as_bytes());
    l
}

/// users/assign: entries for the users, odd entries, maybe a format
/// error, the `.` terminator (maybe with a line after it).
fn assign_file(g: &mut Gen, users: &[UserRow]) -> Esc {
    let mut v = user_assign_entries(g, users);
    odd_assign_entries(g, &mut v);
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
    Esc(out)
}

/// 1–8 `=` and `+` entries for drawn users.
fn user_assign_entries(g: &mut Gen, users: &[UserRow]) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = Vec::new();
    let k = g.rng.gen_range(1..=8);
    for _ in 0..k {
        if users.is_empty() {
            break;
        }
        let u = g.pick(users).clone();
        let line = match g.rng.gen_range(0..14) {
            0..=2 => assign_entry("=", &u.0, &u, "", ""),
            3 => assign_entry("=", &format!("{}.Alias", u.0), &u, "-", "foo"),
            4..=5 => assign_entry("+", &format!("{}-", u.0), &u, "-", ""),
            6 => assign_entry("+", &u.0[..u.0.len().min(2)], &u, "-", "pre-"),
            7 => assign_entry("+", "BIG", &u, "-", "b-"),
            8 => assign_entry("x", &u.0, &u, "", ""),
            9 => assign_entry("+", "list-", &u, "-", "list-"),
            10 => assign_entry("+", "", &u, "-", ""),
            11 => {
                let mut l = assign_entry("=", &u.0, &u, "", "");
                l.extend_from_slice(b"extra:fields");
                l
            }
            12 => assign_entry("=", &u.0, &u, "+", "plus"),
            _ => assign_entry("+", "q", &u, "-", ""),
        };
        v.push(line);
    }
    v
}

/// Entries with a non-numeric uid, uid 0, a relative home, a missing
/// home (each maybe).
fn odd_assign_entries(g: &mut Gen, v: &mut Vec<Vec<u8>>) {
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
        v.push(format!("=rel:rel:{}:{GID_USERS}:home/rel:::", UID_FIRST_USER + 90).into_bytes());
    }
    if g.chance(15) {
        let mut l = format!("=gone:gone:{}:{GID_USERS}:", UID_FIRST_USER + 91).into_bytes();
        l.extend_from_slice(ROOT_TOKEN);
        l.extend_from_slice(b"/home/gone-nowhere:::");
        v.push(l);
    }
}

// ---------------------------------------------------- addresses

const DOMAINS_LOCAL: [&str; 6] = [
    "example.com",
    "EXAMPLE.COM",
    "local.org",
    "Local.Org",
    "ph.net",
    "LOCAL.EXAMPLE",
];

const DOMAINS_ANY: [&str; 24] = [
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

/// Virtual domains with a prepend, for `ext@domain` addresses.
const DOMAINS_VIRTUAL: [&str; 5] = [
    "virt.org",
    "a.b.virt.org",
    "dup.org",
    "q.deep.virt.org",
    "upper.org",
];

/// 12–22 addresses aimed at the homes the generator filled.
fn targeted_addresses(g: &mut Gen) -> Vec<Vec<u8>> {
    let mut addrs: Vec<Vec<u8>> = Vec::new();
    let ntargeted = g.rng.gen_range(12..=22);
    let targets = g.targets.clone();
    for _ in 0..ntargeted {
        if targets.is_empty() {
            break;
        }
        let t = g.pick(&targets).clone();
        addrs.push(targeted_address(g, &t));
    }
    addrs
}

/// An ext of `t` (or none); a `default` ext is mostly replaced by
/// another ext it matches.
fn target_ext(g: &mut Gen, t: &Target) -> Vec<u8> {
    if t.exts.is_empty() || g.chance(15) {
        return Vec::new();
    }
    let e = g.pick(&t.exts).clone();
    // `default` names are reached by any ext at that level.
    if e.ends_with(b"default") && g.chance(70) {
        let mut x = e[..e.len() - 7].to_vec();
        let opts: [&[u8]; 3] = [b"zz", b"Any.Thing", b"a-b"];
        let chosen: &[u8] = g.pick::<&[u8]>(&opts[..]);
        x.extend_from_slice(chosen);
        x
    } else {
        e
    }
}

/// An address that reaches `t` (local part, maybe with an ext, maybe
/// case-changed, at a local, virtual or any domain, or bare).
fn targeted_address(g: &mut Gen, t: &Target) -> Vec<u8> {
    let mut local = t.base.clone();
    let ext = target_ext(g, t);
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
    match roll {
        0..=59 => [&local[..], b"@", g.pick(&DOMAINS_LOCAL).as_bytes()].concat(),
        60..=69 => local.clone(),
        // Through a virtualdomains prepend: prepend-rest.
        70..=84 => [&ext[..], b"@", g.pick(&DOMAINS_VIRTUAL).as_bytes()].concat(),
        _ => [&local[..], b"@", g.pick(&DOMAINS_ANY).as_bytes()].concat(),
    }
}

/// Addresses with something special about them.
const SPECIALS: &[&[u8]] = &[
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

/// 8–14 more addresses: specials, random strings, long and deep exts.
fn random_addresses(g: &mut Gen, user_names: &[String], addrs: &mut Vec<Vec<u8>>) {
    let nrandom = g.rng.gen_range(8..=14);
    for _ in 0..nrandom {
        let a = random_address(g, user_names);
        addrs.push(a);
    }
}

fn random_address(g: &mut Gen, user_names: &[String]) -> Vec<u8> {
    let roll = g.rng.gen_range(0..100);
    match roll {
        0..=44 => g.pick(SPECIALS).to_vec(),
        45..=89 => {
            let alphabet = b"abjoeqxyz-._%@/ABJQ+";
            let n = g.rng.gen_range(0..12);
            let mut l: Vec<u8> = (0..n).map(|_| *g.pick(alphabet)).collect();
            if g.chance(70) {
                l.push(b'@');
                l.extend_from_slice(g.pick(&DOMAINS_ANY).as_bytes());
            }
            l
        }
        90..=94 => {
            // ext over 255 bytes (ENAMETOOLONG → absent).
            let u = some_user(g, user_names);
            let mut l = format!("{u}-").into_bytes();
            l.extend_from_slice(&[b'y'; 300]);
            l.extend_from_slice(b"@example.com");
            l
        }
        _ => {
            let u = some_user(g, user_names);
            format!("{u}-{}@example.com", "deep-".repeat(g.rng.gen_range(1..6))).into_bytes()
        }
    }
}

// ------------------------------------------ parts with their own streams

/// The random stream of one side part of scenario `index`: `salt` keeps
/// it apart from the main stream and the other parts.
fn side_stream(seed: u64, salt: u64, index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ salt);
    rng.set_stream(index);
    rng
}

/// The errno fault (in [`ERRNO_FAULT_PERCENT`] of the scenarios), from
/// its own stream, so the rest of the scenario is the same as without
/// it: an ordinary account whose getpwnam fails with ETXTBSY or whose
/// (absolute) home's stat fails with EIO, and addresses that reach it.
fn errno_fault(
    seed: u64,
    index: u64,
    passwd: &[Account],
    addrs: &mut Vec<Vec<u8>>,
) -> Option<ErrnoFault> {
    let mut frng = side_stream(seed, 0x6572_726e_6f2d_666c, index);
    if frng.gen_range(0..100) >= ERRNO_FAULT_PERCENT {
        return None;
    }
    let lookup = |a: &Account| a.name.0.to_ascii_lowercase();
    let ordinary: Vec<&Account> = passwd
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
            let name = Esc(lookup(a));
            (lookup(a), ErrnoFault::Etxtbsy { name })
        })
    } else {
        with_home.choose(&mut frng).map(|a| {
            let home = a.home.clone();
            (lookup(a), ErrnoFault::Eio { home })
        })
    };
    let (name, f) = fault?;
    for tail in ["@example.com", "-fault@example.com", "@mail.example.com"] {
        addrs.push([name.as_slice(), tail.as_bytes()].concat());
    }
    Some(f)
}

/// An empty passwd home (pw_dir ""), in [`EMPTY_HOME_PERCENT`] of the
/// scenarios, from its own stream so the rest of the scenario is
/// unchanged: qmail-getpw's stat("") fails (ENOENT), so the user is never
/// found and its addresses go to the alias user, although the qmail home
/// (qmail-getpw's cwd, what "" would name if it were joined to it) is
/// owned by that user.
fn empty_home_account(seed: u64, index: u64, g: &mut Gen, addrs: &mut Vec<Vec<u8>>) {
    let mut hrng = side_stream(seed, 0x656d_7074_792d_686d, index);
    if hrng.gen_range(0..100) >= EMPTY_HOME_PERCENT {
        return;
    }
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

/// conf-break ([`OTHER_BREAK`] in [`OTHER_BREAK_PERCENT`] of the
/// scenarios), drawn from its own stream, so that the rest of the
/// scenario is the same as with the default break. With `+`, local parts
/// with `-` are also tried with `+` in its place (qmail-getpw's split,
/// G1).
fn conf_break(seed: u64, index: u64, addrs: &mut Vec<Vec<u8>>) -> u8 {
    let mut brng = side_stream(seed, 0x636f_6e66_2d62_726b, index);
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
    conf_break
}

/// qmail-lspawn's argv\[1\]: a maildir (85%) or an mbox and a program.
fn aliasempty(g: &mut Gen) -> Esc {
    let aliasempty = if g.chance(85) {
        Esc::from("./Maildir-aliasempty/\n")
    } else {
        Esc::from("./Mailbox-aliasempty\n|deliver --second-line\n")
    };
    Esc(aliasempty.0[..aliasempty.0.len() - 1].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::DEFAULT_BREAK;
    use std::path::Path;

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
    fn qmail_name_folds_and_maps_dots() {
        assert_eq!(qmail_name(b"-", b"A-x.B"), b".qmail-a-x:b");
        assert_eq!(qmail_name(b"", b""), b".qmail");
    }
}
