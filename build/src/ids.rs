//! The qmail users and groups whose numeric ids are compiled into
//! netqmail (its `auto_uids.c`).

use std::ffi::CString;

use crate::BuildError;

/// The users of netqmail's `conf-users`, in order (`auto_uida` …
/// `auto_uids`).
pub const USERS: [&str; 8] = [
    "alias", "qmaild", "qmaill", "root", "qmailp", "qmailq", "qmailr", "qmails",
];
/// The groups of netqmail's `conf-groups`, in order (`auto_gidq`,
/// `auto_gidn`).
pub const GROUPS: [&str; 2] = ["qmail", "nofiles"];

/// The C variable each user's uid is stored in, in [`USERS`] order.
const UID_VARS: [&str; 8] = [
    "auto_uida",
    "auto_uidd",
    "auto_uidl",
    "auto_uido",
    "auto_uidp",
    "auto_uidq",
    "auto_uidr",
    "auto_uids",
];
/// The C variable each group's gid is stored in, in [`GROUPS`] order.
const GID_VARS: [&str; 2] = ["auto_gidq", "auto_gidn"];

/// Numeric ids for the eight qmail users and two groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct IdMap {
    /// uids in [`USERS`] order.
    pub uids: [u32; 8],
    /// gids in [`GROUPS`] order.
    pub gids: [u32; 2],
}

impl IdMap {
    /// Every user and group id set to `uid` / `gid`.
    pub fn uniform(uid: u32, gid: u32) -> Self {
        IdMap {
            uids: [uid; 8],
            gids: [gid; 2],
        }
    }

    /// Every id is the invoking user's (real uid, real gid):
    /// `--as-build-user`.
    pub fn build_user() -> Self {
        // SAFETY: getuid/getgid cannot fail and have no preconditions.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        IdMap::uniform(uid, gid)
    }

    /// The ids of the build machine's qmail users and groups, if all eight
    /// users and both groups exist; `None` otherwise.
    pub fn from_system() -> Option<Self> {
        let mut uids = [0u32; 8];
        for (slot, name) in uids.iter_mut().zip(USERS) {
            *slot = lookup_user(name)?;
        }
        let mut gids = [0u32; 2];
        for (slot, name) in gids.iter_mut().zip(GROUPS) {
            *slot = lookup_group(name)?;
        }
        Some(IdMap { uids, gids })
    }

    /// Parse a `--uid-map` value: comma-separated `name=number` pairs
    /// naming every user of [`USERS`] and group of [`GROUPS`] exactly once,
    /// e.g. `alias=7790,qmaild=7791,…,qmail=2107,nofiles=2108`.
    pub fn parse(s: &str) -> Result<Self, BuildError> {
        let bad = |why: String| BuildError::Invalid(format!("--uid-map {s:?}: {why}"));
        let mut uids = [None; 8];
        let mut gids = [None; 2];
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, num) = item
                .split_once('=')
                .ok_or_else(|| bad(format!("{item:?} is not NAME=NUMBER")))?;
            let id: u32 = num
                .trim()
                .parse()
                .map_err(|_| bad(format!("{num:?} is not a numeric id")))?;
            let name = name.trim();
            let slot = if let Some(i) = USERS.iter().position(|u| *u == name) {
                &mut uids[i]
            } else if let Some(i) = GROUPS.iter().position(|g| *g == name) {
                &mut gids[i]
            } else {
                return Err(bad(format!(
                    "unknown name {name:?}; users are {}, groups are {}",
                    USERS.join(" "),
                    GROUPS.join(" ")
                )));
            };
            if slot.replace(id).is_some() {
                return Err(bad(format!("{name:?} given twice")));
            }
        }
        let missing: Vec<&str> = USERS
            .iter()
            .zip(&uids)
            .chain(GROUPS.iter().zip(&gids))
            .filter(|(_, v)| v.is_none())
            .map(|(n, _)| *n)
            .collect();
        if !missing.is_empty() {
            return Err(bad(format!("missing {}", missing.join(" "))));
        }
        Ok(IdMap {
            uids: uids.map(|u| u.unwrap_or_default()),
            gids: gids.map(|g| g.unwrap_or_default()),
        })
    }

    /// The uid of a user of [`USERS`].
    pub fn uid(&self, user: &str) -> Option<u32> {
        USERS.iter().position(|u| *u == user).map(|i| self.uids[i])
    }

    /// The gid of a group of [`GROUPS`].
    pub fn gid(&self, group: &str) -> Option<u32> {
        GROUPS
            .iter()
            .position(|g| *g == group)
            .map(|i| self.gids[i])
    }

    /// The text of `auto_uids.c` for these ids, exactly as netqmail's
    /// `auto-uid`/`auto-gid` programs would write it.
    pub fn auto_uids_c(&self) -> String {
        let mut s = String::new();
        for (var, id) in UID_VARS.iter().zip(self.uids) {
            s.push_str(&format!("int {var} = {id};\n"));
        }
        for (var, id) in GID_VARS.iter().zip(self.gids) {
            s.push_str(&format!("int {var} = {id};\n"));
        }
        s
    }

    /// `auto_uids.c` with sentinel values (user *i* = 1000000+*i*, group
    /// *i* = 2000000+*i*), used to tell which user a `hier()` entry names
    /// even when several users share an id.
    pub(crate) fn sentinel_c() -> String {
        let mut s = String::new();
        for (i, var) in UID_VARS.iter().enumerate() {
            s.push_str(&format!("int {var} = {};\n", SENTINEL_USER + i as i64));
        }
        for (i, var) in GID_VARS.iter().enumerate() {
            s.push_str(&format!("int {var} = {};\n", SENTINEL_GROUP + i as i64));
        }
        s
    }

    /// `name=id,…` for every user and group (the `--uid-map` syntax).
    pub fn to_arg(&self) -> String {
        USERS
            .iter()
            .zip(self.uids)
            .chain(GROUPS.iter().zip(self.gids))
            .map(|(n, id)| format!("{n}={id}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

pub(crate) const SENTINEL_USER: i64 = 1_000_000;
pub(crate) const SENTINEL_GROUP: i64 = 2_000_000;

/// The uid of a user of this machine, by name.
pub fn lookup_user(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: c is a valid NUL-terminated string; the result is read
    // immediately, before any other passwd call.
    unsafe {
        let pw = libc::getpwnam(c.as_ptr());
        if pw.is_null() {
            None
        } else {
            Some((*pw).pw_uid)
        }
    }
}

/// The gid of a group of this machine, by name.
pub fn lookup_group(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: as in lookup_user.
    unsafe {
        let gr = libc::getgrnam(c.as_ptr());
        if gr.is_null() {
            None
        } else {
            Some((*gr).gr_gid)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trips_and_rejects_bad_maps() {
        let m = IdMap {
            uids: [1, 2, 3, 0, 5, 6, 7, 8],
            gids: [9, 10],
        };
        assert_eq!(IdMap::parse(&m.to_arg()).unwrap(), m);
        let err = IdMap::parse("alias=1").unwrap_err().to_string();
        assert!(err.contains("missing qmaild"), "{err}");
        let err = IdMap::parse(&format!("{},bogus=3", m.to_arg()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown name \"bogus\""), "{err}");
        assert!(IdMap::parse(&format!("{},alias=4", m.to_arg())).is_err());
        assert!(IdMap::parse(&m.to_arg().replace("=9", "=x")).is_err());
    }

    #[test]
    fn auto_uids_c_matches_netqmail_format() {
        let m = IdMap {
            uids: [1, 2, 3, 0, 5, 6, 7, 8],
            gids: [9, 10],
        };
        let c = m.auto_uids_c();
        assert!(c.starts_with("int auto_uida = 1;\nint auto_uidd = 2;\n"));
        assert!(c.contains("int auto_uido = 0;\n"));
        assert!(c.ends_with("int auto_gidq = 9;\nint auto_gidn = 10;\n"));
        assert_eq!(c.lines().count(), 10);
    }

    /// `(name, id)` of the first entry of an `/etc/passwd`-style file
    /// whose id is neither 0 nor 1.
    fn other_entry(file: &str) -> Option<(String, u32)> {
        let text = std::fs::read_to_string(file).ok()?;
        text.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let id: u32 = f.get(2)?.parse().ok()?;
            (id > 1).then(|| (f[0].to_string(), id))
        })
    }

    #[test]
    fn users_and_groups_are_looked_up_by_name() {
        assert_eq!(lookup_user("root"), Some(0));
        assert_eq!(lookup_group("root"), Some(0));
        assert_eq!(lookup_user("qtk-no-such-user"), None);
        assert_eq!(lookup_group("qtk-no-such-group"), None);
        assert_eq!(lookup_user("ro\0ot"), None);
        if let Some((name, uid)) = other_entry("/etc/passwd") {
            assert_eq!(lookup_user(&name), Some(uid), "{name}");
        }
        if let Some((name, gid)) = other_entry("/etc/group") {
            assert_eq!(lookup_group(&name), Some(gid), "{name}");
        }
        // The system map exists exactly when every qmail name does.
        let all = USERS.iter().all(|u| lookup_user(u).is_some())
            && GROUPS.iter().all(|g| lookup_group(g).is_some());
        let sys = IdMap::from_system();
        assert_eq!(sys.is_some(), all);
        if let Some(m) = sys {
            assert_eq!(m.uid("alias"), lookup_user("alias"));
            assert_eq!(m.gid("nofiles"), lookup_group("nofiles"));
        }
    }

    #[test]
    fn sentinel_ids_name_each_user_and_group() {
        let c = IdMap::sentinel_c();
        assert_eq!(c.lines().count(), 10);
        assert!(c.starts_with("int auto_uida = 1000000;\nint auto_uidd = 1000001;\n"));
        assert!(c.ends_with("int auto_gidq = 2000000;\nint auto_gidn = 2000001;\n"));
    }
}
