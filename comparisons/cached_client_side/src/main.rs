//! The `cached` crate (4.1.0) Redis store with `client_side_caching(true)` (RESP3 CLIENT
//! TRACKING through redis-rs `cache-aio`) under the workload of `comparisons/workload.rs`;
//! the other side is `examples/near_side_by_side.rs` (cachette). Same output format.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-cmp cargo run --release \
//!     --manifest-path comparisons/cached_client_side/Cargo.toml -- \
//!     [--seconds 10] [--records 16] [--readers 32] [--writers 2] [--think-ms 4]
//!     [--writer-pause-ms 20] [--redis-url redis://127.0.0.1:6379/]
//!     [--contenders cached-csc,cached-plain] [--det-rounds 2000] [--det-wait-ms 20]
//! ```
//!
//! Contenders: `cached-csc` (client-side caching on, the subject) and `cached-plain` (the
//! same store without it, a control). The reader and the writer are two `AsyncRedisCache`
//! instances in this one process, each with its own multiplexed connection (as two
//! processes would have). A read is what `#[cached]` does with a Redis store:
//! `async_cache_get`, and on a miss the database and `async_cache_set`; an invalidation is
//! `async_cache_remove` through the writer.
//!
//! `cached` does not expose the connection, so its client-side hits are estimated from the
//! server: every GET the client does not answer locally reaches Redis as a GET (with a PTTL
//! when client-side caching is on). Reads also make `async_cache_set` (GET + PSETEX) on a
//! miss, and the writer's `async_cache_remove` is GET + DEL, whose GETs may be answered
//! locally too, so local read hits lie between `reads - server GETs` and
//! `reads + sets + removes - server GETs`; the table shows the lower bound, the line after
//! it both.
//!
//! Then the deterministic scenario (`--det-rounds`, 0 to skip; 16 keys at a time): on a
//! fresh key, the reader GETs (a miss), the writer `async_cache_set`s a value, and
//! `--det-wait-ms` after that returned the reader GETs again: counted when it still sees
//! the miss (the old value). Run twice: the SET by the writer instance, then by the reader
//! instance itself.

#[path = "../../../tests/support/redis_server.rs"]
mod redis_server;
#[path = "../../workload.rs"]
mod workload;

use cached::{AsyncRedisCache, ConcurrentCachedAsync};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use workload::{Db, Knobs, Reader, Report, Writer};

const TTL: Duration = Duration::from_secs(60);

struct Args {
    knobs: Knobs,
    redis_url: Option<String>,
    contenders: Vec<String>,
    det_rounds: u64,
    det_wait_ms: u64,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        knobs: Knobs::default(),
        redis_url: None,
        contenders: vec!["cached-csc".into(), "cached-plain".into()],
        det_rounds: 2000,
        det_wait_ms: 20,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        if a.knobs.apply(&flag, &value)? {
            continue;
        }
        let num = || {
            value
                .parse::<u64>()
                .map_err(|e| format!("{flag} {value}: {e}"))
        };
        match flag.as_str() {
            "--redis-url" => a.redis_url = Some(value),
            "--contenders" => a.contenders = value.split(',').map(str::to_owned).collect(),
            "--det-rounds" => a.det_rounds = num()?,
            "--det-wait-ms" => a.det_wait_ms = num()?,
            _ => return Err(format!("unknown flag {flag} (see the top of the file)")),
        }
    }
    Ok(a)
}

async fn build(
    url: &str,
    prefix: &str,
    client_side: bool,
) -> Result<AsyncRedisCache<String, u64>, String> {
    AsyncRedisCache::builder(prefix)
        .connection_string(url)
        .ttl(TTL)
        .client_side_caching(client_side)
        .build()
        .await
        .map_err(|e| format!("building the cached store: {e}"))
}

fn key(id: u32) -> String {
    format!("rec:{id}")
}

struct CachedReader {
    cache: AsyncRedisCache<String, u64>,
    sets: AtomicU64,
}

impl Reader for CachedReader {
    fn read(&self, id: u32, db: &Arc<Db>) -> impl Future<Output = Result<u64, String>> + Send {
        let db = db.clone();
        async move {
            let key = key(id);
            if let Some(v) = self
                .cache
                .async_cache_get(&key)
                .await
                .map_err(|e| e.to_string())?
            {
                return Ok(v);
            }
            let v = db.read(id);
            self.sets.fetch_add(1, Ordering::Relaxed);
            let _previous = self
                .cache
                .async_cache_set(key, v)
                .await
                .map_err(|e| e.to_string())?;
            Ok(v)
        }
    }

    fn local_hits(&self) -> Option<u64> {
        None
    }
}

struct CachedWriter {
    cache: AsyncRedisCache<String, u64>,
    removes: AtomicU64,
}

impl Writer for CachedWriter {
    async fn invalidate(&self, id: u32) -> Result<(), String> {
        self.removes.fetch_add(1, Ordering::Relaxed);
        let _previous = self
            .cache
            .async_cache_remove(&key(id))
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// Per-command call counts (`INFO commandstats`) over a plain connection of our own.
async fn command_calls(url: &str) -> Result<HashMap<String, u64>, String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut con)
        .await
        .map_err(|e| e.to_string())?;
    Ok(redis_server::parse_commandstats(&info))
}

async fn run_contender(name: &str, url: &str, knobs: &Knobs) -> Result<String, String> {
    let client_side = name == "cached-csc";
    let prefix = format!("sbs-{name}-{}", std::process::id());
    let reader = Arc::new(CachedReader {
        cache: build(url, &prefix, client_side).await?,
        sets: AtomicU64::new(0),
    });
    let writer = Arc::new(CachedWriter {
        cache: build(url, &prefix, client_side).await?,
        removes: AtomicU64::new(0),
    });
    let before = command_calls(url).await?;
    let mut report: Report = workload::run(reader.clone(), writer.clone(), knobs, None).await;
    let after = command_calls(url).await?;
    let delta = |c: &str| {
        after
            .get(c)
            .copied()
            .unwrap_or(0)
            .saturating_sub(before.get(c).copied().unwrap_or(0))
    };
    let (gets, pttls) = (delta("get"), delta("pttl"));
    let sets = reader.sets.load(Ordering::Relaxed);
    let removes = writer.removes.load(Ordering::Relaxed);
    let low = report.reads.saturating_sub(gets);
    let high = (report.reads + sets + removes).saturating_sub(gets);
    report.local_hits = Some(low);
    // After the run (writers stopped): what the reader instance answers beside what Redis
    // holds (read through a fresh instance without client-side caching).
    let truth = build(url, &prefix, false).await?;
    let mut differ = Vec::new();
    for id in 0..knobs.records {
        let local = reader
            .cache
            .async_cache_get(&key(id))
            .await
            .map_err(|e| e.to_string())?;
        let server = truth
            .async_cache_get(&key(id))
            .await
            .map_err(|e| e.to_string())?;
        if local != server {
            differ.push(format!("rec:{id} reader {local:?} / Redis {server:?}"));
        }
    }
    eprintln!("{name}: done");
    Ok(format!(
        "{}\n    ({name}: server GETs {gets}, PTTLs {pttls}, sets {sets}, removes {removes}: \
         local read hits between {low} and {high})\n    ({name}: after the run, the reader \
         and Redis differ on {} of {} records{}{})",
        report.line(name),
        differ.len(),
        knobs.records,
        if differ.is_empty() { "" } else { ": " },
        differ.join(", ")
    ))
}

/// The deterministic scenario: GET (miss), the writer's SET, `wait`, GET again. With
/// `same_instance` the reader does the SET itself (one process, as `#[cached]` does).
async fn deterministic(
    url: &str,
    rounds: u64,
    wait: Duration,
    same_instance: bool,
) -> Result<String, String> {
    let prefix = format!("sbs-det-{same_instance}-{}", std::process::id());
    let reader = Arc::new(build(url, &prefix, true).await?);
    let writer = match same_instance {
        true => reader.clone(),
        false => Arc::new(build(url, &prefix, true).await?),
    };
    let old = Arc::new(AtomicU64::new(0));
    let lanes = 16u64;
    let mut tasks = Vec::new();
    for lane in 0..lanes {
        let (reader, writer, old) = (reader.clone(), writer.clone(), old.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = lane;
            while i < rounds {
                let key = format!("det:{i}");
                let first = reader
                    .async_cache_get(&key)
                    .await
                    .map_err(|e| e.to_string())?;
                if first.is_some() {
                    return Err(format!("{key} was not a miss"));
                }
                let _ = writer
                    .async_cache_set(key.clone(), 1)
                    .await
                    .map_err(|e| e.to_string())?;
                tokio::time::sleep(wait).await;
                let second = reader
                    .async_cache_get(&key)
                    .await
                    .map_err(|e| e.to_string())?;
                if second != Some(1) {
                    old.fetch_add(1, Ordering::Relaxed);
                }
                i += lanes;
            }
            Ok::<(), String>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(format!(
        "deterministic (cached-csc): GET miss, {} SET, read {} ms later: old value read {} of {rounds}",
        if same_instance {
            "the reader's own"
        } else {
            "the writer's"
        },
        wait.as_millis(),
        old.load(Ordering::Relaxed)
    ))
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
    let mut lines = Vec::new();
    for name in &args.contenders {
        if !["cached-csc", "cached-plain"].contains(&name.as_str()) {
            return Err(format!(
                "unknown contender {name}: cached-csc or cached-plain"
            ));
        }
        eprintln!("{name}: {} s", args.knobs.seconds);
        lines.push(run_contender(name, &url, &args.knobs).await?);
    }
    println!("{}", Report::header());
    for line in &lines {
        println!("{line}");
    }
    if args.det_rounds > 0 {
        let wait = Duration::from_millis(args.det_wait_ms);
        for same_instance in [false, true] {
            let line = deterministic(&url, args.det_rounds, wait, same_instance).await?;
            println!("{line}");
        }
    }
    Ok(())
}
