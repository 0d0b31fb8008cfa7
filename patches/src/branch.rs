//! The branch patch (placeholder until its generator is written).

use crate::{Patch, PatchError, Source};

/// Generate the branch patch from a pristine tree.
pub fn generate(src: &Source) -> Result<Patch, PatchError> {
    Err(PatchError::Unknown(
        format!("branch (not written yet) for {}", src.release()),
        String::new(),
    ))
}
