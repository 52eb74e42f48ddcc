//! The stampede and freshness options of `#[cached]` (`lock`, `stale`, `stale_if_error`,
//! `jitter`, `early_refresh`, `single_flight`) reach the runtime: each is shown by the
//! behaviour it changes, on Redis and on the memory store, with a manual clock.

#[path = "support/redis_server.rs"]
mod redis_server;

use cachette::clock::{ManualClock, ScriptedRandom};
use cachette::{Cache, CacheBuilder, cached};
use redis_server::RedisServer;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

struct Svc {
    cache: Cache,
    calls: AtomicUsize,
    fail: std::sync::atomic::AtomicBool,
}

impl Svc {
    fn count(&self) -> usize {
        self.calls.fetch_add(1, Ordering::SeqCst) + 1
    }

    #[cached(key = "swr:{id}", ttl = "10s", stale = "30s", cache = self.cache)]
    async fn swr(&self, id: u64) -> usize {
        let _ = id;
        self.count()
    }

    #[cached(key = "sie:{id}", ttl = "10s", stale_if_error = "5m", cache = self.cache)]
    async fn sie(&self, id: u64) -> Result<usize, String> {
        let _ = id;
        let n = self.count();
        if self.fail.load(Ordering::SeqCst) {
            Err("db down".to_owned())
        } else {
            Ok(n)
        }
    }

    #[cached(key = "jit:{id}", ttl = "10s", jitter = 0.5, cache = self.cache)]
    async fn jittered(&self, id: u64) -> usize {
        let _ = id;
        self.count()
    }

    #[cached(key = "xf:{id}", ttl = "10s", early_refresh = 1.0, cache = self.cache)]
    async fn early(&self, id: u64) -> usize {
        let _ = id;
        // A measurable computation time δ, which early refresh scales with.
        std::thread::sleep(Duration::from_millis(5));
        self.count()
    }

    #[cached(key = "noxf:{id}", ttl = "10s", early_refresh = false, cache = self.cache)]
    async fn never_early(&self, id: u64) -> usize {
        let _ = id;
        std::thread::sleep(Duration::from_millis(5));
        self.count()
    }

    #[cached(key = "locked:{id}", lock(ttl = "5s", wait = "5s"), cache = self.cache)]
    async fn locked(&self, id: u64) -> usize {
        let _ = id;
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.count()
    }

    #[cached(key = "solo:{id}", single_flight = false, cache = self.cache)]
    async fn unshared(&self, id: u64) -> usize {
        let _ = id;
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.count()
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
        .early_refresh(None)
        .build()
        .unwrap();
    Fx {
        svc: Arc::new(Svc {
            cache,
            calls: AtomicUsize::new(0),
            fail: Default::default(),
        }),
        clock,
        random,
        _server: server,
    }
}

async fn scenario(redis: bool) {
    let f = fx(redis);
    let s = &f.svc;

    // stale = "30s": past the TTL, the stale value; the refresh then lands.
    assert_eq!(s.swr(1).await, 1);
    f.clock.advance(Duration::from_secs(15));
    let before = s.cache.stats().stale_served;
    let _ = s.swr(1).await; // the first caller refreshes inline
    assert_eq!(s.cache.stats().stale_served, before + 1);
    assert_eq!(s.swr(1).await, 2, "refreshed value, fresh again");

    // stale_if_error = "5m": an Err past the TTL returns the stale Ok.
    assert_eq!(s.sie(1).await, Ok(3));
    f.clock.advance(Duration::from_secs(20));
    s.fail.store(true, Ordering::SeqCst);
    assert_eq!(s.sie(1).await, Ok(3), "stale value instead of the error");
    f.clock.advance(Duration::from_secs(600));
    assert_eq!(s.sie(1).await, Err("db down".to_owned()), "past the window");
    s.fail.store(false, Ordering::SeqCst);
    let n = s.calls.load(Ordering::SeqCst);

    // jitter = 0.5 with the largest cut: fresh for 5 s, not 10.
    f.random.set(1.0);
    assert_eq!(s.jittered(1).await, n + 1);
    f.clock.advance(Duration::from_secs(6));
    assert_eq!(s.jittered(1).await, n + 2, "expired early by jitter");
    let n = n + 2;

    // early_refresh = 1.0: a hit 1 ms before expiry with random 0 recomputes; with
    // early_refresh = false it does not.
    f.random.set(0.0);
    assert_eq!(s.early(1).await, n + 1);
    assert_eq!(s.never_early(1).await, n + 2);
    f.clock.advance(Duration::from_millis(9_999));
    assert_eq!(s.early(1).await, n + 3, "refreshed early");
    assert_eq!(s.never_early(1).await, n + 2, "never early");
    let n = n + 3;

    // lock: concurrent callers compute once (the lock path, single process).
    for v in concurrently(20, || {
        let s = f.svc.clone();
        async move { s.locked(1).await }
    })
    .await
    {
        assert_eq!(v, n + 1);
    }
    let n = n + 1;

    // single_flight = false: concurrent cold misses each compute.
    concurrently(5, || {
        let s = f.svc.clone();
        async move { s.unshared(1).await }
    })
    .await;
    assert!(
        s.calls.load(Ordering::SeqCst) > n + 1,
        "no single-flight: several computations"
    );
}

/// Runs `n` calls made by `call` as concurrent tasks; their results.
async fn concurrently<T, F, Fut>(n: usize, call: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|_| tokio::spawn(call())).collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freshness_options_on_redis() {
    scenario(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freshness_options_on_memory() {
    scenario(false).await;
}
