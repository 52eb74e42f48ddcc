//! The near cache (`CacheBuilder::near_cache`) against a real `redis-server`: hits served
//! from this process, invalidations by another process (another cache, another connection)
//! never missed in strict mode, the race redis-rs's client-side cache loses (a push applied
//! between the read's reply and the keeping of the entry), and the faults that lose pushes:
//! the tracking connection killed, Redis paused and restarted, a tiny tracking table.
//!
//! Stale reads across many tasks and two processes are the freshness checker's
//! (`tests/freshness.rs`, `freshness_redis_near`).

#[path = "support/redis_server.rs"]
mod redis_server;

use cachette::__private::testing::{self, FillPause};
use cachette::{Cache, Options};
use redis_server::RedisServer;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const NS: &str = "near";

fn near(server: &RedisServer) -> Result<Cache> {
    Ok(Cache::builder()
        .redis(server.url())
        .namespace(NS)
        .near_cache(16 << 20)
        .op_timeout(Duration::from_millis(300))
        .build()?)
}

/// Another process's cache: plain Redis, its own connections.
fn other(server: &RedisServer) -> Result<Cache> {
    Ok(Cache::builder().redis(server.url()).namespace(NS).build()?)
}

fn opts(id: u64) -> Options {
    Options::new()
        .tags([format!("rec:{id}")])
        .ttl(Duration::from_secs(60))
}

/// The "database": one version per record.
#[derive(Default)]
struct Db(Vec<AtomicU64>);

impl Db {
    fn new(records: usize) -> Arc<Db> {
        Arc::new(Db((0..records).map(|_| AtomicU64::new(1)).collect()))
    }

    fn read(&self, id: u64) -> u64 {
        self.0
            .get(id as usize)
            .map_or(0, |v| v.load(Ordering::SeqCst))
    }

    fn write(&self, id: u64) -> u64 {
        self.0
            .get(id as usize)
            .map_or(0, |v| v.fetch_add(1, Ordering::SeqCst) + 1)
    }
}

async fn read(cache: &Cache, db: &Arc<Db>, id: u64) -> u64 {
    let db = Arc::clone(db);
    cache
        .get_or_compute(
            &format!("rec:{id}"),
            &opts(id),
            || async move { db.read(id) },
        )
        .await
}

fn near_hits(cache: &Cache) -> u64 {
    cache.near_stats().map_or(0, |s| s.hits)
}

/// Reads until the near cache serves record `id` (a fill takes a read, a tracking link one
/// more); fails after a while.
async fn until_near_hit(cache: &Cache, db: &Arc<Db>, id: u64) -> Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let before = near_hits(cache);
        let v = read(cache, db, id).await;
        if near_hits(cache) > before {
            return Ok(v);
        }
        if Instant::now() > deadline {
            return Err(format!("no near hit: {:?}", cache.near_stats()).into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_hits_never_miss_another_process_invalidation() -> Result {
    let server = RedisServer::start();
    let (cache, writer, db) = (near(&server)?, other(&server)?, Db::new(4));
    let mut stale = Vec::new();
    for round in 0..300u64 {
        let id = round % 4;
        until_near_hit(&cache, &db, id).await?;
        let written = db.write(id);
        writer.invalidate_tags([format!("rec:{id}")]).await?;
        // The invalidation returned: the very next read must see the write.
        let got = read(&cache, &db, id).await;
        if got < written {
            stale.push((round, got, written));
        }
    }
    let stats = cache.near_stats().ok_or("no near stats")?;
    eprintln!("near stats: {stats:?}");
    assert!(
        stale.is_empty(),
        "stale reads (round, got, written): {stale:?}"
    );
    assert!(stats.hits >= 300 && stats.pushes > 0, "{stats:?}");
    Ok(())
}

/// redis-rs's `cache-aio` race: the invalidation push arrives after Redis answered a read
/// and before the answer is kept. The entry must not be served afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_between_reply_and_keeping_is_not_lost() -> Result {
    let server = RedisServer::start();
    let (cache, writer, db) = (near(&server)?, other(&server)?, Db::new(2));
    // A tracking link up: a near hit of record 1 proves it.
    until_near_hit(&cache, &db, 1).await?;
    // Record 0 stored in Redis by the other process: this process's next read of it fills.
    read(&writer, &db, 0).await;
    let pause = Arc::new(FillPause::default());
    assert!(testing::near_pause_fills(&cache, Some(Arc::clone(&pause))));
    let reader = {
        let (cache, db) = (cache.clone(), Arc::clone(&db));
        tokio::spawn(async move { read(&cache, &db, 0).await })
    };
    tokio::time::timeout(Duration::from_secs(5), pause.reached())
        .await
        .map_err(|_| "the read did not fill")?;
    // Redis answered the read with version 1; now another process writes and invalidates,
    // and the push reaches this process before the answer is kept.
    let pushes = cache.near_stats().ok_or("no near stats")?.pushes;
    let written = db.write(0);
    writer.invalidate_tags(["rec:0"]).await?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while cache.near_stats().ok_or("no near stats")?.pushes == pushes {
        assert!(Instant::now() < deadline, "no push received");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    testing::near_pause_fills(&cache, None);
    pause.resume();
    // Its read began before the invalidation: the old version is its to return.
    assert_eq!(reader.await?, 1);
    assert!(
        cache.near_stats().ok_or("no near stats")?.entries >= 2,
        "nothing kept"
    );
    let hits = near_hits(&cache);
    assert_eq!(
        read(&cache, &db, 0).await,
        written,
        "the entry kept after the push was served"
    );
    assert_eq!(near_hits(&cache), hits, "served from the near cache");
    Ok(())
}

/// Kills every client connection (the tracking link among them), changes the record in
/// Redis while this process has no link, and checks the next read; then that near hits
/// resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracking_connection_killed() -> Result {
    let server = RedisServer::start();
    let (cache, writer, db) = (near(&server)?, other(&server)?, Db::new(1));
    until_near_hit(&cache, &db, 0).await?;
    let flushes = cache.near_stats().ok_or("no near stats")?.flushes;
    let killed: u64 = server.cmd(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]);
    assert!(killed >= 2, "killed {killed}");
    let written = db.write(0);
    // The writer's connection was killed too: its first attempt may fail.
    if writer.invalidate_tags(["rec:0"]).await.is_err() {
        writer.invalidate_tags(["rec:0"]).await?;
    }
    assert_eq!(read(&cache, &db, 0).await, written);
    let stats = cache.near_stats().ok_or("no near stats")?;
    assert!(stats.flushes > flushes, "not flushed: {stats:?}");
    assert_eq!(until_near_hit(&cache, &db, 0).await?, written);
    Ok(())
}

/// Redis paused (SIGSTOP): strict mode serves nothing from the near cache (every call
/// computes within about one timeout); after resuming, near hits come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_paused_serves_nothing_near() -> Result {
    let server = RedisServer::start();
    let (cache, db) = (near(&server)?, Db::new(1));
    until_near_hit(&cache, &db, 0).await?;
    let hits = near_hits(&cache);
    let computed = Arc::new(AtomicU64::new(0));
    server.pause();
    for _ in 0..3 {
        let (db, computed) = (Arc::clone(&db), Arc::clone(&computed));
        let v = cache
            .get_or_compute("rec:0", &opts(0), || async move {
                computed.fetch_add(1, Ordering::SeqCst);
                db.read(0)
            })
            .await;
        assert_eq!(v, 1);
    }
    server.resume();
    assert_eq!(near_hits(&cache), hits, "near hits while Redis was paused");
    assert_eq!(computed.load(Ordering::SeqCst), 3);
    until_near_hit(&cache, &db, 0).await?;
    Ok(())
}

/// Redis restarted (its data gone): the link is lost and re-made, nothing kept before is
/// served, an invalidation after the restart is seen, and near hits resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted() -> Result {
    let mut server = RedisServer::start();
    let (cache, writer, db) = (near(&server)?, other(&server)?, Db::new(1));
    until_near_hit(&cache, &db, 0).await?;
    let flushes = cache.near_stats().ok_or("no near stats")?.flushes;
    server.restart();
    let written = db.write(0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while writer.invalidate_tags(["rec:0"]).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the writer never reached the new server"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(read(&cache, &db, 0).await, written);
    assert_eq!(until_near_hit(&cache, &db, 0).await?, written);
    let stats = cache.near_stats().ok_or("no near stats")?;
    assert!(stats.flushes > flushes, "not flushed: {stats:?}");
    Ok(())
}

/// `tracking-table-max-keys 10` with 40 records: `BCAST` tracking keeps no table of keys, so
/// the limit never drops pushes; every invalidation is seen and near hits go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_tracking_table() -> Result {
    let server = RedisServer::start();
    let () = server.cmd(&["CONFIG", "SET", "tracking-table-max-keys", "10"]);
    let (cache, writer, db) = (near(&server)?, other(&server)?, Db::new(40));
    for id in 0..40 {
        until_near_hit(&cache, &db, id).await?;
    }
    for id in 0..40 {
        let written = db.write(id);
        writer.invalidate_tags([format!("rec:{id}")]).await?;
        assert_eq!(read(&cache, &db, id).await, written, "record {id}");
    }
    let hits = near_hits(&cache);
    for id in 0..40 {
        read(&cache, &db, id).await;
        read(&cache, &db, id).await;
    }
    assert!(near_hits(&cache) > hits, "{:?}", cache.near_stats());
    Ok(())
}

/// Bounded mode: this process's own invalidations are applied before they return, and
/// another process's are seen once the bound has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounded_mode() -> Result {
    let server = RedisServer::start();
    let bound = Duration::from_millis(50);
    let cache = Cache::builder()
        .redis(server.url())
        .namespace(NS)
        .near_cache(16 << 20)
        .near_max_staleness(bound)
        .build()?;
    let (writer, db) = (other(&server)?, Db::new(1));
    for _ in 0..50 {
        until_near_hit(&cache, &db, 0).await?;
        let written = db.write(0);
        cache.invalidate_tags(["rec:0"]).await?;
        assert_eq!(
            read(&cache, &db, 0).await,
            written,
            "own invalidation missed"
        );
        until_near_hit(&cache, &db, 0).await?;
        let written = db.write(0);
        writer.invalidate_tags(["rec:0"]).await?;
        tokio::time::sleep(bound * 2).await;
        assert_eq!(read(&cache, &db, 0).await, written, "missed past the bound");
    }
    Ok(())
}

#[test]
fn near_cache_needs_redis() {
    let err = Cache::builder()
        .memory(1 << 20)
        .near_cache(1 << 20)
        .build()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("near_cache needs a Redis backend"), "{err}");
    let err = Cache::builder()
        .redis("redis://127.0.0.1:1")
        .near_max_staleness(Duration::from_millis(5))
        .build()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("near_max_staleness needs near_cache"), "{err}");
}

/// A call that sends the barrier's `PING` and is dropped before the reply (a cancelled
/// request): the calls waiting for that `PING` are not left without one; they ask again and
/// are served once Redis answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barrier_sender_dropped() -> Result {
    let server = RedisServer::start();
    let cache = Cache::builder()
        .redis(server.url())
        .namespace(NS)
        .near_cache(16 << 20)
        .op_timeout(Duration::from_secs(3))
        .build()?;
    let db = Db::new(1);
    until_near_hit(&cache, &db, 0).await?;
    let hits = near_hits(&cache);
    server.pause();
    // The first call finds no ping in flight and sends one; it is dropped while Redis sleeps,
    // after the second call began waiting for that ping.
    let first = {
        let (cache, db) = (cache.clone(), Arc::clone(&db));
        tokio::spawn(async move {
            tokio::time::timeout(Duration::from_millis(60), read(&cache, &db, 0)).await
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let computed = Arc::new(AtomicU64::new(0));
    let waiting = {
        let (cache, db, computed) = (cache.clone(), Arc::clone(&db), Arc::clone(&computed));
        tokio::spawn(async move {
            cache
                .get_or_compute("rec:0", &opts(0), || async move {
                    computed.fetch_add(1, Ordering::SeqCst);
                    db.read(0)
                })
                .await
        })
    };
    assert!(
        first.await?.is_err(),
        "the call answered while Redis was paused"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.resume();
    assert_eq!(waiting.await?, 1);
    assert_eq!(
        computed.load(Ordering::SeqCst),
        0,
        "computed instead of a near hit"
    );
    assert_eq!(near_hits(&cache), hits + 1);
    Ok(())
}

/// Redis paused while many calls wait on one barrier: every call still ends (computing its
/// value), none left waiting for a `PING` that is never sent or never answered. A hang
/// detector (30 s against a 300 ms operation timeout), not a timing assertion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_end_while_redis_is_paused() -> Result {
    let server = RedisServer::start();
    let (cache, db) = (near(&server)?, Db::new(1));
    until_near_hit(&cache, &db, 0).await?;
    let hits = near_hits(&cache);
    server.pause();
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let (cache, db) = (cache.clone(), Arc::clone(&db));
            tokio::spawn(async move { read(&cache, &db, 0).await })
        })
        .collect();
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        let mut values = Vec::new();
        for c in calls {
            values.push(c.await?);
        }
        Ok::<_, tokio::task::JoinError>(values)
    })
    .await;
    server.resume();
    let values = ended.map_err(|_| "calls left waiting while Redis was paused")??;
    assert!(values.iter().all(|&v| v == 1), "{values:?}");
    assert_eq!(near_hits(&cache), hits, "near hits while Redis was paused");
    Ok(())
}
