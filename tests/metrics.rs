//! Every metric documented in `cachette_runtime::stats` is emitted, seen through a recording
//! exporter installed before the first call (own test binary: the recorder is process-wide).

#[path = "support/redis_server.rs"]
mod redis_server;

use cachette::clock::{Clock, ManualClock, ScriptedRandom};
use cachette::{Cache, EarlyRefresh, LockOptions, Options};
use metrics_util::CompositeKey;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use redis_server::RedisServer;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

#[cachette::cache_put(key = "put:{id}", cache = cache)]
async fn put_user(cache: &Cache, id: u64) -> u64 {
    id
}

/// Names a TTL profile: the builder below defines it, `Cache::memory` cannot (counted as
/// `cachette_undefined_profiles_total`).
#[cachette::cached(key = "profiled:{id}", ttl = profile("metrics"), cache = cache)]
async fn profiled(cache: &Cache, id: u64) -> u64 {
    id
}

async fn not_cached(id: u64) -> u64 {
    id
}

/// A write-through coupled to a call that is not a cached one.
#[cachette::cache_put(not_cached(id))]
async fn put_nowhere(id: u64) -> u64 {
    id
}

/// The metric names of the table in `cachette-runtime/src/stats/mod.rs`.
fn documented() -> BTreeSet<String> {
    let doc = include_str!("../cachette-runtime/src/stats/mod.rs");
    doc.lines()
        .filter_map(|l| l.strip_prefix("//! | `cachette_"))
        .filter_map(|l| l.split('`').next())
        .map(|n| format!("cachette_{n}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_metric_is_emitted() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().expect("first recorder of this process");

    let mut server = RedisServer::start();
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let random = Arc::new(ScriptedRandom::constant(0.0));
    let cache = Cache::builder()
        .redis(server.url())
        .clock(clock.clone())
        .random(random.clone())
        .jitter(0.0)
        .max_value_bytes(256)
        .op_timeout(Duration::from_millis(100))
        .ttl_profile("metrics", Duration::from_secs(60))
        .build()
        .unwrap();
    let name = |n: &'static str| Options::new().name(n).tags(["t"]);
    // a profile named in code and defined nowhere, found when a cache is built
    let memory = Cache::memory(1 << 20);
    assert_eq!(profiled(&memory, 1).await, 1);
    assert_eq!(profiled(&cache, 1).await, 1);

    // the near cache: fills (bytes), barriers, a push from another client's write, a flush
    let near = Cache::builder()
        .redis(server.url())
        .namespace("near")
        .near_cache(1 << 20)
        .ttl_profile("metrics", Duration::from_secs(60))
        .build()
        .unwrap();
    let writer = Cache::builder()
        .redis(server.url())
        .namespace("near")
        .ttl_profile("metrics", Duration::from_secs(60))
        .build()
        .unwrap();
    for _ in 0..3 {
        near.get_or_compute("n", &name("near"), || async { 1u8 })
            .await;
    }
    writer.invalidate_tags(["t"]).await.unwrap();
    for _ in 0..100 {
        near.get_or_compute("n", &name("near"), || async { 1u8 })
            .await;
        if near.near_stats().is_some_and(|s| s.pushes > 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    near.invalidate_pattern("*").await.unwrap();
    assert!(
        near.near_stats()
            .is_some_and(|s| s.pushes > 0 && s.flushes > 0)
    );

    // hits, misses, stores, compute time, backend time
    let o = name("basic");
    cache.get_or_compute("a", &o, || async { 1u8 }).await;
    cache.get_or_compute("a", &o, || async { 1u8 }).await;
    // unknown profile
    cache
        .get_or_compute("p", &name("basic").profile("nope"), || async { 1u8 })
        .await;
    // oversize
    cache
        .get_or_compute("big", &o, || async { "x".repeat(1000) })
        .await;
    // decode failure
    let _: () = server.cmd(&["SET", "cachette:garbage", "not json"]);
    cache.get_or_compute("garbage", &o, || async { 1u8 }).await;
    // stale served, stale-if-error
    let swr = name("swr")
        .ttl(Duration::from_secs(1))
        .stale(Duration::from_secs(60));
    cache.get_or_compute("s", &swr, || async { 1u8 }).await;
    let sie = name("sie")
        .ttl(Duration::from_secs(1))
        .stale_if_error(Duration::from_secs(60));
    let _: Result<u8, String> = cache
        .get_or_try_compute("e", &sie, || async { Ok(1) })
        .await;
    clock.advance(Duration::from_secs(2));
    cache.get_or_compute("s", &swr, || async { 2u8 }).await;
    let _: Result<u8, String> = cache
        .get_or_try_compute("e", &sie, || async { Err("down".into()) })
        .await;
    // early refresh: δ = 1 s planted, 1 ms left, random 0
    // (stored under the epoch, as every Redis entry is)
    let epoch: String = server.cmd(&["GET", "cachette#epoch"]);
    let planted = format!(
        r##"{{"v":1,"tags":[["#epoch","{epoch}"]],"created_ms":0,"fresh_until_ms":{},"compute_us":1000000,"value":1}}"##,
        clock.now_ms() + 1
    );
    let _: () = server.cmd(&["SET", "cachette:early", &planted]);
    let early = Options::new()
        .name("early")
        .early_refresh(EarlyRefresh::Beta(1.0));
    cache
        .get_or_compute("early", &early, || async { 2u8 })
        .await;
    // coalesced
    let co = name("coalesced");
    let (a, b) = tokio::join!(
        cache.get_or_compute("co", &co, || async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            1u8
        }),
        async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            cache.get_or_compute("co", &co, || async { 2u8 }).await
        }
    );
    assert_eq!((a, b), (1, 1));
    // a value JSON cannot keep (`Some(NaN)` would read back as `None`): not stored
    let lossy: Option<f64> = cache
        .get_or_compute("lossy", &name("lossy"), || async { Some(f64::NAN) })
        .await;
    assert!(lossy.is_some_and(f64::is_nan));
    // a fill fenced by a delete that landed while it computed
    let fenced = name("fenced");
    let (f, ()) = tokio::join!(
        cache.get_or_compute("f", &fenced, || async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            1u8
        }),
        async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            cache.delete("f").await.unwrap();
        }
    );
    assert_eq!(f, 1);
    // a shared computation refused: it began before an invalidation the second call saw
    let refused = name("refused").tags(["refused"]);
    let (a, b) = tokio::join!(
        cache.get_or_compute("r", &refused, || async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            1u8
        }),
        async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            cache.invalidate_tags(["refused"]).await.unwrap();
            cache.get_or_compute("r", &refused, || async { 2u8 }).await
        }
    );
    assert_eq!((a, b), (1, 2));
    // lock wait and lock timeout: another holder keeps the fill lock
    let other = cache
        .try_lock("cachette:locked", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    let locked = name("locked").lock(LockOptions {
        ttl: Duration::from_secs(5),
        wait: Duration::from_millis(50),
    });
    cache
        .get_or_compute("locked", &locked, || async { 1u8 })
        .await;
    other.release().await.unwrap();
    // invalidations
    cache.invalidate_tags(["t"]).await.unwrap();
    // a tag invalidation refused for maxmemory (OOM), done by UNLINK
    let _: () = server.cmd(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    let _: () = server.cmd(&["CONFIG", "SET", "maxmemory", "1"]);
    cache.invalidate_tags(["t"]).await.unwrap();
    let _: () = server.cmd(&["CONFIG", "SET", "maxmemory", "0"]);
    cache.invalidate_pattern("a*").await.unwrap();
    cache.delete("a").await.unwrap();
    // errors, backend errors by kind, failed invalidations, a failed write-through
    server.stop();
    let failed_put = put_user(&cache, 1).await;
    assert_eq!(
        failed_put, 1,
        "the function's value, whatever the cache did"
    );
    cache.get_or_compute("down", &o, || async { 1u8 }).await;
    assert!(cache.invalidate_tags(["t"]).await.is_err());
    // Five consecutive failures open the breaker; the calls after that skip Redis.
    for _ in 0..3 {
        cache.get_or_compute("down2", &o, || async { 1u8 }).await;
    }
    assert!(cache.breaker_open());
    // refresh of a call that is not a cached one
    assert_eq!(cachette::refresh(async { 5 }).await, 5);
    // a writer coupled to a call that is not a cached one
    assert_eq!(put_nowhere(6).await, 6);
    // config errors: the default cache from a malformed environment
    // SAFETY: single test in this binary.
    unsafe { std::env::set_var("CACHETTE_REDIS_URL", "redis://[bad") };
    assert_eq!(cachette::default_cache().backend_kind(), "disabled");

    // kept invalidations: the gauge follows them up, and down once Redis is back. A snapshot
    // resets what it reads, so the second one shows the change since the first.
    let pending_gauge = |snapshot: &Vec<(CompositeKey, _, _, DebugValue)>| {
        snapshot
            .iter()
            .find_map(|(k, _, _, v)| match v {
                DebugValue::Gauge(g) if k.key().name() == "cachette_pending_invalidations" => {
                    Some(g.into_inner())
                }
                _ => None,
            })
            .expect("the gauge was set")
    };
    let kept = cache.pending_invalidations();
    assert!(kept >= 1, "the invalidation that failed is kept");
    let first = snapshotter.snapshot().into_vec();
    assert_eq!(pending_gauge(&first), kept as f64);
    server.restart();
    clock.advance(Duration::from_secs(2)); // past the breaker's cool-down
    for _ in 0..200 {
        if cache.pending_invalidations() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        cache.pending_invalidations(),
        0,
        "applied once Redis is back"
    );
    let second = snapshotter.snapshot().into_vec();
    assert_eq!(pending_gauge(&second), -(kept as f64));

    let seen: BTreeSet<String> = first
        .into_iter()
        .chain(second)
        .filter(|(_, _, _, v)| match v {
            DebugValue::Counter(n) => *n > 0,
            DebugValue::Histogram(h) => !h.is_empty(),
            DebugValue::Gauge(_) => true,
        })
        .map(|(k, _, _, _)| k.key().name().to_owned())
        .collect();
    let documented = documented();
    assert!(documented.len() >= 22, "{documented:?}");
    let missing: Vec<_> = documented.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "documented but not emitted: {missing:?}"
    );
    let undocumented: Vec<_> = seen.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "emitted but not documented: {undocumented:?}"
    );
}
