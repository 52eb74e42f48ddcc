//! Redis-specific behaviour against real `redis-server` processes: degradation when Redis is
//! stopped, paused or unreachable at start-up, recovery, round-trip counts, authentication.

#[path = "support/redis_server.rs"]
mod redis_server;

use cachette::{Cache, Options};
use redis_server::RedisServer;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A guard against hangs, not a speed assertion: a degraded call must come back at all.
const HANG_GUARD: Duration = Duration::from_secs(10);

async fn compute_counted(
    cache: &Cache,
    key: &str,
    opts: &Options,
    runs: &AtomicUsize,
    value: u64,
) -> (u64, Duration) {
    let t = Instant::now();
    let v = tokio::time::timeout(
        HANG_GUARD,
        cache.get_or_compute(key, opts, || async {
            runs.fetch_add(1, Ordering::SeqCst);
            value
        }),
    )
    .await
    .expect("a cached call must not hang when Redis misbehaves");
    (v, t.elapsed())
}

/// A cache on `server` whose every round trip is bounded by `timeout`.
fn cache_with_timeout(server: &RedisServer, timeout: Duration) -> Cache {
    Cache::builder()
        .redis(server.url())
        .op_timeout(timeout)
        .build()
        .unwrap()
}

/// Fills `u:{id}` with `id` under `opts(id)` for each of `ids`.
async fn fill_ids(cache: &Cache, ids: std::ops::Range<u64>, opts: impl Fn(u64) -> Options) {
    for id in ids {
        cache
            .get_or_compute(&format!("u:{id}"), &opts(id), || async move { id })
            .await;
    }
}

/// Spawns a call of `u:{id}` under `opts(id)` for each of `ids`; a computation (a miss)
/// counts in `runs` and returns a value no hit can.
fn spawn_calls(
    cache: &Cache,
    ids: std::ops::Range<u64>,
    opts: impl Fn(u64) -> Options,
    runs: &Arc<AtomicUsize>,
) -> Vec<tokio::task::JoinHandle<u64>> {
    ids.map(|id| {
        let (cache, opts, runs) = (cache.clone(), opts(id), Arc::clone(runs));
        tokio::spawn(async move {
            cache
                .get_or_compute(&format!("u:{id}"), &opts, || async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    id + 1_000_000
                })
                .await
        })
    })
    .collect()
}

/// Waits (bounded) until a call is served from the cache again: a call right after another
/// one on the same key does not compute.
async fn until_cached(cache: &Cache, key: &str, opts: &Options) -> bool {
    for _ in 0..100 {
        let runs = AtomicUsize::new(0);
        compute_counted(cache, key, opts, &AtomicUsize::new(0), 1).await;
        compute_counted(cache, key, opts, &runs, 1).await;
        if runs.load(Ordering::SeqCst) == 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_mid_test_then_restarted() {
    let mut server = RedisServer::start();
    let cache = cache_with_timeout(&server, Duration::from_millis(200));
    let opts = Options::new().tags(["users"]);
    let runs = AtomicUsize::new(0);
    assert_eq!(compute_counted(&cache, "k", &opts, &runs, 1).await.0, 1);
    assert_eq!(
        compute_counted(&cache, "k", &opts, &runs, 2).await.0,
        1,
        "hit"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    server.stop();
    let errors_before = cache.stats().backend_errors;
    let mut slowest = Duration::ZERO;
    for i in 0..20u64 {
        let (v, took) = compute_counted(&cache, &format!("down:{i}"), &opts, &runs, i).await;
        assert_eq!(v, i, "the computed value is returned while Redis is down");
        slowest = slowest.max(took);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 21, "every call computed");
    assert!(
        cache.stats().backend_errors > errors_before,
        "failures are counted"
    );
    eprintln!("slowest call while Redis was stopped: {slowest:?}");
    // The manual API reports the failure instead of hiding it.
    assert!(cache.get::<u64>("k").await.is_err());
    assert!(cache.invalidate_tags(["users"]).await.is_err());
    assert!(cache.stats().invalidation_failures >= 1);

    server.restart();
    assert!(
        until_cached(&cache, "after", &opts).await,
        "caching resumes"
    );
    assert_eq!(cache.get::<u64>("after").await.unwrap(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_while_redis_is_unreachable() {
    let mut server = RedisServer::start();
    server.stop();
    // The application starts: building the cache does not need Redis.
    let cache = Cache::redis(&server.url()).unwrap();
    let opts = Options::new();
    let runs = AtomicUsize::new(0);
    for _ in 0..3 {
        assert_eq!(compute_counted(&cache, "k", &opts, &runs, 7).await.0, 7);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 3, "uncached while unreachable");
    server.restart();
    assert!(
        until_cached(&cache, "k", &opts).await,
        "caching starts once Redis answers"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_redis_costs_at_most_the_timeout() {
    let server = RedisServer::start();
    let cache = cache_with_timeout(&server, Duration::from_millis(100));
    let opts = Options::new();
    let runs = AtomicUsize::new(0);
    compute_counted(&cache, "warm", &opts, &runs, 1).await;
    server.pause();
    let mut slowest = Duration::ZERO;
    for i in 0..5u64 {
        let (v, took) = compute_counted(&cache, "k", &opts, &runs, i).await;
        assert_eq!(v, i);
        slowest = slowest.max(took);
    }
    eprintln!("slowest call while Redis was paused (op timeout 100 ms): {slowest:?}");
    assert!(cache.stats().backend_errors >= 5);
    server.resume();
    assert!(until_cached(&cache, "k2", &opts).await);
}

/// Round trips per operation, counted twice: by the backend's own counter (one per pipeline
/// sent) and by Redis's `INFO commandstats` (the commands in those pipelines).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trips_per_operation() {
    let server = RedisServer::start();
    let cache = Cache::redis(&server.url()).unwrap();
    let tagged = Options::new().tags(["users", "user:1"]);
    let untagged = Options::new();
    let rt = |c: &Cache| c.stats().round_trips;

    // Miss without tags: lookup + store.
    let before = rt(&cache);
    cache
        .get_or_compute("plain", &untagged, || async { 1u8 })
        .await;
    assert_eq!(rt(&cache) - before, 2, "miss, no tags");

    // Miss with tags never seen: lookup + create tag keys + store.
    server.reset_stats();
    let before = rt(&cache);
    cache
        .get_or_compute("user:1", &tagged, || async { 1u8 })
        .await;
    assert_eq!(rt(&cache) - before, 3, "miss, new tags");
    let calls = server.command_calls();
    assert_eq!(calls.get("mget"), Some(&1), "the lookup: {calls:?}");
    // The store is one compare-and-set script (the key still absent, no pattern invalidation
    // since the lookup): EXISTS, GET of the pattern count and SET run inside it.
    assert_eq!(calls.get("evalsha"), Some(&1), "the store: {calls:?}");
    assert_eq!(
        calls.get("get"),
        Some(&(2 + 1)),
        "tag creation GETs 2, the store's script 1: {calls:?}"
    );
    assert_eq!(
        calls.get("set"),
        Some(&(2 + 1)),
        "2 SET NX + 1 store: {calls:?}"
    );

    // Hit with two tags: one round trip, one MGET (of the entry and the two tag keys),
    // nothing else.
    server.reset_stats();
    let before = rt(&cache);
    cache
        .get_or_compute("user:1", &tagged, || async { 2u8 })
        .await;
    assert_eq!(rt(&cache) - before, 1, "hit with 2 tags");
    let calls = server.command_calls();
    assert_eq!(calls.get("mget"), Some(&1), "{calls:?}");
    assert_eq!(calls.len(), 2, "only MGET (and the stats reset): {calls:?}");

    // Hit without tags: one round trip.
    let before = rt(&cache);
    cache
        .get_or_compute("plain", &untagged, || async { 2u8 })
        .await;
    assert_eq!(rt(&cache) - before, 1, "hit, no tags");

    // Invalidation of two tags: one round trip of two SETs.
    server.reset_stats();
    let before = rt(&cache);
    cache.invalidate_tags(["users", "user:1"]).await.unwrap();
    assert_eq!(rt(&cache) - before, 1, "invalidation of 2 tags");
    assert_eq!(server.command_calls().get("set"), Some(&2));

    // Miss after the invalidation: the tag keys exist, so lookup + store.
    let before = rt(&cache);
    let v = cache
        .get_or_compute("user:1", &tagged, || async { 3u8 })
        .await;
    assert_eq!(v, 3);
    assert_eq!(rt(&cache) - before, 2, "miss, tags known");

    // Pattern invalidation scans; it never uses KEYS.
    server.reset_stats();
    cache.invalidate_pattern("user:*").await.unwrap();
    let calls = server.command_calls();
    assert!(
        calls.contains_key("scan") && !calls.contains_key("keys"),
        "{calls:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_in_url_and_wrong_password() {
    let server = RedisServer::start_with(&["--requirepass", "s3cret"]);
    let port = server.port();
    let good = Cache::redis(&format!("redis://:s3cret@127.0.0.1:{port}/")).unwrap();
    let opts = Options::new();
    let runs = AtomicUsize::new(0);
    compute_counted(&good, "k", &opts, &runs, 1).await;
    compute_counted(&good, "k", &opts, &runs, 2).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "authenticated: cached");

    let bad = Cache::redis(&format!("redis://:wrong@127.0.0.1:{port}/")).unwrap();
    // When the service requires its cache, start-up fails with a clear error...
    let err = bad.connect().await.unwrap_err();
    assert!(matches!(err, cachette::Error::Auth { .. }), "{err}");
    assert!(
        err.to_string().contains("refused the credentials") && !err.to_string().contains("wrong"),
        "{err}"
    );
    good.connect().await.unwrap();
    // ...and otherwise calls run uncached: a counted, logged fallback.
    let runs = AtomicUsize::new(0);
    assert_eq!(compute_counted(&bad, "k", &opts, &runs, 5).await.0, 5);
    assert_eq!(runs.load(Ordering::SeqCst), 1, "computed, not failed");
    assert!(bad.stats().backend_errors >= 1);
    let err = bad.get::<u64>("k").await.unwrap_err().to_string();
    assert!(!err.contains("wrong"), "no secret in the error: {err}");
    let dbg = format!("{bad:?}");
    assert!(
        !dbg.contains("wrong") && dbg.contains("***"),
        "no secret in Debug: {dbg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_user_in_url() {
    let server =
        RedisServer::start_with(&["--user", "alice", "on", ">alicepw", "~*", "&*", "+@all"]);
    let port = server.port();
    let cache = Cache::redis(&format!("redis://alice:alicepw@127.0.0.1:{port}/")).unwrap();
    let runs = AtomicUsize::new(0);
    compute_counted(&cache, "k", &Options::new(), &runs, 1).await;
    compute_counted(&cache, "k", &Options::new(), &runs, 2).await;
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "authenticated as an ACL user: cached"
    );
    let bad = Cache::redis(&format!("redis://alice:nope@127.0.0.1:{port}/")).unwrap();
    assert!(
        bad.get::<u8>("k").await.is_err(),
        "a wrong ACL password is an error"
    );
}

#[test]
fn malformed_url_is_a_clear_error_without_the_password() {
    let err = Cache::redis("redis://:hunter2@[not-a-host").unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, cachette::Error::InvalidUrl { .. }), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");
    assert!(Cache::redis("http://localhost").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_are_readable_json_in_redis() {
    let server = RedisServer::start();
    let cache = Cache::redis(&server.url()).unwrap();
    cache
        .set(
            "user:1",
            &serde_json::json!({"name": "Ada"}),
            &Options::new().tags(["users"]),
        )
        .await
        .unwrap();
    let raw: String = server.cmd(&["GET", "cachette:user:1"]);
    let parsed: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(parsed["v"], 1);
    assert_eq!(parsed["value"]["name"], "Ada");
    assert_eq!(parsed["tags"][0][0], "users");
    let version: String = server.cmd(&["GET", "cachette#tag:users"]);
    assert_eq!(parsed["tags"][0][1], version.as_str());
    let ttl: i64 = server.cmd(&["PTTL", "cachette#tag:users"]);
    assert!(ttl > 0, "tag keys expire");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_fills_and_invalidations_never_serve_pre_invalidation_values() {
    // A randomized companion of the deterministic interleaving test: the writer bumps a
    // "database" version, invalidates, then publishes the version as invalidated; a reader
    // must never see a value older than the last version invalidated before its read began.
    let server = RedisServer::start();
    let cache = Cache::redis(&server.url()).unwrap();
    let db = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let invalidated = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let opts = Options::new().tags(["row"]);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (cache, db, opts) = (cache.clone(), db.clone(), opts.clone());
        let invalidated = invalidated.clone();
        tasks.spawn(async move {
            for _ in 0..200 {
                let committed = invalidated.load(Ordering::SeqCst);
                let seen = cache
                    .get_or_compute("row", &opts, || {
                        let db = db.clone();
                        async move {
                            let v = db.load(Ordering::SeqCst);
                            tokio::task::yield_now().await;
                            v
                        }
                    })
                    .await;
                assert!(
                    seen >= committed,
                    "served {seen} after {committed} was invalidated"
                );
            }
        });
    }
    let writer = {
        let (cache, db, invalidated) = (cache.clone(), db.clone(), invalidated.clone());
        tokio::spawn(async move {
            for _ in 0..100 {
                let v = db.fetch_add(1, Ordering::SeqCst) + 1;
                cache.invalidate_tags(["row"]).await.unwrap();
                invalidated.store(v, Ordering::SeqCst);
                tokio::task::yield_now().await;
            }
        })
    };
    writer.await.unwrap();
    tasks.join_all().await;
    assert!(cache.stats().hits > 0, "the run exercised hits");
}

/// Lookups made while others are in flight leave together as one `MGET`: with Redis paused,
/// 200 concurrent hits queue behind the first lookups and go out in a few batches; each caller
/// still gets its own value, and a tag shared by all is sent once per batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_lookups_are_batched_and_each_gets_its_own_value() {
    const N: u64 = 200;
    let server = RedisServer::start();
    let cache = cache_with_timeout(&server, Duration::from_secs(5));
    let opts = |id: u64| Options::new().tags(["users".to_owned(), format!("user:{id}")]);
    fill_ids(&cache, 0..N, opts).await;
    server.reset_stats();
    server.pause();
    let runs = Arc::new(AtomicUsize::new(0));
    let tasks = spawn_calls(&cache, 0..N, opts, &runs);
    // Let the calls reach the backend while Redis cannot answer (not a timing assertion: a
    // slower machine only makes more, smaller batches).
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.resume();
    for (id, t) in (0..N).zip(tasks) {
        let v = tokio::time::timeout(HANG_GUARD, t).await.unwrap().unwrap();
        assert_eq!(v, id, "call {id} got another caller's value");
    }
    assert_eq!(runs.load(Ordering::SeqCst), 0, "every call was a hit");
    let calls = server.command_calls();
    let mgets = calls.get("mget").copied().unwrap_or(0);
    assert!(
        (1..=N / 4).contains(&mgets),
        "{N} lookups should share a few MGETs: {calls:?}"
    );
    assert!(
        !calls.contains_key("get"),
        "no lookup went alone: {calls:?}"
    );
}

/// A batch's callers do not depend on its sender: aborting half of the callers (those first
/// in line, which send the batches) while Redis is paused leaves the others answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_of_a_dropped_batch_still_get_their_values() {
    let server = RedisServer::start();
    let cache = cache_with_timeout(&server, Duration::from_secs(5));
    let opts = |_| Options::new().tags(["users"]);
    fill_ids(&cache, 0..40, opts).await;
    server.pause();
    let runs = Arc::new(AtomicUsize::new(0));
    let mut tasks = spawn_calls(&cache, 0..40, opts, &runs);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let kept = tasks.split_off(20);
    for t in &tasks {
        t.abort();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.resume();
    for (i, t) in kept.into_iter().enumerate() {
        let id = 20 + i as u64;
        let v = tokio::time::timeout(HANG_GUARD, t).await.unwrap().unwrap();
        assert_eq!(v, id);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 0, "every kept call was a hit");
}
