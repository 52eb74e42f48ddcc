//! The near cache's hit (issue 16) against what a user would pick instead, in one run on the
//! bench's own `redis-server`: a raw redis-rs `GET` of the same bytes on one multiplexed
//! connection, a raw moka `get_with`, and cachette on Redis without a near cache. cachette's
//! contenders are the same `#[cached]` function with 2 tags (`users`, `user:{id}`):
//! - `near_strict`: every near hit waits for a barrier (a `PING` on the tracking connection
//!   sent after the call began, shared by the calls waiting meanwhile);
//! - `near_bounded_10ms`: served at once while a barrier was sent less than 10 ms ago.
//!
//! One call at a time (latency) and 64 tasks on 2 workers (throughput). Then what a near
//! entry weighs and what Redis spends on tracking (`BCAST`, measured around 100,000 writes).
//!
//! `cargo bench --bench near_hit` (`-- --warm-up-time 1 --measurement-time 3` for a quick
//! run). The ratio tables are printed at the end, then the same ratios from alternating
//! rounds (`common/rounds.rs`; `NEAR_ROUNDS=n`, 9 by default; each turn 200,000 hits at 64
//! tasks or 3,000 one at a time), which this noisy machine needs.

#[path = "../tests/support/redis_server.rs"]
mod redis_server;

mod common;

use common::rounds::{Turn, print_rounds};
use common::{IDS, Svc, compute, prefill, row};
use redis::AsyncCommands;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

const NAMES: [&str; 5] = [
    "raw_get",
    "moka_get_with",
    "cachette_redis",
    "near_strict",
    "near_bounded_10ms",
];

/// Ratios of the rounds: (label, contender, baseline).
const RATIOS: [(&str, &str, &str); 5] = [
    ("near strict vs raw GET", "near_strict", "raw_get"),
    ("near bounded vs raw GET", "near_bounded_10ms", "raw_get"),
    (
        "near bounded vs raw moka",
        "near_bounded_10ms",
        "moka_get_with",
    ),
    (
        "near strict vs cachette Redis",
        "near_strict",
        "cachette_redis",
    ),
    ("cachette Redis vs raw GET", "cachette_redis", "raw_get"),
];

#[derive(Clone)]
struct NearContenders {
    raw: redis::aio::MultiplexedConnection,
    moka: moka::future::Cache<u64, common::User>,
    redis: Arc<Svc>,
    strict: Arc<Svc>,
    bounded: Arc<Svc>,
}

fn cache(url: &str, near: Option<Option<Duration>>) -> cachette::Cache {
    let b = cachette::Cache::builder().redis(url).namespace("bench");
    let b = match near {
        None => b,
        Some(None) => b.near_cache(256 << 20),
        Some(Some(bound)) => b.near_cache(256 << 20).near_max_staleness(bound),
    };
    b.build().expect("a valid cache")
}

impl NearContenders {
    async fn connect(url: &str) -> NearContenders {
        let raw = redis::Client::open(url)
            .expect("url")
            .get_multiplexed_async_connection()
            .await
            .expect("a multiplexed connection");
        let svc = |near| {
            Arc::new(Svc {
                cache: cache(url, near),
            })
        };
        NearContenders {
            raw,
            moka: moka::future::Cache::builder().max_capacity(100_000).build(),
            redis: svc(None),
            strict: svc(Some(None)),
            bounded: svc(Some(Some(Duration::from_millis(10)))),
        }
    }
}

impl common::Contenders for NearContenders {
    async fn run(&self, which: &'static str, id: u64) {
        let u = match which {
            "raw_get" => {
                // The bytes cachette stored for this id (the same value, its envelope).
                let mut conn = self.raw.clone();
                let bytes: Option<Vec<u8>> = conn.get(format!("bench:t2:{id}")).await.expect("GET");
                assert!(bytes.is_some(), "raw GET of a filled key");
                return;
            }
            "moka_get_with" => self.moka.get_with(id, async move { compute(id) }).await,
            "cachette_redis" => self.redis.user_t2(id).await,
            "near_strict" => self.strict.user_t2(id).await,
            "near_bounded_10ms" => self.bounded.user_t2(id).await,
            other => panic!("no contender {other}"),
        };
        debug_assert_eq!(u.id, id);
    }
}

/// `used_memory` of the server behind `conn`.
async fn used_memory(conn: &mut redis::aio::MultiplexedConnection) -> i64 {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(conn)
        .await
        .expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// What Redis spends on tracking 100,000 keys, in bytes of `used_memory`: (default mode, the
/// keys read by a tracking connection; `BCAST` over a prefix, the keys rewritten while a
/// `BCAST` connection tracks them). The keys exist before each measurement and are rewritten
/// with values of the same size, so what grows is tracking.
async fn tracking_memory(url: &str) -> (i64, i64) {
    let client = redis::Client::open(url).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("a connection");
    let keys = |prefix: &'static str| (0..100_000).map(move |i| format!("{prefix}:{i}"));
    for prefix in ["default", "bcast"] {
        for chunk in keys(prefix).collect::<Vec<_>>().chunks(1000) {
            let mut pipe = redis::pipe();
            chunk.iter().for_each(|k| {
                pipe.set(k, "x").ignore();
            });
            let () = pipe.query_async(&mut conn).await.expect("SET");
        }
    }
    let resp3 = redis::Client::open(format!("{url}?protocol=resp3")).expect("url");
    let config =
        redis::AsyncConnectionConfig::new().set_push_sender(|_: redis::PushInfo| Ok::<(), ()>(()));
    let mut tracked = resp3
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("a RESP3 connection");
    let () = redis::cmd("CLIENT")
        .arg(&["TRACKING", "ON"][..])
        .query_async(&mut tracked)
        .await
        .expect("tracking on");
    let before = used_memory(&mut conn).await;
    for chunk in keys("default").collect::<Vec<_>>().chunks(1000) {
        let _: Vec<Option<String>> = tracked.mget(chunk).await.expect("MGET");
    }
    let default_mode = used_memory(&mut conn).await - before;
    let () = redis::cmd("CLIENT")
        .arg(&["TRACKING", "OFF"][..])
        .query_async(&mut tracked)
        .await
        .expect("tracking off");
    let before = used_memory(&mut conn).await;
    let () = redis::cmd("CLIENT")
        .arg(&["TRACKING", "ON", "BCAST", "PREFIX", "bcast:"][..])
        .query_async(&mut tracked)
        .await
        .expect("bcast on");
    for chunk in keys("bcast").collect::<Vec<_>>().chunks(1000) {
        let mut pipe = redis::pipe();
        chunk.iter().for_each(|k| {
            pipe.set(k, "y").ignore();
        });
        let () = pipe.query_async(&mut conn).await.expect("SET");
    }
    let bcast = used_memory(&mut conn).await - before;
    (default_mode, bcast)
}

fn main() {
    let since = SystemTime::now();
    let mut cr = common::criterion();
    let server = redis_server::RedisServer::start_with(&["--maxmemory", "4gb"]);
    let rt = common::runtime();
    let contenders = rt.block_on(async {
        let c = NearContenders::connect(&server.url()).await;
        // cachette first: the raw GET reads its entries.
        prefill(&c, NAMES.iter().rev().copied()).await;
        c
    });
    common::latency_group(&mut cr, &rt, "near_hit", &NAMES, &contenders);
    common::throughput_group(&mut cr, &rt, "near_hit_64_tasks", &NAMES, &contenders);
    cr.final_summary();

    for (title, group) in [
        ("Near hit, one call at a time (latency)", "near_hit"),
        (
            "Near hit, 64 tasks on 2 workers (throughput)",
            "near_hit_64_tasks",
        ),
    ] {
        let raw = (group, "raw_get");
        let moka = (group, "moka_get_with");
        common::ratio_table(
            title,
            since,
            &[
                row("raw GET", group, "raw_get", raw),
                row("raw moka", group, "moka_get_with", raw),
                row("cachette Redis, 2 tags", group, "cachette_redis", raw),
                row("near strict, 2 tags", group, "near_strict", raw),
                row("near bounded, 2 tags", group, "near_bounded_10ms", raw),
                row("near bounded, 2 tags", group, "near_bounded_10ms", moka),
            ],
        );
    }
    let (rounds, concurrent, sequential) = if common::bench_mode() {
        let rounds = std::env::var("NEAR_ROUNDS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(9usize);
        (rounds, 200_000u64, 3_000u64)
    } else {
        (1, 2_000, 100)
    };
    for (title, turn) in [
        (
            "Near hit, 64 tasks on 2 workers",
            Turn::Concurrent(concurrent),
        ),
        ("Near hit, one call at a time", Turn::Sequential(sequential)),
    ] {
        print_rounds(&rt, &contenders, title, turn, rounds, &NAMES, &RATIOS);
    }
    for (name, svc) in [
        ("strict", &contenders.strict),
        ("bounded", &contenders.bounded),
    ] {
        if let Some(s) = svc.cache.near_stats() {
            println!(
                "near cache ({name}): {} entries, {} bytes ({} per entry); {} hits, {} misses, {} barrier waits, {} pings, {} pushes, {} flushes",
                s.entries,
                s.bytes,
                s.bytes / s.entries.max(1),
                s.hits,
                s.misses,
                s.barrier_waits,
                s.pings,
                s.pushes,
                s.flushes
            );
        }
    }
    let (default_mode, bcast) = rt.block_on(tracking_memory(&server.url()));
    println!(
        "Redis used_memory for tracking 100,000 keys: {default_mode} B in default mode (keys read by the tracking connection), {bcast} B with BCAST over their prefix (what a near cache uses); {IDS} ids in the benches above"
    );
    drop(rt);
    drop(server);
}
