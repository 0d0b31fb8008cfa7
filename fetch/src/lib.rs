//! qmail-fetch
