//! Portability fixes that current gcc/glibc need.
//!
//! * mess822-0.58 (`mess822-0.58-errno.patch`): its `error.h` declares
//!   `extern int errno;`, which glibc rejects at link time (`errno` is
//!   thread-local). The fix packagers use: `#include <errno.h>` instead.
//!   `cdb_seek.c` and `leapsecs_read.c` also say `extern int errno;`, but
//!   after `#include <errno.h>`, where the macro turns it into a harmless
//!   redeclaration of `__errno_location`, so they need no change.
//! * netqmail-1.06 needs no source change to build with gcc 12 / glibc
//!   2.36 (Debian 12): `make it man` succeeds with warnings only
//!   (implicit declarations, built-in mismatches). Newer compilers that
//!   turn those warnings into errors (gcc ≥ 14, clang ≥ 16) are handled by
//!   flags in `conf-cc` chosen by the build (`qmail-build`), not by a patch,
//!   so there is no netqmail portability patch in the series.

use upstream_hashes::{SourceTree, MESS822};

use crate::{Patch, PatchError, Pristine};

/// The pristine declaration in mess822's `error.h`.
pub const ERRNO_DECL: &str = "extern int errno;\n";

/// mess822-0.58 portability fix: `extern int errno;` → `#include <errno.h>`
/// in `error.h`.
pub fn generate_mess822(src: &SourceTree) -> Result<Patch, PatchError> {
    let mut h = src.edit("error.h")?;
    h.replace(ERRNO_DECL, "#include <errno.h>\n")?;
    Ok(Patch {
        file_name: format!("{}-errno.patch", MESS822.full_name),
        release: &MESS822,
        description: "mess822-0.58 errno: build with current glibc.\n\
             \n\
             error.h declares `extern int errno;`, which glibc (thread-local errno)\n\
             rejects at link time. Include <errno.h> instead.\n\
             \n\
             Apply with `patch -p1` in the mess822-0.58 directory."
            .to_string(),
        files: vec![h.finish()],
    })
}
