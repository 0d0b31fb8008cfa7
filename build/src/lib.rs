//! qmail-build
