//! The Redis run across OS processes: the parent runs the writers, `knobs.children` child
//! processes (the same binary, re-executed by the caller's command) run the readers, all on
//! one `redis-server` (the caches on a Redis Cluster or behind Sentinel instead, as
//! `knobs.deployment` says; the checker's database stays on the server). The parent hands each child a [`ChildSpec`] (JSON), counts the
//! children in (`<prefix>:ready`), starts them together (`<prefix>:go`), and reads back each
//! child's report, printed as one line starting with [`REPORT_PREFIX`].

use super::Ctx;
use super::db::Db;
use super::report::Report;
use super::run::{Role, run_tasks};
use super::scenario::{Deployment, Knobs, Near, Scenario};
use cachette::Cache;
use serde::{Deserialize, Serialize};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Marks the report line in a child's standard output.
pub const REPORT_PREFIX: &str = "FRESHNESS-REPORT ";
/// How long the parent waits for its children to be ready, and a child for the start.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// What a child process needs to run its readers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChildSpec {
    pub url: String,
    pub prefix: String,
    pub namespace: String,
    pub scenario: Scenario,
    pub knobs: Knobs,
    pub process: u32,
}

impl ChildSpec {
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("a child spec serializes")
    }

    pub fn decode(s: &str) -> Result<ChildSpec, String> {
        serde_json::from_str(s).map_err(|e| format!("bad child spec {s:?}: {e}"))
    }
}

/// The line a child prints for the parent.
pub fn report_line(report: &Report) -> String {
    let json = serde_json::to_string(report).expect("a report serializes");
    format!("{REPORT_PREFIX}{json}")
}

fn redis_cache(url: &str, namespace: &str, knobs: &Knobs) -> Cache {
    let builder = match &knobs.deployment {
        Deployment::Server => Cache::builder().redis(url),
        Deployment::Cluster(seeds) => Cache::builder().redis_cluster(seeds.iter().cloned()),
        Deployment::Sentinel { master, sentinels } => {
            Cache::builder().redis_sentinel(master, sentinels.iter().cloned())
        }
    };
    let builder = builder
        .namespace(namespace)
        .op_timeout(Duration::from_secs(1));
    let builder = match knobs.wait_replicas_ms {
        Some(ms) => builder.wait_for_replicas(1, Duration::from_millis(ms)),
        None => builder,
    };
    let builder = match knobs.near {
        Near::Off => builder,
        Near::Strict => builder.near_cache(16 << 20),
        Near::Bounded(ms) => builder
            .near_cache(16 << 20)
            .near_max_staleness(Duration::from_millis(ms)),
    };
    builder.build().expect("a valid redis cache configuration")
}

fn run_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() % 100_000_000)
        .unwrap_or(0);
    format!("{secs}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

async fn redis_cmd<T: redis::FromRedisValue>(db: &Db, args: &[&str]) -> T {
    let mut con = db.redis_connection().expect("a redis database");
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(&mut con)
        .await
        .unwrap_or_else(|e| panic!("checker start signal {args:?} failed: {e}"))
}

/// One scenario on Redis at `url`; `command(spec)` builds the command of one child process
/// (the caller's binary in child mode, given the encoded spec).
pub async fn run_redis(
    scenario: &Scenario,
    knobs: &Knobs,
    url: &str,
    command: &dyn Fn(&str) -> Command,
) -> Result<Report, String> {
    let run = run_id();
    let prefix = format!("chk:{}:{run}", scenario.name);
    let namespace = format!("fr-{}-{run}", scenario.name);
    let db = Db::redis(url, &prefix).await;
    let cache = redis_cache(url, &namespace, knobs);
    cache.connect().await.map_err(|e| format!("parent: {e}"))?;
    let mut children = Vec::new();
    for process in 1..=knobs.children {
        let spec = ChildSpec {
            url: url.to_owned(),
            prefix: prefix.clone(),
            namespace: namespace.clone(),
            scenario: scenario.clone(),
            knobs: knobs.clone(),
            process,
        };
        let child = command(&spec.encode())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot spawn a child process: {e}"));
        match child {
            Ok(c) => children.push(c),
            Err(e) => {
                let _ = collect(children, true).await;
                return Err(e);
            }
        }
    }
    let ready_key = format!("{prefix}:ready");
    let deadline = Instant::now() + START_TIMEOUT;
    while redis_cmd::<Option<u32>>(&db, &["GET", &ready_key])
        .await
        .unwrap_or(0)
        < knobs.children
    {
        if Instant::now() > deadline {
            let why = collect(children, true).await.err().unwrap_or_default();
            return Err(format!("children not ready after {START_TIMEOUT:?}: {why}"));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    redis_cmd::<()>(&db, &["SET", &format!("{prefix}:go"), "1"]).await;
    let ctx = Ctx::new(cache, db, scenario, knobs, 0);
    let mut report = run_tasks(Arc::new(ctx), Role::Writers).await;
    for child in collect(children, false).await? {
        report.merge(child);
    }
    Ok(report)
}

/// Waits for the children (killing them first with `kill`) and parses their reports.
async fn collect(children: Vec<Child>, kill: bool) -> Result<Vec<Report>, String> {
    let mut reports = Vec::new();
    let mut failures = String::new();
    for mut child in children {
        if kill {
            let _ = child.kill();
        }
        let out = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .map_err(|e| format!("waiting for a child: {e}"))?
            .map_err(|e| format!("waiting for a child: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        // The test harness may print on the same line before the report.
        let line = stdout
            .lines()
            .find_map(|l| l.split_once(REPORT_PREFIX).map(|(_, json)| json));
        match line.map(serde_json::from_str::<Report>) {
            Some(Ok(r)) if out.status.success() => reports.push(r),
            _ => {
                let stderr = String::from_utf8_lossy(&out.stderr);
                failures += &format!("\nchild failed ({}):\n{stdout}\n{stderr}", out.status);
            }
        }
    }
    if failures.is_empty() {
        Ok(reports)
    } else {
        Err(failures)
    }
}

/// The body of a child process: signals it is ready, waits for the start, runs its readers
/// and returns its report (print it with [`report_line`]).
pub async fn run_child(spec: &ChildSpec) -> Report {
    let cache = redis_cache(&spec.url, &spec.namespace, &spec.knobs);
    cache.connect().await.expect("child: the cache connects");
    let db = Db::redis(&spec.url, &spec.prefix).await;
    redis_cmd::<u32>(&db, &["INCR", &format!("{}:ready", spec.prefix)]).await;
    let go = format!("{}:go", spec.prefix);
    let deadline = Instant::now() + START_TIMEOUT;
    while redis_cmd::<Option<u32>>(&db, &["GET", &go]).await.is_none() {
        assert!(Instant::now() < deadline, "child: no start signal");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let ctx = Ctx::new(cache, db, &spec.scenario, &spec.knobs, spec.process);
    run_tasks(Arc::new(ctx), Role::Readers).await
}
