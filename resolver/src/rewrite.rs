//! Stage W: qmail-send's `rewrite()` and `stripvdomprepend()` (W1–W12).

use crate::bytes::Bytes;
use crate::control::Controls;
use serde::Serialize;

/// Which delivery channel qmail-send chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// qmail-lspawn.
    Local,
    /// qmail-rspawn.
    Remote,
}

/// How the local/remote decision was made (W5–W8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Decision {
    /// W5: the domain is in locals.
    Locals,
    /// W7: a virtualdomains key with a non-empty prepend matched.
    Virtual {
        /// The probe that matched (as probed, original case).
        key: Bytes,
        /// The prepend (the map value).
        prepend: Bytes,
    },
    /// W7: a virtualdomains key with an empty value matched (exception).
    Exception {
        /// The probe that matched.
        key: Bytes,
    },
    /// W8: nothing matched.
    NoMatch,
}

/// The result of stage W for one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rewrite {
    /// The recipient as given (W1).
    pub input: Bytes,
    /// W2: the address after `@envnoathost` was appended (only when the
    /// input had no `@`).
    pub after_envnoathost: Option<Bytes>,
    /// The address after W3 (equal to the W2 result when the hack did not
    /// apply).
    pub after_percenthack: Bytes,
    /// How many `%` were turned into `@` (W3).
    pub percenthack_steps: usize,
    /// How the channel was chosen.
    pub decision: Decision,
    /// Local or remote.
    pub channel: Channel,
    /// The rewritten recipient handed to the channel (W5, W7, W8).
    pub address: Bytes,
}

impl Rewrite {
    /// The local part of the rewritten address (before its last `@`, H3).
    pub fn local_part(&self) -> &[u8] {
        split_last_at(&self.address).0
    }
    /// The domain of the rewritten address (after its last `@`, H3).
    pub fn domain(&self) -> &[u8] {
        split_last_at(&self.address).1
    }
}

/// Splits at the last `@` (H3). Without `@` the whole input is the local part.
pub fn split_last_at(a: &[u8]) -> (&[u8], &[u8]) {
    match a.iter().rposition(|&c| c == b'@') {
        Some(p) => (&a[..p], &a[p + 1..]),
        None => (a, &b""[..]),
    }
}

/// Stage W (qmail-send.c `rewrite`).
pub fn rewrite(c: &Controls, input: &[u8]) -> Rewrite {
    let mut addr = Bytes::vec_from(input);
    let mut after_envnoathost = None;
    let mut i = match addr.iter().rposition(|&b| b == b'@') {
        Some(p) => p,
        None => {
            let p = addr.len();
            addr.push(b'@');
            addr.extend_from_slice(&c.envnoathost);
            after_envnoathost = Some(Bytes::new(&addr));
            p
        }
    };
    let mut steps = 0;
    while c.percenthack.contains(&addr[i + 1..]) {
        let Some(j) = addr[..i].iter().rposition(|&b| b == b'%') else {
            break;
        };
        addr.truncate(i);
        i = j;
        addr[i] = b'@';
        steps += 1;
    }
    let after_percenthack = Bytes::new(&addr);
    let at = addr.iter().rposition(|&b| b == b'@').unwrap_or(0);
    let done = |decision, channel, address| Rewrite {
        input: Bytes::new(input),
        after_envnoathost,
        after_percenthack,
        percenthack_steps: steps,
        decision,
        channel,
        address,
    };
    if c.locals.contains(&addr[at + 1..]) {
        let a = Bytes(addr);
        return done(Decision::Locals, Channel::Local, a);
    }
    let len = addr.len();
    for i in 0..=len {
        if i == 0 || i == at + 1 || i == len || (i > at && addr[i] == b'.') {
            if let Some(x) = c.virtualdomains.get(&addr[i..]) {
                let key = Bytes::new(&addr[i..]);
                if x.is_empty() {
                    return done(Decision::Exception { key }, Channel::Remote, Bytes(addr));
                }
                let mut out = Vec::with_capacity(x.len() + 1 + len);
                out.extend_from_slice(x);
                out.push(b'-');
                out.extend_from_slice(&addr);
                return done(
                    Decision::Virtual {
                        key,
                        prepend: Bytes::new(x),
                    },
                    Channel::Local,
                    Bytes(out),
                );
            }
        }
    }
    done(Decision::NoMatch, Channel::Remote, Bytes(addr))
}

/// W12 (`stripvdomprepend`): how qmail-send shows a local recipient in a
/// bounce message.
pub fn bounce_display(c: &Controls, recip: &[u8]) -> Vec<u8> {
    let Some(at) = recip.iter().rposition(|&b| b == b'@') else {
        return recip.to_vec();
    };
    let domain = &recip[at + 1..];
    let dl = domain.len();
    for i in 0..=dl {
        if i == 0 || i == dl || domain[i] == b'.' {
            if let Some(prepend) = c.virtualdomains.get(&domain[i..]) {
                if prepend.is_empty() {
                    break;
                }
                let n = prepend.len();
                if recip.len() <= n || &recip[..n] != prepend || recip[n] != b'-' {
                    break;
                }
                return Bytes::vec_from(&recip[n + 1..]);
            }
        }
    }
    Bytes::vec_from(recip)
}
