//! The contenders of the hit benches, shared by the timing benches and `hit_allocs`: each is a
//! function of an id that returns (and checks) the cached `User`.

use super::{Svc, User, compute};
use cached::macros::{cached, concurrent_cached};
use redis::AsyncCommands;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The server's URL, for the `create` blocks of the `cached` crate's stores.
pub static REDIS_URL: OnceLock<String> = OnceLock::new();

#[derive(Debug)]
pub struct StoreError(#[allow(dead_code)] String);

#[concurrent_cached(
    map_error = r##"|e| StoreError(format!("{e:?}"))"##,
    ty = "cached::AsyncRedisCache<u64, User>",
    create = r##"{
        cached::AsyncRedisCache::builder("hit")
            .ttl(Duration::from_secs(3600))
            .connection_string(REDIS_URL.get().expect("server started"))
            .build()
            .await
            .expect("the cached crate's AsyncRedisCache")
    }"##
)]
pub async fn cached_crate_redis_user(id: u64) -> Result<User, StoreError> {
    Ok(compute(id))
}

#[concurrent_cached(
    map_error = r##"|e| StoreError(format!("{e:?}"))"##,
    ty = "cached::AsyncRedisCache<u64, User>",
    create = r##"{
        cached::AsyncRedisCache::builder("miss")
            .ttl(Duration::from_secs(3600))
            .connection_string(REDIS_URL.get().expect("server started"))
            .build()
            .await
            .expect("the cached crate's AsyncRedisCache")
    }"##
)]
pub async fn cached_crate_redis_miss(id: u64) -> Result<User, StoreError> {
    Ok(compute(id))
}

/// The `cached` crate's default in-memory store (`#[cached]` on an `async fn`).
#[cached]
pub async fn cached_crate_mem_user(id: u64) -> User {
    compute(id)
}

/// The `cached` crate's sharded, concurrent in-memory store.
#[concurrent_cached]
pub async fn cached_crate_concurrent_mem_user(id: u64) -> User {
    compute(id)
}

/// Redis contenders: cachette on the bench server, and one multiplexed connection for the raw
/// `GET`s.
#[derive(Clone)]
pub struct RedisContenders {
    pub svc: Arc<Svc>,
    /// cachette with a single Redis connection.
    pub svc_1conn: Arc<Svc>,
    /// Configured as cachette configures its own (for `REDIS_LAYERS`).
    pub cm: redis::aio::ConnectionManager,
    pub raw: redis::aio::MultiplexedConnection,
}

/// The Redis hit benches, by name.
pub const REDIS_HITS: [&str; 6] = [
    "raw_get",
    "cached_crate",
    "cachette_0_tags",
    "cachette_1_tag",
    "cachette_2_tags",
    "cachette_4_tags",
];

/// More baselines, for the cost breakdown of `hit_costs`: what the client layers cachette
/// uses cost by themselves. `raw_pipe`: the `GET` as a one-command pipeline (as cachette sends
/// it); `raw_cm`: the same through a `ConnectionManager` configured as cachette's (no retries,
/// 200 ms response timeout); `raw_cm_timeout`: that, inside `tokio::time::timeout` as cachette
/// bounds every round trip; `cachette_0_tags_1conn`: cachette with one connection (the default
/// is `cachette::CacheBuilder::DEFAULT_REDIS_CONNECTIONS`, used round-robin), as many as the raw baselines.
pub const REDIS_LAYERS: [&str; 4] = [
    "raw_pipe",
    "raw_cm",
    "raw_cm_timeout",
    "cachette_0_tags_1conn",
];

impl RedisContenders {
    pub async fn connect(url: &str) -> RedisContenders {
        let cache = cachette::Cache::builder()
            .redis(url)
            .namespace("bench")
            .build()
            .expect("cachette on the bench server");
        let client = redis::Client::open(url).expect("url");
        let raw = client
            .get_multiplexed_async_connection()
            .await
            .expect("a multiplexed connection");
        let cfg = redis::aio::ConnectionManagerConfig::new()
            .set_number_of_retries(0)
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_millis(200)));
        let cm = redis::aio::ConnectionManager::new_with_config(client.clone(), cfg)
            .await
            .expect("cm");
        let one = cachette::Cache::builder()
            .redis(url)
            .namespace("bench")
            .redis_connections(1)
            .build()
            .expect("cachette on one connection");
        RedisContenders {
            svc_1conn: Arc::new(Svc { cache: one }),
            cm,
            svc: Arc::new(Svc { cache }),
            raw,
        }
    }

    pub async fn prefill(&self) {
        // cachette first: the raw GET reads its entries.
        super::prefill(self, REDIS_HITS.iter().rev().copied()).await;
    }
}

/// A one-`GET` pipeline (as cachette sent its lookups before `MGET`) of the entry cachette
/// stored for `id`, on `conn`.
async fn pipelined_get<C: redis::aio::ConnectionLike>(conn: &mut C, id: u64) -> Option<Vec<u8>> {
    let (b,): (Option<Vec<u8>>,) = redis::pipe()
        .get(format!("bench:t0:{id}"))
        .query_async(conn)
        .await
        .expect("GET");
    b
}

impl super::Contenders for RedisContenders {
    async fn run(&self, which: &'static str, id: u64) {
        let u = match which {
            "raw_get" => {
                // The bytes cachette stored for this id (the same value, its envelope).
                let mut conn = self.raw.clone();
                let bytes: Option<Vec<u8>> = conn.get(format!("bench:t0:{id}")).await.expect("GET");
                assert!(bytes.is_some(), "raw GET of a filled key");
                return;
            }
            "raw_pipe" => {
                assert!(pipelined_get(&mut self.raw.clone(), id).await.is_some());
                return;
            }
            "raw_cm" => {
                assert!(pipelined_get(&mut self.cm.clone(), id).await.is_some());
                return;
            }
            "raw_cm_timeout" => {
                let mut conn = self.cm.clone();
                let b =
                    tokio::time::timeout(Duration::from_millis(200), pipelined_get(&mut conn, id))
                        .await
                        .expect("t");
                assert!(b.is_some());
                return;
            }
            "cached_crate" => cached_crate_redis_user(id).await.expect("cached crate"),
            "cachette_0_tags" => self.svc.user_t0(id).await,
            "cachette_0_tags_1conn" => self.svc_1conn.user_t0(id).await,
            "cachette_1_tag" => self.svc.user_t1(id).await,
            "cachette_2_tags" => self.svc.user_t2(id).await,
            "cachette_4_tags" => self.svc.user_t4(id).await,
            other => panic!("no contender {other}"),
        };
        debug_assert_eq!(u.id, id);
    }
}

/// In-memory contenders: cachette's embedded store, a raw moka cache and a raw quick_cache.
#[derive(Clone)]
pub struct MemoryContenders {
    pub svc: Arc<Svc>,
    pub moka: moka::future::Cache<u64, User>,
    pub quick: Arc<quick_cache::sync::Cache<u64, User>>,
}

/// The memory hit benches, by name.
pub const MEMORY_HITS: [&str; 6] = [
    "moka_get_with",
    "quick_cache_get_or_insert",
    "cached_crate",
    "cached_crate_concurrent",
    "cachette_0_tags",
    "cachette_2_tags",
];

impl MemoryContenders {
    pub fn new() -> MemoryContenders {
        MemoryContenders {
            svc: Arc::new(Svc {
                cache: cachette::Cache::memory(256 << 20),
            }),
            moka: moka::future::Cache::builder().max_capacity(100_000).build(),
            quick: Arc::new(quick_cache::sync::Cache::new(100_000)),
        }
    }

    pub async fn prefill(&self) {
        super::prefill(self, MEMORY_HITS).await;
    }
}

impl super::Contenders for MemoryContenders {
    async fn run(&self, which: &'static str, id: u64) {
        let u = match which {
            "moka_get_with" => self.moka.get_with(id, async move { compute(id) }).await,
            "quick_cache_get_or_insert" => self
                .quick
                .get_or_insert_with(&id, || Ok::<_, std::convert::Infallible>(compute(id)))
                .unwrap_or_else(|never| match never {}),
            "cached_crate" => cached_crate_mem_user(id).await,
            "cached_crate_concurrent" => cached_crate_concurrent_mem_user(id).await,
            "cachette_0_tags" => self.svc.user_t0(id).await,
            "cachette_2_tags" => self.svc.user_t2(id).await,
            other => panic!("no contender {other}"),
        };
        debug_assert_eq!(u.id, id);
    }
}
