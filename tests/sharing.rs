//! Every path that hands one caller's value to another keeps the freshness promise, on Redis
//! and on the memory store: a call that begins after an invalidation returned never takes
//! the value of a computation that began before it (single-flight), and a computation that
//! began before a write-through or a delete never stores its value over it. Races are
//! ordered with gates, not sleeps; nothing asserts on timings.
//!
//! Also: one computation per key under bursts of distinct cold keys (the leadership of a
//! flight is never handed around).

#[path = "support/fixture.rs"]
mod fixture;
#[path = "support/redis_cluster.rs"]
mod redis_cluster;
#[path = "support/redis_server.rs"]
mod redis_server;

use cachette::{Cache, Options};
use fixture::Fixture;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};

/// A "database" row and a computation of it that can be held open.
#[derive(Clone)]
struct Row {
    version: Arc<AtomicU64>,
    runs: Arc<AtomicUsize>,
    entered: Arc<Notify>,
    release: Arc<Semaphore>,
}

impl Row {
    fn new(version: u64) -> Row {
        Row {
            version: Arc::new(AtomicU64::new(version)),
            runs: Arc::default(),
            entered: Arc::default(),
            release: Arc::new(Semaphore::new(0)),
        }
    }

    /// Reads the row, then waits for a permit (so that a test can write and invalidate while
    /// the computation holds the old value).
    async fn slow_read(&self) -> u64 {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let v = self.version.load(Ordering::SeqCst);
        self.entered.notify_one();
        let _permit = self.release.acquire().await.expect("semaphore open");
        v
    }

    fn read(&self) -> u64 {
        self.runs.fetch_add(1, Ordering::SeqCst);
        self.version.load(Ordering::SeqCst)
    }
}

/// Starts a call of `k` whose computation reads `row` and is held (until a permit is added);
/// returns once the computation has read the row.
async fn held_read(cache: &Cache, opts: &Options, row: &Row) -> tokio::task::JoinHandle<u64> {
    let (cache, opts, row) = (cache.clone(), opts.clone(), row.clone());
    let entered = row.entered.clone();
    let call = tokio::spawn(async move {
        cache
            .get_or_compute("k", &opts, || async { row.slow_read().await })
            .await
    });
    entered.notified().await;
    call
}

/// Waits (bounded) until `cond` holds.
async fn until(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..2000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("timed out waiting for {what}");
}

/// How the test makes the row's update visible to the cache.
#[derive(Clone, Copy, Debug)]
enum Invalidate {
    Tag,
    Delete,
}

/// A leader computes from version 1 and is held; the row is updated to 2 and invalidated
/// (`Ok`); a second call starts after that and finds the leader's flight still running. It
/// must not take the leader's value.
async fn follower_after_invalidation(fx: Fixture, how: Invalidate) {
    let cache = fx.cache.clone();
    let row = Row::new(1);
    let opts = match how {
        Invalidate::Tag => Options::new().tags(["t"]),
        Invalidate::Delete => Options::new(),
    };
    let leader = held_read(&cache, &opts, &row).await;
    row.version.store(2, Ordering::SeqCst);
    match how {
        Invalidate::Tag => cache.invalidate_tags(["t"]).await.expect("invalidated"),
        Invalidate::Delete => {
            cache.delete("k").await.expect("deleted");
        }
    }
    let coalesced_before = cache.stats().coalesced;
    let follower = {
        let (cache, opts, row) = (cache.clone(), opts.clone(), row.clone());
        tokio::spawn(async move {
            cache
                .get_or_compute("k", &opts, || async { row.read() })
                .await
        })
    };
    // The second call joined the leader's flight (or is about to compute for itself).
    until("the second call to wait on the flight", || {
        cache.stats().coalesced > coalesced_before || row.runs.load(Ordering::SeqCst) > 1
    })
    .await;
    row.release.add_permits(1);
    assert_eq!(
        leader.await.expect("leader"),
        1,
        "the leader keeps its own value"
    );
    let got = follower.await.expect("follower");
    assert_eq!(
        got, 2,
        "{how:?}: a call that began after the invalidation returned got a value computed before it"
    );
    // And nothing stale was left behind for later calls.
    let later: u64 = cache
        .get_or_compute("k", &opts, || async { row.read() })
        .await;
    assert_eq!(later, 2, "{how:?}: a stale value was stored");
    assert!(cache.stats().shares_refused >= 1 || row.runs.load(Ordering::SeqCst) >= 2);
}

/// A computation of version 1 is held; the row is updated to 2 and written through (`set`,
/// what `#[cache_put]` does) or deleted; then the old computation finishes. Its value must not
/// be stored over the write.
async fn fill_after_write(fx: Fixture, delete: bool) {
    let cache = fx.cache.clone();
    let row = Row::new(1);
    let opts = Options::new().tags(["t"]);
    let reader = held_read(&cache, &opts, &row).await;
    row.version.store(2, Ordering::SeqCst);
    if delete {
        cache.delete("k").await.expect("deleted");
    } else {
        cache.set("k", &2u64, &opts).await.expect("written through");
    }
    let fenced_before = cache.stats().fills_fenced;
    row.release.add_permits(1);
    assert_eq!(reader.await.expect("reader"), 1);
    assert_eq!(
        cache.stats().fills_fenced,
        fenced_before + 1,
        "the old computation was not stored"
    );
    let got: u64 = cache
        .get_or_compute("k", &opts, || async { row.read() })
        .await;
    assert_eq!(
        got,
        2,
        "a computation that began before the {} stored its old value over it",
        if delete { "delete" } else { "write-through" }
    );
}

/// A computation finds its key absent and is held; a write-through stores the new row with
/// a short TTL, which runs out; then the old computation finishes. The key is absent again
/// when it stores, but the write-through came in between: it must not store.
async fn fill_after_expired_write(fx: Fixture) {
    let cache = fx.cache.clone();
    let row = Row::new(1);
    let reader = held_read(&cache, &Options::new().ttl(Duration::from_secs(60)), &row).await;
    row.version.store(2, Ordering::SeqCst);
    let short = Options::new().ttl(Duration::from_millis(20));
    cache
        .set("k", &2u64, &short)
        .await
        .expect("written through");
    // Past the write-through's TTL: a miss now, by cachette's clock.
    tokio::time::sleep(Duration::from_millis(100)).await;
    row.release.add_permits(1);
    assert_eq!(reader.await.expect("reader"), 1);
    let got: u64 = cache
        .get_or_compute("k", &Options::new(), || async { row.read() })
        .await;
    assert_eq!(
        got, 2,
        "a computation that began before an (expired) write-through stored its old value"
    );
}

/// 1,000 concurrent calls over `keys` distinct cold keys (2 ms computations): each key is
/// computed exactly once.
async fn burst(cache: &Cache, run: usize, keys: usize) {
    let counts: Arc<Mutex<HashMap<usize, usize>>> = Arc::default();
    let opts = Options::new().tags([format!("burst{run}")]);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let (cache, counts, opts) = (cache.clone(), counts.clone(), opts.clone());
        let k = i % keys;
        tasks.spawn(async move {
            let got = cache
                .get_or_compute(&format!("burst:{run}:{k}"), &opts, || async move {
                    *counts.lock().expect("counts").entry(k).or_default() += 1;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    k
                })
                .await;
            (k, got)
        });
    }
    while let Some(r) = tasks.join_next().await {
        let (k, got) = r.expect("call");
        assert_eq!(got, k, "each call gets its own key's value");
    }
    let counts = counts.lock().expect("counts");
    let extra: Vec<(usize, usize)> = counts
        .iter()
        .filter(|&(_, &c)| c != 1)
        .map(|(&k, &c)| (k, c))
        .collect();
    assert_eq!(counts.len(), keys, "every key computed");
    assert!(
        extra.is_empty(),
        "run {run}, {keys} keys: keys computed more than once (key, computations): {extra:?}; {:?}",
        cache.stats()
    );
}

async fn bursts(fx: Fixture) {
    let mut run = 0;
    for keys in [500, 200, 50] {
        for _ in 0..30 {
            burst(&fx.cache, run, keys).await;
            run += 1;
        }
    }
}

macro_rules! both_stores {
    ($($name:ident: $body:expr;)*) => {
        mod on_redis {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let f: fn(Fixture) -> _ = $body;
                    f(Fixture::redis()).await;
                }
            )*
        }
        mod on_memory {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let f: fn(Fixture) -> _ = $body;
                    f(Fixture::memory()).await;
                }
            )*
        }
        mod on_cluster {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let f: fn(Fixture) -> _ = $body;
                    f(Fixture::cluster_with(|b| b)).await;
                }
            )*
        }
    };
}

both_stores! {
    follower_after_tag_invalidation: |fx| follower_after_invalidation(fx, Invalidate::Tag);
    follower_after_delete: |fx| follower_after_invalidation(fx, Invalidate::Delete);
    fill_racing_write_through: |fx| fill_after_write(fx, false);
    fill_racing_delete: |fx| fill_after_write(fx, true);
    fill_racing_an_expired_write_through: fill_after_expired_write;
}

/// The bursts run with a generous operation timeout: this is about the hand-over of
/// leadership, not about a Redis too slow to answer on a loaded 2-core machine (a lookup that
/// times out is a miss without versions, which may rightly compute again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_computation_per_key_under_bursts_on_redis() {
    bursts(Fixture::redis_with(|b| {
        b.op_timeout(Duration::from_secs(10))
    }))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_computation_per_key_under_bursts_on_cluster() {
    bursts(Fixture::cluster_with(|b| {
        b.op_timeout(Duration::from_secs(10))
    }))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_computation_per_key_under_bursts_on_memory() {
    bursts(Fixture::memory()).await;
}
