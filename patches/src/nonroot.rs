//! The nonroot patch (placeholder until its generator is written).

use crate::{Patch, PatchError, Source};

/// Generate the nonroot patch from a pristine tree.
pub fn generate(src: &Source) -> Result<Patch, PatchError> {
    Err(PatchError::Unknown(
        format!("nonroot (not written yet) for {}", src.release()),
        String::new(),
    ))
}
