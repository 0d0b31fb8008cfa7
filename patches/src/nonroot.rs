//! `mess822-0.58-nonroot.patch`: install mess822 without root.
//!
//! mess822's `hier()` lists everything `install` creates and `instcheck`
//! checks. Every entry lives under `conf-home` except the last one, which
//! copies `leapsecs.dat` into `/etc` and is the only reason `make setup
//! check` needs root. This patch removes exactly that entry and nothing
//! else (spec: mess822-nonroot.md, Part 1):
//!
//! * `install` and `instcheck` both walk `hier()`, so neither touches
//!   `/etc` any more;
//! * `leapsecs_read.c` is unchanged: the library still reads
//!   `/etc/leapsecs.dat` at run time, and a missing file still means "no
//!   leap seconds";
//! * installing the bundled `leapsecs.dat` elsewhere
//!   (`PREFIX/share/mess822/leapsecs.dat`) is the build's job, not the
//!   patch's.

use upstream_hashes::{SourceTree, MESS822};

use crate::{Patch, PatchError, Pristine};

/// The `hier()` entry that copies `leapsecs.dat` into `/etc` (the last
/// line of `hier()` in the pristine `hier.c`).
pub const ETC_ENTRY: &str = "  c(\"/etc\",\".\",\"leapsecs.dat\",-1,-1,0644);\n";

/// Generate the nonroot patch from a pristine mess822-0.58 tree.
///
/// Fails with [`PatchError::Anchor`] naming `hier.c` if the `/etc` entry is
/// not there exactly once.
pub fn generate(src: &SourceTree) -> Result<Patch, PatchError> {
    let mut hier = src.edit("hier.c")?;
    hier.replace(ETC_ENTRY, "")?;
    Ok(Patch {
        file_name: format!("{}-nonroot.patch", MESS822.full_name),
        release: &MESS822,
        description: "mess822-0.58 nonroot: install and instcheck without root.\n\
             \n\
             Removes the one hier() entry that copies leapsecs.dat into /etc, so\n\
             that `make setup check` needs only a writable conf-home. The library\n\
             still reads /etc/leapsecs.dat at run time (a missing file means no\n\
             leap seconds, as before); an administrator who wants leap seconds\n\
             copies leapsecs.dat into /etc by hand.\n\
             \n\
             Apply with `patch -p1` in the mess822-0.58 directory."
            .to_string(),
        files: vec![hier.finish()],
    })
}
