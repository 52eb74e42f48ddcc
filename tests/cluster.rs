//! The Redis Cluster store on a real cluster (3 primaries, 3 replicas; `support/redis_cluster.rs`),
//! beyond the shared suites that run on it too (`both_backends!`'s `on_cluster`): where keys
//! land, round trips, tags on other shards than their entries, many tags, pattern invalidation
//! over every primary, and what a failover may lose. Timings are printed, never asserted.

#[path = "support/redis_cluster.rs"]
mod redis_cluster;
#[path = "support/redis_server.rs"]
mod redis_server;

use cachette::{Cache, Options};
use redis_cluster::RedisCluster;
use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The cluster of the tests that do not break it, started on first use.
fn shared() -> &'static RedisCluster {
    static CLUSTER: OnceLock<RedisCluster> = OnceLock::new();
    CLUSTER.get_or_init(RedisCluster::start)
}

/// A cache on `cluster` in namespace `ns`.
fn cache(cluster: &RedisCluster, ns: &str) -> Cache {
    Cache::builder()
        .redis_cluster(cluster.urls())
        .namespace(ns)
        .build()
        .expect("valid configuration")
}

/// Keys of namespace `ns` on each primary (by port), from `SCAN` on each.
fn keys_by_primary(cluster: &RedisCluster, ns: &str) -> HashMap<u16, Vec<String>> {
    cluster
        .primaries()
        .into_iter()
        .map(|p| {
            let mut con = cluster.server(&p).connection();
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{ns}[:#]*"))
                .query(&mut con)
                .expect("KEYS on a primary");
            (p.port, keys)
        })
        .collect()
}

/// Counts its runs; returns `tag` and its run number.
#[derive(Default)]
struct Runs(AtomicU64);

impl Runs {
    async fn value(&self, key: &str) -> String {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        format!("{key}#{n}")
    }
    fn count(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

fn opts(tags: &[String]) -> Options {
    Options::new()
        .ttl(Duration::from_secs(300))
        .tags(tags.iter().cloned())
}

/// Entries and their tag keys land on every primary, a tag key mostly on another primary
/// than its entry; a hit is one round trip whatever the shards; invalidating a tag carried by
/// 64 entries is one round trip; four tags on three primaries are one round trip too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_spread_and_round_trips() {
    let cluster = tokio::task::block_in_place(shared);
    let c = cache(cluster, "spread");
    let runs = Runs::default();
    let tags = |i: usize| vec!["all".to_owned(), format!("t:{i}")];
    for i in 0..64 {
        let key = format!("k:{i}");
        c.get_or_compute(&key, &opts(&tags(i)), || runs.value(&key))
            .await;
    }
    assert_eq!(runs.count(), 64);
    let by_primary = keys_by_primary(cluster, "spread");
    for (port, keys) in &by_primary {
        let entries = keys.iter().filter(|k| k.starts_with("spread:")).count();
        let tag_keys = keys.iter().filter(|k| k.starts_with("spread#tag:")).count();
        eprintln!("primary {port}: {entries} entries, {tag_keys} tag keys");
        assert!(
            entries > 0 && tag_keys > 0,
            "primary {port} holds none: {by_primary:?}"
        );
    }
    let elsewhere = (0..64)
        .filter(|i| {
            let entry = cluster.primary_for_key(&c.full_key(&format!("k:{i}")));
            let tag = cluster.primary_for_key(&c.tag_key(&format!("t:{i}")));
            entry.port != tag.port
        })
        .count();
    eprintln!("{elsewhere} of 64 entries have their own tag on another primary");
    assert!(
        elsewhere > 20,
        "tags and entries are not spread: {elsewhere}"
    );

    let before = c.stats().round_trips;
    for i in 0..64 {
        let key = format!("k:{i}");
        let got = c
            .get_or_compute(&key, &opts(&tags(i)), || runs.value(&key))
            .await;
        assert_eq!(got, format!("{key}#{i}"), "a hit of the value first stored");
    }
    assert_eq!(runs.count(), 64, "every call a hit");
    assert_eq!(c.stats().round_trips - before, 64, "one round trip per hit");

    let before = c.stats().round_trips;
    let started = Instant::now();
    c.invalidate_tags(["all"]).await.expect("invalidation");
    eprintln!("one tag of 64 entries: {:?}", started.elapsed());
    assert_eq!(c.stats().round_trips - before, 1, "one tag: one round trip");
    for i in 0..64 {
        let key = format!("k:{i}");
        c.get_or_compute(&key, &opts(&tags(i)), || runs.value(&key))
            .await;
    }
    assert_eq!(runs.count(), 128, "every entry carrying the tag recomputed");

    // Four tags whose keys are on all three primaries.
    let mut four = Vec::new();
    let mut ports = BTreeSet::new();
    for i in 0.. {
        let t = format!("t:{i}");
        let port = cluster.primary_for_key(&c.tag_key(&t)).port;
        if four.len() < 4 && (ports.insert(port) || (ports.len() == 3 && four.len() == 3)) {
            four.push(t);
        }
        if four.len() == 4 {
            break;
        }
    }
    assert_eq!(ports.len(), 3, "four tags on three primaries: {four:?}");
    let before = c.stats().round_trips;
    c.invalidate_tags(four.iter()).await.expect("invalidation");
    assert_eq!(
        c.stats().round_trips - before,
        1,
        "four tags on three primaries: one round trip (in parallel)"
    );
    for t in &four {
        let i: usize = t[2..].parse().expect("a tag number");
        let key = format!("k:{i}");
        let got = c
            .get_or_compute(&key, &opts(&tags(i)), || runs.value(&key))
            .await;
        assert!(!got.ends_with(&format!("#{}", 64 + i)), "{t}: recomputed");
    }
}

/// An entry carrying 24 tags spread over the primaries is invalid once any of them is
/// invalidated, each in turn; untouched, it is a hit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tags_on_every_shard() {
    let cluster = tokio::task::block_in_place(shared);
    let c = cache(cluster, "many");
    let tags: Vec<String> = (0..24).map(|i| format!("m:{i}")).collect();
    let ports: BTreeSet<u16> = tags
        .iter()
        .map(|t| cluster.primary_for_key(&c.tag_key(t)).port)
        .collect();
    assert_eq!(ports.len(), 3, "the tags are on every primary");
    let runs = Runs::default();
    let o = opts(&tags);
    let get = || c.get_or_compute("e", &o, || runs.value("e"));
    get().await;
    get().await;
    assert_eq!(runs.count(), 1, "a hit");
    for (i, t) in tags.iter().enumerate() {
        c.invalidate_tags([t]).await.expect("invalidation");
        assert_eq!(
            get().await,
            format!("e#{}", i + 1),
            "{t} invalidated the entry"
        );
        assert_eq!(get().await, format!("e#{}", i + 1), "then a hit again");
    }
}

/// A pattern invalidation removes what matches on every primary and nothing else, with
/// values that look like globs, hash tags and separators.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pattern_invalidation_on_every_primary() {
    let cluster = tokio::task::block_in_place(shared);
    let c = cache(cluster, "pat");
    let hostile = ["a*b", "{x}", "}{", "[abc]", "a:b", "?", "\\", " ", "ü"];
    let runs = Runs::default();
    let mut matching = Vec::new();
    let mut other = Vec::new();
    for (i, h) in hostile.iter().enumerate() {
        for j in 0..8 {
            let user = cachette::key!("user:{}:{}", h, j);
            let org = cachette::key!("org:{}:{}", h, j);
            for k in [&user, &org] {
                c.get_or_compute(k, &Options::new(), || runs.value(k.as_ref()))
                    .await;
            }
            if i == 0 {
                matching.push(user);
            } else {
                other.push(user);
            }
            other.push(org);
        }
    }
    let ports: BTreeSet<u16> = matching
        .iter()
        .map(|k| cluster.primary_for_key(&c.full_key(k.as_ref())).port)
        .collect();
    eprintln!("matching keys on {} primaries", ports.len());
    let pattern = cachette::pattern!("user:{}:*", hostile[0]);
    let started = Instant::now();
    let n = c.invalidate_pattern(&pattern).await.expect("invalidation");
    eprintln!(
        "pattern invalidation over 3 primaries: {:?}",
        started.elapsed()
    );
    assert_eq!(
        n,
        matching.len() as u64,
        "every matching entry, on every primary"
    );
    let before = runs.count();
    for k in &other {
        c.get_or_compute(k, &Options::new(), || runs.value(k.as_ref()))
            .await;
    }
    assert_eq!(runs.count(), before, "nothing else was touched");
    for k in &matching {
        c.get_or_compute(k, &Options::new(), || runs.value(k.as_ref()))
            .await;
    }
    assert_eq!(runs.count(), before + matching.len() as u64);
}

/// The cost of each kind of invalidation on the cluster, printed (not asserted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidation_costs() {
    let cluster = tokio::task::block_in_place(shared);
    let c = cache(cluster, "cost");
    c.get_or_compute("k", &Options::new().tags(["t"]), || async { 1u32 })
        .await;
    for _ in 0..3 {
        let t = Instant::now();
        c.invalidate_tags(["t"]).await.expect("tags");
        let tags = t.elapsed();
        let t = Instant::now();
        c.delete("k").await.expect("delete");
        let delete = t.elapsed();
        let t = Instant::now();
        c.invalidate_pattern("k*").await.expect("pattern");
        let pattern = t.elapsed();
        let t = Instant::now();
        c.set("k", &2u32, &Options::new()).await.expect("set");
        let set = t.elapsed();
        eprintln!("tags {tags:?} delete {delete:?} pattern {pattern:?} set {set:?}");
    }
}

/// The replica of `primary` (its only one).
fn replica_of(
    cluster: &RedisCluster,
    primary: &redis_cluster::ClusterNode,
) -> redis_cluster::ClusterNode {
    cluster
        .replicas()
        .into_iter()
        .find(|r| r.primary_id.as_deref() == Some(primary.id.as_str()))
        .unwrap_or_else(|| panic!("no replica of {primary:?}"))
}

/// `GET key` on the primary that serves it now.
fn get_raw(cluster: &RedisCluster, key: &str) -> Option<Vec<u8>> {
    let node = cluster.primary_for_key(key);
    let mut con = cluster.server(&node).connection();
    redis::cmd("GET").arg(key).query(&mut con).expect("GET")
}

/// Makes the primary of `key` lose what is written next: its replica is paused (SIGSTOP)
/// and its replication link cut (`CLIENT KILL TYPE replica`: the stream already in the
/// replica's socket would otherwise reach it on resume) while `write` runs, then the primary
/// is SIGKILLed and the replica, resumed, takes over without the write; the old primary is
/// started again (a replica now). Returns the cluster's failover time.
async fn lose_next_write<F, Fut>(cluster: &mut RedisCluster, key: &str, write: F) -> Duration
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let primary = cluster.primary_for_key(key);
    let replica = replica_of(cluster, &primary);
    // The replica has the key as the primary has it (replication is asynchronous).
    let on_primary = get_raw(cluster, key);
    let started = Instant::now();
    loop {
        let mut con = cluster.server(&replica).connection();
        let () = redis::cmd("READONLY").query(&mut con).expect("READONLY");
        let there: Option<Vec<u8>> = redis::cmd("GET").arg(key).query(&mut con).expect("GET");
        if there == on_primary {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the replica {} never got {key}",
            replica.port
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    cluster.pause(&replica);
    let cut: u64 = cluster
        .server(&primary)
        .cmd(&["CLIENT", "KILL", "TYPE", "replica"]);
    assert_eq!(cut, 1, "the replication link was cut");
    write().await;
    cluster.kill(&primary);
    cluster.resume(&replica);
    let took = tokio::task::block_in_place(|| cluster.wait_for_failover());
    // Back as the new primary's replica, empty: the cluster has 3 + 3 nodes again.
    tokio::task::block_in_place(|| cluster.restart(&primary));
    took
}

/// A failover that loses an acknowledged tag invalidation, and one that loses a delete's
/// tombstone, revive nothing: in this process and in another (a second handle), the entry
/// is computed again, because what the failed primary held is read under the new primary's
/// identity. The premise is checked: the tag key and the entry are back as they were before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_losing_invalidations_revives_nothing() {
    let mut cluster = tokio::task::block_in_place(RedisCluster::start);
    let c = cache(&cluster, "lost");
    let other = cache(&cluster, "lost");
    let runs = Runs::default();
    let o = opts(&["t".to_owned()]);
    assert_eq!(c.get_or_compute("e", &o, || runs.value("e")).await, "e#0");
    assert_eq!(
        other.get_or_compute("e", &o, || runs.value("e")).await,
        "e#0"
    );
    let tag_key = c.tag_key("t");
    let version = get_raw(&cluster, &tag_key).expect("the tag key exists");
    let took = lose_next_write(&mut cluster, &tag_key, || async {
        c.invalidate_tags(["t"])
            .await
            .expect("acknowledged by the primary alone");
    })
    .await;
    eprintln!("failover in {took:?}");
    assert_eq!(
        get_raw(&cluster, &tag_key),
        Some(version),
        "the premise: the failover lost the invalidation"
    );
    let (a, b) = (
        c.get_or_compute("e", &o, || runs.value("e")).await,
        other.get_or_compute("e", &o, || runs.value("e")).await,
    );
    assert!(
        a != "e#0" && b != "e#0",
        "revived after a lost invalidation: {a} {b}"
    );
    // Caching resumed on the new primary: what one process stored, both hit.
    let before = runs.count();
    let stored = c.get_or_compute("e", &o, || runs.value("e")).await;
    assert_eq!(
        other.get_or_compute("e", &o, || runs.value("e")).await,
        stored
    );
    assert_eq!(c.get_or_compute("e", &o, || runs.value("e")).await, stored);
    assert!(runs.count() <= before + 1, "hits after the failover");

    // The same with the entry's own delete (its tombstone lost).
    let d = Options::new().ttl(Duration::from_secs(300));
    let value = c.get_or_compute("d", &d, || runs.value("d")).await;
    assert_eq!(
        other.get_or_compute("d", &d, || runs.value("d")).await,
        value
    );
    let full = c.full_key("d");
    let stored = get_raw(&cluster, &full).expect("the entry exists");
    lose_next_write(&mut cluster, &full, || async {
        assert!(
            c.delete("d")
                .await
                .expect("acknowledged by the primary alone")
        );
    })
    .await;
    assert_eq!(
        get_raw(&cluster, &full),
        Some(stored),
        "the premise: the failover lost the tombstone"
    );
    let (a, b) = (
        c.get_or_compute("d", &d, || runs.value("d")).await,
        other.get_or_compute("d", &d, || runs.value("d")).await,
    );
    assert!(
        a != value && b != value,
        "revived after a lost delete: {a} {b}"
    );
}

/// With `wait_for_replicas(1, ...)`: an invalidation its replica acknowledged survives the
/// SIGKILL of the primary right after it (the tag key holds the new version on the new
/// primary), and one the replica could not acknowledge (paused) is an error, like any failed
/// invalidation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waited_invalidations_survive_a_failover() {
    let mut cluster = tokio::task::block_in_place(RedisCluster::start);
    let c = Cache::builder()
        .redis_cluster(cluster.urls())
        .namespace("wait")
        .wait_for_replicas(1, Duration::from_millis(500))
        .build()
        .expect("valid configuration");
    let runs = Runs::default();
    let o = opts(&["t".to_owned()]);
    c.get_or_compute("e", &o, || runs.value("e")).await;
    let tag_key = c.tag_key("t");
    let primary = cluster.primary_for_key(&tag_key);
    let replica = replica_of(&cluster, &primary);

    cluster.pause(&replica);
    let refused = c.invalidate_tags(["t"]).await;
    cluster.resume(&replica);
    assert!(
        matches!(
            refused,
            Err(cachette::Error::NotReplicated {
                wanted: 1,
                acked: 0
            })
        ),
        "not replicated: {refused:?}"
    );

    let before = get_raw(&cluster, &tag_key);
    c.invalidate_tags(["t"])
        .await
        .expect("acknowledged by the replica");
    let acked = get_raw(&cluster, &tag_key);
    assert_ne!(acked, before);
    cluster.kill(&primary);
    tokio::task::block_in_place(|| cluster.wait_for_failover());
    assert_eq!(get_raw(&cluster, &tag_key), acked, "the new primary has it");
    let got = c.get_or_compute("e", &o, || runs.value("e")).await;
    assert_ne!(got, "e#0");
}

/// The seed URL's credentials reach every node (the nodes require a password): entries and
/// tags on every primary are stored and hit; a wrong password is `Error::Auth` at `connect`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_reach_every_node() {
    let cluster = tokio::task::block_in_place(|| RedisCluster::start_with_password("s3cr3t"));
    let with = |password: &str| {
        let seeds = cluster
            .urls()
            .into_iter()
            .map(|u| u.replace("redis://", &format!("redis://:{password}@")));
        Cache::builder()
            .redis_cluster(seeds)
            .namespace("acl")
            .build()
            .expect("valid configuration")
    };
    let c = with("s3cr3t");
    c.connect().await.expect("the password is right");
    let runs = Runs::default();
    for round in 0..2 {
        for i in 0..30 {
            let key = format!("k:{i}");
            let got = c
                .get_or_compute(&key, &opts(&[format!("t:{i}")]), || runs.value(&key))
                .await;
            assert_eq!(got, format!("{key}#{i}"), "round {round}");
        }
    }
    assert_eq!(runs.count(), 30, "stored on every primary, then hits");
    assert_eq!(c.stats().backend_errors, 0);
    let ports: BTreeSet<u16> = (0..30)
        .map(|i| cluster.primary_for_key(&c.full_key(&format!("k:{i}"))).port)
        .collect();
    assert_eq!(ports.len(), 3);
    let wrong = with("wrong");
    let err = wrong.connect().await.expect_err("a wrong password");
    assert!(matches!(err, cachette::Error::Auth { .. }), "{err:?}");
    assert!(
        !format!("{err}").contains("wrong"),
        "the password is not shown: {err}"
    );
}

/// The admin calls ask every primary: keys, statistics (summed), inspect (valid until its
/// tag is invalidated), and clear (everything recomputed after).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_on_every_primary() {
    let cluster = tokio::task::block_in_place(shared);
    let c = cache(cluster, "adm");
    let runs = Runs::default();
    let o = opts(&["all".to_owned()]);
    for i in 0..30 {
        let key = format!("k:{i}");
        c.get_or_compute(&key, &o, || runs.value(&key)).await;
    }
    let mut keys = c.keys("k:*", 100).await.expect("keys");
    keys.sort();
    let mut expected: Vec<String> = (0..30).map(|i| format!("k:{i}")).collect();
    expected.sort();
    assert_eq!(keys, expected, "the keys of every primary");
    let stats = c.backend_stats().await.expect("stats");
    assert_eq!(stats.backend, "redis-cluster");
    assert!(
        stats.keys.unwrap_or(0) >= 31,
        "summed over the primaries: {stats:?}"
    );
    let info = c.inspect("k:1").await.expect("inspect").expect("the entry");
    assert!(info.valid, "{info:?}");
    assert_eq!(info.value, Some(serde_json::json!("k:1#1")));
    c.invalidate_tags(["all"]).await.expect("invalidation");
    let info = c.inspect("k:1").await.expect("inspect").expect("the entry");
    assert!(!info.valid, "invalidated: {info:?}");
    let removed = c.clear().await.expect("clear");
    assert!(removed >= 31, "entries and internal keys: {removed}");
    assert!(c.keys("*", 100).await.expect("keys").is_empty());
    let before = runs.count();
    c.get_or_compute("k:1", &o, || runs.value("k:1")).await;
    assert_eq!(runs.count(), before + 1, "computed again after the clear");
}
