//! The oracles of `spec/differential.md`, one module per oracle letter,
//! and their one shared set-up.
//!
//! | Letter | Oracle                                                        | File        |
//! |--------|---------------------------------------------------------------|-------------|
//! | R      | the Rust resolver (`qmail-resolver`), as qmaild, in a child   | `r.rs`      |
//! | C      | the realrcptto C core (`patches/c/realrcptto.c`) in its driver | `c.rs`      |
//! | P      | the RCPTCHECK program qmail-rcptcheck-realrcptto, run per address as the smtpd-rcptcheck hook runs it | `p.rs` |
//! | B      | the branch C core (`patches/c/qbranch.c`) in its driver       | `b.rs`      |
//! | S, Q   | patched qmail-smtpd and qmail-qmtpd (netqmail-1.06 + realrcptto) | `sq.rs`  |
//! | S/tls  | S inside a STARTTLS session (trees with the STARTTLS patch)   | `sq_tls.rs` |
//! | S/auth | S inside an SMTP AUTH session (trees with the SMTP AUTH patch) | `sq_auth.rs` |
//! | S/rcptcheck | notqmail-1.09 qmail-smtpd with the smtpd-rcptcheck hook running qmail-rcptcheck-realrcptto | `sq_rcptcheck.rs` |
//! | L      | patched qmail-local (netqmail-1.06 + the branch patch)        | `l.rs`      |
//! | G      | pristine netqmail-1.06 (qmail-newu, qmail-send's rewrite, qmail-getpw, qmail-local) | `g.rs` |
//!
//! [`setup`] builds C, G and S/Q and publishes R's executable where the
//! test uids can run it, for the scenario run and the known cases alike.
//! The pairs compared (R-C, R-P, R-S, R-Q, R-S/tls, R-S/auth, R-G, U:R-G, R-B,
//! R-L) live above the
//! oracles, in the `compare_*.rs` files of the crate.

pub mod b;
pub mod c;
pub mod g;
pub mod l;
pub mod p;
pub mod r;
pub mod setup;
pub mod sq;
pub mod sq_auth;
pub mod sq_rcptcheck;
pub mod sq_tls;
