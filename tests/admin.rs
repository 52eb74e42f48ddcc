//! Administration and observability against a real Redis (and the memory store where it
//! applies): backend statistics, keys by pattern, one entry, clearing a namespace, outcomes
//! for `X-Cache`, ETags, per-name counters.

#[path = "support/redis_server.rs"]
mod redis_server;

use cachette::observe::{CallOutcome, capture_outcome, etag};
use cachette::{Cache, Options};
use redis_server::RedisServer;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_operations_on_redis() {
    let server = RedisServer::start();
    let app = Cache::builder()
        .redis(server.url())
        .namespace("app")
        .build()
        .unwrap();
    let other = Cache::builder()
        .redis(server.url())
        .namespace("other")
        .build()
        .unwrap();
    let opts = Options::new().ttl(Duration::from_secs(60)).tags(["users"]);
    for i in 0..30 {
        app.set(&format!("user:{i}"), &i, &opts).await.unwrap();
    }
    app.set("guild:1", &"g", &opts).await.unwrap();
    other.set("user:1", &"keep me", &opts).await.unwrap();

    let mut keys = app.keys("user:*", 1000).await.unwrap();
    keys.sort();
    assert_eq!(keys.len(), 30);
    assert!(keys.contains(&"user:7".to_owned()));
    assert_eq!(app.keys("user:*", 5).await.unwrap().len(), 5, "bounded");

    let info = app.inspect("user:7").await.unwrap().unwrap();
    assert_eq!(info.value, Some(serde_json::json!(7)));
    assert_eq!(info.tags[0].0, "users");
    assert!(info.valid);
    // Written through (`set`): kept at least the fence TTL (10 min), fresh for its 60 s.
    assert!(info.ttl > Duration::from_secs(590) && info.ttl <= Duration::from_secs(600));
    let fresh_for = info.fresh_until_ms.saturating_sub(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64,
    );
    assert!(fresh_for > 50_000 && fresh_for <= 60_000, "{fresh_for}");
    app.invalidate_tags(["users"]).await.unwrap();
    assert!(
        !app.inspect("user:7").await.unwrap().unwrap().valid,
        "invalidated"
    );
    assert!(app.inspect("nope").await.unwrap().is_none());

    let stats = app.backend_stats().await.unwrap();
    assert_eq!(stats.backend, "redis");
    assert!(stats.used_memory_bytes.unwrap() > 0);
    assert!(stats.connected_clients.unwrap() >= 1);
    assert!(stats.keys.unwrap() >= 33);
    assert!(stats.keyspace_hits.is_some() && stats.evicted_keys.is_some());

    // Clearing a namespace removes its entries, tag keys and locks, and nothing else.
    let removed = app.clear().await.unwrap();
    assert_eq!(removed, 31 + 2, "31 entries, the tag key and the epoch key");
    assert!(app.keys("*", 100).await.unwrap().is_empty());
    assert_eq!(
        other.get::<String>("user:1").await.unwrap().as_deref(),
        Some("keep me")
    );
    let calls = server.command_calls();
    assert!(
        !calls.contains_key("flushdb")
            && !calls.contains_key("flushall")
            && !calls.contains_key("keys")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_operations_on_memory() {
    let cache = Cache::memory(1 << 20);
    let opts = Options::new().ttl(Duration::from_secs(60));
    for i in 0..10 {
        cache.set(&format!("user:{i}"), &i, &opts).await.unwrap();
    }
    assert_eq!(cache.keys("user:*", 100).await.unwrap().len(), 10);
    let info = cache.inspect("user:3").await.unwrap().unwrap();
    assert_eq!(info.value, Some(serde_json::json!(3)));
    assert!(info.ttl > Duration::from_secs(50));
    let stats = cache.backend_stats().await.unwrap();
    assert_eq!((stats.backend, stats.keys), ("memory", Some(10)));
    assert_eq!(cache.clear().await.unwrap(), 10);
    assert!(cache.keys("*", 100).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_etags_and_per_name_counters() {
    let server = RedisServer::start();
    let cache = Cache::redis(&server.url()).unwrap();
    let opts = Options::new().name("users::get").tags(["user:1"]);
    let get = || cache.get_or_compute("user:1", &opts, || async { "Ada".to_owned() });

    let (v1, o1) = capture_outcome(get()).await;
    let (v2, o2) = capture_outcome(get()).await;
    assert_eq!((o1, o2), (Some(CallOutcome::Miss), Some(CallOutcome::Hit)));
    assert_eq!(o2.unwrap().as_header(), "HIT");
    assert_eq!(
        etag(&v1).unwrap(),
        etag(&v2).unwrap(),
        "same value, same ETag"
    );
    assert_ne!(etag(&v1).unwrap(), etag(&"Grace").unwrap());
    let (_, none) = capture_outcome(async { 1 }).await;
    assert_eq!(none, None, "no cached call, no outcome");

    cache.invalidate_tags(["user:1"]).await.unwrap();
    let (_, o3) = capture_outcome(get()).await;
    assert_eq!(o3, Some(CallOutcome::Miss));
    let (_, o4) =
        capture_outcome(Cache::disabled().get_or_compute("k", &opts, || async { 1 })).await;
    assert_eq!(o4.map(CallOutcome::as_header), Some("BYPASS"));

    let by_name = cache.stats_by_name();
    let (_, users) = by_name.iter().find(|(n, _)| n == "users::get").unwrap();
    assert_eq!((users.hits, users.misses), (1, 2));
    assert!((users.hit_rate() - 1.0 / 3.0).abs() < 1e-9);
}

/// Issue 13: `backend_stats().keys` of the memory store counts live entries only: not the
/// expired ones, not a delete's tombstone.
#[tokio::test]
async fn memory_stats_count_live_entries_only() {
    let cache = Cache::memory(1 << 20);
    let short = Options::new().ttl(Duration::from_millis(30));
    for i in 0..5 {
        let _: u64 = cache
            .get_or_compute(&format!("short{i}"), &short, || async { 1 })
            .await;
    }
    let long = Options::new().ttl(Duration::from_secs(600));
    let _: u64 = cache.get_or_compute("long", &long, || async { 1 }).await;
    cache.delete("long").await.unwrap();
    // A bounded wait for the short entries to expire (no assertion on how long it takes).
    let mut keys = None;
    for _ in 0..500 {
        keys = cache.backend_stats().await.unwrap().keys;
        if keys == Some(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(keys, Some(0), "five expired, one deleted: nothing live");
    let _: u64 = cache.get_or_compute("again", &long, || async { 1 }).await;
    assert_eq!(cache.backend_stats().await.unwrap().keys, Some(1));
}

/// Issue 13: `backend_stats()` shows Redis's `maxmemory` and eviction policy, and the memory
/// store's byte budget as its `maxmemory` (it has no policy to name).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_stats_show_maxmemory_and_the_eviction_policy() {
    let server =
        RedisServer::start_with(&["--maxmemory", "10mb", "--maxmemory-policy", "allkeys-lru"]);
    let cache = Cache::redis(&server.url()).unwrap();
    let stats = cache.backend_stats().await.unwrap();
    assert_eq!(stats.maxmemory_bytes, Some(10 * 1024 * 1024));
    assert_eq!(stats.eviction_policy.as_deref(), Some("allkeys-lru"));

    // No limit: Redis says 0, reported as it is.
    let unlimited =
        RedisServer::start_with(&["--maxmemory", "0", "--maxmemory-policy", "noeviction"]);
    let stats = Cache::redis(&unlimited.url())
        .unwrap()
        .backend_stats()
        .await
        .unwrap();
    assert_eq!(stats.maxmemory_bytes, Some(0));
    assert_eq!(stats.eviction_policy.as_deref(), Some("noeviction"));

    let stats = Cache::memory(1 << 20).backend_stats().await.unwrap();
    assert_eq!(stats.maxmemory_bytes, Some(1 << 20));
    assert_eq!(stats.eviction_policy, None);
    let stats = Cache::disabled().backend_stats().await.unwrap();
    assert_eq!((stats.maxmemory_bytes, stats.eviction_policy), (None, None));
}
