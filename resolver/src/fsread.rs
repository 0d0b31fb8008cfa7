//! Reading qmail's own files (control files, users/cdb, users/assign)
//! without blocking and with a bound on memory.
//!
//! qmail opens these with `open_read` (`O_RDONLY|O_NDELAY`) and reads
//! whatever is there. On a FIFO that means an empty file when no writer is
//! connected and a read error (EAGAIN) when one is, and on a device such as
//! `/dev/zero` reading until memory runs out. None of that is a useful
//! model, so the resolver opens with `O_NONBLOCK`, `fstat`s the descriptor
//! and refuses anything that is not a regular file (symlinks are followed,
//! as qmail follows them), and it reads at most a fixed number of bytes.
//!
//! Decision (limits): [`CONTROL_MAX`] (16 MiB) for each control file and
//! users/assign, [`CDB_MAX`] (64 MiB) for users/cdb. Real files are a few
//! kilobytes; a larger file is reported as [`ReadError::TooLarge`] naming
//! the file and the limit.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The largest control file (and users/assign) read: 16 MiB.
pub const CONTROL_MAX: u64 = 16 << 20;
/// The largest users/cdb read: 64 MiB.
pub const CDB_MAX: u64 = 64 << 20;

/// Why a bounded read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// open, fstat or read failed (ENOENT included: callers decide).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The file is a FIFO, socket, device or directory.
    #[error("not a regular file ({kind})")]
    NotRegular {
        /// `directory`, `fifo`, `socket`, `character device`, `block device`.
        kind: &'static str,
    },
    /// More than `limit` bytes.
    #[error("larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit that was exceeded.
        limit: u64,
    },
}

impl ReadError {
    /// Is this an ENOENT from open?
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

/// A name for a non-regular file type.
pub fn kind_name(ft: std::fs::FileType) -> &'static str {
    if ft.is_dir() {
        "directory"
    } else if ft.is_fifo() {
        "fifo"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_char_device() {
        "character device"
    } else if ft.is_block_device() {
        "block device"
    } else {
        "unknown type"
    }
}

/// Opens `path` with `O_RDONLY|O_NONBLOCK` (never blocks on a FIFO),
/// checks with `fstat` that it is a regular file, and reads it whole if it
/// has at most `limit` bytes.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    read_open_file(f, limit)
}

/// [`read_bounded`] for an already opened file: `fstat`, regular-file
/// check, then at most `limit` bytes.
pub fn read_open_file(f: File, limit: u64) -> Result<Vec<u8>, ReadError> {
    let md = f.metadata()?;
    if !md.file_type().is_file() {
        return Err(ReadError::NotRegular {
            kind: kind_name(md.file_type()),
        });
    }
    if md.len() > limit {
        return Err(ReadError::TooLarge { limit });
    }
    let mut buf = Vec::with_capacity(md.len() as usize);
    // limit + 1: a file that grew past the limit since fstat is caught too
    f.take(limit + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(ReadError::TooLarge { limit });
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file longer than its size says (a /proc file says 0 bytes; a
    /// file may also grow between fstat and the read): the bytes past the
    /// limit are seen, and the file is refused rather than cut short.
    #[test]
    fn a_file_longer_than_its_fstat_size_is_refused_not_cut() {
        let f = File::open("/proc/self/status").unwrap();
        assert_eq!(f.metadata().unwrap().len(), 0);
        match read_open_file(f, 10) {
            Err(ReadError::TooLarge { limit: 10 }) => {}
            r => panic!("{r:?}"),
        }
        let whole = read_open_file(File::open("/proc/self/status").unwrap(), 1 << 20).unwrap();
        assert!(whole.starts_with(b"Name:"), "{whole:?}");
    }
}
