//! qmail-resolver
