//! The differential test suite: the oracles of `spec/differential.md`
//! (R, the Rust resolver; C and B, the realrcptto and branch C cores; S, Q
//! and L, patched qmail-smtpd, qmail-qmtpd and qmail-local; G, pristine
//! netqmail-1.06) run on the same generated scenarios and compared.
#![warn(missing_docs)]

pub mod bench_rcpt;
pub mod cc;
pub mod corpus;
pub mod known;
pub mod oracle;
pub mod procenv;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod tree;
pub mod upstream;
