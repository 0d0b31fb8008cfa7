//! qmail-unpack
