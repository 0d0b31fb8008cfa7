//! The realrcptto patch (placeholder until its generator is written).

use crate::{Patch, PatchError, Source};

/// Generate the realrcptto patch from a pristine tree.
pub fn generate(src: &Source) -> Result<Patch, PatchError> {
    Err(PatchError::Unknown(
        format!("realrcptto (not written yet) for {}", src.release()),
        String::new(),
    ))
}
