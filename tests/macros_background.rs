//! `#[cached(..., background_refresh)]` (issue 13): the caller that hits an entry picked for
//! an early refresh (XFetch), or a stale entry (stale-while-revalidate), returns the value it
//! found without waiting for the recomputation, which runs in a background task as a flight
//! (one per key; what it computed before an invalidation is never served after it). On Redis
//! and on the memory store, with a manual clock and scripted randomness.
//!
//! The recomputation blocks on a gate the test opens only after the caller returned: a caller
//! that waited for it would never return. `HANG_GUARD` turns that hang into a failure; it is
//! not a timing assertion (a passing run never comes near it).

#[path = "support/redis_server.rs"]
mod redis_server;

use cachette::clock::{ManualClock, ScriptedRandom};
use cachette::{Cache, CacheBuilder, cached};
use redis_server::RedisServer;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

const HANG_GUARD: Duration = Duration::from_secs(20);

struct Svc {
    cache: Cache,
    starts: AtomicUsize,
    /// While closed, a computation announces itself on `entered` and waits for `release`.
    closed: AtomicBool,
    entered: Notify,
    release: Notify,
}

impl Svc {
    async fn compute(&self) -> usize {
        let n = self.starts.fetch_add(1, Ordering::SeqCst) + 1;
        if self.closed.load(Ordering::SeqCst) {
            self.entered.notify_one();
            self.release.notified().await;
        } else {
            // A measurable computation time δ, which early refresh scales with.
            std::thread::sleep(Duration::from_millis(5));
        }
        n
    }

    fn starts(&self) -> usize {
        self.starts.load(Ordering::SeqCst)
    }

    #[cached(key = "early:{id}", ttl = "10s", tags = ["bg"], early_refresh = 1.0, background_refresh, cache = self.cache)]
    async fn early(self: Arc<Self>, id: u64) -> usize {
        let _ = id;
        self.compute().await
    }

    #[cached(key = "stale:{id}", ttl = "10s", tags = ["bg"], stale = "30s", early_refresh = false, background_refresh, cache = self.cache)]
    async fn stale(self: Arc<Self>, id: u64) -> Result<usize, String> {
        let _ = id;
        Ok(self.compute().await)
    }
}

struct Fx {
    svc: Arc<Svc>,
    clock: Arc<ManualClock>,
    random: Arc<ScriptedRandom>,
    _server: Option<RedisServer>,
}

fn fx(redis: bool) -> Fx {
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let random = Arc::new(ScriptedRandom::constant(0.5));
    let server = redis.then(RedisServer::start);
    let builder = match &server {
        Some(s) => CacheBuilder::new().redis(s.url()),
        None => CacheBuilder::new().memory(1 << 24),
    };
    let cache = builder
        .clock(clock.clone())
        .random(random.clone())
        .jitter(0.0)
        .build()
        .unwrap();
    Fx {
        svc: Arc::new(Svc {
            cache,
            starts: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            entered: Notify::new(),
            release: Notify::new(),
        }),
        clock,
        random,
        _server: server,
    }
}

async fn guarded<T>(what: &str, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(HANG_GUARD, f).await {
        Ok(v) => v,
        Err(_) => panic!("{what}"),
    }
}

/// Waits until no computation of the cache is in flight (the background refresh stored its
/// value, or found it may not).
async fn refresh_done(cache: &Cache) {
    guarded("the background refresh never finished", async {
        while cachette::__private::testing::in_flight(cache) > 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

/// The hit picked for an early refresh is served at once; the refresh runs in the background,
/// once, and its value is served afterwards.
async fn early_refresh_in_background(redis: bool) {
    let f = fx(redis);
    let s = &f.svc;
    assert_eq!(s.clone().early(1).await, 1);

    // 1 ms before expiry, random 0: the hit is refreshed early.
    s.closed.store(true, Ordering::SeqCst);
    f.clock.advance(Duration::from_millis(9_999));
    f.random.set(0.0);
    let early_before = s.cache.stats().early_refreshes;
    let v = guarded(
        "the caller picked for the early refresh waited for the recomputation",
        s.clone().early(1),
    )
    .await;
    assert_eq!(v, 1, "the fresh value, at once");
    s.entered.notified().await;
    assert_eq!(
        s.starts(),
        2,
        "the recomputation started, in the background"
    );
    assert_eq!(s.cache.stats().early_refreshes, early_before + 1);

    // While it runs, other callers picked for a refresh keep the hit: one flight per key.
    for _ in 0..3 {
        assert_eq!(s.clone().early(1).await, 1);
    }
    assert_eq!(s.starts(), 2, "a single background refresh");

    s.release.notify_one();
    refresh_done(&s.cache).await;
    f.random.set(0.5);
    assert_eq!(s.clone().early(1).await, 2, "the refreshed value");
    assert_eq!(s.starts(), 2, "a hit");
}

/// Past the TTL, within `stale`: the stale value at once for every caller, one background
/// refresh, then the refreshed value.
async fn stale_refresh_in_background(redis: bool) {
    let f = fx(redis);
    let s = &f.svc;
    assert_eq!(s.clone().stale(1).await, Ok(1));

    s.closed.store(true, Ordering::SeqCst);
    f.clock.advance(Duration::from_secs(15));
    let v = guarded(
        "the caller that found the stale entry waited for the recomputation",
        s.clone().stale(1),
    )
    .await;
    assert_eq!(v, Ok(1), "the stale value, at once");
    s.entered.notified().await;
    for _ in 0..3 {
        assert_eq!(s.clone().stale(1).await, Ok(1));
    }
    assert_eq!(s.starts(), 2, "a single background refresh");

    s.release.notify_one();
    refresh_done(&s.cache).await;
    assert_eq!(s.clone().stale(1).await, Ok(2), "the refreshed value");
    assert_eq!(s.starts(), 2, "a hit");
}

/// A background refresh that began before an invalidation returned is not served after it.
async fn background_refresh_is_fenced_by_invalidation(redis: bool) {
    let f = fx(redis);
    let s = &f.svc;
    assert_eq!(s.clone().stale(1).await, Ok(1));

    s.closed.store(true, Ordering::SeqCst);
    f.clock.advance(Duration::from_secs(15));
    assert_eq!(s.clone().stale(1).await, Ok(1), "the stale value");
    s.entered.notified().await;
    s.cache.invalidate_tags(["bg"]).await.unwrap();
    s.closed.store(false, Ordering::SeqCst);
    s.release.notify_one();
    refresh_done(&s.cache).await;

    assert_eq!(
        s.clone().stale(1).await,
        Ok(3),
        "computed after the invalidation, not the refresh's 2"
    );
}

macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod redis {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(true).await;
                }
            )*
        }
        mod memory {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(false).await;
                }
            )*
        }
    };
}

on_both_backends!(
    early_refresh_in_background,
    stale_refresh_in_background,
    background_refresh_is_fenced_by_invalidation,
);
