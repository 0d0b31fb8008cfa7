//! Resolver throughput: `cargo bench -p qmail-resolver`.
//!
//! Builds a realistic qmail home in a temp dir ([`world`]: locals,
//! virtualdomains, users/assign compiled to users/cdb with wildcards, 400
//! homes with .qmail files, a StaticPasswd of 600 accounts), then resolves a mixed list of
//! addresses (remote, virtual, users/cdb exact and wildcard, passwd with
//! and without extensions, alias, missing mailboxes) and reports addresses
//! per second on one core and heap allocations per address: first with a
//! real system call for every filesystem probe (the library's default),
//! then with a filesystem snapshot ([`Resolver::with_fs_snapshot`], as
//! qtraceaddr runs), warmed by the first pass, so that what remains is the
//! resolver's own work.

mod measure;
mod world;

use measure::{allocs, thread_cpu};

use qmail_resolver::{Config, Controls, Passwd, Resolver, UsersDb};
use std::time::Instant;

/// 7 samples of 20 rounds over `addrs`; the machine may be shared, so
/// the best sample (least disturbed) and the median are reported.
fn measure<P: Passwd>(label: &str, r: &Resolver<P>, addrs: &[Vec<u8>]) {
    let rounds = 20;
    let per_sample = (addrs.len() * rounds) as f64;
    let mut rates = Vec::new();
    let mut cpu_rates = Vec::new();
    let mut rejects = 0u64;
    let a0 = allocs();
    for _ in 0..7 {
        let t0 = Instant::now();
        let c0 = thread_cpu();
        for _ in 0..rounds {
            for a in addrs {
                let t = r.resolve(std::hint::black_box(a));
                if t.verdict == qmail_resolver::Verdict::Reject {
                    rejects += 1;
                }
            }
        }
        rates.push(per_sample / t0.elapsed().as_secs_f64());
        cpu_rates.push(per_sample / (thread_cpu() - c0));
    }
    let allocs = allocs() - a0;
    let n = per_sample * 7.0;
    rates.sort_by(|a, b| a.total_cmp(b));
    println!(
        "resolve{label}: {} addresses resolved in 7 samples of {}; {rejects} rejects",
        n as u64, per_sample as u64
    );
    println!(
        "resolve{label}: best {:.0} addresses/s, median {:.0} addresses/s (one core, euid {})",
        rates[6],
        rates[3],
        // SAFETY: geteuid cannot fail.
        unsafe { libc::geteuid() }
    );
    cpu_rates.sort_by(|a, b| a.total_cmp(b));
    println!(
        "resolve{label}: per CPU second of this thread (user+sys, robust on a shared machine): best {:.0}, median {:.0} addresses/s",
        cpu_rates[6], cpu_rates[3]
    );
    println!(
        "resolve{label}: {:.1} allocations/address",
        allocs as f64 / n
    );
}

fn main() {
    let w = world::build();
    let controls = Controls::load(&w.qmail).unwrap();
    let users = UsersDb::load(&w.qmail.join("users/cdb")).unwrap();
    let r = Resolver::from_parts(
        Config::with_home(&w.qmail),
        controls.clone(),
        users.clone(),
        w.passwd.clone(),
    );
    let addrs = world::addresses(2000);

    // warm up, and count outcome classes once
    let mut classes = std::collections::BTreeMap::new();
    for a in &addrs {
        let t = r.resolve(a);
        *classes
            .entry(format!("{}/{}", t.outcome.class(), t.verdict.as_str()))
            .or_insert(0u32) += 1;
    }
    println!(
        "resolve: outcome mix per {} addresses: {classes:?}",
        addrs.len()
    );
    measure(" (system calls)", &r, &addrs);
    let s = Resolver::from_parts(Config::with_home(&w.qmail), controls, users, w.passwd)
        .with_fs_snapshot();
    for a in &addrs {
        s.resolve(a);
    }
    measure(" (snapshot)", &s, &addrs);
    if let Some(c) = s.fs_snapshot_counts() {
        println!(
            "resolve (snapshot): {} probes made, {} answered from the snapshot",
            c.probes, c.hits
        );
    }
}
