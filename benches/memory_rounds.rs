//! The memory hit ratios of `memory_hit`, measured so that this machine's noise cancels out:
//! the contenders take turns in rounds (each round times every contender once, in an order
//! rotated from round to round, on one runtime and one process), and each ratio is the
//! median over the rounds of *baseline time / contender time* within a round. A slow period
//! then slows both sides of a ratio alike, where criterion, timing one contender after the
//! other for seconds each, swings by up to 2x between runs here (BENCHMARKS.md, issue 15).
//!
//! `cargo bench --bench memory_rounds` (`MEMORY_ROUNDS=n` rounds, 15 by default; each turn
//! is 1,000,000 hits at 64 tasks on 2 workers, or 200,000 one at a time, after a tenth as
//! many untimed: the contender before it has just filled the caches with its own data).
//! `cargo test --benches` runs one short round.

mod common;

use common::contenders::{MEMORY_HITS, MemoryContenders};
use common::{IDS, hit, run_tasks};
use std::time::{Duration, Instant};

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
    let names = MEMORY_HITS;

    for (title, turn) in [
        ("64 tasks on 2 workers", Turn::Concurrent(concurrent)),
        ("one call at a time", Turn::Sequential(sequential)),
    ] {
        // times[round][contender]: nanoseconds per hit.
        let mut times = vec![[0f64; MEMORY_HITS.len()]; rounds];
        for (r, row) in times.iter_mut().enumerate() {
            for k in 0..names.len() {
                let i = (r + k) % names.len();
                row[i] = turn.time(&rt, &contenders, names[i]);
            }
        }
        println!("\n### Memory hit, {title}: {rounds} alternating rounds\n");
        println!("| contender | ns/hit, median (min-max) over rounds |");
        println!("|---|---:|");
        for (i, name) in names.iter().enumerate() {
            let (med, lo, hi) = spread(times.iter().map(|t| t[i]).collect());
            println!("| `{name}` | {med:.0} ({lo:.0}-{hi:.0}) |");
        }
        println!("\n| ratio (baseline time / contender time, per round) | median | min-max |");
        println!("|---|---:|---:|");
        for (label, who, base) in RATIOS {
            let (w, b) = (index(who), index(base));
            let (med, lo, hi) = spread(times.iter().map(|t| t[b] / t[w]).collect());
            println!("| {label} | {med:.2}x | {lo:.2}-{hi:.2} |");
        }
    }
}

/// How one contender's turn is timed.
#[derive(Clone, Copy)]
enum Turn {
    /// This many hits over 64 tasks (`run_tasks`).
    Concurrent(u64),
    /// This many hits one at a time from `block_on`.
    Sequential(u64),
}

impl Turn {
    /// Nanoseconds per hit of `name`, after a tenth as many hits untimed.
    fn time(self, rt: &tokio::runtime::Runtime, c: &MemoryContenders, name: &'static str) -> f64 {
        self.timed(rt, c, name, 10);
        self.timed(rt, c, name, 1)
    }

    /// [`time`](Self::time) of a `1 / part` of the turn.
    fn timed(
        self,
        rt: &tokio::runtime::Runtime,
        c: &MemoryContenders,
        name: &'static str,
        part: u64,
    ) -> f64 {
        let (hits, took) = match self.part(part) {
            Turn::Concurrent(n) => (n, run_tasks(rt, n, c, name)),
            Turn::Sequential(n) => (
                n,
                rt.block_on(async {
                    let started = Instant::now();
                    for i in 0..n {
                        hit(c, name, i % IDS).await;
                    }
                    started.elapsed()
                }),
            ),
        };
        nanos(took) / hits as f64
    }
}

impl Turn {
    fn part(self, part: u64) -> Turn {
        match self {
            Turn::Concurrent(n) => Turn::Concurrent(n / part),
            Turn::Sequential(n) => Turn::Sequential(n / part),
        }
    }
}

fn nanos(d: Duration) -> f64 {
    d.as_secs_f64() * 1e9
}

fn index(name: &str) -> usize {
    MEMORY_HITS
        .iter()
        .position(|n| *n == name)
        .expect("a contender of MEMORY_HITS")
}

/// Median, min and max.
fn spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let med = v[v.len() / 2];
    (med, v[0], v[v.len() - 1])
}
