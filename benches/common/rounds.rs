//! Ratios measured so that this machine's noise cancels out: the contenders take turns in
//! rounds (each round times every contender once, in an order rotated from round to round,
//! on one runtime and one process), and each ratio is the median over the rounds of
//! *baseline time / contender time* within a round. A slow period then slows both sides of a
//! ratio alike, where criterion, timing one contender after the other for seconds each,
//! swings by up to 2x between runs here (BENCHMARKS.md, issue 15).

use super::{Contenders, IDS, hit, run_tasks};
use std::time::{Duration, Instant};

/// How one contender's turn is timed.
#[derive(Clone, Copy)]
pub enum Turn {
    /// This many hits over 64 tasks (`run_tasks`).
    Concurrent(u64),
    /// This many hits one at a time from `block_on`.
    Sequential(u64),
}

impl Turn {
    /// Nanoseconds per hit of `name`, after a tenth as many hits untimed (the contender
    /// before it has just filled the caches with its own data).
    fn time<C: Contenders>(self, rt: &tokio::runtime::Runtime, c: &C, name: &'static str) -> f64 {
        self.timed(rt, c, name, 10);
        self.timed(rt, c, name, 1)
    }

    /// [`time`](Self::time) of a `1 / part` of the turn.
    fn timed<C: Contenders>(
        self,
        rt: &tokio::runtime::Runtime,
        c: &C,
        name: &'static str,
        part: u64,
    ) -> f64 {
        let (hits, took) = match self {
            Turn::Concurrent(n) => (n / part, run_tasks(rt, n / part, c, name)),
            Turn::Sequential(n) => (
                n / part,
                rt.block_on(async {
                    let started = Instant::now();
                    for i in 0..n / part {
                        hit(c, name, i % IDS).await;
                    }
                    started.elapsed()
                }),
            ),
        };
        nanos(took) / hits.max(1) as f64
    }
}

fn nanos(d: Duration) -> f64 {
    d.as_secs_f64() * 1e9
}

/// Median, min and max.
fn spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let med = v[v.len() / 2];
    (med, v[0], v[v.len() - 1])
}

/// Times `names` in `rounds` alternating rounds of `turn` and prints the times and `ratios`
/// ((label, contender, baseline), by name) under `title`.
pub fn print_rounds<C: Contenders>(
    rt: &tokio::runtime::Runtime,
    c: &C,
    title: &str,
    turn: Turn,
    rounds: usize,
    names: &[&'static str],
    ratios: &[(&str, &str, &str)],
) {
    // times[round][contender]: nanoseconds per hit.
    let mut times = vec![vec![0f64; names.len()]; rounds];
    for (r, row) in times.iter_mut().enumerate() {
        for k in 0..names.len() {
            let i = (r + k) % names.len();
            row[i] = turn.time(rt, c, names[i]);
        }
    }
    println!("\n### {title}: {rounds} alternating rounds\n");
    println!("| contender | ns/hit, median (min-max) over rounds |");
    println!("|---|---:|");
    for (i, name) in names.iter().enumerate() {
        let (med, lo, hi) = spread(times.iter().map(|t| t[i]).collect());
        println!("| `{name}` | {med:.0} ({lo:.0}-{hi:.0}) |");
    }
    println!("\n| ratio (baseline time / contender time, per round) | median | min-max |");
    println!("|---|---:|---:|");
    let index = |name: &str| {
        names
            .iter()
            .position(|n| *n == name)
            .expect("a contender of the rounds")
    };
    for (label, who, base) in ratios {
        let (w, b) = (index(who), index(base));
        let (med, lo, hi) = spread(times.iter().map(|t| t[b] / t[w]).collect());
        println!("| {label} | {med:.2}x | {lo:.2}-{hi:.2} |");
    }
}
