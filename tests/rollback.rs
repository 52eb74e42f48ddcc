//! Redis losing acknowledged writes does not revive invalidated entries: a restart from an
//! older snapshot, and a failover to a replica that had not received the invalidation. And
//! `wait_for_replicas` turns an invalidation that no replica acknowledged into an error.
//! Real `redis-server` processes with persistence and replication; nothing is mocked.

#[path = "support/redis_server.rs"]
mod redis_server;

use cachette::{Cache, Error, Options};
use redis_server::RedisServer;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A "database" row whose computation returns its version.
#[derive(Clone, Default)]
struct Row(Arc<AtomicU64>);

impl Row {
    async fn read(&self, cache: &Cache) -> u64 {
        let opts = Options::new().tags(["row"]);
        cache
            .get_or_compute("row", &opts, || async { self.0.load(Ordering::SeqCst) })
            .await
    }

    fn write(&self, v: u64) {
        self.0.store(v, Ordering::SeqCst);
    }
}

/// Reads a few times (the first call after a restart may fail on its dead connection and
/// compute; later ones read what Redis holds) and checks every result.
async fn reads_are(row: &Row, cache: &Cache, want: u64, what: &str) {
    for i in 0..3 {
        assert_eq!(row.read(cache).await, want, "{what}: read {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_from_an_older_snapshot_revives_nothing() {
    let mut server = RedisServer::start();
    let (a, b) = (
        Cache::redis(&server.url()).expect("url"),
        Cache::redis(&server.url()).expect("url"),
    );
    let row = Row::default();
    row.write(1);
    reads_are(&row, &a, 1, "before the snapshot").await;
    let _: String = server.cmd(&["SAVE"]);
    row.write(2);
    a.invalidate_tags(["row"]).await.expect("invalidated");
    reads_are(&row, &b, 2, "after the invalidation").await;

    // The server dies and comes back from the snapshot: the old entry, its old tag version.
    server.kill();
    server.restart();
    let revived: Option<Vec<u8>> = server.cmd(&["GET", "cachette:row"]);
    assert!(revived.is_some(), "the snapshot brought the old entry back");

    reads_are(&row, &a, 2, "the invalidating process after the restart").await;
    reads_are(&row, &b, 2, "another process after the restart").await;
    let fresh = Cache::redis(&server.url()).expect("url");
    reads_are(&row, &fresh, 2, "a process started after the restart").await;
}

/// Waits until `replica` has finished its initial sync with its primary.
fn synced(replica: &RedisServer) {
    for _ in 0..500 {
        let info: String = replica.cmd(&["INFO", "replication"]);
        if info.contains("master_link_status:up") {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the replica did not sync");
}

/// A primary whose replica stops replicating, then the invalidation, then a failover to that
/// replica: its data has the old entry and the old tag version, but the epoch names the old
/// primary, so nothing stored there is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_to_a_lagging_replica_revives_nothing() {
    let primary = RedisServer::start();
    let port = primary.port().to_string();
    let replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &port]);
    synced(&replica);
    let before = Cache::redis(&primary.url()).expect("url");
    let row = Row::default();
    row.write(1);
    reads_are(&row, &before, 1, "on the primary").await;
    // Replicated (the harness's own `WAIT` would not wait for the cache's connection's
    // writes: poll the replica), then the replica falls behind for good (promoted, no longer
    // fed).
    let mut replicated = false;
    for _ in 0..500 {
        let entry: Option<Vec<u8>> = replica.cmd(&["GET", "cachette:row"]);
        let tag: Option<Vec<u8>> = replica.cmd(&["GET", "cachette#tag:row"]);
        if entry.is_some() && tag.is_some() {
            replicated = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(replicated, "the entry reached the replica");
    let _: String = replica.cmd(&["REPLICAOF", "NO", "ONE"]);
    row.write(2);
    before
        .invalidate_tags(["row"])
        .await
        .expect("acknowledged by the old primary");
    // Clients now reach the promoted replica.
    let after = Cache::redis(&replica.url()).expect("url");
    let revived: Option<Vec<u8>> = replica.cmd(&["GET", "cachette:row"]);
    assert!(revived.is_some(), "the replica holds the old entry");
    reads_are(&row, &after, 2, "after the failover").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_replicas_reports_an_unreplicated_invalidation() {
    let primary = RedisServer::start();
    let port = primary.port().to_string();
    let mut replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &port]);
    synced(&replica);
    let cache = Cache::builder()
        .redis(primary.url())
        .wait_for_replicas(1, Duration::from_millis(300))
        .build()
        .expect("valid configuration");
    let row = Row::default();
    reads_are(&row, &cache, 0, "filled").await;
    cache
        .invalidate_tags(["row"])
        .await
        .expect("a replica acknowledged it");
    assert!(cache.delete("row").await.is_ok(), "a delete waits too");

    replica.stop();
    let err = cache.invalidate_tags(["row"]).await;
    assert!(
        matches!(
            err,
            Err(Error::NotReplicated {
                wanted: 1,
                acked: 0
            })
        ),
        "no replica: {err:?}"
    );
    // Another cache (its own connections and retry worker): the first cache's kept
    // invalidation is retried in the background with its own waits, which a second waiting
    // invalidation of the same cache would queue behind.
    let other = Cache::builder()
        .redis(primary.url())
        .wait_for_replicas(1, Duration::from_millis(300))
        .build()
        .expect("valid configuration");
    let err = other.delete("row").await;
    assert!(
        matches!(err, Err(Error::NotReplicated { .. })),
        "no replica: {err:?}"
    );
    // Kept, as any failed invalidation: this process bypasses what it covers.
    assert!(cache.pending_invalidations() >= 1);
    assert!(
        Cache::builder()
            .redis(primary.url())
            .wait_for_replicas(0, Duration::from_millis(300))
            .build()
            .is_err(),
        "zero replicas is a configuration error"
    );
}
