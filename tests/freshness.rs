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
#[path = "support/redis_sentinel.rs"]
mod redis_sentinel;
#[path = "support/redis_server.rs"]
mod redis_server;

use freshness::processes::{ChildSpec, report_line, run_child, run_redis};
use freshness::run::run_memory;
use freshness::scenario::Deployment;
use freshness::scenario::{Knobs, Near, Scenario};
use freshness::table::{Row, not_raced, render};
use redis_cluster::RedisCluster;
use redis_sentinel::SentinelSetup;
use redis_server::RedisServer;
use std::process::Command;
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
        deployment: Deployment::Cluster(cluster.urls()),
        millis: 4_000,
        ..Knobs::default()
    };
    let canary = Knobs {
        deployment: Deployment::Cluster(cluster.urls()),
        ..canary_knobs()
    };
    verdict(&knob_rows(&db, "cluster", knobs, canary).await);
}

/// A fault injected into a run 1.5 s after its start, on a blocking thread.
#[derive(Clone, Copy)]
enum Fault {
    /// Cluster: SIGKILL the first primary, then wait until its replica took over.
    KillPrimary,
    /// The same, the caches' invalidations waiting for one replica (`wait_for_replicas`).
    KillPrimaryWaiting,
    /// Cluster: move 2,000 slots from the first primary to the second (`redis-cli --cluster
    /// reshard`).
    Reshard,
    /// Sentinel: SIGKILL the primary, then wait until the sentinels name its replica.
    SentinelFailover,
}

/// What a fault acts on, kept alive until the run ends.
type Setup = Box<dyn Send>;

/// The deployment `fault` needs, and the fault itself (it returns the time it took and the
/// deployment, dropped after the run).
fn deployment_for(fault: Fault) -> (Deployment, Box<dyn FnOnce() -> (Duration, Setup) + Send>) {
    if let Fault::SentinelFailover = fault {
        let mut setup = tokio::task::block_in_place(SentinelSetup::start);
        let deployment = Deployment::Sentinel {
            master: redis_sentinel::MASTER.to_owned(),
            sentinels: setup.sentinel_urls(),
        };
        return (
            deployment,
            Box::new(move || (setup.kill_primary_and_wait(), Box::new(setup) as Setup)),
        );
    }
    let mut cluster = tokio::task::block_in_place(RedisCluster::start);
    let deployment = Deployment::Cluster(cluster.urls());
    let act = move || {
        let primaries = cluster.primaries();
        let took = match fault {
            Fault::Reshard => cluster.reshard(&primaries[0], &primaries[1], 2_000),
            _ => {
                cluster.kill(&primaries[0]);
                cluster.wait_for_failover()
            }
        };
        (took, Box::new(cluster) as Setup)
    };
    (deployment, Box::new(act))
}

/// One scenario with `fault` injected during it (7 s; 3 processes): no stale read, and the
/// run must have raced as any other.
async fn under_fault(scenario: Scenario, fault: Fault, store: &str) -> Row {
    let db = RedisServer::start();
    let (deployment, act) = deployment_for(fault);
    let knobs = Knobs {
        deployment,
        millis: 7_000,
        wait_replicas_ms: matches!(fault, Fault::KillPrimaryWaiting).then_some(500),
        ..Knobs::default()
    };
    let injector = tokio::task::spawn_blocking(move || {
        std::thread::sleep(Duration::from_millis(1_500));
        let (took, setup) = act();
        eprintln!("fault applied in {took:?}");
        setup
    });
    let report = run_redis(&scenario, &knobs, &db.url(), &child_command)
        .await
        .unwrap_or_else(|e| panic!("{store} run of {}: {e}", scenario.name));
    drop(injector.await.expect("the fault was applied"));
    Row {
        store: store.to_owned(),
        scenario,
        report,
    }
}

/// A cluster primary SIGKILLed mid-run, then failed over (invalidations waiting for a replica
/// or not); slots resharded mid-run; a primary behind Sentinel SIGKILLed mid-run. Calls go on (degraded while the primary changes and
/// the slots move), no call fails, no read is stale.
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
        under_fault(plain(), Fault::KillPrimaryWaiting, "cluster-kill-wait").await,
        under_fault(plain(), Fault::Reshard, "cluster-reshard").await,
        under_fault(plain(), Fault::SentinelFailover, "sentinel-kill").await,
    ];
    for row in &rows {
        assert_eq!(row.report.errors, 0, "{}: calls failed", row.store);
    }
    verdict(&rows);
}
