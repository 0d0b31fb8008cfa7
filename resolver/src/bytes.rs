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
///
/// Its buffer comes from and goes back to this thread's free list (see
/// [`buffer`]): a dropped `Bytes` gives its buffer to the next one made.
/// Move the buffer out with [`Bytes::into_vec`].
#[derive(PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Bytes(pub Vec<u8>);

impl Clone for Bytes {
    fn clone(&self) -> Self {
        Bytes::new(&self.0)
    }
}

impl Drop for Bytes {
    fn drop(&mut self) {
        give_back(std::mem::take(&mut self.0));
    }
}

/// The most buffers a thread's free list keeps.
pub const POOL_MAX: usize = 256;
/// Buffers larger than this (bytes of capacity) are freed, not kept.
pub const POOL_BUF_MAX: usize = 4096;
/// [`buffer`] allocates capacities in steps of this many bytes, so that a
/// kept buffer often fits the next string without a `realloc` (at most 31
/// bytes more than asked for).
const CAP_STEP: usize = 32;

thread_local! {
    static POOL: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// An empty buffer with room for `cap` bytes, from this thread's free list
/// when it has one (no heap allocation), else newly allocated.
///
/// Decision (allocations): the byte strings of a [`crate::Trace`] (about
/// thirty per address) are made from buffers that earlier traces gave back
/// when dropped, so a run that resolves address after address allocates
/// only when a trace holds more or longer strings than the ones before.
/// Memory stays bounded: at most [`POOL_MAX`] buffers of at most
/// [`POOL_BUF_MAX`] bytes per thread.
pub fn buffer(cap: usize) -> Vec<u8> {
    let v = POOL
        .try_with(|p| {
            p.try_borrow_mut()
                .ok()
                .and_then(|mut p| take_fitting(&mut p, cap))
        })
        .ok()
        .flatten();
    match v {
        Some(mut v) => {
            v.reserve(cap);
            v
        }
        None => Vec::with_capacity(cap.div_ceil(CAP_STEP) * CAP_STEP),
    }
}

/// The most recently given back of the last [`FIT_LOOKS`] buffers that
/// holds `cap` bytes, else the last one (which then grows).
fn take_fitting(pool: &mut Vec<Vec<u8>>, cap: usize) -> Option<Vec<u8>> {
    let n = pool.len();
    let fit = (n.saturating_sub(FIT_LOOKS)..n)
        .rev()
        .find(|&i| pool[i].capacity() >= cap);
    match fit {
        Some(i) => Some(pool.swap_remove(i)),
        None => pool.pop(),
    }
}

/// How many of the free list's last buffers [`buffer`] looks at for one
/// that fits.
const FIT_LOOKS: usize = 4;

/// Gives `v`'s buffer to this thread's free list (or frees it).
pub fn give_back(mut v: Vec<u8>) {
    if v.capacity() == 0 || v.capacity() > POOL_BUF_MAX {
        return;
    }
    v.clear();
    let _ = POOL.try_with(|p| {
        if let Ok(mut p) = p.try_borrow_mut() {
            if p.len() < POOL_MAX {
                p.push(v);
            }
        }
    });
}

impl Bytes {
    /// Wraps a byte slice.
    pub fn new(b: &[u8]) -> Self {
        let mut v = buffer(b.len());
        v.extend_from_slice(b);
        Bytes(v)
    }
    /// A buffer holding a copy of `b` (from the free list, see [`buffer`]).
    pub fn vec_from(b: &[u8]) -> Vec<u8> {
        let mut v = buffer(b.len());
        v.extend_from_slice(b);
        v
    }
    /// The parts one after the other, in a buffer from the free list.
    pub fn joined(parts: &[&[u8]]) -> Self {
        let mut v = buffer(parts.iter().map(|p| p.len()).sum());
        for p in parts {
            v.extend_from_slice(p);
        }
        Bytes(v)
    }
    /// The buffer, moved out.
    pub fn into_vec(mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
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
        Bytes::new(b)
    }
}
impl From<Vec<u8>> for Bytes {
    fn from(b: Vec<u8>) -> Self {
        Bytes(b)
    }
}
impl From<&str> for Bytes {
    fn from(b: &str) -> Self {
        Bytes::new(b.as_bytes())
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
    fn the_free_list_reuses_buffers_and_stays_bounded() {
        let len = || POOL.with(|p| p.borrow().len());
        let b = Bytes::new(b"/home/joe/.qmail-list");
        let ptr = b.as_bytes().as_ptr();
        drop(b);
        let c = Bytes::new(b"/home/joe/.qmail");
        assert_eq!(c.as_bytes().as_ptr(), ptr, "the dropped buffer is reused");
        assert_eq!(c.clone(), c);
        let many: Vec<Bytes> = (0..POOL_MAX + 50).map(|_| Bytes::new(b"x")).collect();
        drop(many);
        assert_eq!(len(), POOL_MAX, "at most POOL_MAX buffers kept");
        let taken: Vec<Vec<u8>> = (0..10).map(|_| buffer(1)).collect();
        let n = len();
        assert_eq!(n, POOL_MAX - 10);
        drop(Bytes(vec![0; POOL_BUF_MAX + 1]));
        assert_eq!(len(), n, "a large buffer is freed");
        drop(Bytes(vec![0; 10]));
        assert_eq!(len(), n + 1, "a small one is kept");
        drop(taken);
    }

    #[test]
    fn a_buffer_that_fits_is_taken_before_one_that_would_grow() {
        POOL.with(|p| p.borrow_mut().clear());
        let big = Vec::<u8>::with_capacity(1024);
        let big_ptr = big.as_ptr();
        give_back(big);
        give_back(Vec::with_capacity(32));
        let v = buffer(1000);
        assert_eq!(
            v.as_ptr(),
            big_ptr,
            "the 1024-byte buffer, not the last one"
        );
        // a buffer of exactly the largest size kept is kept
        let edge = Vec::<u8>::with_capacity(POOL_BUF_MAX);
        assert_eq!(edge.capacity(), POOL_BUF_MAX);
        let n = POOL.with(|p| p.borrow().len());
        give_back(edge);
        assert_eq!(POOL.with(|p| p.borrow().len()), n + 1);
    }

    #[test]
    fn comparisons_with_bytes_strings_and_vectors() {
        let b = Bytes::new(b"joe");
        assert!(b == *b"joe".as_slice() && b != *b"jo".as_slice());
        assert!(b == b"joe".as_slice() && b != b"jox".as_slice());
        assert!(b == b"joe" && b != b"jo");
        assert!(b == "joe" && b != "Joe");
        assert!(b == b"joe".to_vec() && b != b"joe!".to_vec());
    }

    #[test]
    fn debug_shows_the_text_form() {
        assert_eq!(format!("{:?}", Bytes::new(b"a@b\xff")), r#"b"a@b\\xff""#);
        assert_eq!(Bytes::new(b"joe").to_string(), "joe");
    }

    #[test]
    fn every_errno_qmail_names_has_a_text_of_its_own() {
        use libc::*;
        // the errnos qmail's error_str.c names
        const NAMED: &[i32] = &[
            0,
            EINTR,
            ENOMEM,
            ENOENT,
            ETXTBSY,
            EIO,
            EEXIST,
            ETIMEDOUT,
            EINPROGRESS,
            EAGAIN,
            EPIPE,
            EPERM,
            EACCES,
            ENXIO,
            E2BIG,
            EBADF,
            EDEADLK,
            EBUSY,
            ENODEV,
            ENOTDIR,
            EISDIR,
            EINVAL,
            ENFILE,
            EMFILE,
            EFBIG,
            ENOSPC,
            EROFS,
            ENETDOWN,
            ENETUNREACH,
            ENETRESET,
            ECONNABORTED,
            ECONNRESET,
            ENOBUFS,
            ETOOMANYREFS,
            ECONNREFUSED,
            ELOOP,
            ENAMETOOLONG,
            EHOSTDOWN,
            EHOSTUNREACH,
            ENOTEMPTY,
            EUSERS,
            EDQUOT,
            ESTALE,
            EREMOTE,
            ENOLCK,
        ];
        let texts: std::collections::BTreeSet<&str> = NAMED.iter().map(|&e| error_str(e)).collect();
        assert_eq!(texts.len(), NAMED.len(), "one text per errno: {texts:?}");
        assert!(!texts.contains("unknown error"));
        for e in (0..256).filter(|e| !NAMED.contains(e)) {
            assert_eq!(error_str(e), "unknown error", "errno {e}");
        }
    }

    #[test]
    fn error_str_matches_qmail_texts() {
        assert_eq!(error_str(libc::ENOENT), "file does not exist");
        assert_eq!(error_str(libc::EACCES), "access denied");
        assert_eq!(error_str(libc::EPERM), "permission denied");
        assert_eq!(error_str(9999), "unknown error");
    }
}
