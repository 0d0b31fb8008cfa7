//! The allocation target of issue 14: resolving address after address (the
//! benchmarks' world and mix, stage P on, a filesystem snapshot, as
//! qtraceaddr runs) makes at most 10 heap allocations per address once
//! warm, because a dropped trace's byte strings give their buffers to the
//! next trace (`bytes::buffer`). Counted, not timed; one test in this
//! binary, so that no other test's allocations are counted.
#[path = "../benches/world/mod.rs"]
mod world;

// the benchmarks' counting allocator (its CPU clock is not used here)
#[path = "../benches/measure/mod.rs"]
#[allow(dead_code)]
mod measure;

use measure::allocs;
use qmail_resolver::{Config, ResolveOptions, Resolver};

#[test]
fn a_warm_run_makes_at_most_ten_allocations_per_address() {
    let w = world::build();
    let r = Resolver::new(Config::with_home(&w.qmail), w.passwd.clone())
        .unwrap()
        .with_fs_snapshot();
    let opts = ResolveOptions {
        instructions: true,
        ..Default::default()
    };
    let addrs = world::addresses(2400);
    let mut classes = std::collections::BTreeSet::new();
    for a in &addrs {
        classes.insert(r.resolve_with(a, &opts).outcome.class());
    }
    assert!(
        classes.len() >= 4,
        "the mix reaches the stages: {classes:?}"
    );
    let a0 = allocs();
    for a in &addrs {
        let t = r.resolve_with(a, &opts);
        std::hint::black_box(&t);
    }
    let per = (allocs() - a0) as f64 / addrs.len() as f64;
    assert!(per <= 10.0, "{per:.1} heap allocations per address");
}
