//! qmail-patches
