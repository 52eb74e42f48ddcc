//! Freshness checker, long runs: the engine of `tests/freshness.rs` (see
//! `tests/support/freshness/mod.rs` for how a stale read is decided) for as long as you like.
//!
//! ```text
//! cargo run --release --example freshness -- [--seconds 30]
//!     [--store both|all|memory|redis|near|near-b|cluster] [--near-bound-ms 20]
//!     [--scenario all|plain|no_single_flight|stale|stale_if_error|early_refresh|lock|jitter|canary]
//!     [--kinds tags,key,pattern,set] [--redis-url redis://127.0.0.1:6379/]
//!     [--records 4] [--readers 32] [--writers 2] [--children 2]
//!     [--compute-ms 30] [--think-ms 4] [--writer-pause-ms 20]
//! ```
//!
//! `--store`: `both` is memory and redis, `all` adds `near` (Redis with a strict near cache),
//! `near-b` (a bounded one, `--near-bound-ms`; a read missing only invalidations that
//! returned within the bound before it began is counted as late, not stale) and `cluster`
//! (the caches on a throw-away Redis Cluster of 3 primaries and 3 replicas, the checker's
//! database on its own `redis-server`). `--seconds` is
//! per scenario. Without `--redis-url` the Redis runs start their own
//! throw-away `redis-server` on a free loopback port (the test harness); with it, they use
//! that server under the keys `chk:*` and the namespaces `fr-*` (nothing is flushed). Reader
//! processes are this binary re-executed with `--child <spec>`. A one-second canary (writers
//! that never invalidate) runs first on each store and must show stale reads. Prints one
//! table; exits with 1 if a scenario had a stale read or did not race, 2 if the canary saw
//! nothing.

#[path = "../tests/support/freshness/mod.rs"]
mod freshness;
#[path = "../tests/support/redis_cluster.rs"]
mod redis_cluster;
#[path = "../tests/support/redis_server.rs"]
mod redis_server;

use freshness::processes::{ChildSpec, report_line, run_child, run_redis};
use freshness::run::run_memory;
use freshness::scenario::{Deployment, Kind, Knobs, Near, Scenario};
use freshness::table::{Row, not_raced, render};
use std::process::{Command, ExitCode};

struct Args {
    knobs: Knobs,
    stores: Vec<String>,
    scenario: String,
    kinds: Option<Vec<Kind>>,
    redis_url: Option<String>,
    near_bound_ms: u64,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        knobs: Knobs {
            millis: 30_000,
            ..Knobs::default()
        },
        stores: vec!["memory".into(), "redis".into()],
        scenario: "all".into(),
        kinds: None,
        redis_url: None,
        near_bound_ms: 20,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = || {
            value
                .parse::<u64>()
                .map_err(|e| format!("{flag} {value}: {e}"))
        };
        let k = &mut a.knobs;
        match flag.as_str() {
            "--seconds" => k.millis = num()? * 1000,
            "--records" => k.records = num()? as u32,
            "--readers" => k.readers = num()? as u32,
            "--writers" => k.writers = num()? as u32,
            "--children" => k.children = num()? as u32,
            "--compute-ms" => k.compute_max_ms = num()?,
            "--think-ms" => k.think_max_ms = num()?,
            "--writer-pause-ms" => k.writer_pause_max_ms = num()?,
            "--store" if value == "both" => {}
            "--store" if value == "all" => {
                a.stores = ["memory", "redis", "near", "near-b", "cluster"]
                    .map(String::from)
                    .to_vec();
            }
            "--store"
                if ["redis", "memory", "near", "near-b", "cluster"].contains(&value.as_str()) =>
            {
                a.stores = vec![value];
            }
            "--store" => {
                return Err(format!(
                    "--store {value}: both, all, memory, redis, near, near-b or cluster"
                ));
            }
            "--near-bound-ms" => a.near_bound_ms = num()?,
            "--scenario" => a.scenario = value,
            "--redis-url" => a.redis_url = Some(value),
            "--kinds" => {
                let kinds = value.split(',').map(|s| Kind::parse(s.trim()));
                let kinds: Option<Vec<Kind>> = kinds.collect();
                a.kinds = Some(kinds.ok_or(format!("--kinds {value}: tags,key,pattern,set"))?);
            }
            _ => return Err(format!("unknown flag {flag} (see the top of the file)")),
        }
    }
    if a.knobs.records == 0 || a.knobs.writers == 0 || a.knobs.records < a.knobs.writers {
        return Err("need records >= writers >= 1".into());
    }
    Ok(a)
}

fn scenarios(args: &Args) -> Result<Vec<Scenario>, String> {
    let mut chosen: Vec<Scenario> = Scenario::all()
        .into_iter()
        .filter(|s| args.scenario == "all" || s.name == args.scenario)
        .collect();
    if let Some(kinds) = &args.kinds {
        chosen.iter_mut().for_each(|s| s.kinds = kinds.clone());
    }
    if chosen.is_empty() && args.scenario != "canary" {
        return Err(format!("unknown scenario {}", args.scenario));
    }
    Ok(chosen)
}

fn child_command(spec: &str) -> Command {
    let exe = std::env::current_exe().expect("this example's path");
    let mut cmd = Command::new(exe);
    cmd.args(["--child", spec]);
    cmd
}

async fn run_store(
    store: &str,
    runs: &[(Scenario, Knobs)],
    url: Option<&str>,
    bound_ms: u64,
) -> Vec<Row> {
    let near = match store {
        "near" => Near::Strict,
        "near-b" => Near::Bounded(bound_ms),
        _ => Near::Off,
    };
    let on_redis = store != "memory";
    // The cluster's caches keep the checker's database on a server of its own.
    let own =
        (on_redis && (url.is_none() || store == "cluster")).then(redis_server::RedisServer::start);
    let cluster = (store == "cluster").then(redis_cluster::RedisCluster::start);
    let deployment = cluster
        .as_ref()
        .map_or(Deployment::Server, |c| Deployment::Cluster(c.urls()));
    let url = match &own {
        Some(server) => Some(server.url()),
        None => url.filter(|_| on_redis).map(str::to_owned),
    };
    let mut rows = Vec::new();
    for (scenario, knobs) in runs {
        let knobs = &Knobs {
            near,
            deployment: deployment.clone(),
            ..knobs.clone()
        };
        eprintln!("{store}/{}: {} ms", scenario.name, knobs.millis);
        let report = match &url {
            Some(url) => run_redis(scenario, knobs, url, &child_command)
                .await
                .unwrap_or_else(|e| panic!("redis run of {}: {e}", scenario.name)),
            None => run_memory(scenario, knobs).await,
        };
        rows.push(Row {
            store: store.to_owned(),
            scenario: scenario.clone(),
            report,
        });
    }
    rows
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let mut raw = std::env::args().skip(1);
    if raw.next().as_deref() == Some("--child") {
        let spec = raw.next().expect("--child needs a spec");
        let spec = ChildSpec::decode(&spec).expect("the parent's child spec decodes");
        println!("{}", report_line(&run_child(&spec).await));
        return ExitCode::SUCCESS;
    }
    let args = match parse().and_then(|a| scenarios(&a).map(|s| (a, s))) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("freshness: {e}");
            return ExitCode::from(64);
        }
    };
    let (args, chosen) = args;
    let canary_knobs = Knobs {
        millis: args.knobs.millis.min(1_000),
        ..args.knobs.clone()
    };
    let runs: Vec<(Scenario, Knobs)> = std::iter::once((Scenario::canary(), canary_knobs))
        .chain(chosen.into_iter().map(|s| (s, args.knobs.clone())))
        .collect();
    let mut rows = Vec::new();
    for store in &args.stores {
        let url = args.redis_url.as_deref();
        rows.extend(run_store(store, &runs, url, args.near_bound_ms).await);
    }
    println!("{}", render(&rows));
    let (canaries, others): (Vec<&Row>, Vec<&Row>) =
        rows.iter().partition(|r| r.scenario.name == "canary");
    if canaries.iter().any(|c| c.report.stale == 0) {
        println!("the canary saw no stale read: the checker is blind here");
        return ExitCode::from(2);
    }
    let idle: Vec<String> = others.iter().flat_map(|r| not_raced(r)).collect();
    idle.iter().for_each(|m| println!("did not race: {m}"));
    if !idle.is_empty() || others.iter().any(|r| r.report.stale > 0) {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
