//! Soak: sustained concurrent load over many distinct keys, with invalidations and Redis
//! restarts, reporting resident memory (RSS) and cachette's internal sizes as it runs.
//!
//! ```text
//! cargo run --release --example soak -- [seconds=600] [redis|memory]
//! ```
//!
//! With `redis` it starts its own `redis-server` on a free loopback port (restarted every
//! 60 s to exercise reconnection); with `memory` it soaks the embedded store. Not part of the
//! test suite: a report for a person, run on demand.

#[path = "../tests/support/redis_server.rs"]
mod redis_server;

use cachette::__private::testing;
use cachette::{Cache, Options};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(600);
    let mode = args.next().unwrap_or_else(|| "redis".to_owned());
    let mut server = (mode == "redis").then(redis_server::RedisServer::start);
    let cache = match &server {
        Some(s) => Cache::builder()
            .redis(s.url())
            .op_timeout(Duration::from_millis(100))
            .build()
            .expect("valid configuration"),
        None => Cache::builder()
            .memory(64 * 1024 * 1024)
            .build()
            .expect("valid configuration"),
    };
    println!("soak: {seconds} s on {mode}; 32 tasks; keys drawn from 1,000,000; 1% invalidations");

    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let wrong = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..32u64 {
        let (cache, stop, calls, wrong) =
            (cache.clone(), stop.clone(), calls.clone(), wrong.clone());
        tasks.spawn(async move {
            // xorshift, seeded per task.
            let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (t + 1);
            while !stop.load(Ordering::Relaxed) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Skewed: half the calls on 1,000 hot keys, half spread over 1,000,000.
                let id = if x.is_multiple_of(2) {
                    x % 1_000
                } else {
                    x % 1_000_000
                };
                if x.is_multiple_of(100) {
                    let _ = cache.invalidate_tags([cachette::tag!("row:{id}")]).await;
                    continue;
                }
                let opts = Options::new()
                    .ttl(Duration::from_secs(30))
                    .tags([cachette::tag!("row:{id}"), cachette::tag!("rows")]);
                let v: u64 = cache
                    .get_or_compute(cachette::key!("row:{id}"), &opts, || async move { id * 2 })
                    .await;
                if v != id * 2 {
                    wrong.fetch_add(1, Ordering::Relaxed);
                }
                calls.fetch_add(1, Ordering::Relaxed);
            }
        });
    }

    let started = Instant::now();
    let (mut rss_min, mut rss_max) = (u64::MAX, 0u64);
    let mut last_restart = Instant::now();
    while started.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_secs(10).min(Duration::from_secs(seconds))).await;
        if let Some(s) = server.as_mut()
            && last_restart.elapsed() >= Duration::from_secs(60)
        {
            s.kill();
            s.restart();
            last_restart = Instant::now();
        }
        let rss = rss_kib();
        // The first 30 s are warm-up (allocator and caches growing to their bounds).
        if started.elapsed() >= Duration::from_secs(30) {
            rss_min = rss_min.min(rss);
            rss_max = rss_max.max(rss);
        }
        let s = cache.stats();
        let mem = testing::memory_usage(&cache).await;
        println!(
            "{:>5.0}s rss {:>7} KiB  calls {:>10}  hit rate {:>5.1}%  errors {:>6}  in flight {:>3}  pending {:>3}  memory store {:?}",
            started.elapsed().as_secs_f64(),
            rss,
            calls.load(Ordering::Relaxed),
            s.hit_rate() * 100.0,
            s.backend_errors,
            testing::in_flight(&cache),
            cache.pending_invalidations(),
            mem
        );
    }
    stop.store(true, Ordering::Relaxed);
    tasks.join_all().await;
    println!(
        "done: {} calls, {} wrong values, RSS after warm-up between {} and {} KiB",
        calls.load(Ordering::Relaxed),
        wrong.load(Ordering::Relaxed),
        rss_min,
        rss_max
    );
}
