//! Fault injection against real `redis-server` processes: SIGKILL under load, SIGSTOP,
//! `maxmemory` with `allkeys-lru` evicting entries and tag keys, and an invalidation that
//! fails while Redis is down. Figures are printed (run with `--nocapture`), never asserted.

#[path = "support/redis_server.rs"]
mod redis_server;

use cachette::{BreakerOptions, Cache, Options};
use redis_server::RedisServer;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Not a speed assertion: a guard so that a hang fails the test instead of stalling it.
const HANG_GUARD: Duration = Duration::from_secs(10);

fn value_of(i: u64) -> u64 {
    i * 3 + 1
}

/// Waits (bounded) until a call on `key` is served from the cache.
async fn until_cached(cache: &Cache, key: &str) -> bool {
    for _ in 0..200 {
        let computed = AtomicBool::new(false);
        cache
            .get_or_compute(key, &Options::new(), || async { 1u8 })
            .await;
        cache
            .get_or_compute(key, &Options::new(), || async {
                computed.store(true, Ordering::SeqCst);
                1u8
            })
            .await;
        if !computed.load(Ordering::SeqCst) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_then_restart() {
    let mut server = RedisServer::start();
    let cache = Cache::builder()
        .redis(server.url())
        .op_timeout(Duration::from_millis(100))
        .breaker(Some(BreakerOptions {
            failures: 5,
            cool_down: Duration::from_millis(300),
        }))
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let down = Arc::new(AtomicBool::new(false));
    let slowest_down_us = Arc::new(AtomicU64::new(0));
    let calls = Arc::new(AtomicU64::new(0));
    let mut load = tokio::task::JoinSet::new();
    for t in 0..8u64 {
        let (cache, stop, down, slowest, calls) = (
            cache.clone(),
            stop.clone(),
            down.clone(),
            slowest_down_us.clone(),
            calls.clone(),
        );
        load.spawn(async move {
            let mut i = t;
            while !stop.load(Ordering::SeqCst) {
                let id = i % 200;
                let opts = Options::new().tags([format!("row:{id}")]);
                let started = Instant::now();
                let v = tokio::time::timeout(
                    HANG_GUARD,
                    cache.get_or_compute(&format!("row:{id}"), &opts, || async move {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        value_of(id)
                    }),
                )
                .await
                .expect("a call hung");
                assert_eq!(v, value_of(id), "every call returns the correct value");
                if down.load(Ordering::SeqCst) {
                    let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                    slowest.fetch_max(us, Ordering::SeqCst);
                }
                calls.fetch_add(1, Ordering::SeqCst);
                i += 8;
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let errors_before = cache.stats().backend_errors;
    down.store(true, Ordering::SeqCst);
    server.kill();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    down.store(false, Ordering::SeqCst);
    let errors_while_down = cache.stats().backend_errors - errors_before;
    server.restart();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::SeqCst);
    load.join_all().await; // propagates any panic (wrong value, hang)
    assert!(
        until_cached(&cache, "after").await,
        "caching resumed after the restart"
    );
    let hits_after = cache.stats().hits;
    eprintln!(
        "SIGKILL under load: {} calls, {} backend errors while down (breaker opened and probed), \
         slowest call while down {} us, hits in total {}",
        calls.load(Ordering::SeqCst),
        errors_while_down,
        slowest_down_us.load(Ordering::SeqCst),
        hits_after
    );
    assert!(errors_while_down > 0, "the outage was noticed and counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigstop_bounded_by_timeout_then_breaker() {
    let server = RedisServer::start();
    let cache = Cache::builder()
        .redis(server.url())
        .op_timeout(Duration::from_millis(100))
        .breaker(Some(BreakerOptions {
            failures: 3,
            cool_down: Duration::from_millis(500),
        }))
        .build()
        .unwrap();
    let opts = Options::new();
    let compute = || async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        7u64
    };
    cache.get_or_compute("warm", &opts, compute).await;
    server.pause();
    let mut before_open = Vec::new();
    let mut after_open = Vec::new();
    for i in 0..20 {
        let open = cache.breaker_open();
        let t = Instant::now();
        let v = tokio::time::timeout(
            HANG_GUARD,
            cache.get_or_compute(&format!("k{i}"), &opts, compute),
        )
        .await
        .expect("a call hung while Redis was paused");
        assert_eq!(v, 7);
        if open {
            after_open.push(t.elapsed());
        } else {
            before_open.push(t.elapsed());
        }
    }
    assert!(cache.breaker_open(), "repeated timeouts opened the breaker");
    assert!(!after_open.is_empty());
    after_open.sort();
    eprintln!(
        "SIGSTOP: slowest call before the breaker opened {:?} (op timeout 100 ms, computation 5 ms); \
         median call with the breaker open {:?}",
        before_open.iter().max().unwrap(),
        after_open[after_open.len() / 2]
    );
    server.resume();
    assert!(
        until_cached(&cache, "after").await,
        "the probe closes the breaker"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maxmemory_allkeys_lru_never_serves_stale() {
    let server =
        RedisServer::start_with(&["--maxmemory", "3mb", "--maxmemory-policy", "allkeys-lru"]);
    let cache = Cache::redis(&server.url()).unwrap();
    let rows = 40u64;
    let db: Arc<Vec<AtomicU64>> = Arc::new((0..rows).map(|_| AtomicU64::new(0)).collect());
    let invalidated: Arc<Vec<AtomicU64>> = Arc::new((0..rows).map(|_| AtomicU64::new(0)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let padding = "p".repeat(2048);
    let mut tasks = tokio::task::JoinSet::new();
    // Readers: never a version older than the last one invalidated before the read began.
    for r in 0..4u64 {
        let (cache, db, invalidated, stop, padding) = (
            cache.clone(),
            db.clone(),
            invalidated.clone(),
            stop.clone(),
            padding.clone(),
        );
        tasks.spawn(async move {
            let mut i = r;
            let mut reads = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let row = i % rows;
                let floor = invalidated[row as usize].load(Ordering::SeqCst);
                let opts = Options::new().tags([format!("row:{row}"), "rows".to_owned()]);
                let (version, _pad): (u64, String) = cache
                    .get_or_compute(&format!("row:{row}"), &opts, || {
                        let db = db.clone();
                        let padding = padding.clone();
                        async move { (db[row as usize].load(Ordering::SeqCst), padding) }
                    })
                    .await;
                assert!(
                    version >= floor,
                    "row {row}: served version {version} after {floor} was invalidated"
                );
                i += 4;
                reads += 1;
            }
            reads
        });
    }
    // Writer: update a row, invalidate its tag, publish.
    {
        let (cache, db, invalidated, stop) =
            (cache.clone(), db.clone(), invalidated.clone(), stop.clone());
        tasks.spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let row = (n * 7) % rows;
                let v = db[row as usize].fetch_add(1, Ordering::SeqCst) + 1;
                cache.invalidate_tags([format!("row:{row}")]).await.unwrap();
                invalidated[row as usize].store(v, Ordering::SeqCst);
                n += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            n
        });
    }
    // Filler: memory pressure, so that LRU evicts entries and tag keys alike.
    {
        let (cache, stop) = (cache.clone(), stop.clone());
        tasks.spawn(async move {
            let big = "f".repeat(8192);
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let opts = Options::new().tags([format!("filler:{}", n % 500)]);
                let _ = cache.set(&format!("filler:{n}"), &big, &opts).await;
                n += 1;
            }
            n
        });
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::SeqCst);
    let counts = tasks.join_all().await;
    let info: String = server.cmd(&["INFO", "stats"]);
    let evicted: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("evicted_keys:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    eprintln!(
        "maxmemory: {evicted} keys evicted; reads/writes/fills per task {counts:?}; stats {:?}",
        cache.stats()
    );
    assert!(evicted > 0, "the run actually evicted keys");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidation_while_down_is_applied_later_and_never_read_around() {
    // Persistence on, so that the restarted Redis still holds the old entry and tag version:
    // only the kept invalidation stands between a reader and the old value.
    let mut server = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let cache = Cache::builder()
        .redis(server.url())
        .op_timeout(Duration::from_millis(100))
        .breaker(Some(BreakerOptions {
            failures: 3,
            cool_down: Duration::from_millis(200),
        }))
        .build()
        .unwrap();
    let opts = Options::new().tags(["user:1"]);
    let v: String = cache
        .get_or_compute("user:1", &opts, || async { "old".to_owned() })
        .await;
    assert_eq!(v, "old");

    server.kill();
    // The write has committed "new"; its invalidation cannot reach Redis.
    assert!(cache.invalidate_tags(["user:1"]).await.is_err());
    assert_eq!(cache.pending_invalidations(), 1, "kept for later");
    server.restart();
    let raw: Option<String> = server.cmd(&["GET", "cachette:user:1"]);
    assert!(
        raw.is_some_and(|r| r.contains("old")),
        "the old entry survived the restart"
    );

    // Until the invalidation is applied, this process never serves the old value.
    let mut reads_while_pending = 0;
    let deadline = Instant::now() + HANG_GUARD;
    while cache.pending_invalidations() > 0 {
        assert!(
            Instant::now() < deadline,
            "the kept invalidation was never applied"
        );
        let v: String = cache
            .get_or_compute("user:1", &opts, || async { "new".to_owned() })
            .await;
        assert_eq!(
            v, "new",
            "no read saw the old value while the invalidation was pending"
        );
        if let Ok(Some(plain)) = cache.get::<String>("user:1").await {
            assert_eq!(plain, "new");
        }
        reads_while_pending += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Applied: the old entry is invalid for everyone, and caching works again.
    let other_process = Cache::redis(&server.url()).unwrap();
    let v: String = other_process
        .get_or_compute("user:1", &opts, || async { "new".to_owned() })
        .await;
    assert_eq!(v, "new");
    assert!(until_cached(&cache, "after").await);
    eprintln!(
        "invalidation applied after the restart; {reads_while_pending} reads while it was pending"
    );
}
