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
            // what is left after the last separator (never less than none)
            if end != start {
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

    /// Every record `r` gives, or the error (as its Debug text).
    fn collect(r: impl Read, sep: u8) -> Result<Vec<Vec<u8>>, String> {
        let mut v = Vec::new();
        for_each_record(
            r,
            sep,
            || Ok(()),
            |rec| {
                v.push(rec.to_vec());
                Ok(())
            },
        )
        .map_err(|e| format!("{e:?}"))?;
        Ok(v)
    }

    fn records(input: &[u8], sep: u8) -> Result<Vec<Vec<u8>>, String> {
        collect(input, sep)
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
        // the last record, with no separator after it, is numbered too
        assert_eq!(
            records(b"a@b\n\nx\0y", b'\n').unwrap_err(),
            "Nul { record: 3 }"
        );
    }

    /// A reader that gives at most `step` bytes per read, and an
    /// `Interrupted` error before every other read.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
        interrupt: bool,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            self.interrupt = !self.interrupt;
            if self.interrupt {
                return Err(std::io::ErrorKind::Interrupted.into());
            }
            let n = self.step.min(out.len()).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn trickled(data: &[u8], step: usize) -> Result<Vec<Vec<u8>>, String> {
        let r = Trickle {
            data,
            step,
            interrupt: false,
        };
        collect(r, b'\n')
    }

    #[test]
    fn reads_of_any_size_interrupted_or_not_give_the_same_records() {
        // records of many lengths, one of exactly the limit
        let mut input = Vec::new();
        let mut want = Vec::new();
        for len in [1usize, 5, 300, 4097, CHUNK - 1, CHUNK, RECORD_MAX, 17] {
            let rec = vec![b'a' + (len % 26) as u8; len];
            input.extend_from_slice(&rec);
            input.push(b'\n');
            want.push(rec);
        }
        input.extend_from_slice(b"last@x");
        want.push(b"last@x".to_vec());
        for step in [1000, 4096, CHUNK + 3, usize::MAX] {
            let got = trickled(&input, step).unwrap();
            assert_eq!(got.len(), want.len(), "step {step}");
            assert!(got == want, "step {step}: records differ");
        }
        // the first read fills the buffer exactly with whole records, so
        // nothing is left over when the buffer is moved, and the next read
        // starts with a separator (an empty record)
        let size = RECORD_MAX + 1 + CHUNK;
        let mut input = b"a@b\n".repeat(size / 4 - 1);
        input.extend_from_slice(&b"x".repeat(size - input.len() - 1));
        input.extend_from_slice(b"\n\ntail@x\n");
        let got = trickled(&input, usize::MAX).unwrap();
        assert_eq!(got.len(), size / 4 + 1);
        assert_eq!(got[size / 4 - 2], b"a@b");
        assert_eq!(got.last().unwrap(), b"tail@x");
        // exactly the limit, its separator in a read of its own
        let mut input = vec![b'b'; RECORD_MAX];
        input.push(b'\n');
        assert_eq!(trickled(&input, 4096).unwrap().len(), 1);
        // one byte over the limit, arriving a piece at a time
        let mut input = vec![b'b'; RECORD_MAX + 1];
        input.push(b'\n');
        assert_eq!(trickled(&input, 1000).unwrap_err(), "TooLong { record: 1 }");
    }

    #[test]
    fn a_read_error_stops_with_it() {
        /// EIO once, then the end of the input (a reader that retried
        /// the error would see no error at all).
        struct Broken(bool);
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                if std::mem::replace(&mut self.0, true) {
                    return Ok(0);
                }
                Err(std::io::Error::from_raw_os_error(libc::EIO))
            }
        }
        let e = for_each_record(Broken(false), b'\n', || Ok(()), |_| Ok(())).unwrap_err();
        assert!(
            matches!(&e, InputError::Read(e) if e.raw_os_error() == Some(libc::EIO)),
            "{e:?}"
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
