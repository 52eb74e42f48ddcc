//! Redis: the hit path of `#[cached]` (0, 1, 2 and 4 tags) against a raw `redis` 1.x `GET` of
//! the same bytes on one multiplexed connection and against the `cached` crate's
//! `#[concurrent_cached]` + `AsyncRedisCache`; the miss path against raw `GET` + `SET`. One
//! call at a time (latency), and 64 tasks on a 2-worker runtime (throughput). Every contender
//! talks to the same `redis-server`, which this binary starts itself, runs on the same runtime
//! and caches the same value.
//!
//! `cargo bench --bench redis_hit` (add `-- --warm-up-time 1 --measurement-time 2` for a quick
//! run). The ratio tables are printed at the end.

#[path = "../tests/support/redis_server.rs"]
mod redis_server;

mod common;

use common::contenders::{REDIS_HITS, REDIS_URL, RedisContenders, cached_crate_redis_miss};
use common::{make_user, row};
use criterion::{Criterion, Throughput};
use redis::AsyncCommands;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// Misses: every call is a new id (lookup, computation, store).
fn miss(cr: &mut Criterion, rt: &tokio::runtime::Runtime, c: &RedisContenders, envelope: &[u8]) {
    static NEXT: AtomicU64 = AtomicU64::new(1_000_000);
    let next = || NEXT.fetch_add(1, Ordering::Relaxed);
    let mut g = cr.benchmark_group("redis_miss");
    g.throughput(Throughput::Elements(1));
    g.bench_function("raw_get_set", |b| {
        b.to_async(rt).iter(|| {
            let mut conn = c.raw.clone();
            let key = format!("bench:raw_miss:{}", next());
            let bytes = envelope.to_vec();
            async move {
                let found: Option<Vec<u8>> = conn.get(&key).await.expect("GET");
                assert!(found.is_none());
                let () = redis::cmd("SET")
                    .arg(&key)
                    .arg(bytes)
                    .arg("PX")
                    .arg(3_600_000)
                    .query_async(&mut conn)
                    .await
                    .expect("SET");
            }
        })
    });
    g.bench_function("cached_crate", |b| {
        b.to_async(rt).iter(|| {
            let id = next();
            async move {
                cached_crate_redis_miss(id).await.expect("cached crate");
            }
        })
    });
    g.bench_function("cachette_0_tags", |b| {
        b.to_async(rt).iter(|| {
            let svc = Arc::clone(&c.svc);
            let id = next();
            async move {
                svc.miss_t0(id).await;
            }
        })
    });
    g.bench_function("cachette_1_tag", |b| {
        b.to_async(rt).iter(|| {
            let svc = Arc::clone(&c.svc);
            let id = next();
            async move {
                svc.miss_t1(id).await;
            }
        })
    });
    g.finish();
}

fn main() {
    let since = SystemTime::now();
    let mut cr = common::criterion();
    let server = redis_server::RedisServer::start_with(&[
        "--maxmemory",
        "4gb",
        "--maxmemory-policy",
        "noeviction",
    ]);
    REDIS_URL.set(server.url()).expect("set once");
    let rt = common::runtime();

    let (contenders, envelope) = rt.block_on(async {
        let c = RedisContenders::connect(&server.url()).await;
        c.prefill().await;
        // The bytes cachette stores for one user: what the raw miss baseline writes.
        let mut conn = c.raw.clone();
        let envelope: Vec<u8> = conn.get("bench:t0:0").await.expect("an entry");
        assert!(
            envelope.len() > serde_json::to_vec(&make_user(0)).expect("json").len(),
            "the raw GET reads cachette's envelope"
        );
        (c, envelope)
    });
    println!(
        "redis-server on {}; value: {} bytes of envelope",
        server.url(),
        envelope.len()
    );

    common::latency_group(&mut cr, &rt, "redis_hit", &REDIS_HITS, &contenders);
    common::throughput_group(&mut cr, &rt, "redis_hit_64_tasks", &REDIS_HITS, &contenders);
    miss(&mut cr, &rt, &contenders, &envelope);
    cr.final_summary();

    for (title, group) in [
        ("Redis hit, one call at a time (latency)", "redis_hit"),
        (
            "Redis hit, 64 tasks on 2 workers (throughput)",
            "redis_hit_64_tasks",
        ),
    ] {
        let raw = (group, "raw_get");
        let cached = (group, "cached_crate");
        common::ratio_table(
            title,
            since,
            &[
                row("raw GET", group, "raw_get", raw),
                row("cached crate", group, "cached_crate", raw),
                row("cachette, no tag", group, "cachette_0_tags", raw),
                row("cachette, no tag", group, "cachette_0_tags", cached),
                row("cachette, 1 tag", group, "cachette_1_tag", raw),
                row("cachette, 2 tags", group, "cachette_2_tags", raw),
                row("cachette, 2 tags", group, "cachette_2_tags", cached),
                row("cachette, 4 tags", group, "cachette_4_tags", raw),
            ],
        );
    }
    let m = ("redis_miss", "raw_get_set");
    common::ratio_table(
        "Redis miss: lookup + computation + store, one call at a time",
        since,
        &[
            row("raw GET + SET", m.0, "raw_get_set", m),
            row("cached crate", m.0, "cached_crate", m),
            row("cachette, no tag", m.0, "cachette_0_tags", m),
            row("cachette, 1 tag", m.0, "cachette_1_tag", m),
        ],
    );
    drop(rt);
    drop(server);
}
