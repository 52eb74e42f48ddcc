//! The engine over the memory store, one test per transition of a call: each asserts the
//! value returned, the counters of `cache.stats()` and the number of computations.

use crate::clock::{ManualClock, ScriptedRandom};
use crate::{Cache, EarlyRefresh, Fallible, LockOptions, Options, Plain, Result};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const KEY: &str = "k";

/// A memory cache on a manual clock (at 1,000,000 ms) with scripted random numbers.
fn cache_with(random: f64) -> Result<(Cache, Arc<ManualClock>)> {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let cache = Cache::builder()
        .memory(1 << 20)
        .clock(Arc::clone(&clock) as Arc<dyn crate::clock::Clock>)
        .random(Arc::new(ScriptedRandom::constant(random)))
        .build()?;
    Ok((cache, clock))
}

fn opts() -> Options {
    Options::new()
        .ttl(Duration::from_secs(10))
        .early_refresh(EarlyRefresh::Off)
}

/// A call of `KEY` computing `value`, counting its computations in `calls`.
async fn call(cache: &Cache, opts: &Options, calls: &AtomicUsize, value: u32) -> u32 {
    cache
        .cached_with(KEY, opts, Plain, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            value
        })
        .await
}

#[tokio::test]
async fn miss_fills_and_stores() -> Result<()> {
    let (cache, _) = cache_with(0.5)?;
    let calls = AtomicUsize::new(0);
    assert_eq!(call(&cache, &opts(), &calls, 1).await, 1);
    let s = cache.stats();
    assert_eq!((s.misses, s.stores, s.hits), (1, 1, 0));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(cache.get::<u32>(KEY).await?, Some(1), "stored");
    Ok(())
}

#[tokio::test]
async fn fresh_hit_is_served_without_computing() -> Result<()> {
    let (cache, _) = cache_with(0.5)?;
    let calls = AtomicUsize::new(0);
    call(&cache, &opts(), &calls, 1).await;
    assert_eq!(
        call(&cache, &opts(), &calls, 2).await,
        1,
        "the stored value"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let s = cache.stats();
    assert_eq!((s.hits, s.misses, s.stores), (1, 1, 1));
    Ok(())
}

#[tokio::test]
async fn stale_is_served_while_one_caller_refreshes() -> Result<()> {
    let (cache, clock) = cache_with(0.5)?;
    let opts = opts().stale(Duration::from_secs(60));
    let calls = AtomicUsize::new(0);
    call(&cache, &opts, &calls, 1).await;
    clock.advance(Duration::from_secs(20));
    // In the background: the caller gets the stale value at once, one refresh runs.
    let served = cache
        .cached_with_spawn(KEY, &opts, Plain, || async { 2u32 })
        .await;
    assert_eq!(served, 1, "the stale value");
    assert_eq!(cache.stats().stale_served, 1);
    for _ in 0..100 {
        if cache.stats().stores == 2 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(cache.stats().stores, 2, "the refresh stored its value");
    assert_eq!(call(&cache, &opts, &calls, 3).await, 2, "fresh again");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    Ok(())
}

#[tokio::test]
async fn an_invalidated_tag_makes_a_miss() -> Result<()> {
    let (cache, _) = cache_with(0.5)?;
    let opts = opts().tags(["t"]);
    let calls = AtomicUsize::new(0);
    call(&cache, &opts, &calls, 1).await;
    cache.invalidate_tags(["t"]).await?;
    assert_eq!(call(&cache, &opts, &calls, 2).await, 2, "recomputed");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let s = cache.stats();
    assert_eq!((s.misses, s.hits, s.stores), (2, 0, 2));
    Ok(())
}

#[tokio::test]
async fn an_undecodable_entry_is_a_miss() -> Result<()> {
    let (cache, _) = cache_with(0.5)?;
    let full = cache.full_key(KEY);
    if let Some(m) = cache.memory_backend() {
        m.put_raw(&full, b"not an envelope".to_vec(), Duration::from_secs(60));
    }
    let calls = AtomicUsize::new(0);
    assert_eq!(call(&cache, &opts(), &calls, 7).await, 7);
    let s = cache.stats();
    assert_eq!((s.decode_failures, s.misses, s.stores), (1, 1, 1));
    assert_eq!(
        cache.get::<u32>(KEY).await?,
        Some(7),
        "overwritten by the fill"
    );
    Ok(())
}

#[tokio::test]
async fn a_failed_computation_falls_back_to_a_stale_if_error_value() -> Result<()> {
    let (cache, clock) = cache_with(0.5)?;
    let opts = opts().stale_if_error(Duration::from_secs(60));
    let first: std::result::Result<u32, String> = cache
        .cached_with(KEY, &opts, Fallible, || async { Ok(1) })
        .await;
    assert_eq!(first, Ok(1));
    clock.advance(Duration::from_secs(20));
    let second: std::result::Result<u32, String> = cache
        .cached_with(KEY, &opts, Fallible, || async { Err("down".to_owned()) })
        .await;
    assert_eq!(second, Ok(1), "the fallback");
    let s = cache.stats();
    assert_eq!((s.stale_if_error, s.misses, s.stores), (1, 2, 1));
    Ok(())
}

#[tokio::test]
async fn a_follower_shares_the_leaders_value() -> Result<()> {
    let (cache, _) = cache_with(0.5)?;
    let calls = AtomicUsize::new(0);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let opts = opts();
    let leader = cache.cached_with(KEY, &opts, Plain, || async {
        calls.fetch_add(1, Ordering::SeqCst);
        let _ = rx.await;
        5u32
    });
    let follower = call(&cache, &opts, &calls, 6);
    let release = async {
        tokio::task::yield_now().await;
        let _ = tx.send(());
    };
    let (a, b, ()) = tokio::join!(leader, follower, release);
    assert_eq!((a, b), (5, 5), "the follower took the leader's value");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "one computation");
    let s = cache.stats();
    assert_eq!((s.coalesced, s.shares_refused, s.stores), (1, 0, 1));
    Ok(())
}

#[tokio::test]
async fn a_follower_leads_when_the_leader_is_dropped() -> Result<(), Box<dyn std::error::Error>> {
    let (cache, _) = cache_with(0.5)?;
    let opts = opts();
    let leader = {
        let (cache, opts) = (cache.clone(), opts.clone());
        tokio::spawn(async move {
            cache
                .cached_with(KEY, &opts, Plain, std::future::pending::<u32>)
                .await
        })
    };
    while crate::__private::testing::in_flight(&cache) == 0 {
        tokio::task::yield_now().await;
    }
    // The follower's computation notes how many flights run while it computes: 1 if it
    // leads a new flight (others would wait for it), 0 if it computed on its own.
    let flights_seen = Arc::new(AtomicUsize::new(usize::MAX));
    let follower = {
        let (cache, opts, seen) = (cache.clone(), opts.clone(), Arc::clone(&flights_seen));
        tokio::spawn(async move {
            let probe = cache.clone();
            cache
                .cached_with(KEY, &opts, Plain, || async move {
                    seen.store(
                        crate::__private::testing::in_flight(&probe),
                        Ordering::SeqCst,
                    );
                    9u32
                })
                .await
        })
    };
    while cache.stats().coalesced == 0 {
        tokio::task::yield_now().await;
    }
    leader.abort();
    let got = follower.await?;
    assert_eq!(got, 9, "the follower computed");
    assert_eq!(
        flights_seen.load(Ordering::SeqCst),
        1,
        "the follower led a new flight"
    );
    assert_eq!(cache.stats().stores, 1);
    Ok(())
}

#[tokio::test]
async fn a_fill_that_lost_its_compare_and_set_is_counted_as_fenced() -> Result<()> {
    let (cache, _) = cache_with(0.5)?;
    let opts = opts();
    let writer = cache.clone();
    let got = cache
        .cached_with(KEY, &opts, Plain, || async {
            // A write-through lands while the computation runs.
            let _ = writer.set(KEY, &2u32, &Options::new()).await;
            1u32
        })
        .await;
    assert_eq!(got, 1, "the caller still gets its value");
    let s = cache.stats();
    assert_eq!(s.fills_fenced, 1);
    assert_eq!(cache.get::<u32>(KEY).await?, Some(2), "the write stays");
    Ok(())
}

#[tokio::test]
async fn a_fresh_hit_picked_for_early_refresh_is_recomputed() -> Result<()> {
    // The random draw 0.0 is under every positive exp(...): every eligible hit refreshes.
    let (cache, _) = cache_with(0.0)?;
    let opts = opts().early_refresh(EarlyRefresh::Beta(1000.0));
    let first = cache
        .cached_with(KEY, &opts, Plain, || async {
            // compute_us > 0: XFetch weighs the computation's duration.
            tokio::time::sleep(Duration::from_millis(2)).await;
            1u32
        })
        .await;
    assert_eq!(first, 1);
    let calls = AtomicUsize::new(0);
    assert_eq!(call(&cache, &opts, &calls, 2).await, 2, "refreshed inline");
    let s = cache.stats();
    assert_eq!((s.early_refreshes, s.hits, s.stores), (1, 1, 2));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    Ok(())
}

#[tokio::test]
async fn a_miss_under_a_fill_lock_computes_once_and_releases_the_lock() -> Result<()> {
    let (cache, _) = cache_with(0.5)?;
    let opts = opts().lock(LockOptions::default());
    let calls = AtomicUsize::new(0);
    assert_eq!(call(&cache, &opts, &calls, 4).await, 4);
    let s = cache.stats();
    assert_eq!((s.misses, s.stores, s.lock_waits), (1, 1, 0));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        cache.memory_backend().map(|m| m.locks.len()),
        Some(0),
        "released"
    );
    assert_eq!(call(&cache, &opts, &calls, 5).await, 4, "then a hit");
    Ok(())
}

/// A memory cache on the system clock (steady: hits keep a quiet deadline, see
/// `classify_now`) with scripted random numbers.
fn steady_cache(random: f64) -> Result<Cache> {
    Cache::builder()
        .memory(1 << 20)
        .random(Arc::new(ScriptedRandom::constant(random)))
        .build()
}

#[tokio::test]
async fn on_the_system_clock_a_quiet_entry_turns_stale_at_its_freshness_deadline() -> Result<()> {
    let cache = steady_cache(0.5)?;
    let opts = Options::new()
        .ttl(Duration::from_millis(300))
        .stale(Duration::from_secs(30))
        .early_refresh(EarlyRefresh::Off);
    let calls = AtomicUsize::new(0);
    call(&cache, &opts, &calls, 1).await;
    assert_eq!(
        call(&cache, &opts, &calls, 2).await,
        1,
        "fresh: keeps a deadline"
    );
    assert_eq!(
        call(&cache, &opts, &calls, 2).await,
        1,
        "fresh: judged by it"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        call(&cache, &opts, &calls, 2).await,
        2,
        "past the deadline the entry is stale: the first caller refreshes it inline"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(cache.stats().stale_served, 1);
    Ok(())
}

#[tokio::test]
async fn on_the_system_clock_early_refresh_still_draws_while_it_can_pick_an_entry() -> Result<()> {
    // XFetch may pick an entry while less than 746·β·δ is left: with a computation of 50 ms,
    // 37 s, more than the TTL. The first hit draws 0.999999 (not picked), the second 0 (picked):
    // the first must not have made the entry quiet.
    let random = Arc::new(ScriptedRandom::constant(0.999_999));
    let cache = Cache::builder()
        .memory(1 << 20)
        .random(Arc::clone(&random) as Arc<dyn crate::clock::RandomSource>)
        .build()?;
    let opts = Options::new()
        .ttl(Duration::from_secs(10))
        .early_refresh(EarlyRefresh::Beta(1.0));
    let calls = AtomicUsize::new(0);
    let slow = |value: u32| {
        let calls = &calls;
        cache.cached_with(KEY, &opts, Plain, move || async move {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            value
        })
    };
    assert_eq!(slow(1).await, 1);
    assert_eq!(slow(2).await, 1, "a hit, not picked");
    random.set(0.0);
    assert_eq!(slow(3).await, 3, "picked for an early refresh");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    Ok(())
}
