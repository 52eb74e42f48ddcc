//! Shared test fixture: a cache on a real `redis-server` (one per test) or on the memory
//! store, and the means to tamper with its storage from outside.
#![allow(dead_code)]

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
        }
    }

    /// Another handle on the same storage, with its own connection (a second process).
    pub fn second_handle(&self) -> Cache {
        match &self.server {
            Some(s) => Cache::redis(&s.url()).expect("valid url"),
            None => self.cache.clone(),
        }
    }

    /// Drops the version key of `tag`, as `allkeys-lru` eviction would.
    pub fn evict_tag(&self, tag: &str) {
        match &self.server {
            Some(s) => {
                let n: u64 = s.cmd(&["DEL", &self.cache.tag_key(tag)]);
                assert_eq!(n, 1, "the tag key existed before the eviction");
            }
            None => assert!(testing::memory_evict_tag(&self.cache, tag)),
        }
    }

    /// Writes raw bytes at the entry for `body`. On Redis, an envelope (`{"v":1,"tags":[...`)
    /// is planted as cachette stores one: under the server's epoch (the tag `#epoch`, see
    /// ARCHITECTURE.md), which the cache's first connection creates.
    pub async fn plant(&self, body: &str, bytes: &[u8]) {
        let full = self.cache.full_key(body);
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

/// Declares each `suite::NAME(Fixture)` test three times, in `mod on_redis`, `mod on_memory`
/// and `mod on_near` (Redis with a strict near cache),
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
    };
}
#[allow(unused_imports)]
pub(crate) use both_backends;
