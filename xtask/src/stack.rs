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

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &std::path::Path, sub: &str, name: &str) -> String {
        let d = dir.join(sub);
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join(name);
        std::fs::write(&p, "--- a/FILES\n+++ b/FILES\n@@ -1 +1,2 @@\n a\n+b\n").unwrap();
        p.display().to_string()
    }

    #[test]
    fn two_patches_with_one_file_name_are_refused_naming_both() {
        let t = tempfile::tempdir().unwrap();
        let a = write(t.path(), "one", "tls.patch");
        let b = write(t.path(), "two", "tls.patch");
        let args = StackArgs {
            with_patch: vec![a.clone(), format!("p0:{b}")],
        };
        let e = args.load().unwrap_err().to_string();
        assert!(
            e.contains("a second patch named tls.patch") && e.contains(&a),
            "{e}"
        );
        let ok = StackArgs {
            with_patch: vec![a, write(t.path(), "two", "auth.patch")],
        };
        let loaded = ok.load().unwrap();
        assert_eq!(loaded[0].file_name, "tls.patch");
        assert_eq!(loaded[1].file_name, "auth.patch");
    }

    #[test]
    fn a_missing_patch_names_the_option_and_the_file() {
        let args = StackArgs {
            with_patch: vec!["/nonexistent/x.patch".into()],
        };
        let e = format!("{:#}", args.load().unwrap_err());
        assert!(
            e.contains("--with-patch /nonexistent/x.patch") && e.contains("cannot read"),
            "{e}"
        );
    }
}
