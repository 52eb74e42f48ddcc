//! Freshness under concurrency (ARCHITECTURE.md, "Invariants"): once an invalidation (tags,
//! `delete`, `invalidate_pattern`, or a write-through `set`) returned `Ok`, no read, in any
//! process, returns a value whose computation began before that invalidation began.
//!
//! Each scenario (an option combination: plain, no single-flight, stale-while-revalidate,
//! stale-if-error, early refresh, fill lock, jitter) runs for a few seconds with 4 records,
//! 32 readers per process and 2 writers, on the memory store (one process) and on Redis (two
//! child processes of this binary read, this process writes). The checker itself is
//! `support/freshness/`; long runs: `examples/freshness.rs`. A canary scenario, whose
//! writers publish fences without invalidating, must show stale reads: the checker can see
//! them. Every other scenario must show none, and must have raced (reads, invalidations of
//! every kind, hits, coalesced calls, and the feature the scenario is about).

#[path = "support/freshness/mod.rs"]
mod freshness;
#[path = "support/redis_cluster.rs"]
mod redis_cluster;
#[path = "support/redis_server.rs"]
mod redis_server;

use freshness::processes::{ChildSpec, report_line, run_child, run_redis};
use freshness::run::run_memory;
use freshness::scenario::{Knobs, Near, Scenario};
use freshness::table::{Row, not_raced, render};
use redis_cluster::RedisCluster;
use redis_server::RedisServer;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CHILD_ENV: &str = "CACHETTE_FRESHNESS_CHILD";
/// The staleness bound of the bounded near-cache runs.
const BOUND_MS: u64 = 20;

fn canary_knobs() -> Knobs {
    Knobs {
        millis: 1_000,
        ..Knobs::default()
    }
}

/// Prints the table, then fails if the canary saw nothing, if a scenario did not race, or
/// if any scenario had a stale read.
fn verdict(rows: &[Row]) {
    let table = render(rows);
    eprintln!("{table}");
    let (canaries, scenarios): (Vec<&Row>, Vec<&Row>) =
        rows.iter().partition(|r| r.scenario.name == "canary");
    for c in canaries {
        assert!(
            c.report.stale > 0 && c.report.reads >= freshness::table::MIN_READS,
            "the checker is blind: no stale read without invalidations\n{table}"
        );
    }
    let idle: Vec<String> = scenarios.iter().flat_map(|r| not_raced(r)).collect();
    assert!(
        idle.is_empty(),
        "runs that did not race: {idle:#?}\n{table}"
    );
    let stale: Vec<String> = scenarios
        .iter()
        .filter(|r| r.report.stale > 0)
        .map(|r| format!("{}/{}: {}", r.store, r.scenario.name, r.report.stale))
        .collect();
    assert!(stale.is_empty(), "stale reads: {stale:?}\n{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freshness_memory() {
    let mut rows = Vec::new();
    let runs = std::iter::once((Scenario::canary(), canary_knobs()))
        .chain(Scenario::all().into_iter().map(|s| (s, Knobs::default())));
    for (scenario, knobs) in runs {
        let report = run_memory(&scenario, &knobs).await;
        rows.push(Row {
            store: "memory".to_owned(),
            scenario,
            report,
        });
    }
    verdict(&rows);
}

/// Entry point of the reader processes of `freshness_redis` (not a test on its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of freshness_redis"]
async fn freshness_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let spec = ChildSpec::decode(&spec).expect("the parent's child spec decodes");
    let report = run_child(&spec).await;
    println!("{}", report_line(&report));
}

fn child_command(spec: &str) -> Command {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut cmd = Command::new(exe);
    cmd.args([
        "--exact",
        "freshness_child",
        "--ignored",
        "--nocapture",
        "--test-threads",
        "1",
    ])
    .env(CHILD_ENV, spec);
    cmd
}

/// Every scenario (after the canary) on Redis with the caches' near cache as `near` says.
async fn redis_rows(server: &RedisServer, near: Near) -> Vec<Row> {
    let knobs = Knobs {
        near,
        ..Knobs::default()
    };
    let canary = Knobs {
        near,
        ..canary_knobs()
    };
    knob_rows(server, near.store(), knobs, canary).await
}

/// Every scenario (after the canary) with `knobs` (the canary with `canary`), the checker's
/// database on `server`.
async fn knob_rows(server: &RedisServer, store: &str, knobs: Knobs, canary: Knobs) -> Vec<Row> {
    let mut rows = Vec::new();
    let runs = std::iter::once((Scenario::canary(), canary))
        .chain(Scenario::all().into_iter().map(|s| (s, knobs.clone())));
    for (scenario, knobs) in runs {
        let report = run_redis(&scenario, &knobs, &server.url(), &child_command)
            .await
            .unwrap_or_else(|e| panic!("redis run of {}: {e}", scenario.name));
        rows.push(Row {
            store: store.to_owned(),
            scenario,
            report,
        });
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freshness_redis() {
    let server = RedisServer::start();
    verdict(&redis_rows(&server, Near::Off).await);
}

/// The near cache in strict mode (no stale read at all) and in bounded mode (a read may miss
/// only invalidations that returned less than the bound before it began; those are counted
/// as `late`, the others as stale).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freshness_redis_near() {
    let server = RedisServer::start();
    let mut rows = redis_rows(&server, Near::Strict).await;
    rows.extend(redis_rows(&server, Near::Bounded(BOUND_MS)).await);
    verdict(&rows);
}

/// Every scenario on a Redis Cluster (3 primaries, 3 replicas): the caches of the three
/// processes on the cluster, the checker's database on a server of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freshness_cluster() {
    let db = RedisServer::start();
    let cluster = tokio::task::block_in_place(RedisCluster::start);
    // Longer than on one server: an invalidation has more to do (a pattern moves the fence
    // of every slot), so each kind needs longer to race often enough.
    let knobs = Knobs {
        cluster: cluster.urls(),
        millis: 4_000,
        ..Knobs::default()
    };
    let canary = Knobs {
        cluster: cluster.urls(),
        ..canary_knobs()
    };
    verdict(&knob_rows(&db, "cluster", knobs, canary).await);
}

/// A fault injected into a cluster run, `after` its start, on a blocking thread.
enum Fault {
    /// SIGKILL the first primary, then wait until its replica took over.
    KillPrimary,
    /// Move 2,000 slots from the first primary to the second (`redis-cli --cluster reshard`).
    Reshard,
}

/// One scenario on the cluster with `fault` injected during it: no stale read, no failed
/// call, and the run must have raced as any other.
async fn under_fault(scenario: Scenario, fault: Fault, store: &str) -> Row {
    let db = RedisServer::start();
    let cluster = Arc::new(Mutex::new(tokio::task::block_in_place(RedisCluster::start)));
    let urls = cluster.lock().unwrap().urls();
    let knobs = Knobs {
        cluster: urls,
        millis: 7_000,
        ..Knobs::default()
    };
    let injector = {
        let cluster = Arc::clone(&cluster);
        tokio::task::spawn_blocking(move || {
            std::thread::sleep(Duration::from_millis(1_500));
            let mut c = cluster.lock().unwrap();
            let primaries = c.primaries();
            let took = match fault {
                Fault::KillPrimary => {
                    c.kill(&primaries[0]);
                    c.wait_for_failover()
                }
                Fault::Reshard => c.reshard(&primaries[0], &primaries[1], 2_000),
            };
            eprintln!("fault applied in {took:?}");
        })
    };
    let report = run_redis(&scenario, &knobs, &db.url(), &child_command)
        .await
        .unwrap_or_else(|e| panic!("cluster run of {}: {e}", scenario.name));
    injector.await.expect("the fault was applied");
    Row {
        store: store.to_owned(),
        scenario,
        report,
    }
}

/// A primary SIGKILLed mid-run, then failed over; and slots resharded mid-run. Calls go on
/// (degraded while the slots move), no read is stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freshness_cluster_faults() {
    let plain = || {
        Scenario::all()
            .into_iter()
            .find(|s| s.name == "plain")
            .expect("the plain scenario")
    };
    let rows = vec![
        under_fault(plain(), Fault::KillPrimary, "cluster-kill").await,
        under_fault(plain(), Fault::Reshard, "cluster-reshard").await,
    ];
    for row in &rows {
        assert_eq!(row.report.errors, 0, "{}: calls failed", row.store);
    }
    verdict(&rows);
}
