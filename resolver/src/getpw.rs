//! Stage G: qmail-getpw (G1–G7) and the passwd oracle.

use crate::bytes::{is_temp_errno, with_cstr, Bytes};
use crate::snapshot::Fs;
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;

/// A passwd record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PwEntry {
    /// pw_name
    pub name: Bytes,
    /// pw_uid
    pub uid: u32,
    /// pw_gid
    pub gid: u32,
    /// pw_dir
    pub dir: Bytes,
}

/// The answer of `getpwnam` (resolution.md §1 item 4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PwResult {
    /// A record.
    Found(PwEntry),
    /// No such user (or any failure other than ETXTBSY).
    Absent,
    /// getpwnam failed with errno ETXTBSY (G2: QLX_SYS).
    Etxtbsy,
}

/// A passwd oracle (and the one group question notqmail's qmail-lspawn
/// asks, see [`crate::release`]).
pub trait Passwd {
    /// Looks a user name up, like `getpwnam`.
    fn getpwnam(&self, name: &[u8]) -> PwResult;
    /// Does the group exist (`getgrnam` returns a record)? Only asked for
    /// notqmail-1.09's qmail-lspawn start (group `nofiles`). The default
    /// answers yes: an oracle that does not model groups has every group.
    fn group_exists(&self, name: &[u8]) -> bool {
        let _ = name;
        true
    }
}

impl<P: Passwd + ?Sized> Passwd for &P {
    fn getpwnam(&self, name: &[u8]) -> PwResult {
        (**self).getpwnam(name)
    }
    fn group_exists(&self, name: &[u8]) -> bool {
        (**self).group_exists(name)
    }
}

impl<P: Passwd + ?Sized> Passwd for Box<P> {
    fn getpwnam(&self, name: &[u8]) -> PwResult {
        (**self).getpwnam(name)
    }
    fn group_exists(&self, name: &[u8]) -> bool {
        (**self).group_exists(name)
    }
}

/// The system's passwd through libc `getpwnam_r` (so NSS modules and
/// nss_wrapper apply). errno ETXTBSY is reported as [`PwResult::Etxtbsy`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemPasswd;

impl Passwd for SystemPasswd {
    fn getpwnam(&self, name: &[u8]) -> PwResult {
        with_cstr(name, getpwnam_c).unwrap_or(PwResult::Absent)
    }
    fn group_exists(&self, name: &[u8]) -> bool {
        with_cstr(name, getgrnam_c).unwrap_or(false)
    }
}

/// Did a `get*nam_r` call say the buffer is too small? glibc returns
/// ERANGE; nss_wrapper 1.1 (the test suite's and benchmarks' NSS) returns
/// -1 with errno ERANGE for groups, which must be retried as well (notqmail
/// calls `getgrnam`, whose own buffer grows).
fn too_small(r: libc::c_int) -> bool {
    r == libc::ERANGE || (r == -1 && crate::bytes::last_errno() == libc::ERANGE)
}

/// `getgrnam_r`: is there a record? (Any failure is "no", as for
/// notqmail's `initgid`, which only tests the pointer.) The buffer grows
/// on ERANGE up to 1 MiB (groups with many members).
fn getgrnam_c(cname: &std::ffi::CStr) -> bool {
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: all-zero is a valid group (null pointers, zero id).
        let mut gr: libc::group = unsafe { std::mem::zeroed() };
        let mut out: *mut libc::group = std::ptr::null_mut();
        // SAFETY: all pointers are valid for the call; buf outlives gr.
        let r = unsafe {
            libc::getgrnam_r(
                cname.as_ptr(),
                &mut gr,
                buf.as_mut_ptr() as *mut libc::c_char,
                buf.len(),
                &mut out,
            )
        };
        if too_small(r) && buf.len() < (1 << 20) {
            let n = buf.len() * 2;
            buf.resize(n, 0);
            continue;
        }
        return !out.is_null();
    }
}

/// `getpwnam_r` into a stack buffer of 4 KiB, growing on the heap only on
/// ERANGE (up to 1 MiB).
fn getpwnam_c(cname: &std::ffi::CStr) -> PwResult {
    let mut stack = [0u8; 4096];
    let mut heap = Vec::new();
    let mut buf: &mut [u8] = &mut stack;
    loop {
        // SAFETY: all-zero is a valid passwd (null pointers, zero ids).
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: all pointers are valid for the call; buf outlives pw.
        let r = unsafe {
            libc::getpwnam_r(
                cname.as_ptr(),
                &mut pw,
                buf.as_mut_ptr() as *mut libc::c_char,
                buf.len(),
                &mut out,
            )
        };
        if too_small(r) && buf.len() < (1 << 20) {
            let n = buf.len() * 2;
            heap.resize(n, 0);
            buf = &mut heap;
            continue;
        }
        if r == libc::ETXTBSY {
            return PwResult::Etxtbsy;
        }
        if out.is_null() {
            return PwResult::Absent;
        }
        // SAFETY: getpwnam_r succeeded, the strings point into buf.
        let (n, d) = unsafe {
            (
                Bytes::vec_from(std::ffi::CStr::from_ptr(pw.pw_name).to_bytes()),
                Bytes::vec_from(std::ffi::CStr::from_ptr(pw.pw_dir).to_bytes()),
            )
        };
        return PwResult::Found(PwEntry {
            name: Bytes(n),
            uid: pw.pw_uid,
            gid: pw.pw_gid,
            dir: Bytes(d),
        });
    }
}

/// The most names [`CachedPasswd`] remembers (then it starts over).
pub const PASSWD_CACHE_MAX: usize = 100_000;

/// A per-run cache over another passwd oracle (qtraceaddr's): each name is
/// asked once. `Found` and `Absent` are kept (a passwd database that does
/// not change during the run gives the same answer again); `Etxtbsy` is a
/// temporary failure and is asked again. At most [`PASSWD_CACHE_MAX`]
/// names are kept; when full, the cache is emptied, so memory stays bounded
/// over millions of distinct local parts.
///
/// Not for long-lived processes that must see passwd edits.
#[derive(Debug, Default)]
pub struct CachedPasswd<P> {
    inner: P,
    cache: std::cell::RefCell<HashMap<Vec<u8>, PwResult>>,
}

impl<P: Passwd> CachedPasswd<P> {
    /// A cache in front of `inner`.
    pub fn new(inner: P) -> Self {
        CachedPasswd {
            inner,
            cache: Default::default(),
        }
    }
    /// The oracle behind the cache.
    pub fn inner(&self) -> &P {
        &self.inner
    }
}

impl<P: Passwd> Passwd for CachedPasswd<P> {
    fn getpwnam(&self, name: &[u8]) -> PwResult {
        if let Some(r) = self.cache.borrow().get(name) {
            return r.clone();
        }
        let r = self.inner.getpwnam(name);
        if r != PwResult::Etxtbsy {
            let mut c = self.cache.borrow_mut();
            if c.len() >= PASSWD_CACHE_MAX {
                c.clear();
            }
            c.insert(name.to_vec(), r.clone());
        }
        r
    }
    /// Not cached: asked once per address, and only for notqmail-1.09.
    fn group_exists(&self, name: &[u8]) -> bool {
        self.inner.group_exists(name)
    }
}

/// A fixed passwd map (tests, benchmarks). Names are matched exactly.
/// Every group exists unless removed with [`StaticPasswd::remove_group`].
#[derive(Debug, Clone, Default)]
pub struct StaticPasswd {
    map: HashMap<Vec<u8>, PwResult>,
    no_groups: Vec<Vec<u8>>,
}

impl StaticPasswd {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a user.
    pub fn add(&mut self, name: &[u8], uid: u32, gid: u32, dir: &[u8]) -> &mut Self {
        self.map.insert(
            name.to_vec(),
            PwResult::Found(PwEntry {
                name: Bytes::new(name),
                uid,
                gid,
                dir: Bytes::new(dir),
            }),
        );
        self
    }
    /// Makes lookups of `name` fail with ETXTBSY.
    pub fn add_etxtbsy(&mut self, name: &[u8]) -> &mut Self {
        self.map.insert(name.to_vec(), PwResult::Etxtbsy);
        self
    }
    /// Makes the group `name` not exist.
    pub fn remove_group(&mut self, name: &[u8]) -> &mut Self {
        self.no_groups.push(name.to_vec());
        self
    }
}

impl Passwd for StaticPasswd {
    fn getpwnam(&self, name: &[u8]) -> PwResult {
        self.map.get(name).cloned().unwrap_or(PwResult::Absent)
    }
    fn group_exists(&self, name: &[u8]) -> bool {
        !self.no_groups.iter().any(|g| g == name)
    }
}

/// G1: the candidate boundaries `e`, longest first: `e < 32` and
/// (`e == len` or `local[e] == brk`).
pub fn getpw_candidates(local: &[u8], brk: u8) -> Vec<usize> {
    candidate_ends(local, brk).collect()
}

/// [`getpw_candidates`] without collecting them (no allocation).
fn candidate_ends(local: &[u8], brk: u8) -> impl Iterator<Item = usize> + '_ {
    (0..=local.len())
        .rev()
        .filter(move |&e| e < 32 && (e == local.len() || local[e] == brk))
}

pub use crate::snapshot::{stat_path, StatResult};

/// What happened to one G1 candidate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CandidateResult {
    /// getpwnam found nothing.
    Absent,
    /// getpwnam failed with ETXTBSY (G2; ends stage G).
    Etxtbsy,
    /// pw_uid == 0 (skipped).
    Root,
    /// stat(pw_dir) failed with a permanent errno (skipped).
    StatFailed {
        /// errno
        errno: i32,
        /// EACCES/EPERM: qmailp might see something else, so realrcptto
        /// cannot be sure (deliberate change 3).
        uncertain: bool,
    },
    /// stat(pw_dir) failed with a temporary errno (G4; ends stage G).
    StatTemporary {
        /// errno
        errno: i32,
    },
    /// The home is owned by another uid (skipped).
    WrongOwner {
        /// st_uid
        owner: u32,
    },
    /// Accepted.
    Accepted {
        /// st_mode of the home (reused by the L2/L3 check).
        mode: u32,
    },
}

/// One G1 candidate and its fate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// The folded username tried.
    pub name: Bytes,
    /// The boundary `e`.
    pub boundary: usize,
    /// The passwd record, if any.
    pub entry: Option<PwEntry>,
    /// The result.
    pub result: CandidateResult,
}

/// The final result of stage G.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GetpwOutcome {
    /// A user was chosen (directly or through the alias fallback).
    Found {
        /// The passwd record.
        entry: PwEntry,
        /// dash ("" or "-").
        dash: Bytes,
        /// ext (original case).
        ext: Bytes,
        /// G5: the alias user was used.
        alias: bool,
    },
    /// G5: the alias user does not exist (QLX_NOALIAS).
    NoAlias,
    /// G2: ETXTBSY (QLX_SYS).
    Sys,
    /// G4: a temporary stat errno (QLX_NFS).
    Nfs {
        /// errno
        errno: i32,
    },
}

/// The full stage G trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Getpw {
    /// Every candidate tried, longest first.
    pub candidates: Vec<Candidate>,
    /// The result.
    pub outcome: GetpwOutcome,
}

/// Runs stage G for `local` with the calling process's view of the
/// filesystem. Relative homes are stat'ed relative to `qmail_home` (the cwd
/// of qmail-getpw).
pub fn getpw<P: Passwd + ?Sized>(
    passwd: &P,
    local: &[u8],
    brk: u8,
    alias_user: &[u8],
    qmail_home: &Path,
) -> Getpw {
    getpw_in(Fs::direct(), passwd, local, brk, alias_user, qmail_home)
}

/// [`getpw()`] with the home stats made through `fs` (a snapshot or real
/// system calls).
pub fn getpw_in<P: Passwd + ?Sized>(
    fs: Fs,
    passwd: &P,
    local: &[u8],
    brk: u8,
    alias_user: &[u8],
    qmail_home: &Path,
) -> Getpw {
    let mut candidates = Vec::new();
    for e in candidate_ends(local, brk) {
        let mut name = Bytes::vec_from(&local[..e]);
        name.make_ascii_lowercase();
        let pw = passwd.getpwnam(&name);
        let (entry, result) = match pw {
            PwResult::Etxtbsy => (None, CandidateResult::Etxtbsy),
            PwResult::Absent => (None, CandidateResult::Absent),
            PwResult::Found(ent) => {
                let r = if ent.uid == 0 {
                    CandidateResult::Root
                } else {
                    match stat_home_in(fs, &ent.dir, qmail_home) {
                        StatResult::Ok { uid, mode } if uid == ent.uid => {
                            CandidateResult::Accepted { mode }
                        }
                        StatResult::Ok { uid, .. } => CandidateResult::WrongOwner { owner: uid },
                        StatResult::Err { errno } if is_temp_errno(errno) => {
                            CandidateResult::StatTemporary { errno }
                        }
                        StatResult::Err { errno } => CandidateResult::StatFailed {
                            errno,
                            uncertain: errno == libc::EACCES || errno == libc::EPERM,
                        },
                    }
                };
                (Some(ent), r)
            }
        };
        let done = match &result {
            CandidateResult::Etxtbsy => Some(GetpwOutcome::Sys),
            CandidateResult::StatTemporary { errno } => Some(GetpwOutcome::Nfs { errno: *errno }),
            CandidateResult::Accepted { .. } => {
                let (dash, ext) = if e == local.len() {
                    (Bytes::default(), Bytes::default())
                } else {
                    (Bytes::from("-"), Bytes::new(&local[e + 1..]))
                };
                entry.clone().map(|entry| GetpwOutcome::Found {
                    entry,
                    dash,
                    ext,
                    alias: false,
                })
            }
            _ => None,
        };
        candidates.push(Candidate {
            name: Bytes(name),
            boundary: e,
            entry,
            result,
        });
        if let Some(outcome) = done {
            return Getpw {
                candidates,
                outcome,
            };
        }
    }
    let outcome = match passwd.getpwnam(alias_user) {
        PwResult::Found(entry) => GetpwOutcome::Found {
            entry,
            dash: Bytes::from("-"),
            ext: Bytes::new(local),
            alias: true,
        },
        // qmail-getpw does not look at errno for the alias lookup
        PwResult::Absent | PwResult::Etxtbsy => GetpwOutcome::NoAlias,
    };
    Getpw {
        candidates,
        outcome,
    }
}

/// stat of a home directory, relative homes resolved against `base`.
pub fn stat_home(dir: &[u8], base: &Path) -> StatResult {
    stat_home_in(Fs::direct(), dir, base)
}

/// [`stat_home`] through `fs`.
pub fn stat_home_in(fs: Fs, dir: &[u8], base: &Path) -> StatResult {
    if dir.first() == Some(&b'/') || dir.is_empty() {
        fs.stat(dir)
    } else {
        use std::os::unix::ffi::OsStrExt;
        let mut p = base.as_os_str().as_bytes().to_vec();
        p.push(b'/');
        p.extend_from_slice(dir);
        fs.stat(&p)
    }
}
