//! The "database" behind the cache, and the fences: one integer version per record, raised
//! by every write, and per record the highest version whose invalidation has returned `Ok`
//! ("fenced"), with the kind of that invalidation.
//!
//! For cross-process runs both live in the test's `redis-server` under `<prefix>:…`, outside
//! the cache's namespace; for memory runs, in atomics. Failures of the checker's own database
//! panic: they are the harness's, not the cache's.

use super::scenario::Kind;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Raises the fence of a record to ARGV[1] if it is higher, and records ARGV[2] as the kind
/// of the invalidation that fenced ARGV[1] and ARGV[3] as when it returned. KEYS: fence,
/// kinds, times (hashes by version).
const FENCE_SCRIPT: &str = r"
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > cur then redis.call('SET', KEYS[1], ARGV[1]) end
return 0";

#[derive(Clone)]
pub enum Db {
    Memory(Arc<MemoryDb>),
    Redis(RedisDb),
}

pub struct MemoryDb {
    versions: Vec<AtomicU64>,
    fences: Vec<AtomicU64>,
    kinds: Mutex<HashMap<(u32, u64), Kind>>,
}

/// Microseconds of the system clock: when an invalidation returned and a read began, compared
/// across the processes of one machine (bounded near-cache runs only).
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

#[derive(Clone)]
pub struct RedisDb {
    con: redis::aio::MultiplexedConnection,
    prefix: String,
}

fn must<T>(r: redis::RedisResult<T>, what: &str) -> T {
    r.unwrap_or_else(|e| panic!("checker database (redis): {what} failed: {e}"))
}

impl Db {
    pub fn memory(records: u32) -> Db {
        let atomics = || (0..records).map(|_| AtomicU64::new(0)).collect();
        Db::Memory(Arc::new(MemoryDb {
            versions: atomics(),
            fences: atomics(),
            kinds: Mutex::new(HashMap::new()),
        }))
    }

    /// The database of a Redis run: keys `<prefix>:db:<id>`, `<prefix>:fenced:<id>`,
    /// `<prefix>:kind:<id>`, on a connection of its own.
    pub async fn redis(url: &str, prefix: &str) -> Db {
        let client = must(redis::Client::open(url), "open");
        let config = redis::AsyncConnectionConfig::new()
            .set_response_timeout(Some(Duration::from_secs(10)))
            .set_connection_timeout(Some(Duration::from_secs(10)));
        let con = must(
            client
                .get_multiplexed_async_connection_with_config(&config)
                .await,
            "connect",
        );
        Db::Redis(RedisDb {
            con,
            prefix: prefix.to_owned(),
        })
    }

    /// The current version of record `id` (what a computation returns).
    pub async fn read(&self, id: u32) -> u64 {
        match self {
            Db::Memory(m) => m.versions[id as usize].load(Ordering::SeqCst),
            Db::Redis(r) => r.get(&format!("{}:db:{id}", r.prefix)).await,
        }
    }

    /// Writes record `id`: its new version.
    pub async fn write(&self, id: u32) -> u64 {
        match self {
            Db::Memory(m) => m.versions[id as usize].fetch_add(1, Ordering::SeqCst) + 1,
            Db::Redis(r) => {
                let cmd = redis::cmd("INCR")
                    .arg(format!("{}:db:{id}", r.prefix))
                    .to_owned();
                must(cmd.query_async(&mut r.con.clone()).await, "INCR")
            }
        }
    }

    /// The highest version of record `id` whose invalidation has returned.
    pub async fn fenced(&self, id: u32) -> u64 {
        match self {
            Db::Memory(m) => m.fences[id as usize].load(Ordering::SeqCst),
            Db::Redis(r) => r.get(&format!("{}:fenced:{id}", r.prefix)).await,
        }
    }

    /// Publishes that the invalidation (of `kind`) after writing `version` returned `Ok` at
    /// `returned_us` ([`now_us`]).
    pub async fn publish(&self, id: u32, version: u64, kind: Kind, returned_us: u64) {
        match self {
            Db::Memory(m) => {
                m.kinds
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert((id, version), kind);
                m.fences[id as usize].fetch_max(version, Ordering::SeqCst);
            }
            Db::Redis(r) => {
                let cmd = redis::cmd("EVAL")
                    .arg(FENCE_SCRIPT)
                    .arg(3)
                    .arg(format!("{}:fenced:{id}", r.prefix))
                    .arg(format!("{}:kind:{id}", r.prefix))
                    .arg(format!("{}:time:{id}", r.prefix))
                    .arg(version)
                    .arg(kind.index())
                    .arg(returned_us)
                    .to_owned();
                must(cmd.query_async::<()>(&mut r.con.clone()).await, "fence");
            }
        }
    }

    /// The kind of the invalidation that fenced `version` of record `id` (for reports).
    pub async fn fence_kind(&self, id: u32, version: u64) -> Option<Kind> {
        match self {
            Db::Memory(m) => m
                .kinds
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&(id, version))
                .copied(),
            Db::Redis(r) => {
                let cmd = redis::cmd("HGET")
                    .arg(format!("{}:kind:{id}", r.prefix))
                    .arg(version)
                    .to_owned();
                let kind: Option<usize> = must(cmd.query_async(&mut r.con.clone()).await, "HGET");
                kind.map(Kind::from_index)
            }
        }
    }

    /// When the first invalidation of a version in `(returned, fenced]` of record `id`
    /// returned (Redis runs; `None` on the memory store).
    pub async fn first_returned_us(&self, id: u32, returned: u64, fenced: u64) -> Option<u64> {
        let Db::Redis(r) = self else { return None };
        let cmd = redis::cmd("HGETALL")
            .arg(format!("{}:time:{id}", r.prefix))
            .to_owned();
        let times: HashMap<u64, u64> = must(cmd.query_async(&mut r.con.clone()).await, "HGETALL");
        times
            .into_iter()
            .filter(|(v, _)| *v > returned && *v <= fenced)
            .map(|(_, t)| t)
            .min()
    }

    /// The raw connection of a Redis database (for the run's start signals).
    pub fn redis_connection(&self) -> Option<redis::aio::MultiplexedConnection> {
        match self {
            Db::Redis(r) => Some(r.con.clone()),
            Db::Memory(_) => None,
        }
    }
}

impl RedisDb {
    async fn get(&self, key: &str) -> u64 {
        let cmd = redis::cmd("GET").arg(key).to_owned();
        let v: Option<u64> = must(cmd.query_async(&mut self.con.clone()).await, "GET");
        v.unwrap_or(0)
    }
}
