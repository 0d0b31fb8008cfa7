//! Stage C: control files (resolution.md C1–C8).

use crate::bytes::Bytes;
use crate::fsread::{read_bounded, ReadError, CONTROL_MAX};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A control-file load failure (any open or read error other than ENOENT,
/// a file that is not regular or is over [`CONTROL_MAX`], or C4's "locals
/// and me both missing").
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The file exists but could not be read, is not a regular file (a
    /// FIFO or device: refused rather than read, see [`crate::fsread`]) or
    /// is larger than [`CONTROL_MAX`].
    #[error("unable to read control file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: ReadError,
    },
    /// C4: control/locals and control/me are both missing.
    #[error("missing control file: locals (and control/me is missing too)")]
    NoLocals,
}

/// Raw contents of the control files; `None` means the file is missing
/// (ENOENT).
#[derive(Debug, Clone, Default)]
pub struct ControlFiles {
    /// control/me
    pub me: Option<Vec<u8>>,
    /// control/envnoathost
    pub envnoathost: Option<Vec<u8>>,
    /// control/locals
    pub locals: Option<Vec<u8>>,
    /// control/percenthack
    pub percenthack: Option<Vec<u8>>,
    /// control/virtualdomains
    pub virtualdomains: Option<Vec<u8>>,
}

impl ControlFiles {
    /// Reads the five files from `qmail_home/control`. ENOENT gives `None`;
    /// any other error is fatal (C1, C4, C5). Files are opened without
    /// blocking and must be regular files of at most [`CONTROL_MAX`] bytes
    /// ([`read_bounded`]).
    pub fn read(qmail_home: &Path) -> Result<ControlFiles, ControlError> {
        let dir = qmail_home.join("control");
        let rd = |name: &str| -> Result<Option<Vec<u8>>, ControlError> {
            let path = dir.join(name);
            match read_bounded(&path, CONTROL_MAX) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.is_not_found() => Ok(None),
                Err(source) => Err(ControlError::Read { path, source }),
            }
        };
        Ok(ControlFiles {
            me: rd("me")?,
            envnoathost: rd("envnoathost")?,
            locals: rd("locals")?,
            percenthack: rd("percenthack")?,
            virtualdomains: rd("virtualdomains")?,
        })
    }
}

/// A case-insensitive constant map (constmap.c; C6, C7).
///
/// Keys are compared under ASCII-fold with equal length; for duplicate keys
/// the **last** entry wins.
#[derive(Debug, Clone, Default)]
pub struct ConstMap {
    map: HashMap<Vec<u8>, usize>,
    entries: Vec<(Bytes, Bytes)>,
}

impl ConstMap {
    /// Builds a map from control lines (already C3-filtered). With
    /// `flagcolon` each line is split at its first `:` and lines without one
    /// are dropped; without it the whole line is the key and the value is
    /// empty.
    pub fn new<'a>(lines: impl IntoIterator<Item = &'a [u8]>, flagcolon: bool) -> ConstMap {
        let mut m = ConstMap::default();
        for line in lines {
            let (k, v) = if flagcolon {
                match line.iter().position(|&c| c == b':') {
                    Some(p) => (&line[..p], &line[p + 1..]),
                    None => continue,
                }
            } else {
                (line, &b""[..])
            };
            m.map.insert(k.to_ascii_lowercase(), m.entries.len());
            m.entries.push((Bytes::new(k), Bytes::new(v)));
        }
        m
    }

    /// Looks a key up (C7). Returns the value of the last matching entry.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        let idx = if key.iter().any(|c| c.is_ascii_uppercase()) {
            self.map.get(&key.to_ascii_lowercase())
        } else {
            self.map.get(key)
        }?;
        Some(self.entries[*idx].1.as_bytes())
    }

    /// Is the key present (C7)?
    pub fn contains(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// The entries in file order (including shadowed duplicates).
    pub fn entries(&self) -> &[(Bytes, Bytes)] {
        &self.entries
    }

    /// Number of entries in file order.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn strip_trailing_ws(mut l: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t' | b'\n'] = l {
        l = rest;
    }
    l
}

/// C1/C2 (`control_readline`): the first line, with trailing space, tab and
/// `\n` removed. An empty file gives the empty string.
pub fn first_line(bytes: &[u8]) -> Vec<u8> {
    let line = bytes.split(|&c| c == b'\n').next().unwrap_or_default();
    strip_trailing_ws(line).to_vec()
}

/// C3 (`control_readfile`): the entries of a list file: split on `\n`,
/// trailing space/tab stripped (not `\r`, not leading whitespace), empty and
/// `#` lines dropped; a last line without `\n` counts. Because qmail joins
/// the kept lines with NUL before building the map, a NUL byte inside a line
/// splits it into two entries.
pub fn control_lines(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    if bytes.is_empty() {
        return out;
    }
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    for line in body.split(|&c| c == b'\n') {
        let line = strip_trailing_ws(line);
        match line.first() {
            None | Some(0) | Some(b'#') => continue,
            _ => out.extend(line.split(|&c| c == 0)),
        }
    }
    out
}

/// C4: locals, or when it is missing control/me (`control_readfile` with
/// flagme copies me verbatim as one entry); `None` when both are missing.
fn locals_map(f: &ControlFiles, me: Option<&Bytes>) -> Option<ConstMap> {
    match (&f.locals, me) {
        (Some(b), _) => Some(ConstMap::new(control_lines(b), false)),
        (None, Some(me)) => Some(ConstMap::new(me.split(|&c| c == 0), false)),
        (None, None) => None,
    }
}

/// The parsed control files that stages W and H use.
#[derive(Debug, Clone)]
pub struct Controls {
    /// control/me (C1), `None` when missing.
    pub me: Option<Bytes>,
    /// envnoathost after C2's fallbacks.
    pub envnoathost: Bytes,
    /// locals (C4).
    pub locals: ConstMap,
    /// percenthack (C5).
    pub percenthack: ConstMap,
    /// virtualdomains (C6).
    pub virtualdomains: ConstMap,
}

impl Controls {
    /// Builds the controls from raw file contents (C1–C7).
    pub fn from_files(f: &ControlFiles) -> Result<Controls, ControlError> {
        let me = f.me.as_deref().map(|b| Bytes(first_line(b)));
        let envnoathost = match (&f.envnoathost, &me) {
            (Some(b), _) => Bytes(first_line(b)),
            (None, Some(me)) => me.clone(),
            (None, None) => Bytes::from("envnoathost"),
        };
        let locals = locals_map(f, me.as_ref()).ok_or(ControlError::NoLocals)?;
        let percenthack = f
            .percenthack
            .as_deref()
            .map(|b| ConstMap::new(control_lines(b), false))
            .unwrap_or_default();
        let virtualdomains = f
            .virtualdomains
            .as_deref()
            .map(|b| ConstMap::new(control_lines(b), true))
            .unwrap_or_default();
        Ok(Controls {
            me,
            envnoathost,
            locals,
            percenthack,
            virtualdomains,
        })
    }

    /// Reads and parses `qmail_home/control/*`.
    pub fn load(qmail_home: &Path) -> Result<Controls, ControlError> {
        Controls::from_files(&ControlFiles::read(qmail_home)?)
    }

    /// C8 (SIGHUP in qmail-send): re-read only locals and virtualdomains.
    /// A locals failure or a virtualdomains failure other than ENOENT keeps
    /// the old maps; a now-missing virtualdomains becomes empty.
    pub fn reread(&mut self, f: &ControlFiles) {
        let Some(locals) = locals_map(f, self.me.as_ref()) else {
            return;
        };
        self.locals = locals;
        self.virtualdomains = f
            .virtualdomains
            .as_deref()
            .map(|b| ConstMap::new(control_lines(b), true))
            .unwrap_or_default();
    }
}
