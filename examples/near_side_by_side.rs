//! Freshness side by side: cachette without and with its near cache under the workload of
//! `comparisons/workload.rs`, the same file `comparisons/cached_client_side` (the `cached`
//! crate's Redis store with client-side caching) runs; same output format.
//!
//! ```text
//! cargo run --release --example near_side_by_side -- [--seconds 10] [--records 16]
//!     [--readers 32] [--writers 2] [--think-ms 4] [--writer-pause-ms 20]
//!     [--near-bound-ms 20] [--redis-url redis://127.0.0.1:6379/]
//!     [--contenders cachette-redis,cachette-near-strict,cachette-near-bounded,canary]
//! ```
//!
//! Contenders, in sequence, each with a fresh namespace: `cachette-redis` (Redis, no near
//! cache, the control), `cachette-near-strict` (`near_cache(16 MiB)`) and
//! `cachette-near-bounded-<N>ms` (`near_max_staleness(N ms)`; a stale read whose missed
//! invalidations all returned less than N ms before it began is allowed by that contract and
//! counted as `late`). The reader and the writer are two `Cache` instances in this one
//! process (their own connections), built alike. A read is `get_or_compute` of `rec:{id}`
//! tagged `rec:{id}` (TTL 60 s) computing the database's version; an invalidation is
//! `invalidate_tags(["rec:{id}"])` through the writer. `canary` (not run by default) is
//! `cachette-redis` with a writer that never invalidates: it must show stale reads, or the
//! checker is blind. Without `--redis-url` a throw-away `redis-server` is started (the test
//! harness).

#[path = "../tests/support/redis_server.rs"]
mod redis_server;
#[path = "../comparisons/workload.rs"]
mod workload;

use cachette::{Cache, Options};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use workload::{Db, Knobs, Reader, Report, Writer};

const NEAR_BYTES: u64 = 16 << 20;

struct Args {
    knobs: Knobs,
    redis_url: Option<String>,
    near_bound_ms: u64,
    contenders: Vec<String>,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        knobs: Knobs::default(),
        redis_url: None,
        near_bound_ms: 20,
        contenders: [
            "cachette-redis",
            "cachette-near-strict",
            "cachette-near-bounded",
        ]
        .map(String::from)
        .to_vec(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        if a.knobs.apply(&flag, &value)? {
            continue;
        }
        match flag.as_str() {
            "--redis-url" => a.redis_url = Some(value),
            "--near-bound-ms" => {
                a.near_bound_ms = value.parse().map_err(|e| format!("{flag} {value}: {e}"))?;
            }
            "--contenders" => a.contenders = value.split(',').map(str::to_owned).collect(),
            _ => return Err(format!("unknown flag {flag} (see the top of the file)")),
        }
    }
    Ok(a)
}

#[derive(Clone, Copy)]
enum Near {
    Off,
    Strict,
    Bounded(Duration),
}

fn build(url: &str, namespace: &str, near: Near) -> Cache {
    let builder = Cache::builder().redis(url).namespace(namespace);
    let builder = match near {
        Near::Off => builder,
        Near::Strict => builder.near_cache(NEAR_BYTES),
        Near::Bounded(bound) => builder.near_cache(NEAR_BYTES).near_max_staleness(bound),
    };
    builder.build().expect("a valid cachette configuration")
}

fn key(id: u32) -> String {
    format!("rec:{id}")
}

struct CachetteReader(Cache);

impl Reader for CachetteReader {
    fn read(&self, id: u32, db: &Arc<Db>) -> impl Future<Output = Result<u64, String>> + Send {
        let db = db.clone();
        async move {
            let key = key(id);
            let opts = Options::new()
                .tags([key.as_str()])
                .ttl(Duration::from_secs(60));
            Ok(self
                .0
                .get_or_compute(&key, &opts, || async move { db.read(id) })
                .await)
        }
    }

    fn local_hits(&self) -> Option<u64> {
        self.0.near_stats().map(|s| s.hits)
    }
}

/// The writer's instance; `blind`: it never invalidates (the canary).
struct CachetteWriter(Cache, bool);

impl Writer for CachetteWriter {
    async fn invalidate(&self, id: u32) -> Result<(), String> {
        if self.1 {
            return Ok(());
        }
        self.0
            .invalidate_tags([key(id)])
            .await
            .map_err(|e| e.to_string())
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), String> {
    let args = parse()?;
    let own = args
        .redis_url
        .is_none()
        .then(redis_server::RedisServer::start);
    let url = match (&own, &args.redis_url) {
        (Some(server), _) => server.url(),
        (None, Some(url)) => url.clone(),
        (None, None) => unreachable!("a server is started when no URL is given"),
    };
    println!("command: {}", workload::command_line());
    println!("knobs: {:?}", args.knobs);
    let bound = Duration::from_millis(args.near_bound_ms);
    let mut lines = Vec::new();
    for contender in &args.contenders {
        let (name, near) = match contender.as_str() {
            "cachette-redis" | "canary" => (contender.clone(), Near::Off),
            "cachette-near-strict" => (contender.clone(), Near::Strict),
            "cachette-near-bounded" => (
                format!("cachette-near-bounded-{}ms", args.near_bound_ms),
                Near::Bounded(bound),
            ),
            other => {
                return Err(format!(
                    "unknown contender {other}: cachette-redis, cachette-near-strict, \
                     cachette-near-bounded or canary"
                ));
            }
        };
        eprintln!("{name}: {} s", args.knobs.seconds);
        let namespace = format!("sbs-{name}-{}", std::process::id());
        let reader = Arc::new(CachetteReader(build(&url, &namespace, near)));
        let blind = contender == "canary";
        let writer = Arc::new(CachetteWriter(build(&url, &namespace, near), blind));
        let late_bound = match near {
            Near::Bounded(b) => Some(b),
            Near::Off | Near::Strict => None,
        };
        let report = workload::run(reader.clone(), writer, &args.knobs, late_bound).await;
        let stats = reader.0.near_stats();
        lines.push(format!(
            "{}{}",
            report.line(&name),
            stats.map_or_else(String::new, |s| format!("\n    ({name}: near stats {s:?})"))
        ));
    }
    println!("{}", Report::header());
    for line in &lines {
        println!("{line}");
    }
    Ok(())
}
