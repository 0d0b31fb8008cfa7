//! Stage 7 of the pipeline (fetch → verify → unpack → sources → patch →
//! build → test): the differential test suite. The oracles of
//! `spec/differential.md`
//! (R, the Rust resolver; C and B, the realrcptto and branch C cores; S, Q
//! and L, patched qmail-smtpd, qmail-qmtpd and qmail-local; G, pristine
//! netqmail-1.06) run on the same generated scenarios and compared.
//!
//! The modules, bottom to top (each imports only the layers below it):
//!
//! | Layer        | Modules                                                       |
//! |--------------|---------------------------------------------------------------|
//! | options      | [`options`] (how to run), [`scratch`] (where worlds and builds go), [`cc`], [`procenv`], [`upstream`] |
//! | scenarios    | [`scenario`] (the generated worlds), [`tree`] (making them)   |
//! | oracles      | [`oracle`]: one file per oracle letter, and their one set-up  |
//! | known cases  | [`known`]: the deliberate changes, observed and judged         |
//! | errors       | [`error`] ([`error::RunError`])                                |
//! | comparisons  | [`compare_rg`] (R-G rules), [`compare_scenario`] (R-C, R-S, R-Q, R-S/tls, R-S/auth, U:R-G, R-G per scenario), [`compare_programs`] (R-B, R-L), [`failures`] (failure directories) |
//! | run and report | [`runner`] (the run loop, tallies, replay), [`report`], [`corpus`] (fuzzing seeds) |
#![warn(missing_docs)]

pub mod bench_rcpt;
pub mod cc;
pub mod compare_programs;
pub mod compare_rg;
pub mod compare_scenario;
pub mod corpus;
pub mod error;
pub mod failures;
pub mod known;
pub mod options;
pub mod oracle;
pub mod procenv;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod scratch;
pub mod tree;
pub mod upstream;
