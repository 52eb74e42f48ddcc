//! The memory hit ratios of `memory_hit`, in alternating rounds (`common/rounds.rs`: each
//! ratio is the median over rounds of the ratio within a round, so that this machine's noise
//! cancels out).
//!
//! `cargo bench --bench memory_rounds` (`MEMORY_ROUNDS=n` rounds, 15 by default; each turn
//! is 1,000,000 hits at 64 tasks on 2 workers, or 200,000 one at a time, after a tenth as
//! many untimed: the contender before it has just filled the caches with its own data).
//! `cargo test --benches` runs one short round.

mod common;

use common::contenders::{MEMORY_HITS, MemoryContenders};
use common::rounds::{Turn, print_rounds};

/// Ratios reported: (label, contender, baseline).
const RATIOS: [(&str, &str, &str); 5] = [
    ("no tag vs raw moka", "cachette_0_tags", "moka_get_with"),
    (
        "no tag vs cached #[cached]",
        "cachette_0_tags",
        "cached_crate",
    ),
    ("2 tags vs no tag", "cachette_2_tags", "cachette_0_tags"),
    ("2 tags vs raw moka", "cachette_2_tags", "moka_get_with"),
    (
        "raw quick_cache vs raw moka",
        "quick_cache_get_or_insert",
        "moka_get_with",
    ),
];

fn main() {
    let (rounds, concurrent, sequential) = if common::bench_mode() {
        let rounds = std::env::var("MEMORY_ROUNDS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(15usize);
        (rounds, 1_000_000u64, 200_000u64)
    } else {
        (1, 2_000, 500)
    };
    let rt = common::runtime();
    let contenders = MemoryContenders::new();
    rt.block_on(contenders.prefill());

    for (title, turn) in [
        (
            "Memory hit, 64 tasks on 2 workers",
            Turn::Concurrent(concurrent),
        ),
        (
            "Memory hit, one call at a time",
            Turn::Sequential(sequential),
        ),
    ] {
        print_rounds(&rt, &contenders, title, turn, rounds, &MEMORY_HITS, &RATIOS);
    }
}
