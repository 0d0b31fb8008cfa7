//! [`RunError`]: why a differential run could not be carried out (as
//! opposed to finding disagreements, which go into the report). It sits
//! above the oracles and the known cases, whose errors it wraps, and below
//! the comparisons and the run loop, which return it.

use crate::known::KnownError;
use crate::oracle::b::BError;
use crate::oracle::c::CError;
use crate::oracle::g::GError;
use crate::oracle::l::LError;
use crate::oracle::r::RError;
use crate::oracle::setup::SetupError;
use crate::oracle::sq::SqError;

/// Why a run could not be carried out (as opposed to finding
/// disagreements, which go into the report).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// An I/O error.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The oracles could not be set up (built, published for the test
    /// uids), or a required tier is unavailable.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// Oracle C could not be run.
    #[error("oracle C: {0}")]
    C(#[from] CError),
    /// Oracle R could not be run.
    #[error(transparent)]
    R(#[from] RError),
    /// Oracle G could not be run.
    #[error("oracle G: {0}")]
    G(#[from] GError),
    /// Oracles S/Q could not be run.
    #[error("oracles S/Q: {0}")]
    Sq(#[from] SqError),
    /// The known-differences cases could not be run.
    #[error(transparent)]
    Known(#[from] KnownError),
    /// Oracle B (the branch C core's driver) could not be built.
    #[error("oracle B: {0}")]
    B(#[from] BError),
    /// Oracle L (patched qmail-local) could not be built or run.
    #[error("oracle L: {0}")]
    L(#[from] LError),
}
