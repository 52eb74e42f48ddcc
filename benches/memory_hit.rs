//! The embedded store: the hit path of `#[cached]` on `Cache::memory` (no tag, 2 tags) against
//! a raw `moka::future::Cache::get_with`, a raw `quick_cache::sync::Cache::get_or_insert_with`
//! and the `cached` crate's in-memory `#[cached]` (and its sharded `#[concurrent_cached]`). One call at a time (latency), and 64 tasks on a 2-worker
//! runtime (throughput). Every contender caches the same value and returns an owned copy.
//!
//! `cargo bench --bench memory_hit` (add `-- --warm-up-time 1 --measurement-time 2` for a
//! quick run). The ratio tables are printed at the end.

mod common;

use common::contenders::{MEMORY_HITS, MemoryContenders};
use common::row;
use std::time::SystemTime;

fn main() {
    let since = SystemTime::now();
    let mut cr = common::criterion();
    let rt = common::runtime();
    let contenders = MemoryContenders::new();
    rt.block_on(contenders.prefill());

    common::latency_group(&mut cr, &rt, "memory_hit", &MEMORY_HITS, &contenders);
    common::throughput_group(
        &mut cr,
        &rt,
        "memory_hit_64_tasks",
        &MEMORY_HITS,
        &contenders,
    );
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
                row(
                    "raw quick_cache get_or_insert_with",
                    group,
                    "quick_cache_get_or_insert",
                    moka,
                ),
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
                row(
                    "cachette, 2 tags",
                    group,
                    "cachette_2_tags",
                    (group, "cachette_0_tags"),
                ),
            ],
        );
    }
}
