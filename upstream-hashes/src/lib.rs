//! upstream-hashes
