//! qmail-verify
