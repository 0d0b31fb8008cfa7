//! Build wall times: a cold `build` against plain `make` of the same
//! trees, and a no-op rebuild.
//!
//! ```sh
//! QMAIL_SOURCE_NETQMAIL=/path/netqmail-1.06 QMAIL_SOURCE_MESS822=/path/mess822-0.58 \
//!   cargo run --release -p qmail-build --example bench_build
//! ```

use qmail_build::{bench_build, BuildOptions, IdMap, Release};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let var = |k: &str| std::env::var_os(k).ok_or_else(|| format!("{k} is not set"));
    let scratch = tempfile::tempdir()?;
    let opts = BuildOptions {
        netqmail: Release::unverified(qmail_patches::NETQMAIL, var("QMAIL_SOURCE_NETQMAIL")?),
        mess822: Release::unverified(qmail_patches::MESS822, var("QMAIL_SOURCE_MESS822")?),
        prefix: scratch.path().join("prefix"),
        mess822_home: None,
        destdir: None,
        cc: "cc".into(),
        cflags: None,
        patches: qmail_patches::select(&[])?,
        ids: IdMap::build_user(),
        ids_source: "build-user".into(),
        work: scratch.path().join("work"),
        force: false,
    };
    let f = bench_build(&opts, scratch.path())?;
    println!("plain make:    {:6.2} s", f.plain_make.as_secs_f64());
    println!(
        "cold build:    {:6.2} s  ({:.2}x plain make; target <= 1.25x)",
        f.cold_build.as_secs_f64(),
        f.ratio()
    );
    println!("no-op rebuild: {:6.3} s  (target < 1 s)", f.noop_rebuild.as_secs_f64());
    Ok(())
}
