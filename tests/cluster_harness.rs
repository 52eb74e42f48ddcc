//! Groundwork for a Redis Cluster store: the cluster harness (`tests/support/redis_cluster.rs`)
//! and what redis-rs 1.8's async cluster client (`redis::cluster::ClusterClient`,
//! `get_async_connection`, feature `cluster-async`) does, against a real 6-node cluster
//! (3 primaries, 3 replicas, `redis-server` 7.x): routing by slot, a multi-slot `MGET`, a
//! pipeline across slots, and a primary SIGKILLed.
//!
//! One cluster per test (about 2 s to start; the tests run in parallel). Timings are printed,
//! never asserted.

#[path = "support/redis_cluster.rs"]
mod redis_cluster;
#[path = "support/redis_server.rs"]
mod redis_server;

use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncCommands, ErrorKind, ServerErrorKind};
use redis_cluster::{ClusterNode, RedisCluster};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Starts a cluster (timed) off the async workers' hands.
fn start() -> RedisCluster {
    let started = Instant::now();
    let cluster = tokio::task::block_in_place(RedisCluster::start);
    eprintln!("cluster started in {:?}", started.elapsed());
    cluster
}

async fn connect(cluster: &RedisCluster) -> Result<ClusterConnection> {
    let client = ClusterClient::builder(cluster.urls())
        .connection_timeout(Duration::from_secs(1))
        .response_timeout(Duration::from_secs(2))
        .build()?;
    Ok(client.get_async_connection().await?)
}

/// `GET key` on the node itself (no redirection): `Ok(None)` if it is absent there.
fn get_on(cluster: &RedisCluster, node: &ClusterNode, key: &str) -> Result<Option<String>> {
    let mut con = cluster.server(node).connection();
    Ok(redis::cmd("GET").arg(key).query(&mut con)?)
}

/// The primary serving each key, from one `CLUSTER NODES` snapshot.
fn owners(cluster: &RedisCluster, keys: &[String]) -> Result<Vec<(u16, ClusterNode)>> {
    let primaries = cluster.primaries();
    keys.iter()
        .map(|key| {
            let slot = cluster.keyslot(key);
            let owner = primaries
                .iter()
                .find(|p| p.serves(slot))
                .ok_or_else(|| format!("no primary serves slot {slot} of {key}"))?;
            Ok((slot, owner.clone()))
        })
        .collect()
}

/// 200 keys SET and read back through the cluster client; each sits on the primary that
/// `CLUSTER KEYSLOT` + `CLUSTER NODES` name, and all 3 primaries hold some.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_starts_and_routes() -> Result {
    let cluster = start();
    assert_eq!(cluster.primaries().len(), 3);
    assert_eq!(cluster.replicas().len(), 3);
    let mut con = connect(&cluster).await?;

    let keys: Vec<String> = (0..200).map(|i| format!("route:{i}")).collect();
    for (i, key) in keys.iter().enumerate() {
        let () = con.set(key, format!("v{i}")).await?;
    }
    for (i, key) in keys.iter().enumerate() {
        let got: Option<String> = con.get(key).await?;
        assert_eq!(
            got,
            Some(format!("v{i}")),
            "{key} through the cluster client"
        );
    }

    let owners = owners(&cluster, &keys)?;
    let mut used = HashSet::new();
    for ((i, key), (slot, owner)) in keys.iter().enumerate().zip(&owners) {
        assert_eq!(
            get_on(&cluster, owner, key)?,
            Some(format!("v{i}")),
            "{key} (slot {slot}) on its primary {}",
            owner.port
        );
        used.insert(owner.port);
    }
    assert_eq!(used.len(), 3, "200 keys spread over every primary");
    Ok(())
}

/// redis-rs 1.8 splits a multi-slot `MGET` by SLOT (not by node: `multi_shard` in
/// `cluster_handling/routing.rs` groups the keys by `Route`, i.e. slot) and reassembles the
/// replies in key order: 20 keys in 20 slots become 20 `MGET`s on the primaries (counted with
/// `INFO commandstats`); 3 keys sharing a hash tag become one. A missing key reads as `None`
/// in its place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mget_across_slots_is_split() -> Result {
    let cluster = start();
    let mut con = connect(&cluster).await?;

    let keys: Vec<String> = (0..20).map(|i| format!("mget:{i}")).collect();
    for (i, key) in keys.iter().enumerate() {
        let () = con.set(key, i).await?;
    }
    let owners = owners(&cluster, &keys)?;
    let slots: HashSet<u16> = owners.iter().map(|(slot, _)| *slot).collect();
    let nodes: HashSet<u16> = owners.iter().map(|(_, node)| node.port).collect();
    assert!(nodes.len() > 1, "the keys span several primaries");

    let primaries = cluster.primaries();
    let mget_calls = |cluster: &RedisCluster| -> u64 {
        primaries
            .iter()
            .map(|p| {
                let calls = cluster.server(p).command_calls();
                calls.get("mget").copied().unwrap_or(0)
            })
            .sum()
    };
    for p in &primaries {
        cluster.server(p).reset_stats();
    }

    let mut asked = keys.clone();
    asked.insert(7, "mget:missing".to_string());
    let got: Vec<Option<i64>> = con.mget(&asked).await?;
    let mut want: Vec<Option<i64>> = (0..20).map(Some).collect();
    want.insert(7, None);
    assert_eq!(got, want);
    let split = mget_calls(&cluster);
    let missing_slot = cluster.keyslot("mget:missing");
    let all_slots = slots.len() + usize::from(!slots.contains(&missing_slot));
    eprintln!(
        "MGET of {} keys in {all_slots} slots on {} primaries: {split} MGETs reached the primaries",
        asked.len(),
        nodes.len()
    );
    assert_eq!(split, all_slots as u64, "one MGET per slot");

    let tagged = ["{tag}a", "{tag}b", "{tag}c"];
    for key in tagged {
        let () = con.set(key, key).await?;
    }
    let got: Vec<Option<String>> = con.mget(&tagged).await?;
    assert_eq!(got, tagged.map(|k| Some(k.to_string())));
    assert_eq!(mget_calls(&cluster), split + 1, "one slot, one MGET");
    Ok(())
}

/// Observed with redis-rs 1.8.1: a pipeline whose commands hash to different slots fails
/// BEFORE anything is sent, atomic (`MULTI`/`EXEC`) or not, and even when every slot is on
/// the same primary, with `ErrorKind::Server(ServerErrorKind::CrossSlot)`; the error
/// displays (and debugs) as `Received crossed slots in pipeline - Server(CrossSlot)`
/// (`route_for_pipeline` in `cluster_handling/async_connection/routing.rs`: the whole
/// pipeline goes to the node of its first keyed command, and a keyed command of another SLOT
/// is refused client-side). None of its keys is written. The same pipeline on one slot (hash
/// tag) succeeds, atomic or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_across_slots() -> Result {
    let cluster = start();
    let mut con = connect(&cluster).await?;
    let spread: Vec<String> = ["pipe:a", "pipe:b", "pipe:c", "pipe:d"]
        .map(String::from)
        .into();
    let spread_owners = owners(&cluster, &spread)?;
    let ports: HashSet<u16> = spread_owners.iter().map(|(_, o)| o.port).collect();
    assert!(ports.len() > 1, "the keys are on different primaries");
    // Two keys in different slots of one primary.
    let candidates: Vec<String> = (0..20).map(|i| format!("pipe:{i}")).collect();
    let candidate_owners = owners(&cluster, &candidates)?;
    let (first_slot, first_owner) = &candidate_owners[0];
    let second = candidate_owners
        .iter()
        .position(|(slot, o)| o.port == first_owner.port && slot != first_slot)
        .ok_or("no two keys in different slots of one primary")?;
    let one_node = vec![candidates[0].clone(), candidates[second].clone()];

    for (what, keys) in [("3 primaries", &spread), ("1 primary", &one_node)] {
        for atomic in [false, true] {
            let mut pipe = redis::pipe();
            if atomic {
                pipe.atomic();
            }
            for key in keys {
                pipe.set(key, "x").ignore();
            }
            let outcome: redis::RedisResult<()> = pipe.query_async(&mut con).await;
            let err = match outcome {
                Ok(()) => return Err(format!("{what}, atomic {atomic}: succeeded").into()),
                Err(err) => err,
            };
            eprintln!("pipeline across slots on {what} (atomic: {atomic}): Err({err})");
            assert_eq!(err.kind(), ErrorKind::Server(ServerErrorKind::CrossSlot));
            assert!(
                err.to_string()
                    .contains("Received crossed slots in pipeline"),
                "{err}"
            );
            for (key, (_, owner)) in keys.iter().zip(owners(&cluster, keys)?) {
                assert_eq!(get_on(&cluster, &owner, key)?, None, "{key} was written");
            }
        }
    }

    let tagged = ["{pipe}a", "{pipe}b", "{pipe}c"];
    for atomic in [false, true] {
        let mut pipe = redis::pipe();
        if atomic {
            pipe.atomic();
        }
        for key in tagged {
            pipe.set(key, atomic).ignore();
        }
        pipe.get(tagged[0]);
        let (got,): (bool,) = pipe.query_async(&mut con).await?;
        assert_eq!(got, atomic, "same-slot pipeline (atomic: {atomic})");
    }
    Ok(())
}

/// Keys written, one primary SIGKILLed right after (no `WAIT`), the failover waited for: its
/// replica now serves its slots and the cluster client reads (and writes) them again. How
/// many of the last writes survived is printed, not asserted (replication is asynchronous).
/// The killed node, restarted, comes back as a replica of the promoted one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_after_primary_kill() -> Result {
    let mut cluster = start();
    let mut con = connect(&cluster).await?;

    let keys: Vec<String> = (0..100).map(|i| format!("fo:{i}")).collect();
    for (i, key) in keys.iter().enumerate() {
        let () = con.set(key, format!("v{i}")).await?;
    }
    let owners = owners(&cluster, &keys)?;
    let victim = owners[0].1.clone();
    let replica = cluster
        .replicas()
        .into_iter()
        .find(|r| r.primary_id.as_deref() == Some(victim.id.as_str()))
        .ok_or("the victim has no replica")?;
    let lost: HashMap<&String, String> = keys
        .iter()
        .enumerate()
        .zip(&owners)
        .filter(|(_, (_, owner))| owner.id == victim.id)
        .map(|((i, key), _)| (key, format!("v{i}")))
        .collect();

    let killed_at = Instant::now();
    cluster.kill(&victim);
    let waited = tokio::task::block_in_place(|| cluster.wait_for_failover());
    eprintln!(
        "primary {} killed; failover to {} complete after {waited:?}",
        victim.port, replica.port
    );
    for key in lost.keys() {
        let slot = cluster.keyslot(key);
        assert_eq!(cluster.primary_for_slot(slot).id, replica.id, "{key}");
    }

    // The client finds out on its own (a connection error, then a slot refresh).
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut survived, mut errors) = (0, 0);
    for (key, written) in &lost {
        let got: Option<String> = loop {
            match con.get(*key).await {
                Ok(got) => break got,
                Err(e) if Instant::now() < deadline => {
                    errors += 1;
                    eprintln!("GET {key} after the failover: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        assert_eq!(
            got,
            get_on(&cluster, &replica, key)?,
            "{key} as the new primary has it"
        );
        survived += usize::from(got.as_ref() == Some(written));
    }
    eprintln!(
        "{survived}/{} acknowledged writes on the killed primary survived; {errors} client \
         errors; readable {:?} after the kill",
        lost.len(),
        killed_at.elapsed()
    );
    for key in lost.keys() {
        let () = con.set(*key, "after").await?;
        assert_eq!(get_on(&cluster, &replica, key)?.as_deref(), Some("after"));
    }

    let waited = tokio::task::block_in_place(|| cluster.restart(&victim));
    eprintln!("killed node restarted; cluster stable after {waited:?}");
    let back = cluster
        .replicas()
        .into_iter()
        .find(|r| r.id == victim.id)
        .ok_or("the restarted node is not a replica")?;
    assert_eq!(back.primary_id.as_deref(), Some(replica.id.as_str()));
    Ok(())
}
