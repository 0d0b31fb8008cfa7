//! Stages H and O helpers: the VERP sender (H1), qmail-local's argument
//! vector (H7), qmail-lspawn's status report (O2) and qmail-send's bounce
//! handling (O3).

use crate::bytes::Bytes;
use serde::Serialize;

/// Who qmail-local runs as and with which arguments (H5–H7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// user
    pub user: Bytes,
    /// uid
    pub uid: u32,
    /// gid
    pub gid: u32,
    /// home
    pub home: Bytes,
    /// local (the full local part)
    pub local: Bytes,
    /// dash
    pub dash: Bytes,
    /// ext
    pub ext: Bytes,
    /// domain
    pub domain: Bytes,
}

/// H1 (`senderadd`): a sender `P@H-@[]` becomes
/// `P` + recipient local part + `=` + recipient domain + `@` + `H`;
/// every other sender is unchanged.
pub fn senderadd(sender: &[u8], recip: &[u8]) -> Vec<u8> {
    let Some(base) = sender.strip_suffix(b"-@[]") else {
        return sender.to_vec();
    };
    // qmail's `j + 5 <= i` holds for every `@` found before the `-@[]`
    let (Some(j), Some(k)) = (
        base.iter().rposition(|&c| c == b'@'),
        recip.iter().rposition(|&c| c == b'@'),
    ) else {
        return sender.to_vec();
    };
    [
        &base[..j],
        &recip[..k],
        b"=",
        &recip[k + 1..],
        b"@",
        &base[j + 1..],
    ]
    .concat()
}

impl Target {
    /// H7: the arguments after `bin/qmail-local --`:
    /// `user home local dash ext domain sender aliasempty`.
    pub fn qmail_local_args(&self, sender: &[u8], aliasempty: &[u8]) -> Vec<Bytes> {
        vec![
            self.user.clone(),
            self.home.clone(),
            self.local.clone(),
            self.dash.clone(),
            self.ext.clone(),
            self.domain.clone(),
            Bytes::new(sender),
            Bytes::new(aliasempty),
        ]
    }
}

/// How a qmail-lspawn child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildStatus {
    /// Killed by a signal.
    Crashed,
    /// Exited with this code.
    Exited(i32),
}

/// O2 (`report`): the status letter (`K`, `Z` or `D`) and text qmail-lspawn
/// sends to qmail-send, given the child's status and its output (only the
/// part before the first NUL is used).
pub fn lspawn_report(status: ChildStatus, output: &[u8]) -> (u8, Bytes) {
    let fixed = |l: u8, t: &str| (l, Bytes::from(t));
    let code = match status {
        ChildStatus::Crashed => return fixed(b'Z', "qmail-local crashed."),
        ChildStatus::Exited(c) => c,
    };
    match code {
        117 => return fixed(b'Z', "Trouble reading users/cdb in qmail-lspawn."),
        119 => return fixed(b'Z', "Out of memory in qmail-lspawn."),
        118 => return fixed(b'Z', "Temporary failure in qmail-lspawn."),
        116 => return fixed(b'Z', "Unable to find alias user!"),
        113 => return fixed(b'Z', "Not allowed to perform deliveries as root."),
        112 => return fixed(b'Z', "Internal qmail-lspawn bug."),
        115 => return fixed(b'Z', "NFS failure in qmail-local."),
        126 => return fixed(b'D', "Unable to run qmail-local."),
        120 => return fixed(b'Z', "Unable to run qmail-local."),
        121 => return fixed(b'Z', "Unable to run qmail-getpw."),
        _ => {}
    }
    let letter = match code {
        0 => b'K',
        111 | 71 | 74 | 75 => b'Z',
        _ => b'D',
    };
    let end = output.iter().position(|&c| c == 0).unwrap_or(output.len());
    (letter, Bytes::new(&output[..end]))
}

/// O3: the text qmail-send appends to a `Z` report that has outlived
/// `queuelifetime`, turning it into a bounce.
pub const QUEUELIFETIME_TEXT: &str =
    "I'm not going to try again; this message has been in the queue too long.";
