//! The embedded store: the hit path of `#[cached]` on `Cache::memory` (no tag, 2 tags) against
//! a raw `moka::future::Cache::get_with` and the `cached` crate's in-memory `#[cached]` (and its
//! sharded `#[concurrent_cached]`). One call at a time (latency), and 64 tasks on a 2-worker
//! runtime (throughput). Every contender caches the same value and returns an owned copy.
//!
//! `cargo bench --bench memory_hit` (add `-- --warm-up-time 1 --measurement-time 2` for a
//! quick run). The ratio tables are printed at the end.

mod common;

use common::contenders::{MEMORY_HITS, MemoryContenders};
use common::{IDS, row, run_tasks};
use criterion::{Criterion, Throughput};
use std::time::SystemTime;

fn latency(cr: &mut Criterion, rt: &tokio::runtime::Runtime, c: &MemoryContenders) {
    let mut g = cr.benchmark_group("memory_hit");
    g.throughput(Throughput::Elements(1));
    for name in MEMORY_HITS {
        let mut i = 0u64;
        g.bench_function(name, |b| {
            b.to_async(rt).iter(|| {
                i += 1;
                let c = c.clone();
                async move { c.run(name, i % IDS).await }
            })
        });
    }
    g.finish();
}

fn throughput(cr: &mut Criterion, rt: &tokio::runtime::Runtime, c: &MemoryContenders) {
    let mut g = cr.benchmark_group("memory_hit_64_tasks");
    g.throughput(Throughput::Elements(1));
    for name in MEMORY_HITS {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let c = c.clone();
                run_tasks(rt, iters, move |i| {
                    let c = c.clone();
                    async move { c.run(name, i % IDS).await }
                })
            })
        });
    }
    g.finish();
}

fn main() {
    let since = SystemTime::now();
    let mut cr = common::criterion();
    let rt = common::runtime();
    let contenders = MemoryContenders::new();
    rt.block_on(contenders.prefill());

    latency(&mut cr, &rt, &contenders);
    throughput(&mut cr, &rt, &contenders);
    cr.final_summary();

    for (title, group) in [
        ("Memory hit, one call at a time (latency)", "memory_hit"),
        (
            "Memory hit, 64 tasks on 2 workers (throughput)",
            "memory_hit_64_tasks",
        ),
    ] {
        let moka = (group, "moka_get_with");
        let cached = (group, "cached_crate");
        common::ratio_table(
            title,
            since,
            &[
                row("raw moka get_with", group, "moka_get_with", moka),
                row("cached crate #[cached]", group, "cached_crate", moka),
                row(
                    "cached crate #[concurrent_cached]",
                    group,
                    "cached_crate_concurrent",
                    moka,
                ),
                row("cachette, no tag", group, "cachette_0_tags", moka),
                row("cachette, no tag", group, "cachette_0_tags", cached),
                row("cachette, 2 tags", group, "cachette_2_tags", moka),
                row("cachette, 2 tags", group, "cachette_2_tags", cached),
            ],
        );
    }
}
