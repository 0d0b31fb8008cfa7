//! Addresses from standard input: records split on `\n` (a trailing `\r`
//! removed) or on NUL (`-0`), read through one fixed buffer so that memory
//! stays bounded however long the input is.
//!
//! Decisions:
//! * A record may hold at most [`RECORD_MAX`] bytes, Linux's limit on one
//!   command-line argument (`MAX_ARG_STRLEN`): every address the argument
//!   form takes, standard input takes too. A longer one is an error naming
//!   its record number (1-based, empty records counted).
//! * Empty records are skipped (a blank line, the empty record after a
//!   final separator); the empty address can still be given as `""`.
//! * In line mode a record with a NUL byte is an error (qmail addresses
//!   are NUL-terminated strings; the input is probably not a list of
//!   addresses); `-0` takes every other byte, `\n` included, verbatim.
//! * `before_read` runs before every `read(2)` of the input, so that the
//!   caller can flush what it wrote while it still has input to work on
//!   and only wait with everything written.

use std::io::Read;

/// The longest record read: 131072 bytes (`MAX_ARG_STRLEN`).
pub const RECORD_MAX: usize = 128 << 10;

/// How much is read at once.
const CHUNK: usize = 64 << 10;

/// Why reading addresses stopped.
#[derive(Debug)]
pub enum InputError {
    /// A record longer than [`RECORD_MAX`].
    TooLong {
        /// Its 1-based number.
        record: u64,
    },
    /// A NUL byte in a line (line mode only).
    Nul {
        /// Its 1-based number.
        record: u64,
    },
    /// read(2) failed.
    Read(std::io::Error),
    /// The callback (writing the result) failed.
    Write(std::io::Error),
}

/// Splits `r` into records ended by `sep` (`b'\n'` or `0`) and calls
/// `each` with every non-empty one, in order (see the module docs).
pub fn for_each_record<R: Read>(
    mut r: R,
    sep: u8,
    mut before_read: impl FnMut() -> std::io::Result<()>,
    mut each: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> Result<(), InputError> {
    let mut buf = vec![0u8; RECORD_MAX + 1 + CHUNK];
    let (mut start, mut end, mut scanned) = (0usize, 0usize, 0usize);
    let mut record: u64 = 0;
    loop {
        if let Some(p) = buf[scanned..end].iter().position(|&c| c == sep) {
            let stop = scanned + p;
            record += 1;
            deliver(&buf[start..stop], sep, record, &mut each)?;
            start = stop + 1;
            scanned = start;
            continue;
        }
        scanned = end;
        if end - start > RECORD_MAX {
            return Err(InputError::TooLong { record: record + 1 });
        }
        if buf.len() - end < CHUNK {
            buf.copy_within(start..end, 0);
            (scanned, end, start) = (end - start, end - start, 0);
        }
        before_read().map_err(InputError::Write)?;
        let n = loop {
            match r.read(&mut buf[end..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(InputError::Read(e)),
            }
        };
        if n == 0 {
            if end > start {
                deliver(&buf[start..end], sep, record + 1, &mut each)?;
            }
            return Ok(());
        }
        end += n;
    }
}

/// One record: checks, the `\r` of line mode, and the callback.
fn deliver(
    rec: &[u8],
    sep: u8,
    record: u64,
    each: &mut impl FnMut(&[u8]) -> std::io::Result<()>,
) -> Result<(), InputError> {
    if rec.len() > RECORD_MAX {
        return Err(InputError::TooLong { record });
    }
    let rec = if sep == b'\n' {
        if rec.contains(&0) {
            return Err(InputError::Nul { record });
        }
        rec.strip_suffix(b"\r").unwrap_or(rec)
    } else {
        rec
    };
    if rec.is_empty() {
        return Ok(());
    }
    each(rec).map_err(InputError::Write)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(input: &[u8], sep: u8) -> Result<Vec<Vec<u8>>, String> {
        let mut v = Vec::new();
        for_each_record(
            input,
            sep,
            || Ok(()),
            |r| {
                v.push(r.to_vec());
                Ok(())
            },
        )
        .map_err(|e| format!("{e:?}"))?;
        Ok(v)
    }

    #[test]
    fn lines_drop_cr_and_empty_records_and_keep_a_last_unterminated_one() {
        let v = records(b"a@b\r\n\nc@d\n\r\ne@f", b'\n').unwrap();
        assert_eq!(v, vec![b"a@b".to_vec(), b"c@d".to_vec(), b"e@f".to_vec()]);
    }

    #[test]
    fn nul_mode_keeps_newlines_and_cr() {
        let v = records(b"a\nb@c\r\0\0d", 0).unwrap();
        assert_eq!(v, vec![b"a\nb@c\r".to_vec(), b"d".to_vec()]);
    }

    #[test]
    fn a_record_over_the_limit_names_its_number() {
        let mut input = b"ok@x\n\n".to_vec();
        input.extend(std::iter::repeat_n(b'a', RECORD_MAX + 1));
        input.extend_from_slice(b"\nlater@x\n");
        let e = records(&input, b'\n').unwrap_err();
        assert_eq!(e, "TooLong { record: 3 }");
        // exactly at the limit is fine, across several reads
        let mut input = vec![b'b'; RECORD_MAX];
        input.push(b'\n');
        let v = records(&input, b'\n').unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].len(), RECORD_MAX);
    }

    #[test]
    fn a_nul_in_a_line_is_an_error() {
        assert_eq!(
            records(b"a@b\nx\0y\n", b'\n').unwrap_err(),
            "Nul { record: 2 }"
        );
    }

    #[test]
    fn many_records_cross_buffer_boundaries_intact() {
        let mut input = Vec::new();
        for i in 0..50_000 {
            input.extend_from_slice(format!("user{i}@example.com\n").as_bytes());
        }
        let v = records(&input, b'\n').unwrap();
        assert_eq!(v.len(), 50_000);
        assert_eq!(v[31_337], b"user31337@example.com".to_vec());
    }
}
