//! The cluster store (issue 17) against what a user would pick instead, in one run: a raw
//! redis-rs cluster `GET` (`cluster_async::ClusterConnection`) of the bytes cachette stored,
//! beside the single-server figures of the same run (a raw `GET` on one multiplexed
//! connection, cachette on that server). cachette's contenders are the same `#[cached]`
//! function without tags (`t0`: the entry, and its slot's pattern count, in one `MGET`) and
//! with 2 tags (`t2`: `users`, `user:{id}`, whose keys are in other slots, mostly on other
//! primaries: one `MGET` per slot, the primaries in parallel).
//!
//! One call at a time (latency) and 64 tasks on 2 workers (throughput); then the latency of
//! invalidating one tag and four tags on the three primaries, on the cluster and on one
//! server. The cluster is the test harness's (3 primaries, 3 replicas, on this machine).
//!
//! `cargo bench --bench cluster_hit` (`-- --warm-up-time 1 --measurement-time 3` for a quick
//! run); then the same ratios from alternating rounds (`CLUSTER_ROUNDS=n`, 9 by default).

#[path = "../tests/support/redis_cluster.rs"]
mod redis_cluster;
#[path = "../tests/support/redis_server.rs"]
mod redis_server;

mod common;

use common::rounds::{Turn, print_rounds};
use common::{Svc, prefill, row};
use redis::AsyncCommands;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

const NAMES: [&str; 6] = [
    "raw_get",
    "cachette_redis_t0",
    "cachette_redis_t2",
    "raw_cluster_get",
    "cachette_cluster_t0",
    "cachette_cluster_t2",
];

/// Ratios of the rounds: (label, contender, baseline).
const RATIOS: [(&str, &str, &str); 5] = [
    (
        "cluster, no tag vs raw cluster GET",
        "cachette_cluster_t0",
        "raw_cluster_get",
    ),
    (
        "cluster, 2 tags vs raw cluster GET",
        "cachette_cluster_t2",
        "raw_cluster_get",
    ),
    (
        "one server, no tag vs raw GET",
        "cachette_redis_t0",
        "raw_get",
    ),
    (
        "one server, 2 tags vs raw GET",
        "cachette_redis_t2",
        "raw_get",
    ),
    ("raw cluster GET vs raw GET", "raw_cluster_get", "raw_get"),
];

#[derive(Clone)]
struct ClusterContenders {
    raw: redis::aio::MultiplexedConnection,
    raw_cluster: redis::cluster_async::ClusterConnection,
    redis: Arc<Svc>,
    cluster: Arc<Svc>,
}

impl common::Contenders for ClusterContenders {
    async fn run(&self, which: &'static str, id: u64) {
        let u = match which {
            // The bytes cachette stored for this id (the same value, its envelope).
            "raw_get" => {
                let mut conn = self.raw.clone();
                let bytes: Option<Vec<u8>> = conn.get(format!("bench:t0:{id}")).await.expect("GET");
                assert!(bytes.is_some(), "raw GET of a filled key");
                return;
            }
            "raw_cluster_get" => {
                let mut conn = self.raw_cluster.clone();
                let bytes: Option<Vec<u8>> = conn.get(format!("bench:t0:{id}")).await.expect("GET");
                assert!(bytes.is_some(), "raw cluster GET of a filled key");
                return;
            }
            "cachette_redis_t0" => self.redis.user_t0(id).await,
            "cachette_redis_t2" => self.redis.user_t2(id).await,
            "cachette_cluster_t0" => self.cluster.user_t0(id).await,
            "cachette_cluster_t2" => self.cluster.user_t2(id).await,
            other => panic!("no contender {other}"),
        };
        debug_assert_eq!(u.id, id);
    }
}

/// Four tags whose keys are on the three primaries (one twice).
fn four_tags(cluster: &redis_cluster::RedisCluster, cache: &cachette::Cache) -> Vec<String> {
    let mut tags = Vec::new();
    let mut ports = std::collections::BTreeSet::new();
    for i in 0.. {
        let t = format!("inv:{i}");
        let fresh = ports.insert(cluster.primary_for_key(&cache.tag_key(&t)).port);
        if fresh || ports.len() == 3 {
            tags.push(t);
        }
        if tags.len() == 4 {
            return tags;
        }
    }
    tags
}

/// Median latency of `n` invalidations of `tags` on `cache`, in microseconds.
async fn invalidation_us(cache: &cachette::Cache, tags: &[String], n: usize) -> f64 {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        cache.invalidate_tags(tags).await.expect("invalidation");
        times.push(started.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let since = SystemTime::now();
    let mut cr = common::criterion();
    let server = redis_server::RedisServer::start_with(&["--maxmemory", "4gb"]);
    let cluster = redis_cluster::RedisCluster::start();
    let rt = common::runtime();
    let contenders = rt.block_on(async {
        let raw = redis::Client::open(server.url())
            .expect("url")
            .get_multiplexed_async_connection()
            .await
            .expect("a multiplexed connection");
        let raw_cluster = redis::cluster::ClusterClient::new(cluster.urls())
            .expect("seeds")
            .get_async_connection()
            .await
            .expect("a cluster connection");
        let cache = |b: cachette::CacheBuilder| {
            Arc::new(Svc {
                cache: b.namespace("bench").build().expect("a valid cache"),
            })
        };
        let c = ClusterContenders {
            raw,
            raw_cluster,
            redis: cache(cachette::Cache::builder().redis(server.url())),
            cluster: cache(cachette::Cache::builder().redis_cluster(cluster.urls())),
        };
        // cachette first: the raw GETs read its entries.
        prefill(&c, NAMES.iter().rev().copied()).await;
        c
    });
    common::latency_group(&mut cr, &rt, "cluster_hit", &NAMES, &contenders);
    common::throughput_group(&mut cr, &rt, "cluster_hit_64_tasks", &NAMES, &contenders);
    cr.final_summary();

    for (title, group) in [
        ("Cluster hit, one call at a time (latency)", "cluster_hit"),
        (
            "Cluster hit, 64 tasks on 2 workers (throughput)",
            "cluster_hit_64_tasks",
        ),
    ] {
        let raw = (group, "raw_get");
        let raw_cluster = (group, "raw_cluster_get");
        common::ratio_table(
            title,
            since,
            &[
                row("raw GET, one server", group, "raw_get", raw),
                row(
                    "cachette, one server, no tag",
                    group,
                    "cachette_redis_t0",
                    raw,
                ),
                row(
                    "cachette, one server, 2 tags",
                    group,
                    "cachette_redis_t2",
                    raw,
                ),
                row("raw cluster GET", group, "raw_cluster_get", raw),
                row("raw cluster GET", group, "raw_cluster_get", raw_cluster),
                row(
                    "cachette cluster, no tag",
                    group,
                    "cachette_cluster_t0",
                    raw_cluster,
                ),
                row(
                    "cachette cluster, 2 tags",
                    group,
                    "cachette_cluster_t2",
                    raw_cluster,
                ),
            ],
        );
    }
    let (rounds, concurrent, sequential, invalidations) = if common::bench_mode() {
        let rounds = std::env::var("CLUSTER_ROUNDS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(9usize);
        (rounds, 100_000u64, 3_000u64, 2_000usize)
    } else {
        (1, 2_000, 100, 20)
    };
    for (title, turn) in [
        (
            "Cluster hit, 64 tasks on 2 workers",
            Turn::Concurrent(concurrent),
        ),
        (
            "Cluster hit, one call at a time",
            Turn::Sequential(sequential),
        ),
    ] {
        print_rounds(&rt, &contenders, title, turn, rounds, &NAMES, &RATIOS);
    }

    // Invalidation latency: one tag, and four tags on the three primaries.
    let four = four_tags(&cluster, &contenders.cluster.cache);
    rt.block_on(async {
        println!("\n### Invalidation latency (median of {invalidations}, microseconds)\n");
        println!("| invalidation | one server | cluster | cluster / one server |");
        println!("|---|---:|---:|---:|");
        for (label, tags) in [("1 tag", &four[..1]), ("4 tags, 3 primaries", &four[..])] {
            let one = invalidation_us(&contenders.redis.cache, tags, invalidations).await;
            let many = invalidation_us(&contenders.cluster.cache, tags, invalidations).await;
            println!(
                "| {label} | {one:.0} | {many:.0} | {:.2}x |",
                many / one.max(f64::MIN_POSITIVE)
            );
        }
        let before = contenders.cluster.cache.stats().round_trips;
        contenders
            .cluster
            .cache
            .invalidate_tags(&four)
            .await
            .expect("invalidation");
        println!(
            "4 tags on the cluster: {} round trip(s), tags on primaries {:?}",
            contenders.cluster.cache.stats().round_trips - before,
            four.iter()
                .map(|t| cluster
                    .primary_for_key(&contenders.cluster.cache.tag_key(t))
                    .port)
                .collect::<Vec<_>>()
        );
    });
    drop(rt);
    drop(cluster);
    drop(server);
}
