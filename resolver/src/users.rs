//! Stage U: users/assign → users/cdb (qmail-newu, U1–U7) and the lookup of
//! qmail-lspawn's `nughde_get` (U8–U13), plus the H6 record parse.

use crate::bytes::Bytes;
use crate::fsread::{read_bounded, ReadError, CDB_MAX, CONTROL_MAX};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A users/assign format error (qmail-newu exits 111 and keeps the old cdb).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssignError {
    /// U1: the file ends without a line starting with `.`.
    #[error("users/assign: missing terminating '.' line")]
    MissingDot,
    /// U2: a line before the terminator does not end with `\n`.
    #[error("users/assign line {line}: no newline at end of line")]
    NoNewline {
        /// 1-based line number.
        line: usize,
    },
    /// U2: a NUL byte in a line.
    #[error("users/assign line {line}: NUL byte")]
    Nul {
        /// 1-based line number.
        line: usize,
    },
    /// U2: no `:`, or `:` at position 0 (this includes blank lines).
    #[error("users/assign line {line}: missing name or ':'")]
    NoColon {
        /// 1-based line number.
        line: usize,
    },
    /// U5: fewer than six colons after the name.
    #[error("users/assign line {line}: fewer than 7 fields")]
    TooFewFields {
        /// 1-based line number.
        line: usize,
    },
}

/// An error writing users/cdb.
#[derive(Debug, thiserror::Error)]
pub enum CdbWriteError {
    /// The assign file was malformed.
    #[error(transparent)]
    Assign(#[from] AssignError),
    /// An I/O error on the named file.
    #[error("{path}: {source}")]
    Io {
        /// The file being read or written.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// cdb records (key, data) in insertion order.
pub type CdbRecords = Vec<(Vec<u8>, Vec<u8>)>;

/// U1–U7: compiles users/assign bytes into cdb records, in insertion order.
/// The last record is the wildchars record with the empty key (U6).
pub fn compile_assign(bytes: &[u8]) -> Result<CdbRecords, AssignError> {
    let mut out = Vec::new();
    let mut wildchars: Vec<u8> = Vec::new();
    let mut rest = bytes;
    let mut lineno = 0;
    loop {
        lineno += 1;
        if rest.is_empty() {
            return Err(AssignError::MissingDot);
        }
        let (line, matched) = match rest.iter().position(|&c| c == b'\n') {
            Some(p) => {
                let l = &rest[..p];
                rest = &rest[p + 1..];
                (l, true)
            }
            None => {
                let l = rest;
                rest = &[];
                (l, false)
            }
        };
        if line.first() == Some(&b'.') {
            break;
        }
        if !matched {
            return Err(AssignError::NoNewline { line: lineno });
        }
        if line.contains(&0) {
            return Err(AssignError::Nul { line: lineno });
        }
        let i = match line.iter().position(|&c| c == b':') {
            Some(0) | None => return Err(AssignError::NoColon { line: lineno }),
            Some(i) => i,
        };
        let mut key = Vec::with_capacity(i + 1);
        key.push(b'!');
        key.extend_from_slice(&line[1..i]);
        if line[0] == b'+' {
            key.make_ascii_lowercase();
            if i >= 2 && !wildchars.contains(&line[i - 1]) {
                wildchars.push(line[i - 1]);
            }
        } else {
            key.push(0);
            key.make_ascii_lowercase();
        }
        let mut data = line[i + 1..].to_vec();
        let mut n = 0;
        let mut end = data.len();
        for (j, c) in data.iter_mut().enumerate() {
            if *c == b':' {
                *c = 0;
                n += 1;
                if n == 6 {
                    end = j;
                    break;
                }
            }
        }
        if n < 6 {
            return Err(AssignError::TooFewFields { line: lineno });
        }
        data.truncate(end);
        out.push((key, data));
    }
    out.push((Vec::new(), wildchars));
    Ok(out)
}

/// Writes records as a cdb file at `path` (temp name in the same directory,
/// fsync, rename; nothing half-written is left behind).
pub fn write_cdb(path: &Path, records: &[(Vec<u8>, Vec<u8>)]) -> Result<(), CdbWriteError> {
    let io = |source| CdbWriteError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = {
        let mut s = path.as_os_str().to_owned();
        s.push(".tmp");
        PathBuf::from(s)
    };
    let res = (|| -> std::io::Result<()> {
        let f = std::fs::File::create(&tmp)?;
        let mut m = cdb::CDBMake::new(f.try_clone()?)?;
        for (k, v) in records {
            m.add(k, v)?;
        }
        m.finish()?;
        let mut f = f;
        f.flush()?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(())
}

/// qmail-newu: compiles `assign` into `cdb` (atomically). `assign` must be
/// a regular file of at most [`CONTROL_MAX`] bytes; it is opened without
/// blocking ([`read_bounded`]).
pub fn compile_assign_file(assign: &Path, cdb: &Path) -> Result<(), CdbWriteError> {
    let bytes = read_bounded(assign, CONTROL_MAX).map_err(|e| CdbWriteError::Io {
        path: assign.to_path_buf(),
        source: match e {
            ReadError::Io(e) => e,
            other => std::io::Error::other(other.to_string()),
        },
    })?;
    let recs = compile_assign(&bytes)?;
    write_cdb(cdb, &recs)
}

/// A read error inside a cdb (truncated or corrupt file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cdb read error (truncated or corrupt file)")]
pub struct CdbReadError;

/// Anything that answers "first record with this key" like qmail's
/// `cdb_seek` (U7: duplicates are returned in insertion order).
pub trait CdbGet {
    /// The data of the first record with exactly this key.
    fn get_first(&self, key: &[u8]) -> Result<Option<&[u8]>, CdbReadError>;

    /// [`CdbGet::get_first`] when the caller already knows
    /// `cdb_hash(key)` (the prefix probes of U11 compute it incrementally,
    /// so a long local part costs linear, not quadratic, hashing time).
    fn get_first_hashed(&self, key: &[u8], _hash: u32) -> Result<Option<&[u8]>, CdbReadError> {
        self.get_first(key)
    }
}

/// A cdb held in memory (the whole file's bytes).
#[derive(Debug, Clone, Copy)]
pub struct CdbSlice<'a>(pub &'a [u8]);

fn u32_at(b: &[u8], pos: usize) -> Result<u32, CdbReadError> {
    let s = b.get(pos..pos + 4).ok_or(CdbReadError)?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// The cdb hash function.
pub fn cdb_hash(key: &[u8]) -> u32 {
    let mut h: u32 = 5381;
    for &c in key {
        h = (h.wrapping_shl(5).wrapping_add(h)) ^ c as u32;
    }
    h
}

impl CdbGet for CdbSlice<'_> {
    fn get_first(&self, key: &[u8]) -> Result<Option<&[u8]>, CdbReadError> {
        self.get_first_hashed(key, cdb_hash(key))
    }

    fn get_first_hashed(&self, key: &[u8], h: u32) -> Result<Option<&[u8]>, CdbReadError> {
        let b = self.0;
        let hp = ((h as usize) << 3) & 2047;
        let pos = u32_at(b, hp)? as usize;
        let lenhash = u32_at(b, hp + 4)? as usize;
        if lenhash == 0 {
            return Ok(None);
        }
        let mut slot = ((h >> 8) as usize) % lenhash;
        for _ in 0..lenhash {
            let sp = pos + slot * 8;
            let rh = u32_at(b, sp)?;
            let rpos = u32_at(b, sp + 4)? as usize;
            if rpos == 0 {
                return Ok(None);
            }
            if rh == h {
                let klen = u32_at(b, rpos)? as usize;
                let dlen = u32_at(b, rpos + 4)? as usize;
                if klen == key.len() {
                    let kstart = rpos + 8;
                    let k = b.get(kstart..kstart + klen).ok_or(CdbReadError)?;
                    if k == key {
                        let d = b
                            .get(kstart + klen..kstart + klen + dlen)
                            .ok_or(CdbReadError)?;
                        return Ok(Some(d));
                    }
                }
            }
            slot += 1;
            if slot == lenhash {
                slot = 0;
            }
        }
        Ok(None)
    }
}

/// A naive model: a list of records searched in order.
impl CdbGet for [(Vec<u8>, Vec<u8>)] {
    fn get_first(&self, key: &[u8]) -> Result<Option<&[u8]>, CdbReadError> {
        Ok(self
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice()))
    }
}

/// How a users/cdb record was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UsersMatch {
    /// U10: the exact key `!local\0`.
    Exact {
        /// The folded local part (qmail-users notation `=local`).
        name: Bytes,
    },
    /// U11: a wildcard key `!prefix`.
    Wildcard {
        /// The folded prefix (qmail-users notation `+prefix`).
        prefix: Bytes,
    },
}

/// A users/cdb hit: how it matched and the record (stored value, plus the
/// original-case remainder for wildcards, plus the final NUL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsersHit {
    /// Exact or wildcard.
    pub matched: UsersMatch,
    /// The record as qmail-lspawn builds it (U10/U11).
    pub record: Bytes,
}

/// Why the users/cdb step failed (U8/U9): qmail-lspawn exits QLX_CDB.
///
/// In JSON the variant is the `trouble` key (`kind` is taken by the
/// enclosing stage: `{"kind":"trouble","trouble":"open","errno":21}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "trouble", rename_all = "snake_case")]
pub enum CdbTrouble {
    /// U8: open failed with an errno other than ENOENT.
    Open {
        /// The errno.
        errno: i32,
    },
    /// U9: the `""` key is missing.
    NoWildchars,
    /// U9: a read or seek failed (truncated or corrupt).
    Read,
    /// users/cdb is a FIFO, socket or device. qmail-lspawn's `cdb_seek`
    /// fails on it (ESPIPE for a FIFO) or finds no `""` key, so it exits
    /// QLX_CDB; the resolver does not open it for reading at all.
    NotRegular {
        /// The file.
        path: Bytes,
        /// `fifo`, `socket`, `character device` or `block device`.
        file_type: &'static str,
    },
}

/// Keys of up to this many bytes (`!`, the local part, NUL) are built on
/// the stack by [`lookup_users`].
const STACK_KEY: usize = 256;

/// U9–U13: looks `local` up. `Ok(None)` means "go to stage G".
pub fn lookup_users<C: CdbGet + ?Sized>(
    cdb: &C,
    local: &[u8],
) -> Result<Option<UsersHit>, CdbTrouble> {
    let wild = match cdb.get_first(b"") {
        Ok(Some(w)) => w,
        Ok(None) => return Err(CdbTrouble::NoWildchars),
        Err(_) => return Err(CdbTrouble::Read),
    };
    let n = local.len();
    // `!` + lowercased local + NUL, and the hashes of its prefixes: on the
    // stack for the usual lengths (no heap allocation), else on the heap
    let (mut key_stack, mut key_heap) = ([0u8; STACK_KEY], Vec::new());
    let key: &mut [u8] = if n + 2 <= STACK_KEY {
        &mut key_stack[..n + 2]
    } else {
        key_heap.resize(n + 2, 0);
        &mut key_heap
    };
    key[0] = b'!';
    key[1..=n].copy_from_slice(local);
    key[1..=n].make_ascii_lowercase();
    key[n + 1] = 0;
    if let Some(d) = cdb.get_first(key).map_err(|_| CdbTrouble::Read)? {
        let mut rec = Vec::with_capacity(d.len() + 1);
        rec.extend_from_slice(d);
        rec.push(0);
        return Ok(Some(UsersHit {
            matched: UsersMatch::Exact {
                name: Bytes::new(&key[1..key.len() - 1]),
            },
            record: Bytes(rec),
        }));
    }
    let key = &key[..n + 1];
    // hashes[k] = cdb_hash(&key[..k + 1])
    let (mut hash_stack, mut hash_heap) = ([0u32; STACK_KEY], Vec::new());
    let hashes: &mut [u32] = if n < STACK_KEY {
        &mut hash_stack[..n + 1]
    } else {
        hash_heap.resize(n + 1, 0);
        &mut hash_heap
    };
    let mut h = cdb_hash(b"");
    for (slot, &c) in hashes.iter_mut().zip(key) {
        h = (h.wrapping_shl(5).wrapping_add(h)) ^ c as u32;
        *slot = h;
    }
    for k in (0..=n).rev() {
        let probe = k == 0 || wild.contains(&key[k]);
        if !probe {
            continue;
        }
        if let Some(d) = cdb
            .get_first_hashed(&key[..k + 1], hashes[k])
            .map_err(|_| CdbTrouble::Read)?
        {
            let mut rec = crate::bytes::buffer(d.len() + n - k + 1);
            rec.extend_from_slice(d);
            rec.extend_from_slice(&local[k..]);
            rec.push(0);
            return Ok(Some(UsersHit {
                matched: UsersMatch::Wildcard {
                    prefix: Bytes::new(&key[1..k + 1]),
                },
                record: Bytes(rec),
            }));
        }
    }
    Ok(None)
}

/// The six fields of a lookup record (H6), as qmail-lspawn reads them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserRecord {
    /// The user name (qmail-local's `user`).
    pub user: Bytes,
    /// uid as qmail-lspawn parses it (leading decimal digits; none → 0;
    /// truncated to 32 bits like the C `int`).
    pub uid: u32,
    /// gid, parsed like uid.
    pub gid: u32,
    /// The home directory.
    pub home: Bytes,
    /// The dash argument.
    pub dash: Bytes,
    /// The extension argument.
    pub ext: Bytes,
    /// The uid field as text.
    pub uid_text: Bytes,
    /// The gid field as text.
    pub gid_text: Bytes,
}

/// `scan_ulong` then the cast to `int`: leading digits, wrapping.
pub fn scan_uid(f: &[u8]) -> u32 {
    let mut u: u64 = 0;
    for &c in f.iter().take_while(|c| c.is_ascii_digit()) {
        u = u.wrapping_mul(10).wrapping_add((c - b'0') as u64);
    }
    u as u32
}

/// H6: splits a NUL-terminated record into six fields. `None` when there
/// are fewer than six NUL-terminated fields (QLX_USAGE).
pub fn parse_record(rec: &[u8]) -> Option<UserRecord> {
    let mut it = rec.split(|&c| c == 0);
    let mut f: [&[u8]; 6] = [&[]; 6];
    let nuls = rec.iter().filter(|&&c| c == 0).count();
    if nuls < 6 {
        return None;
    }
    for slot in f.iter_mut() {
        *slot = it.next()?;
    }
    Some(UserRecord {
        user: Bytes::new(f[0]),
        uid: scan_uid(f[1]),
        gid: scan_uid(f[2]),
        home: Bytes::new(f[3]),
        dash: Bytes::new(f[4]),
        ext: Bytes::new(f[5]),
        uid_text: Bytes::new(f[1]),
        gid_text: Bytes::new(f[2]),
    })
}

/// The state of users/cdb as loaded by [`UsersDb::load`].
#[derive(Debug, Clone)]
pub enum UsersDb {
    /// ENOENT: every lookup goes to stage G (U8).
    Missing,
    /// Open or read failed with this errno (U8: QLX_CDB). A directory is
    /// `Unreadable(EISDIR)`, the error qmail's read gets.
    Unreadable(i32),
    /// A FIFO, socket or device: every lookup is [`CdbTrouble::NotRegular`]
    /// (QLX_CDB). It is never read, so it cannot block or fill memory.
    NotRegular {
        /// The file.
        path: Bytes,
        /// Its type.
        file_type: &'static str,
    },
    /// The file's bytes, cached (see [`UsersDb::load`]).
    Loaded(Vec<u8>),
}

/// users/cdb is larger than [`CDB_MAX`]: the resolver refuses to load it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: users/cdb larger than the limit of {limit} bytes")]
pub struct CdbTooLarge {
    /// The file.
    pub path: PathBuf,
    /// The limit ([`CDB_MAX`]).
    pub limit: u64,
}

impl UsersDb {
    /// Reads `path` once into memory.
    ///
    /// Decision: the file is read once and cached for the life of the
    /// resolver (qmail-lspawn opens it per delivery; qmail-newu replaces it
    /// atomically, so a long-lived resolver sees the version current at its
    /// creation — call this again to pick up a new one).
    ///
    /// It is opened with `O_NONBLOCK` and `fstat`ed first
    /// ([`read_bounded`]): a FIFO, socket or device gives
    /// [`UsersDb::NotRegular`] without being read. A file over [`CDB_MAX`]
    /// (64 MiB) is an error: qmail would read it, so no outcome can be
    /// modelled.
    pub fn load(path: &Path) -> Result<UsersDb, CdbTooLarge> {
        Ok(match read_bounded(path, CDB_MAX) {
            Ok(b) => UsersDb::Loaded(b),
            Err(e) if e.is_not_found() => UsersDb::Missing,
            Err(ReadError::Io(e)) => UsersDb::Unreadable(e.raw_os_error().unwrap_or(libc::EIO)),
            Err(ReadError::NotRegular { kind: "directory" }) => UsersDb::Unreadable(libc::EISDIR),
            Err(ReadError::NotRegular { kind }) => UsersDb::NotRegular {
                path: Bytes::new(path.as_os_str().as_encoded_bytes()),
                file_type: kind,
            },
            Err(ReadError::TooLarge { limit }) => {
                return Err(CdbTooLarge {
                    path: path.to_path_buf(),
                    limit,
                })
            }
        })
    }

    /// Builds an in-memory cdb from records (for tests).
    pub fn from_records(records: &[(Vec<u8>, Vec<u8>)]) -> std::io::Result<UsersDb> {
        let dir = std::env::temp_dir();
        let f = tempfile_in(&dir)?;
        let path = f.0;
        let res = (|| {
            write_cdb(&path, records).map_err(|e| std::io::Error::other(e.to_string()))?;
            std::fs::read(&path)
        })();
        let _ = std::fs::remove_file(&path);
        res.map(UsersDb::Loaded)
    }

    /// U8–U13 lookup. `Ok(None)`: go to stage G.
    pub fn lookup(&self, local: &[u8]) -> Result<Option<UsersHit>, CdbTrouble> {
        match self {
            UsersDb::Missing => Ok(None),
            UsersDb::Unreadable(e) => Err(CdbTrouble::Open { errno: *e }),
            UsersDb::NotRegular { path, file_type } => Err(CdbTrouble::NotRegular {
                path: path.clone(),
                file_type,
            }),
            UsersDb::Loaded(b) => lookup_users(&CdbSlice(b), local),
        }
    }

    /// Whether the file exists.
    pub fn exists(&self) -> bool {
        !matches!(self, UsersDb::Missing)
    }
}

struct TmpName(PathBuf);

fn tempfile_in(dir: &Path) -> std::io::Result<TmpName> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    Ok(TmpName(dir.join(format!(
        "qmail-resolver-{}-{}.cdb",
        std::process::id(),
        n
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdb_hash_is_djb() {
        assert_eq!(cdb_hash(b""), 5381);
        assert_eq!(cdb_hash(b"a"), 177604);
    }

    #[test]
    fn cdb_slice_reads_what_the_cdb_crate_wrote_first_duplicate_first() {
        let recs = vec![
            (b"k".to_vec(), b"one".to_vec()),
            (b"k".to_vec(), b"two".to_vec()),
            (b"".to_vec(), b"w".to_vec()),
        ];
        let UsersDb::Loaded(b) = UsersDb::from_records(&recs).unwrap() else {
            panic!("not loaded")
        };
        let c = CdbSlice(&b);
        assert_eq!(c.get_first(b"k").unwrap(), Some(&b"one"[..]));
        assert_eq!(c.get_first(b"").unwrap(), Some(&b"w"[..]));
        assert_eq!(c.get_first(b"nope").unwrap(), None);
        // a header pointing past the end is a read error, not a miss
        assert_eq!(CdbSlice(&b[..100]).get_first(b"k"), Err(CdbReadError));
    }

    #[test]
    fn scan_uid_leading_digits_and_wrap() {
        assert_eq!(scan_uid(b"1001x"), 1001);
        assert_eq!(scan_uid(b"abc"), 0);
        assert_eq!(scan_uid(b"4294967297"), 1);
    }
}
