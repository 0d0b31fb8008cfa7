//! `--with-patch [pN:]FILE` (repeatable), shared by `patch`, `build` and
//! `test`: third-party patches applied to the qmail tree, in order, before
//! ours (see `qmail_patches::stack`).

use anyhow::{Context, Result};
use qmail_patches::ThirdPartyPatch;

/// The third-party patch options.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct StackArgs {
    /// A third-party patch to apply to the netqmail tree before ours
    /// (repeatable, applied in the order given, with `patch -p1`; `pN:FILE`
    /// for another strip level, e.g. `p0:tls.patch`). Each must apply
    /// without fuzz; ours are generated against the result. The series
    /// lists them first and the manifest records their SHA-256.
    #[arg(long = "with-patch", value_name = "[pN:]FILE")]
    pub with_patch: Vec<String>,
}

impl StackArgs {
    /// Read every patch given (failing on the first that cannot be read
    /// or is refused, naming it), and refuse two with the same file name
    /// (they would overwrite each other in an emitted series).
    pub fn load(&self) -> Result<Vec<ThirdPartyPatch>> {
        let mut out: Vec<ThirdPartyPatch> = Vec::new();
        for arg in &self.with_patch {
            let p =
                ThirdPartyPatch::from_arg(arg).with_context(|| format!("--with-patch {arg}"))?;
            if let Some(q) = out.iter().find(|q| q.file_name == p.file_name) {
                anyhow::bail!(
                    "--with-patch {arg}: a second patch named {} (the first is {}); rename one",
                    p.file_name,
                    q.path.display()
                );
            }
            eprintln!("third-party patch {}", p.label());
            out.push(p);
        }
        Ok(out)
    }
}
