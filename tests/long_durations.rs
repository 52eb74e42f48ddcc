//! Durations too long to add to a clock (`Duration::MAX`, or windows whose sum overflows) never
//! panic: given per call they mean "forever" (taken as `MAX_DURATION`), given to the builder
//! they are refused; a cache built with every setting at the bound works. Each test runs on a
//! real `redis-server` and on the memory store.

#[path = "support/fixture.rs"]
mod fixture;
#[path = "support/redis_cluster.rs"]
mod redis_cluster;
#[path = "support/redis_server.rs"]
mod redis_server;

use cachette::{BreakerOptions, LockOptions, MAX_DURATION, Options};
use fixture::{Counter, Fixture};
use std::time::Duration;

/// On Redis, the entry at `body` has a positive TTL (Redis took it).
fn assert_redis_ttl(fx: &Fixture, body: &str) {
    if let Some(s) = &fx.server {
        let pttl: i64 = s.cmd(&["PTTL", &fx.cache.full_key(body)]);
        assert!(pttl > 0, "PTTL of {body}: {pttl}");
    }
}

/// A call with `opts` stores its value (the second call is a hit), and the value can be
/// invalidated by its tag.
async fn cached_once_then_invalidated(fx: &Fixture, opts: Options) {
    let c = &fx.cache;
    let runs = Counter::default();
    let opts = opts.tags(["t"]);
    for _ in 0..2 {
        let v: u64 = c.get_or_compute("k", &opts, || runs.compute(7)).await;
        assert_eq!(v, 7);
    }
    assert_eq!(runs.runs(), 1, "the first call's value was stored");
    assert_eq!(c.get::<u64>("k").await.unwrap(), Some(7));
    assert_redis_ttl(fx, "k");
    c.invalidate_tags(["t"]).await.unwrap();
    let v: u64 = c.get_or_compute("k", &opts, || runs.compute(8)).await;
    assert_eq!(v, 8);
    assert_eq!(runs.runs(), 2, "the invalidation reached the entry");
}

mod suite {
    use super::*;

    pub async fn ttl_max(fx: Fixture) {
        cached_once_then_invalidated(&fx, Options::new().ttl(Duration::MAX)).await;
    }

    pub async fn stale_max(fx: Fixture) {
        cached_once_then_invalidated(&fx, Options::new().stale(Duration::MAX)).await;
    }

    pub async fn stale_if_error_max(fx: Fixture) {
        let c = &fx.cache;
        let opts = Options::new().stale_if_error(Duration::MAX);
        let v: Result<u64, String> = c.get_or_try_compute("k", &opts, || async { Ok(7) }).await;
        assert_eq!(v, Ok(7));
        let v: Result<u64, String> = c
            .get_or_try_compute("k", &opts, || async { Err("not called".to_owned()) })
            .await;
        assert_eq!(v, Ok(7), "a hit");
        assert_redis_ttl(&fx, "k");
        cached_once_then_invalidated(&fx, opts).await;
    }

    pub async fn ttl_and_windows_max(fx: Fixture) {
        let opts = Options::new()
            .ttl(Duration::MAX)
            .stale(Duration::MAX)
            .stale_if_error(Duration::MAX);
        cached_once_then_invalidated(&fx, opts).await;
    }

    pub async fn set_ttl_max(fx: Fixture) {
        let c = &fx.cache;
        let opts = Options::new().ttl(Duration::MAX).stale(Duration::MAX);
        c.set("k", &5u64, &opts).await.unwrap();
        assert_eq!(c.get::<u64>("k").await.unwrap(), Some(5));
        assert_redis_ttl(&fx, "k");
    }

    pub async fn fill_lock_max(fx: Fixture) {
        let lock = LockOptions {
            ttl: Duration::MAX,
            wait: Duration::MAX,
        };
        cached_once_then_invalidated(&fx, Options::new().lock(lock)).await;
        if let Some(n) = cachette::__private::testing::memory_locks(&fx.cache) {
            assert_eq!(n, 0, "the fill lock was released");
        }
    }

    pub async fn lock_max(fx: Fixture) {
        let c = &fx.cache;
        let lock = c.lock("n", Duration::MAX, Duration::MAX).await.unwrap();
        let lock = lock.expect("a free lock is taken");
        assert!(c.try_lock("n", Duration::MAX).await.unwrap().is_none());
        assert!(lock.extend(Duration::MAX).await.unwrap(), "extended");
        assert!(
            c.try_lock("n", Duration::from_secs(1))
                .await
                .unwrap()
                .is_none()
        );
        assert!(lock.release().await.unwrap());
        let again = c.try_lock("n", Duration::MAX).await.unwrap();
        let again = again.expect("a released lock is free");
        if let Some(s) = &fx.server {
            let pttl: i64 = s.cmd(&["PTTL", again.key()]);
            assert!(pttl > 0, "PTTL of the lock: {pttl}");
        }
        assert!(again.release().await.unwrap());
    }

    /// Every duration setting at the bound (but `wait_for_replicas`, which needs a replica):
    /// stores, invalidations and deletes all reach the store.
    pub async fn settings_at_the_bound(fx: Fixture) {
        let c = &fx.cache;
        cached_once_then_invalidated(&fx, Options::new()).await;
        let runs = Counter::default();
        let opts = Options::new().profile("forever").tags(["p"]);
        for _ in 0..2 {
            let v: u64 = c.get_or_compute("p", &opts, || runs.compute(3)).await;
            assert_eq!(v, 3);
        }
        assert_eq!(runs.runs(), 1, "stored with the profile's TTL");
        assert_redis_ttl(&fx, "p");
        if let Some(s) = &fx.server {
            for tag in ["t", "p"] {
                let pttl: i64 = s.cmd(&["PTTL", &c.tag_key(tag)]);
                assert!(pttl > 0, "PTTL of tag {tag}: {pttl}");
            }
        }
        assert!(c.delete("p").await.unwrap(), "deleted");
        assert_eq!(c.get::<u64>("p").await.unwrap(), None);
        assert_redis_ttl(&fx, "p"); // the tombstone, kept the fence TTL
        c.set("s", &9u64, &Options::new()).await.unwrap();
        assert_eq!(c.get::<u64>("s").await.unwrap(), Some(9));
        assert_redis_ttl(&fx, "s");
        assert_eq!(c.invalidate_pattern("s").await.unwrap(), 1);
        assert_eq!(c.get::<u64>("s").await.unwrap(), None);
        assert_eq!(c.pending_invalidations(), 0);
        assert_eq!(c.stats().backend_errors, 0);
    }

    pub async fn lock_wait_max_on_a_free_lock(fx: Fixture) {
        let c = &fx.cache;
        let lock = c.lock("n", Duration::from_secs(60), Duration::MAX).await;
        let lock = lock.unwrap().expect("a free lock is taken");
        assert!(lock.release().await.unwrap());
    }
}

fn at_the_bound(b: cachette::CacheBuilder) -> cachette::CacheBuilder {
    b.default_ttl(MAX_DURATION)
        .ttl_profile("forever", MAX_DURATION)
        .tag_ttl(MAX_DURATION)
        .fence_ttl(MAX_DURATION)
        .op_timeout(MAX_DURATION)
        .breaker(Some(BreakerOptions {
            failures: 5,
            cool_down: MAX_DURATION,
        }))
}

fixture::both_backends!(
    at_the_bound;
    ttl_max,
    stale_max,
    stale_if_error_max,
    ttl_and_windows_max,
    set_ttl_max,
    fill_lock_max,
    lock_max,
    lock_wait_max_on_a_free_lock,
    settings_at_the_bound,
);
