//! qmail-difftest
