//! Oracle S inside an authenticated session: on a tree with the SMTP AUTH
//! patch, qmail-smtpd is started as `qmail-smtpd CHECKPASSWORD true` with
//! `SMTPAUTH` set (README.auth: an empty value offers LOGIN and PLAIN),
//! and driven through EHLO, `AUTH PLAIN` (or LOGIN) and its `235` before
//! the RCPTs.
//!
//! Decisions:
//! * The checkpassword program is the test's own stub
//!   (`tests/c/checkpassword-stub.c`, [`AuthStub`]): it accepts exactly
//!   the user and password the test puts into its environment
//!   (`CHECKPW_STUB_USER`, `CHECKPW_STUB_PASSWORD`, inherited through
//!   qmail-smtpd) and then runs its subprogram, `true`.
//! * A successful AUTH sets qmail-smtpd's `relayclient` to the empty
//!   string: every RCPT passes rcpthosts and the realrcptto check judges
//!   the address with an empty suffix, i.e. the address itself
//!   ([`relay_address`]); that is the question R is asked.
//! * The tier is on when the built qmail-smtpd advertises AUTH with
//!   `SMTPAUTH` set ([`offers_auth`], [`probe`]), not by a flag.

use std::path::{Path, PathBuf};

use super::c::cached_build;
use super::sq::{
    ask_smtp_by, io, Reply, SmtpAnswer, SmtpSession, SqBuild, SqError, SqOptions, SENDER_SMTP,
};
use crate::cc::{self, Sanitize};

/// The user the stub accepts in the scenario tier.
pub const USER: &str = "difftest-user";

/// The password the stub accepts in the scenario tier.
pub const PASSWORD: &str = "difftest-secret";

/// The reply to a successful AUTH.
pub const OK: &str = "235 ok, go ahead (#2.0.0)\r\n";

/// The reply to a rejected AUTH.
pub const FAILED: &str = "535 authentication failed (#5.7.1)\r\n";

/// The checkpassword stub, built (or reused from the cache).
#[derive(Debug, Clone)]
pub struct AuthStub {
    exe: PathBuf,
}

impl AuthStub {
    /// Builds `tests/c/checkpassword-stub.c` into the cache.
    pub fn build() -> Result<Self, SqError> {
        let src = cc::driver_dir().join("checkpassword-stub.c");
        let key =
            cc::fnv_key(&[&std::fs::read(&src).map_err(io(format!("reading {}", src.display())))?]);
        let exe = cached_build("checkpassword-stub", &[src], &key, Sanitize::None)?;
        Ok(AuthStub { exe })
    }

    /// The same stub run from `exe` (a copy the test uids can reach).
    pub fn with_exe(self, exe: PathBuf) -> Self {
        AuthStub { exe }
    }

    /// The stub executable.
    pub fn exe(&self) -> &Path {
        &self.exe
    }

    /// `base` with AUTH on: `SMTPAUTH` set to `smtpauth` (`""` offers
    /// LOGIN and PLAIN, `"!"` also requires AUTH before MAIL), the stub
    /// and `true` as qmail-smtpd's arguments, and the stub's credentials.
    pub fn options(&self, base: &SqOptions, smtpauth: &str, user: &str, pass: &str) -> SqOptions {
        let mut o = base
            .clone()
            .with("SMTPAUTH", smtpauth)
            .with("CHECKPW_STUB_USER", user)
            .with("CHECKPW_STUB_PASSWORD", pass);
        let truth = crate::procenv::which("true").unwrap_or_else(|| PathBuf::from("/bin/true"));
        o.args = vec![self.exe.clone().into(), truth.into()];
        o
    }
}

/// The address qmail-smtpd's RCPT check judges when `relayclient` is set:
/// the address with `relayclient` appended (empty after AUTH).
pub fn relay_address(addr: &[u8], relayclient: &[u8]) -> Vec<u8> {
    [addr, relayclient].concat()
}

/// Whether an EHLO reply advertises AUTH with LOGIN and PLAIN.
pub fn offers_auth(ehlo: &Reply) -> bool {
    ehlo.text.lines().any(|l| {
        let mut w = l.get(4..).unwrap_or("").split_ascii_whitespace();
        w.next() == Some("AUTH") && w.clone().any(|m| m == "PLAIN") && w.any(|m| m == "LOGIN")
    })
}

/// Standard base64 (RFC 4648, with padding).
pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= c.len() {
                out.push(char::from(A[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// EHLO (which must advertise AUTH) then `AUTH PLAIN` with the initial
/// response `\0user\0pass`; returns the reply to AUTH.
pub fn auth_plain(s: &mut SmtpSession, user: &str, pass: &str) -> Result<Reply, SqError> {
    ehlo_offering_auth(s)?;
    let resp = base64(format!("\0{user}\0{pass}").as_bytes());
    s.cmd(format!("AUTH PLAIN {resp}").as_bytes())
}

/// EHLO (which must advertise AUTH) then `AUTH LOGIN` through its two
/// 334 prompts; returns the reply to the password.
pub fn auth_login(s: &mut SmtpSession, user: &str, pass: &str) -> Result<Reply, SqError> {
    ehlo_offering_auth(s)?;
    for (line, prompt) in [
        (b"AUTH LOGIN".to_vec(), "334 VXNlcm5hbWU6\r\n"),
        (base64(user.as_bytes()).into_bytes(), "334 UGFzc3dvcmQ6\r\n"),
    ] {
        let r = s.cmd(&line)?;
        if r.text != prompt {
            return Err(SqError::Protocol(format!("AUTH LOGIN: {:?}", r.text)));
        }
    }
    s.cmd(base64(pass.as_bytes()).as_bytes())
}

fn ehlo_offering_auth(s: &mut SmtpSession) -> Result<Reply, SqError> {
    let ehlo = s.cmd(b"EHLO client.example")?;
    if !offers_auth(&ehlo) {
        return Err(SqError::Protocol(format!(
            "qmail-smtpd does not advertise AUTH LOGIN PLAIN: {:?}",
            ehlo.text
        )));
    }
    Ok(ehlo)
}

/// S's verdicts ([`super::sq::smtp_verdict`]) with every RCPT inside a
/// session authenticated by `AUTH PLAIN` as [`USER`]; `opts` without AUTH
/// (it is added here). `None` for addresses SMTP cannot carry.
pub fn ask_smtp_auth(
    sq: &SqBuild,
    home: &Path,
    opts: &SqOptions,
    stub: &AuthStub,
    addrs: &[Vec<u8>],
) -> Result<Vec<Option<String>>, SqError> {
    let opts = stub.options(opts, "", USER, PASSWORD);
    ask_smtp_by(addrs, |batch| {
        let mut s = sq.smtp(home, &opts)?;
        if s.greeting().code == 421 {
            let g = s.greeting().clone();
            let _ = s.finish();
            return Ok(SmtpAnswer::Greeting(g));
        }
        let r = auth_plain(&mut s, USER, PASSWORD)?;
        if r.text != OK {
            return Err(SqError::Protocol(format!(
                "AUTH PLAIN answered {:?}",
                r.text
            )));
        }
        let env = s.envelope(SENDER_SMTP, batch, None)?;
        s.finish()?;
        Ok(SmtpAnswer::Rcpts(env.rcpt))
    })
}

/// Whether the qmail-smtpd of `sq` advertises AUTH when started with
/// `SMTPAUTH` and the stub: asked in a minimal qmail home under `dir`.
pub fn probe(sq: &SqBuild, stub: &AuthStub, dir: &Path) -> Result<bool, SqError> {
    let home = tempfile::Builder::new()
        .prefix("auth-probe")
        .tempdir_in(dir)
        .map_err(io(format!("creating a probe home in {}", dir.display())))?;
    let control = home.path().join("control");
    std::fs::create_dir_all(&control).map_err(io("creating the probe's control dir"))?;
    std::fs::write(control.join("me"), b"difftest.invalid\n")
        .map_err(io("writing the probe's control/me"))?;
    let opts = stub.options(&SqOptions::default(), "", USER, PASSWORD);
    let mut s = sq.smtp(home.path(), &opts)?;
    let ehlo = s.cmd(b"EHLO client.example")?;
    s.finish()?;
    Ok(offers_auth(&ehlo))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o, "{i:?}");
        }
        // the prompts of AUTH LOGIN
        assert_eq!(base64(b"Username:"), "VXNlcm5hbWU6");
        assert_eq!(base64(b"Password:"), "UGFzc3dvcmQ6");
    }

    #[test]
    fn auth_is_recognised_only_with_login_and_plain() {
        let r = |t: &str| Reply {
            code: 250,
            text: t.into(),
        };
        assert!(offers_auth(&r(
            "250-x\r\n250-PIPELINING\r\n250-AUTH LOGIN PLAIN\r\n250 SIZE 0\r\n"
        )));
        assert!(!offers_auth(&r(
            "250-x\r\n250-AUTH CRAM-MD5\r\n250 SIZE 0\r\n"
        )));
        assert!(!offers_auth(&r(
            "250-x\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
        )));
    }
}
