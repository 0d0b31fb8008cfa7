//! Portability fixes that current gcc/glibc need (placeholder).

use crate::{Patch, PatchError, Source};

/// netqmail-1.06 portability fixes.
pub fn generate_netqmail(src: &Source) -> Result<Patch, PatchError> {
    Err(PatchError::Unknown(
        format!("portability (not written yet) for {}", src.release()),
        String::new(),
    ))
}

/// mess822-0.58 portability fixes (`extern int errno;`).
pub fn generate_mess822(src: &Source) -> Result<Patch, PatchError> {
    Err(PatchError::Unknown(
        format!("errno (not written yet) for {}", src.release()),
        String::new(),
    ))
}
