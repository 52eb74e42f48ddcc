//! Latency metrics carry the call's name: every hit (memory hits included) is timed into
//! `cachette_hit_seconds{cache}`, and each Redis round trip into
//! `cachette_backend_seconds{cache,backend,op}` under the name of the call that made it (own
//! test binary: the recorder is process-wide).

#[path = "support/redis_server.rs"]
mod redis_server;

use cachette::{Cache, Options};
use metrics_util::CompositeKey;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use redis_server::RedisServer;

/// Samples of the histogram `name` whose labels include every one of `labels`, summed over
/// the series that match (none: 0). A snapshot drains the histograms: take one per step.
fn samples<U, D>(
    snapshot: &[(CompositeKey, U, D, DebugValue)],
    name: &str,
    labels: &[(&str, &str)],
) -> usize {
    snapshot
        .iter()
        .filter(|(k, _, _, _)| {
            k.key().name() == name
                && labels.iter().all(|(l, v)| {
                    k.key()
                        .labels()
                        .any(|label| label.key() == *l && label.value() == *v)
                })
        })
        .map(|(_, _, _, v)| match v {
            DebugValue::Histogram(h) => h.len(),
            _ => 0,
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hits_and_round_trips_are_timed_under_the_calls_name() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();

    // A memory hit: one sample of the hit histogram under its name (the miss before it is
    // not a hit).
    let memory = Cache::memory(1 << 20);
    let opts = Options::new().name("memory_call").tags(["t"]);
    for _ in 0..2 {
        memory.get_or_compute("k", &opts, || async { 1u32 }).await;
    }
    // The manual API's hits too.
    memory.set("m", &1u32, &Options::new()).await.unwrap();
    assert_eq!(memory.get::<u32>("m").await.unwrap(), Some(1));
    let snapshot = snapshotter.snapshot().into_vec();
    assert_eq!(
        samples(
            &snapshot,
            "cachette_hit_seconds",
            &[("cache", "memory_call")]
        ),
        1,
        "one memory hit, one sample"
    );
    assert_eq!(
        samples(&snapshot, "cachette_hit_seconds", &[("cache", "manual")]),
        1,
        "one manual hit, one sample"
    );

    // Redis: the lookups are round trips of the call's name; the hit is timed too.
    let server = RedisServer::start();
    let redis = Cache::builder().redis(server.url()).build().unwrap();
    let opts = Options::new().name("redis_call").tags(["t"]);
    for _ in 0..2 {
        redis.get_or_compute("k", &opts, || async { 1u32 }).await;
    }
    redis.invalidate_tags(["t"]).await.unwrap();
    let snapshot = snapshotter.snapshot().into_vec();
    let fetches = samples(
        &snapshot,
        "cachette_backend_seconds",
        &[
            ("cache", "redis_call"),
            ("backend", "redis"),
            ("op", "fetch"),
        ],
    );
    assert!(
        fetches >= 2,
        "each lookup's round trip carries the call's name: {fetches} samples"
    );
    assert_eq!(
        samples(
            &snapshot,
            "cachette_backend_seconds",
            &[("cache", "redis_call"), ("op", "store")]
        ),
        1,
        "the fill's store carries the call's name"
    );
    assert_eq!(
        samples(
            &snapshot,
            "cachette_backend_seconds",
            &[("cache", "invalidate_tags"), ("op", "invalidate")]
        ),
        1,
        "a manual operation's round trip carries the operation's name"
    );
    assert_eq!(
        samples(
            &snapshot,
            "cachette_hit_seconds",
            &[("cache", "redis_call")]
        ),
        1,
        "one Redis hit, one sample"
    );
}
