//! An invalidation during an outage (Redis paused: SIGSTOP) holds its caller for one attempt at
//! most, and none when the circuit breaker is already open; it is kept and applied in the
//! background once Redis answers again. Attempts are counted (round trips, backend errors,
//! breaker rejections), not timed. Own test binary: the metrics recorder is process-wide.

#[path = "support/redis_server.rs"]
mod redis_server;

use cachette::{Cache, Options, cache_put};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use redis_server::RedisServer;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

fn breaker_rejections(snapshotter: &Snapshotter) -> u64 {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(k, _, _, _)| k.key().name() == "cachette_breaker_rejected_total")
        .map(|(_, _, _, v)| match v {
            DebugValue::Counter(n) => n,
            _ => 0,
        })
        .sum()
}

/// Whether a call of `key` (under tag `t`) computed.
async fn computed(cache: &Cache, key: &str) -> bool {
    let runs = AtomicUsize::new(0);
    cache
        .get_or_compute(key, &Options::new().tags(["t"]), || async {
            runs.fetch_add(1, Ordering::SeqCst);
            1u64
        })
        .await;
    runs.load(Ordering::SeqCst) > 0
}

/// A write-through of `u:{id}` under tag `t`, as `computed` reads it.
#[cache_put(key = "u:{id}", tags = ["t"], cache = cache)]
async fn put_user(cache: &Cache, id: u64) -> u64 {
    let _ = (cache, id);
    2
}

/// (round trips, backend errors) of `cache` so far.
fn attempts(cache: &Cache) -> (u64, u64) {
    let s = cache.stats();
    (s.round_trips, s.backend_errors)
}

#[tokio::test]
async fn invalidations_during_an_outage_make_one_attempt_and_are_kept() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().expect("first recorder of this process");

    let server = RedisServer::start();
    let new_cache = |namespace: &str| {
        Cache::builder()
            .redis(server.url())
            .namespace(namespace)
            .op_timeout(Duration::from_millis(100))
            .build()
            .unwrap()
    };
    // One cache per operation, so that each starts with a closed breaker and no kept
    // invalidation (whose background retries would add round trips).
    let (tags, del, pat, open, put) = (
        new_cache("tags"),
        new_cache("del"),
        new_cache("pat"),
        new_cache("open"),
        new_cache("put"),
    );
    for c in [&tags, &del, &pat, &open, &put] {
        // Fills `u:1` and opens the cache's connection before the pause.
        assert!(computed(c, "u:1").await);
        assert!(!computed(c, "u:1").await);
    }
    server.pause();

    // The breaker already open: no attempt reaches Redis, and only one is made.
    for _ in 0..20 {
        if open.breaker_open() {
            break;
        }
        computed(&open, "u:2").await;
    }
    assert!(
        open.breaker_open(),
        "lookups that time out open the breaker"
    );
    let (rejected, before) = (breaker_rejections(&snapshotter), attempts(&open));
    assert!(open.invalidate_tags(["t"]).await.is_err());
    assert_eq!(
        attempts(&open),
        before,
        "no round trip with the breaker open"
    );
    assert_eq!(
        breaker_rejections(&snapshotter) - rejected,
        1,
        "one attempt, skipped by the open breaker"
    );
    assert!(open.pending_invalidations() > 0, "the invalidation is kept");

    // The first attempt times out: no second one.
    let before = attempts(&tags);
    assert!(tags.invalidate_tags(["t"]).await.is_err());
    assert_eq!(
        attempts(&tags),
        (before.0 + 1, before.1 + 1),
        "invalidate_tags: one attempt"
    );
    assert!(tags.pending_invalidations() > 0);

    let before = attempts(&del);
    assert!(del.delete("u:1").await.is_err());
    assert_eq!(
        attempts(&del),
        (before.0 + 1, before.1 + 1),
        "delete: one attempt"
    );
    assert!(del.pending_invalidations() > 0);

    let before = attempts(&pat);
    assert!(pat.invalidate_pattern("u:*").await.is_err());
    assert_eq!(
        attempts(&pat),
        (before.0 + 1, before.1 + 1),
        "invalidate_pattern: one attempt"
    );
    assert!(pat.pending_invalidations() > 0);

    // A write-through whose store times out: the entry's delete (so that readers do not keep
    // the value the function replaced) is kept, not attempted on the wire as well.
    // (The write-through's failure is counted in `cachette_put_failures_total`, not in the
    // cache's backend errors: the manual `set` it calls returns its error.)
    let before = attempts(&put).0;
    assert_eq!(put_user(&put, 1).await, 2);
    assert_eq!(attempts(&put).0, before + 1, "#[cache_put]: one attempt");
    assert!(put.pending_invalidations() > 0, "the delete is kept");

    // Once Redis answers, the kept invalidations are applied in the background (a bounded
    // wait, not a timing assertion).
    server.resume();
    for _ in 0..1000 {
        if [&tags, &del, &pat, &open, &put]
            .iter()
            .all(|c| c.pending_invalidations() == 0)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for (name, c) in [
        ("tags", &tags),
        ("delete", &del),
        ("pattern", &pat),
        ("open", &open),
        ("put", &put),
    ] {
        assert_eq!(c.pending_invalidations(), 0, "{name}: applied after resume");
        assert!(
            computed(c, "u:1").await,
            "{name}: the entry was invalidated"
        );
    }
}
