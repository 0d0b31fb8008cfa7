//! Byte strings and qmail's errno helpers.
//!
//! qmail handles addresses, file names and control-file lines as raw bytes.
//! [`Bytes`] keeps them raw in the API and shows them as text in `Debug`,
//! `Display` and JSON.
//!
//! Decision (JSON): a [`Bytes`] value is serialised as a JSON string. Valid
//! UTF-8 is kept as is; every byte that is not part of valid UTF-8 is written
//! as the four characters `\xNN` (lowercase hex). A literal backslash is not
//! escaped, so the mapping is not reversible for strings that contain both a
//! backslash and invalid UTF-8; qmail addresses in practice never do.

use serde::{Serialize, Serializer};
use std::fmt;
use std::ops::Deref;

/// An owned byte string (an address, a path, a control-file line).
#[derive(Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    /// Wraps a byte slice.
    pub fn new(b: &[u8]) -> Self {
        Bytes(b.to_vec())
    }
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    /// The text form used by `Display` and JSON (see the module docs).
    pub fn to_text(&self) -> String {
        escape_bytes(&self.0)
    }
}

/// Renders bytes as text: valid UTF-8 unchanged, other bytes as `\xNN`.
pub fn escape_bytes(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        s.push_str(chunk.valid());
        for byte in chunk.invalid() {
            s.push_str(&format!("\\x{byte:02x}"));
        }
    }
    s
}

impl Deref for Bytes {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b{:?}", self.to_text())
    }
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_text())
    }
}

impl From<&[u8]> for Bytes {
    fn from(b: &[u8]) -> Self {
        Bytes(b.to_vec())
    }
}
impl From<Vec<u8>> for Bytes {
    fn from(b: Vec<u8>) -> Self {
        Bytes(b)
    }
}
impl From<&str> for Bytes {
    fn from(b: &str) -> Self {
        Bytes(b.as_bytes().to_vec())
    }
}
impl<const N: usize> From<&[u8; N]> for Bytes {
    fn from(b: &[u8; N]) -> Self {
        Bytes(b.to_vec())
    }
}
impl PartialEq<[u8]> for Bytes {
    fn eq(&self, o: &[u8]) -> bool {
        self.0 == o
    }
}
impl PartialEq<&[u8]> for Bytes {
    fn eq(&self, o: &&[u8]) -> bool {
        self.0 == *o
    }
}
impl<const N: usize> PartialEq<&[u8; N]> for Bytes {
    fn eq(&self, o: &&[u8; N]) -> bool {
        self.0 == o[..]
    }
}
impl PartialEq<&str> for Bytes {
    fn eq(&self, o: &&str) -> bool {
        self.0 == o.as_bytes()
    }
}
impl PartialEq<Vec<u8>> for Bytes {
    fn eq(&self, o: &Vec<u8>) -> bool {
        &self.0 == o
    }
}

/// ASCII-fold (resolution.md §0): `A`–`Z` to `a`–`z`, every other byte kept.
pub fn fold(b: &[u8]) -> Vec<u8> {
    b.to_ascii_lowercase()
}

/// qmail's `error_temp` (rule G6): is this errno temporary?
pub fn is_temp_errno(e: i32) -> bool {
    matches!(
        e,
        libc::EINTR
            | libc::ENOMEM
            | libc::ETXTBSY
            | libc::EIO
            | libc::ETIMEDOUT
            | libc::EAGAIN
            | libc::EDEADLK
            | libc::EBUSY
            | libc::ENFILE
            | libc::EMFILE
            | libc::EFBIG
            | libc::ENOSPC
            | libc::ENETDOWN
            | libc::ENETUNREACH
            | libc::ENETRESET
            | libc::ECONNABORTED
            | libc::ECONNRESET
            | libc::ENOBUFS
            | libc::ETOOMANYREFS
            | libc::ECONNREFUSED
            | libc::EHOSTDOWN
            | libc::EHOSTUNREACH
            | libc::EUSERS
            | libc::EDQUOT
            | libc::ESTALE
            | libc::ENOLCK
    )
}

/// qmail's `error_str`: the text qmail prints for an errno.
pub fn error_str(e: i32) -> &'static str {
    match e {
        0 => "no error",
        libc::EINTR => "interrupted system call",
        libc::ENOMEM => "out of memory",
        libc::ENOENT => "file does not exist",
        libc::ETXTBSY => "text busy",
        libc::EIO => "input/output error",
        libc::EEXIST => "file already exists",
        libc::ETIMEDOUT => "timed out",
        libc::EINPROGRESS => "operation in progress",
        libc::EAGAIN => "temporary failure",
        libc::EPIPE => "broken pipe",
        libc::EPERM => "permission denied",
        libc::EACCES => "access denied",
        libc::ENXIO => "device not configured",
        libc::E2BIG => "argument list too long",
        libc::EBADF => "file descriptor not open",
        libc::EDEADLK => "operation would cause deadlock",
        libc::EBUSY => "device busy",
        libc::ENODEV => "device does not support operation",
        libc::ENOTDIR => "not a directory",
        libc::EISDIR => "is a directory",
        libc::EINVAL => "invalid argument",
        libc::ENFILE => "system cannot open more files",
        libc::EMFILE => "process cannot open more files",
        libc::EFBIG => "file too big",
        libc::ENOSPC => "out of disk space",
        libc::EROFS => "read-only file system",
        libc::ENETDOWN => "network down",
        libc::ENETUNREACH => "network unreachable",
        libc::ENETRESET => "network reset",
        libc::ECONNABORTED => "connection aborted",
        libc::ECONNRESET => "connection reset",
        libc::ENOBUFS => "out of buffer space",
        libc::ETOOMANYREFS => "too many references",
        libc::ECONNREFUSED => "connection refused",
        libc::ELOOP => "symbolic link loop",
        libc::ENAMETOOLONG => "file name too long",
        libc::EHOSTDOWN => "host down",
        libc::EHOSTUNREACH => "host unreachable",
        libc::ENOTEMPTY => "directory not empty",
        libc::EUSERS => "too many users",
        libc::EDQUOT => "disk quota exceeded",
        libc::ESTALE => "stale NFS file handle",
        libc::EREMOTE => "too many levels of remote in path",
        libc::ENOLCK => "no locks available",
        _ => "unknown error",
    }
}

/// Calls `f` with `b` as a NUL-terminated C string, built on the stack
/// when `b` is shorter than 1024 bytes (no heap allocation for the paths
/// and names of every probe). `None` when `b` holds a NUL byte (what
/// `CString::new` refuses).
pub(crate) fn with_cstr<T>(b: &[u8], f: impl FnOnce(&std::ffi::CStr) -> T) -> Option<T> {
    const STACK: usize = 1024;
    if b.len() < STACK {
        let mut buf = [0u8; STACK];
        buf[..b.len()].copy_from_slice(b);
        let c = std::ffi::CStr::from_bytes_with_nul(&buf[..=b.len()]).ok()?;
        Some(f(c))
    } else {
        std::ffi::CString::new(b).ok().map(|c| f(&c))
    }
}

/// Current errno.
pub(crate) fn last_errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_keeps_utf8_and_hex_escapes_invalid_bytes() {
        assert_eq!(escape_bytes("é@x".as_bytes()), "é@x");
        assert_eq!(escape_bytes(b"a\xffb\xc3"), "a\\xffb\\xc3");
        assert_eq!(
            serde_json::to_string(&Bytes::new(b"q\"\xfe")).unwrap(),
            "\"q\\\"\\\\xfe\""
        );
    }

    #[test]
    fn error_str_matches_qmail_texts() {
        assert_eq!(error_str(libc::ENOENT), "file does not exist");
        assert_eq!(error_str(libc::EACCES), "access denied");
        assert_eq!(error_str(libc::EPERM), "permission denied");
        assert_eq!(error_str(9999), "unknown error");
    }
}
