//! The one set-up of the oracles shared by the scenario run (`runner.rs`)
//! and the known cases (`known/`): the scratch
//! directory, R's executable, C's driver and P's program and harness where
//! qmaild can run them, the
//! errno shim, and G and S/Q when a qmail tree (netqmail-1.06 or
//! notqmail-1.09) is given (with the
//! session tiers S/tls and S/auth when its qmail-smtpd offers them).
//!
//! An oracle that cannot run here is [`Absent`] (the callers list it as
//! skipped, each in its own words); with `RunOptions::require_upstream`
//! that is an error instead.

use super::c::{CDriver, CError};
use super::g::{self, GBuild, GError};
use super::p::PDriver;
use super::sq::{SqBuild, SqError};
use super::sq_auth::{self, AuthStub};
use super::sq_rcptcheck::{self, RcptcheckBuild};
use super::sq_tls::{self, TlsCerts};
use crate::cc::{self, CcError, Sanitize};
use crate::options::RunOptions;
use crate::scratch::{reachable_copy, scratch_dir};
use std::path::{Path, PathBuf};

/// Why the oracles could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A directory could not be made (names it).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// Oracle C could not be built.
    #[error("oracle C: {0}")]
    C(#[from] CError),
    /// Oracle G could not be built.
    #[error("oracle G: {0}")]
    G(#[from] GError),
    /// Oracles S/Q could not be built.
    #[error("oracles S/Q: {0}")]
    Sq(#[from] SqError),
    /// A required tier is unavailable.
    #[error("{0}")]
    Required(String),
    /// The errno shim could not be built.
    #[error("errno shim: {0}")]
    Shim(CcError),
    /// A program could not be put where the test uids can run it.
    #[error("publishing a copy for the test uids: {0}")]
    Publish(CcError),
}

/// Why an oracle that needs the qmail tree is not set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Absent {
    /// No qmail tree was given (`QMAIL_SOURCE_NETQMAIL` or
    /// `QMAIL_SOURCE_NOTQMAIL` not set).
    NoSources,
    /// G runs qmail-lspawn, which needs root; this is the euid.
    NotRoot(u32),
}

/// The oracles, ready to be asked.
pub struct Oracles {
    /// The release R models (that of the qmail tree G, S, Q and L are
    /// built from; netqmail-1.06 without one).
    pub release: qmail_resolver::QmailRelease,
    /// Oracle C (the realrcptto core's driver), runnable by qmaild.
    pub c: CDriver,
    /// Oracle P (the RCPTCHECK program, ASan+UBSan, and its hook
    /// harness), runnable by qmaild: scenarios below
    /// [`P_SANITIZED`](crate::options::P_SANITIZED).
    pub p: PDriver,
    /// The same program built plainly, for the scenarios after those.
    pub p_plain: PDriver,
    /// Oracle G (pristine netqmail), or why not.
    pub g: Result<GBuild, Absent>,
    /// Oracles S/Q (patched qmail-smtpd/qmail-qmtpd), or why not.
    pub sq: Result<SqBuild, Absent>,
    /// S inside STARTTLS sessions: the certificates, when S's qmail-smtpd
    /// offers STARTTLS (a tree with the TLS patch).
    pub tls: Option<TlsCerts>,
    /// S inside authenticated sessions: the checkpassword stub (reachable
    /// by qmaild), when S's qmail-smtpd advertises AUTH (a tree with the
    /// SMTP AUTH patch).
    pub auth: Option<AuthStub>,
    /// S/rcptcheck: qmail-smtpd with the smtpd-rcptcheck hook running the
    /// RCPTCHECK program, when the tree S is built from has the hook
    /// (`--with-patch` of the smtpd-rcptcheck patch).
    pub rcptcheck: Option<RcptcheckBuild>,
    /// The difftest executable R runs (reachable by qmaild).
    pub r_exe: PathBuf,
    /// Where the worlds are made (reachable by every test uid).
    pub scratch: PathBuf,
    /// The errno shim (reachable by qmaild), for errno-fault scenarios.
    pub shim: PathBuf,
}

/// Sets the oracles up for `opts`, with the scratch directory under `base`
/// ([`scratch_dir`]).
pub fn prepare(opts: &RunOptions, base: &Path) -> Result<Oracles, SetupError> {
    let scratch = scratch_dir(base).map_err(|source| SetupError::Io {
        what: format!("creating the scratch dir under {}", base.display()),
        source,
    })?;
    // R runs as qmaild: it must be able to execute the binary.
    let r_exe =
        reachable_copy(&opts.exe, &scratch, "bin", "difftest").map_err(SetupError::Publish)?;
    let shim = cc::errno_shim().map_err(SetupError::Shim)?;
    let shim =
        reachable_copy(&shim, &scratch, "lib", "rrt-errno-shim.so").map_err(SetupError::Publish)?;
    let c = CDriver::build(Sanitize::None)?;
    // C runs as qmaild too.
    let c_exe = reachable_copy(c.exe(), &scratch, "bin", "realrcptto-driver")
        .map_err(SetupError::Publish)?;
    let c = c.with_exe(c_exe);
    let lspawn = opts.resolver_release().lspawn_looks_up_users();
    let p = publish_p(
        Sanitize::AddressUndefined,
        lspawn,
        &scratch,
        "qmail-rcptcheck-realrcptto-asan",
    )?;
    let p_plain = publish_p(
        Sanitize::None,
        lspawn,
        &scratch,
        "qmail-rcptcheck-realrcptto",
    )?;
    let (g, sq) = match &opts.qmail {
        None if opts.require_upstream => {
            return Err(SetupError::Required(
                "upstream sources required (--require-upstream) but no qmail tree was given (QMAIL_SOURCE_NETQMAIL or QMAIL_SOURCE_NOTQMAIL)".into(),
            ))
        }
        None => (Err(Absent::NoSources), Err(Absent::NoSources)),
        Some(src) => {
            let g = match g::build(src, &scratch.join("g")) {
                Ok(b) => Ok(b),
                Err(GError::NotRoot(uid)) if !opts.require_upstream => Err(Absent::NotRoot(uid)),
                Err(e) => return Err(e.into()),
            };
            // S and Q run the packager's stack when there is one; G stays
            // pristine (neither the TLS nor the AUTH patch changes delivery).
            let base = opts.patched_base().unwrap_or_else(|| src.clone());
            (g, Ok(SqBuild::build(&base, true)?))
        }
    };
    let (tls, auth) = match &sq {
        Ok(b) => sessions(b, &scratch)?,
        Err(_) => (None, None),
    };
    let rcptcheck = match opts.patched_base() {
        Some(base) if sq_rcptcheck::has_hook(&base) => Some(RcptcheckBuild::build(&base)?),
        _ => None,
    };
    Ok(Oracles {
        release: opts.resolver_release(),
        c,
        p,
        p_plain,
        rcptcheck,
        g,
        sq,
        tls,
        auth,
        r_exe,
        scratch,
        shim,
    })
}

/// Oracle P built with `sanitize` (and, for notqmail, `lspawn_users`), its program and harness copied under
/// `scratch` for qmaild (the program as `stem`).
fn publish_p(
    sanitize: Sanitize,
    lspawn_users: bool,
    scratch: &Path,
    stem: &str,
) -> Result<PDriver, SetupError> {
    let p = PDriver::build(sanitize, lspawn_users)?;
    let prog = reachable_copy(p.program(), scratch, "bin", stem).map_err(SetupError::Publish)?;
    let harness = reachable_copy(p.harness(), scratch, "bin", "rcptcheck-harness")
        .map_err(SetupError::Publish)?;
    Ok(p.with_exes(prog, harness))
}

/// The session tiers S's qmail-smtpd supports, found by asking it
/// ([`sq_tls::probe`], [`sq_auth::probe`]) in homes under `scratch`.
fn sessions(
    sq: &SqBuild,
    scratch: &Path,
) -> Result<(Option<TlsCerts>, Option<AuthStub>), SetupError> {
    let tls = match sq_tls::probe(sq, scratch)? {
        true => Some(TlsCerts::generate()?),
        false => None,
    };
    let stub = AuthStub::build()?;
    let exe = reachable_copy(stub.exe(), scratch, "bin", "checkpassword-stub")
        .map_err(SetupError::Publish)?;
    let stub = stub.with_exe(exe);
    let auth = sq_auth::probe(sq, &stub, scratch)?.then_some(stub);
    Ok((tls, auth))
}
