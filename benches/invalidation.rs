//! Tag invalidation with 10, 10,000 and 1,000,000 entries carrying the tag, on Redis.
//!
//! cachette: `invalidate_tags([tag])` with N real cachette entries stored under the tag (one
//! envelope made by `Cache::set`, copied under N keys with pipelined `SET`s, outside the
//! measurement). Baseline: the set-per-tag scheme users write by hand (and that the Sprint 3.2
//! guide in shared/seeds uses): every fill `SADD`s its key to the tag's set; invalidation is
//! `SMEMBERS` + `UNLINK` of the members + `DEL` of the set. Its entries are gone after one
//! invalidation, so each of its iterations re-fills them first (not timed).
//!
//! In test mode (`cargo test --benches`) the sizes are 10, 100 and 1,000.
//!
//! `cargo bench --bench invalidation` (add `-- --warm-up-time 1 --measurement-time 2` for a
//! quick run). The ratio table is printed at the end.

#[path = "../tests/support/redis_server.rs"]
mod redis_server;

mod common;

use cachette::{Cache, Options};
use common::{make_user, row};
use criterion::{BenchmarkId, SamplingMode};
use redis::AsyncCommands;
use std::time::{Duration, Instant, SystemTime};

/// Commands per pipeline when filling.
const FILL_BATCH: u64 = 10_000;
/// Keys per `UNLINK` of the baseline.
const UNLINK_BATCH: usize = 10_000;

/// Stores N cachette entries carrying `tag`: one real entry made by cachette, its bytes copied
/// under N-1 more keys. Checks that the last one is a valid hit.
async fn fill_cachette(cache: &Cache, conn: &mut redis::aio::MultiplexedConnection, n: u64) {
    let tag = format!("tag{n}");
    let opts = Options::new()
        .ttl(Duration::from_secs(3600))
        .tags([tag.as_str()]);
    cache
        .set(&format!("e{n}:0"), &make_user(0), &opts)
        .await
        .expect("cache.set");
    let envelope: Vec<u8> = conn
        .get(cache.full_key(&format!("e{n}:0")))
        .await
        .expect("GET the envelope");
    let mut i = 1;
    while i < n {
        let mut pipe = redis::pipe();
        for j in i..(i + FILL_BATCH).min(n) {
            pipe.cmd("SET")
                .arg(cache.full_key(&format!("e{n}:{j}")))
                .arg(&envelope)
                .arg("PX")
                .arg(3_600_000)
                .ignore();
        }
        let () = pipe.query_async(conn).await.expect("fill");
        i += FILL_BATCH;
    }
    let last: Option<common::User> = cache
        .get(&format!("e{n}:{}", n - 1))
        .await
        .expect("cache.get");
    assert!(last.is_some(), "the filled entries are valid hits");
}

/// The baseline's fill: N entries and the tag's set of their keys.
async fn fill_naive(conn: &mut redis::aio::MultiplexedConnection, n: u64, envelope: &[u8]) {
    let set = format!("naive-tag:{n}");
    let mut i = 0;
    while i < n {
        let mut pipe = redis::pipe();
        for j in i..(i + FILL_BATCH).min(n) {
            let key = format!("naive:{n}:{j}");
            pipe.cmd("SET")
                .arg(&key)
                .arg(envelope)
                .arg("PX")
                .arg(3_600_000)
                .ignore();
            pipe.cmd("SADD").arg(&set).arg(&key).ignore();
        }
        let () = pipe.query_async(conn).await.expect("fill");
        i += FILL_BATCH;
    }
}

/// The baseline's invalidation: `SMEMBERS`, then `UNLINK` of every member and `DEL` of the set
/// in one pipeline. Returns how many keys it removed.
async fn invalidate_naive(conn: &mut redis::aio::MultiplexedConnection, n: u64) -> u64 {
    let set = format!("naive-tag:{n}");
    let keys: Vec<String> = conn.smembers(&set).await.expect("SMEMBERS");
    let mut pipe = redis::pipe();
    for chunk in keys.chunks(UNLINK_BATCH) {
        pipe.cmd("UNLINK").arg(chunk);
    }
    pipe.cmd("DEL").arg(&set).ignore();
    let removed: Vec<u64> = pipe.query_async(conn).await.expect("UNLINK");
    removed.iter().sum()
}

fn main() {
    let since = SystemTime::now();
    let sizes: [u64; 3] = if common::bench_mode() {
        [10, 10_000, 1_000_000]
    } else {
        [10, 100, 1_000]
    };
    let mut cr = common::criterion();
    let server = redis_server::RedisServer::start_with(&[
        "--maxmemory",
        "8gb",
        "--maxmemory-policy",
        "noeviction",
    ]);
    let rt = common::runtime();
    let (cache, mut conn) = rt.block_on(async {
        let cache = Cache::builder()
            .redis(server.url())
            .namespace("inv")
            .build()
            .expect("cachette on the bench server");
        let client = redis::Client::open(server.url()).expect("url");
        // Large replies (SMEMBERS of 1,000,000 keys) take longer than the 500 ms default.
        let config = redis::AsyncConnectionConfig::new()
            .set_response_timeout(Some(Duration::from_secs(120)));
        let conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .expect("a multiplexed connection");
        (cache, conn)
    });

    // cachette: fill every size first, then measure.
    let envelope = rt.block_on(async {
        for n in sizes {
            let started = Instant::now();
            fill_cachette(&cache, &mut conn, n).await;
            println!(
                "filled {n} cachette entries tagged `tag{n}` in {:.1?}",
                started.elapsed()
            );
        }
        let dbsize: u64 = redis::cmd("DBSIZE")
            .query_async(&mut conn)
            .await
            .expect("DBSIZE");
        println!("keys in Redis: {dbsize}");
        // One invalidation makes them all misses (checked on the last entry of each size).
        for n in sizes {
            cache
                .invalidate_tags([format!("tag{n}")])
                .await
                .expect("invalidate");
            let last: Option<common::User> = cache
                .get(&format!("e{n}:{}", n - 1))
                .await
                .expect("cache.get");
            assert!(last.is_none(), "invalidated entries are misses");
        }
        let envelope: Vec<u8> = conn
            .get(cache.full_key("e10:0"))
            .await
            .expect("GET the envelope");
        envelope
    });

    let mut g = cr.benchmark_group("tag_invalidation");
    for n in sizes {
        let tag = format!("tag{n}");
        g.bench_with_input(BenchmarkId::new("cachette", n), &tag, |b, tag| {
            b.to_async(&rt)
                .iter(|| async { cache.invalidate_tags([tag]).await.expect("invalidate") })
        });
    }
    g.finish();

    // Free the memory of cachette's entries before the baseline fills its own.
    rt.block_on(async {
        let () = redis::cmd("FLUSHDB")
            .arg("ASYNC")
            .query_async(&mut conn)
            .await
            .expect("FLUSHDB");
    });

    let mut g = cr.benchmark_group("tag_invalidation_naive_set");
    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    for n in sizes {
        g.bench_function(BenchmarkId::new("smembers_unlink", n), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut spent = Duration::ZERO;
                    for _ in 0..iters {
                        fill_naive(&mut conn, n, &envelope).await;
                        let started = Instant::now();
                        let removed = invalidate_naive(&mut conn, n).await;
                        spent += started.elapsed();
                        assert_eq!(removed, n, "the baseline removed every entry");
                    }
                    spent
                })
            })
        });
    }
    g.finish();
    cr.final_summary();

    let c10 = ("tag_invalidation", "cachette/10");
    common::ratio_table(
        "Tag invalidation, by entries carrying the tag (one call at a time)",
        since,
        &[
            row("10 entries", c10.0, "cachette/10", c10),
            row("10,000 entries", c10.0, "cachette/10000", c10),
            row("1,000,000 entries", c10.0, "cachette/1000000", c10),
            row(
                "baseline, 10 entries",
                "tag_invalidation_naive_set",
                "smembers_unlink/10",
                c10,
            ),
            row(
                "baseline, 10,000 entries",
                "tag_invalidation_naive_set",
                "smembers_unlink/10000",
                c10,
            ),
            row(
                "baseline, 1,000,000 entries",
                "tag_invalidation_naive_set",
                "smembers_unlink/1000000",
                c10,
            ),
            row(
                "cachette vs baseline, 10",
                c10.0,
                "cachette/10",
                ("tag_invalidation_naive_set", "smembers_unlink/10"),
            ),
            row(
                "cachette vs baseline, 10,000",
                c10.0,
                "cachette/10000",
                ("tag_invalidation_naive_set", "smembers_unlink/10000"),
            ),
            row(
                "cachette vs baseline, 1,000,000",
                c10.0,
                "cachette/1000000",
                ("tag_invalidation_naive_set", "smembers_unlink/1000000"),
            ),
        ],
    );
    drop(rt);
    drop(server);
}
