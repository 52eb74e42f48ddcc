//! Shared test fixture: a cache on a real `redis-server` (one per test), on a real Redis
//! Cluster (one per test binary, a namespace per test) or on the memory store, and the means
//! to tamper with its storage from outside.
#![allow(dead_code)]

use super::redis_cluster::RedisCluster;
use super::redis_server::RedisServer;
use cachette::__private::testing;
use cachette::Cache;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A cache under test and the means to tamper with its storage from outside, as `redis-cli`
/// (or an eviction, or another service) would.
pub struct Fixture {
    pub cache: Cache,
    pub server: Option<RedisServer>,
    /// The cluster a cluster fixture runs on, and the namespace its cache has there.
    pub cluster: Option<(&'static RedisCluster, String)>,
}

/// The test binary's Redis Cluster (3 primaries, 3 replicas), started on first use.
pub fn shared_cluster() -> &'static RedisCluster {
    static CLUSTER: std::sync::OnceLock<RedisCluster> = std::sync::OnceLock::new();
    CLUSTER.get_or_init(RedisCluster::start)
}

impl Fixture {
    pub fn redis() -> Fixture {
        Self::redis_with(|b| b)
    }

    pub fn redis_with(f: impl FnOnce(cachette::CacheBuilder) -> cachette::CacheBuilder) -> Fixture {
        let server = RedisServer::start();
        let cache = f(Cache::builder().redis(server.url()))
            .build()
            .expect("valid configuration");
        Fixture {
            cache,
            server: Some(server),
            cluster: None,
        }
    }

    /// A cache on the test binary's cluster, in a namespace of its own.
    pub fn cluster_with(
        f: impl FnOnce(cachette::CacheBuilder) -> cachette::CacheBuilder,
    ) -> Fixture {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let cluster = shared_cluster();
        let namespace = format!("t{}", NEXT.fetch_add(1, Ordering::SeqCst));
        let cache = f(Cache::builder()
            .redis_cluster(cluster.urls())
            .namespace(&namespace))
        .build()
        .expect("valid configuration");
        Fixture {
            cache,
            server: None,
            cluster: Some((cluster, namespace)),
        }
    }

    pub fn memory() -> Fixture {
        Self::memory_with(|b| b)
    }

    pub fn memory_with(
        f: impl FnOnce(cachette::CacheBuilder) -> cachette::CacheBuilder,
    ) -> Fixture {
        let cache = f(Cache::builder().memory(64 * 1024 * 1024))
            .build()
            .expect("valid configuration");
        Fixture {
            cache,
            server: None,
            cluster: None,
        }
    }

    /// Another handle on the same storage, with its own connection (a second process).
    pub fn second_handle(&self) -> Cache {
        match (&self.server, &self.cluster) {
            (Some(s), _) => Cache::redis(&s.url()).expect("valid url"),
            (None, Some((c, ns))) => Cache::builder()
                .redis_cluster(c.urls())
                .namespace(ns)
                .build()
                .expect("valid configuration"),
            (None, None) => self.cache.clone(),
        }
    }

    /// Drops the version key of `tag`, as `allkeys-lru` eviction would.
    pub fn evict_tag(&self, tag: &str) {
        let key = self.cache.tag_key(tag);
        let n: u64 = match (&self.server, &self.cluster) {
            (Some(s), _) => s.cmd(&["DEL", &key]),
            (None, Some((c, _))) => c.server(&c.primary_for_key(&key)).cmd(&["DEL", &key]),
            (None, None) => u64::from(testing::memory_evict_tag(&self.cache, tag)),
        };
        assert_eq!(n, 1, "the tag key existed before the eviction");
    }

    /// Writes raw bytes at the entry for `body`. On Redis, an envelope (`{"v":1,"tags":[...`)
    /// is planted as cachette stores one: under the server's epoch (the tag `#epoch`, see
    /// ARCHITECTURE.md), which the cache's first connection creates; on a cluster, under the
    /// identity of the key's primary.
    pub async fn plant(&self, body: &str, bytes: &[u8]) {
        let full = self.cache.full_key(body);
        if self.cluster.is_some() {
            assert!(testing::cluster_put_raw(&self.cache, &full, bytes.to_vec()).await);
            return;
        }
        match &self.server {
            Some(s) => {
                let mut bytes = bytes.to_vec();
                let head = br#"{"v":1,"tags":["#;
                if bytes.starts_with(head) {
                    self.cache.connect().await.expect("the cache connects");
                    let epoch: String = s.cmd(&["GET", "cachette#epoch"]);
                    let more = if bytes.get(head.len()) == Some(&b']') {
                        ""
                    } else {
                        ","
                    };
                    let tag = format!(r##"["#epoch","{epoch}"]{more}"##);
                    bytes.splice(head.len()..head.len(), tag.into_bytes());
                }
                let mut con = s.connection();
                redis::cmd("SET")
                    .arg(&full)
                    .arg(bytes)
                    .query::<()>(&mut con)
                    .expect("SET");
            }
            None => assert!(testing::memory_put_raw(&self.cache, &full, bytes.to_vec()).await),
        }
    }
}

/// A computation that counts its runs.
#[derive(Clone, Default)]
pub struct Counter(Arc<AtomicUsize>);

impl Counter {
    pub fn runs(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
    pub async fn compute<T>(&self, value: T) -> T {
        self.0.fetch_add(1, Ordering::SeqCst);
        value
    }
}

/// Declares each `suite::NAME(Fixture)` test four times, in `mod on_redis`, `mod on_memory`,
/// `mod on_near` (Redis with a strict near cache) and `mod on_cluster` (a Redis Cluster),
/// on a fixture whose builder `$builder` adjusts: `both_backends!(builder; name, ...)`.
#[allow(unused_macros)]
macro_rules! both_backends {
    ($builder:path; $($name:ident),* $(,)?) => {
        mod on_redis {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    suite::$name(Fixture::redis_with($builder)).await;
                }
            )*
        }
        mod on_memory {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    suite::$name(Fixture::memory_with($builder)).await;
                }
            )*
        }
        /// Redis with a near cache (strict): the same promises.
        mod on_near {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    suite::$name(Fixture::redis_with(|b| $builder(b).near_cache(16 << 20))).await;
                }
            )*
        }
        /// A Redis Cluster (3 primaries, 3 replicas): the same promises.
        mod on_cluster {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    suite::$name(Fixture::cluster_with($builder)).await;
                }
            )*
        }
    };
}
#[allow(unused_imports)]
pub(crate) use both_backends;
