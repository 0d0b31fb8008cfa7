//! Building and running `tests/c/qbranch-driver.c` (with the branch core
//! `patches/c/qbranch.c`) and reading its output into a [`Trace`].

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Mode, Step, Trace};
use crate::cc::{self, CcError, Sanitize};

/// Why the driver could not be built or run, or printed nonsense.
#[derive(Debug, thiserror::Error)]
pub enum BError {
    /// Compiling failed.
    #[error(transparent)]
    Cc(#[from] CcError),
    /// Running failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// The driver failed or printed something unexpected.
    #[error("qbranch-driver: {0}")]
    Driver(String),
}

/// The compiled driver.
#[derive(Debug, Clone)]
pub struct Driver {
    exe: PathBuf,
}

impl Driver {
    /// Compile the driver and the core into `dir/qbranch-driver[-asan]`
    /// with the default C compiler.
    pub fn build(dir: &Path, sanitize: Sanitize) -> Result<Driver, BError> {
        Self::build_with(&cc::default_cc(), dir, sanitize)
    }

    /// Compile with the C compiler `cc`.
    pub fn build_with(cc: &str, dir: &Path, sanitize: Sanitize) -> Result<Driver, BError> {
        std::fs::create_dir_all(dir).map_err(|source| BError::Io {
            what: format!("create {}", dir.display()),
            source,
        })?;
        let name = match sanitize {
            Sanitize::None => format!("qbranch-driver-{}", sanitize_name(cc)),
            Sanitize::AddressUndefined => format!("qbranch-driver-{}-asan", sanitize_name(cc)),
        };
        let exe = dir.join(name);
        let sources = [
            cc::driver_dir().join("qbranch-driver.c"),
            cc::core_dir().join("qbranch.c"),
        ];
        cc::compile(cc, &sources, &exe, sanitize)?;
        Ok(Driver { exe })
    }

    /// Compile the driver and the core once per content (sources,
    /// compiler, sanitizer) into the shared build cache
    /// ([`cc::cached_artifact`]), safe for concurrent runs.
    pub fn build_cached(sanitize: Sanitize) -> Result<Driver, BError> {
        let cc = cc::default_cc();
        let sources = [
            cc::driver_dir().join("qbranch-driver.c"),
            cc::core_dir().join("qbranch.c"),
        ];
        let mut data = Vec::new();
        for f in sources.iter().chain([&cc::core_dir().join("qbranch.h")]) {
            data.push(std::fs::read(f).map_err(|source| BError::Io {
                what: format!("read {}", f.display()),
                source,
            })?);
        }
        let tag = format!("{sanitize:?}");
        let mut parts: Vec<&[u8]> = vec![cc.as_bytes(), tag.as_bytes()];
        parts.extend(data.iter().map(Vec::as_slice));
        let name = format!("qbranch-driver-{}", cc::fnv_key(&parts));
        let exe = cc::cached_artifact(&name, |tmp| cc::compile(&cc, &sources, tmp, sanitize))?;
        Ok(Driver { exe })
    }

    /// The executable.
    pub fn path(&self) -> &Path {
        &self.exe
    }

    /// The shell command that re-runs the driver on the program in `file`
    /// as [`Driver::run`] does (for failure messages).
    pub fn rerun_command(
        &self,
        file: &Path,
        forward_only: bool,
        mode: Mode,
        statuses: &[u8],
    ) -> String {
        format!(
            "{}{}{} {}{}",
            self.exe.display(),
            if mode == Mode::Print { " -n" } else { "" },
            if forward_only { " -x" } else { "" },
            file.display(),
            statuses.iter().map(|s| format!(" {s}")).collect::<String>()
        )
    }

    /// Run the driver on `program` (written to `file`) and parse its
    /// output. `statuses` are the exit statuses of the command lines in
    /// file order.
    pub fn run(
        &self,
        file: &Path,
        program: &[u8],
        forward_only: bool,
        mode: Mode,
        statuses: &[u8],
    ) -> Result<Trace, BError> {
        std::fs::write(file, program).map_err(|source| BError::Io {
            what: format!("write {}", file.display()),
            source,
        })?;
        let mut cmd = Command::new(&self.exe);
        if mode == Mode::Print {
            cmd.arg("-n");
        }
        if forward_only {
            cmd.arg("-x");
        }
        cmd.arg(file);
        for s in statuses {
            cmd.arg(s.to_string());
        }
        let out = cmd.output().map_err(|source| BError::Io {
            what: format!("run {}", self.exe.display()),
            source,
        })?;
        if !out.status.success() || !out.stderr.is_empty() {
            return Err(BError::Driver(format!(
                "{} on {}: {}\n{}",
                out.status,
                file.display(),
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            )));
        }
        parse_output(&out.stdout)
    }
}

fn sanitize_name(cc: &str) -> String {
    cc.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn unescape(s: &[u8]) -> Result<Vec<u8>, BError> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' {
            let hex = s
                .get(i + 2..i + 4)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .filter(|_| s.get(i + 1) == Some(&b'x'))
                .ok_or_else(|| BError::Driver(format!("bad escape in {:?}", s)))?;
            out.push(hex);
            i += 4;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn split1(s: &[u8]) -> (&[u8], &[u8]) {
    match s.iter().position(|&b| b == b' ') {
        Some(p) => (&s[..p], &s[p + 1..]),
        None => (s, &[]),
    }
}

/// Parse the driver's output (see the comment at the top of
/// `qbranch-driver.c`).
pub fn parse_output(out: &[u8]) -> Result<Trace, BError> {
    let bad = |l: &[u8]| BError::Driver(format!("bad line {:?}", String::from_utf8_lossy(l)));
    let num = |b: &[u8]| -> Option<u64> { std::str::from_utf8(b).ok()?.parse().ok() };
    let mut t = Trace::default();
    let mut exited = false;
    for line in out.split(|&b| b == b'\n') {
        if line.is_empty() {
            continue;
        }
        if exited {
            return Err(bad(line));
        }
        let (head, rest) = split1(line);
        match head {
            b"exit" => {
                let (code, msg) = split1(rest);
                t.exit = num(code)
                    .and_then(|c| u8::try_from(c).ok())
                    .ok_or_else(|| bad(line))?;
                if !msg.is_empty() {
                    t.message = Some(String::from_utf8_lossy(msg).into_owned());
                }
                exited = true;
            }
            b"sent" => t.sent.push(unescape(rest)?),
            b"did" => {
                let parts: Vec<_> = rest.split(|&b| b == b'+').collect();
                if parts.len() != 3 {
                    return Err(bad(line));
                }
                let f = num(parts[0]).ok_or_else(|| bad(line))?;
                let w = num(parts[1]).ok_or_else(|| bad(line))?;
                let p = num(parts[2]).ok_or_else(|| bad(line))?;
                t.did = Some((f, w, p));
            }
            _ => {
                let n = num(head).ok_or_else(|| bad(line))? as usize;
                t.steps.push((n, parse_step(rest, line)?));
            }
        }
    }
    if !exited {
        return Err(BError::Driver("no exit line".into()));
    }
    Ok(t)
}

/// The step `rest` of the numbered output line `line`.
fn parse_step(rest: &[u8], line: &[u8]) -> Result<Step, BError> {
    let bad = || BError::Driver(format!("bad line {:?}", String::from_utf8_lossy(line)));
    let num = |b: &[u8]| -> Option<u64> { std::str::from_utf8(b).ok()?.parse().ok() };
    let (what, arg) = split1(rest);
    Ok(match what {
        b"blank" => Step::Blank,
        b"comment" => Step::Comment,
        b"skip" => Step::Skip,
        b"list" => Step::List,
        b"ignore" => Step::Ignore,
        b"stop" => Step::Stop,
        b"target" => Step::Target(unescape(arg)?),
        b"mbox" => Step::Mbox(unescape(arg)?),
        b"maildir" => Step::Maildir(unescape(arg)?),
        b"forward" => Step::Forward(unescape(arg)?),
        b"program" => {
            let (st, cmd) = split1(arg);
            let status = if st == b"-" {
                None
            } else {
                Some(num(st).and_then(|c| u8::try_from(c).ok()).ok_or_else(bad)?)
            };
            Step::Program {
                status,
                cmd: unescape(cmd)?,
            }
        }
        b"jump" => {
            let (next, label) = split1(arg);
            let next = if next == b"none" {
                None
            } else {
                Some(num(next).ok_or_else(bad)? as usize)
            };
            Step::Jump {
                next,
                label: unescape(label)?,
            }
        }
        _ => return Err(bad()),
    })
}
