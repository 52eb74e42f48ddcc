//! The Redis store behind Sentinel (feature `sentinel`, on for the tests): a real primary, its
//! replica and three sentinels (`support/redis_sentinel.rs`). The cache finds the primary
//! through the sentinels, follows a failover (SIGKILL of the primary) without a wrong result,
//! and revives nothing the failover lost. Timings are printed, never asserted.

#[path = "support/redis_sentinel.rs"]
mod redis_sentinel;
#[path = "support/redis_server.rs"]
mod redis_server;

use cachette::{Cache, Options};
use redis_sentinel::{MASTER, SentinelSetup};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn cache(setup: &SentinelSetup) -> Cache {
    Cache::builder()
        .redis_sentinel(MASTER, setup.sentinel_urls())
        .namespace("s")
        .build()
        .expect("valid configuration")
}

/// Counts its runs; returns the key and its run number.
#[derive(Default)]
struct Runs(AtomicU64);

impl Runs {
    fn count(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    async fn value(&self, key: &str) -> String {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        format!("{key}#{n}")
    }
}

/// Hits, a tag invalidation seen by another handle, and the entries on the primary the
/// sentinels name (not on the replica's port).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_sentinel() {
    let setup = tokio::task::block_in_place(SentinelSetup::start);
    let (a, b) = (cache(&setup), cache(&setup));
    let runs = Runs::default();
    let o = Options::new().tags(["t"]);
    assert_eq!(a.get_or_compute("k", &o, || runs.value("k")).await, "k#0");
    assert_eq!(b.get_or_compute("k", &o, || runs.value("k")).await, "k#0");
    b.invalidate_tags(["t"]).await.expect("invalidation");
    assert_eq!(a.get_or_compute("k", &o, || runs.value("k")).await, "k#1");
    let primary = setup.node(setup.primary_port());
    let exists: u64 = primary.cmd(&["EXISTS", &a.full_key("k")]);
    assert_eq!(exists, 1, "stored on the primary");
    assert_eq!(a.stats().backend_errors, 0);
    assert!(
        Cache::builder()
            .redis_sentinel(MASTER, setup.sentinel_urls())
            .near_cache(1 << 20)
            .build()
            .is_err_and(|e| e.to_string().contains("Sentinel"))
    );
}

/// A failover that loses an acknowledged invalidation (the replica paused and its link cut
/// while it ran, then the primary SIGKILLed) revives nothing, in either process; calls made
/// during the failover all return the right value; caching resumes on the new primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_revives_nothing_and_caching_resumes() {
    let mut setup = tokio::task::block_in_place(SentinelSetup::start);
    let (a, b) = (cache(&setup), cache(&setup));
    let runs = Arc::new(Runs::default());
    let o = Options::new().ttl(Duration::from_secs(300)).tags(["t"]);
    assert_eq!(a.get_or_compute("e", &o, || runs.value("e")).await, "e#0");
    assert_eq!(b.get_or_compute("e", &o, || runs.value("e")).await, "e#0");
    let tag_key = a.tag_key("t");
    let primary = setup.node(setup.primary_port());
    let version: String = primary.cmd(&["GET", &tag_key]);

    // The invalidation reaches the primary only.
    setup.replica().pause();
    let cut: u64 = primary.cmd(&["CLIENT", "KILL", "TYPE", "replica"]);
    assert_eq!(cut, 1, "the replication link was cut");
    a.invalidate_tags(["t"])
        .await
        .expect("acknowledged by the primary alone");

    // Calls go on while the primary is killed and the replica takes over.
    let load = {
        let (b, runs, o) = (b.clone(), Arc::clone(&runs), o.clone());
        tokio::spawn(async move {
            let mut longest = Duration::ZERO;
            let deadline = Instant::now() + Duration::from_secs(8);
            let mut calls = 0;
            while Instant::now() < deadline {
                let started = Instant::now();
                let got = b.get_or_compute("other", &o, || runs.value("other")).await;
                assert!(got.starts_with("other#"), "a wrong result: {got}");
                longest = longest.max(started.elapsed());
                calls += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (calls, longest)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The primary is killed before the replica resumes: resumed first, the replica could
    // reconnect and receive the invalidation.
    let replica_port = setup.replica().port();
    let started = Instant::now();
    let old = setup.kill_primary();
    setup.node(replica_port).resume();
    tokio::task::block_in_place(|| setup.wait_for_failover(old));
    eprintln!("failover in {:?}", started.elapsed());
    assert_eq!(setup.primary_port(), replica_port);
    let now: String = setup.node(replica_port).cmd(&["GET", &tag_key]);
    assert_eq!(
        now, version,
        "the premise: the failover lost the invalidation"
    );

    let (calls, longest) = load.await.expect("the load ran");
    eprintln!("{calls} calls during the failover, the longest {longest:?}");
    let (x, y) = (
        a.get_or_compute("e", &o, || runs.value("e")).await,
        b.get_or_compute("e", &o, || runs.value("e")).await,
    );
    assert!(
        x != "e#0" && y != "e#0",
        "revived after a lost invalidation: {x} {y}"
    );
    // Caching resumed: what one process stores, both then hit.
    let before = runs.count();
    let stored = a.get_or_compute("e", &o, || runs.value("e")).await;
    assert_eq!(a.get_or_compute("e", &o, || runs.value("e")).await, stored);
    assert_eq!(b.get_or_compute("e", &o, || runs.value("e")).await, stored);
    assert!(runs.count() <= before + 1, "hits on the new primary");
}
