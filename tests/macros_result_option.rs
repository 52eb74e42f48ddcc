//! `#[cached]` on `-> Result<Option<T>, E>` (issue 13): `Ok(None)` is treated as `None` is on
//! `-> Option<T>`: not stored without `cache_none`, stored with it, for its own TTL with
//! `cache_none(ttl = ...)`; `Ok(Some)` is stored for the call's TTL, `Err` never. End to end
//! through the macro, on Redis and on the memory store, with a manual clock.

#[path = "support/redis_server.rs"]
mod redis_server;

use cachette::clock::ManualClock;
use cachette::{Cache, CacheBuilder, cached};
use redis_server::RedisServer;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
struct DbError;

struct Repo {
    cache: Cache,
    calls: AtomicUsize,
}

/// Id 0 fails, odd ids exist, even ids do not.
fn find(id: u64) -> Result<Option<String>, DbError> {
    match id {
        0 => Err(DbError),
        id if id % 2 == 1 => Ok(Some(format!("user {id}"))),
        _ => Ok(None),
    }
}

impl Repo {
    fn count(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    #[cached(key = "plain:{id}", ttl = "10m", cache = self.cache)]
    async fn plain(&self, id: u64) -> Result<Option<String>, DbError> {
        self.count();
        find(id)
    }

    #[cached(key = "neg:{id}", ttl = "10m", cache_none, cache = self.cache)]
    async fn negative(&self, id: u64) -> Result<Option<String>, DbError> {
        self.count();
        find(id)
    }

    #[cached(key = "neg-ttl:{id}", ttl = "10m", cache_none(ttl = "30s"), cache = self.cache)]
    async fn negative_ttl(&self, id: u64) -> Result<Option<String>, DbError> {
        self.count();
        find(id)
    }

    /// A path to `Result` and `Option`, as some code writes them.
    #[cached(key = "paths:{id}", ttl = "10m", cache_none(ttl = "30s"), cache = self.cache)]
    async fn paths(&self, id: u64) -> std::result::Result<std::option::Option<String>, DbError> {
        self.count();
        find(id)
    }
}

struct Fx {
    repo: Repo,
    clock: Arc<ManualClock>,
    _server: Option<RedisServer>,
}

fn fx(redis: bool) -> Fx {
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let server = redis.then(RedisServer::start);
    let builder = match &server {
        Some(s) => CacheBuilder::new().redis(s.url()),
        None => CacheBuilder::new().memory(1 << 24),
    };
    let cache = builder
        .clock(clock.clone())
        .jitter(0.0)
        .early_refresh(None)
        .build()
        .unwrap();
    Fx {
        repo: Repo {
            cache,
            calls: AtomicUsize::new(0),
        },
        clock,
        _server: server,
    }
}

/// Without `cache_none`: `Ok(None)` is computed on every call, as `None` is for `Option<T>`.
async fn ok_none_not_stored_without_cache_none(redis: bool) {
    let f = fx(redis);
    let r = &f.repo;
    assert_eq!(r.plain(2).await, Ok(None));
    assert_eq!(r.plain(2).await, Ok(None));
    assert_eq!(r.calls(), 2, "Ok(None) is not stored without cache_none");
    assert!(!r.cache.exists("plain:2").await.unwrap());

    assert_eq!(r.plain(1).await, Ok(Some("user 1".to_owned())));
    assert_eq!(r.plain(1).await, Ok(Some("user 1".to_owned())));
    assert_eq!(r.calls(), 3, "Ok(Some) is stored");

    assert_eq!(r.plain(0).await, Err(DbError));
    assert_eq!(r.plain(0).await, Err(DbError));
    assert_eq!(r.calls(), 5, "Err is never stored");
}

/// With `cache_none`: `Ok(None)` is stored, for the call's TTL.
async fn ok_none_stored_with_cache_none(redis: bool) {
    let f = fx(redis);
    let r = &f.repo;
    assert_eq!(r.negative(2).await, Ok(None));
    assert_eq!(r.negative(2).await, Ok(None));
    assert_eq!(r.calls(), 1, "Ok(None) is stored with cache_none");
    assert!(r.cache.exists("neg:2").await.unwrap());
    f.clock.advance(Duration::from_secs(9 * 60));
    assert_eq!(r.negative(2).await, Ok(None));
    assert_eq!(r.calls(), 1, "for the call's TTL");

    assert_eq!(r.negative(0).await, Err(DbError));
    assert_eq!(r.negative(0).await, Err(DbError));
    assert_eq!(r.calls(), 3, "Err is never stored");
}

/// With `cache_none(ttl = "30s")`: `Ok(None)` lives 30 s, `Ok(Some)` the call's 10 minutes.
async fn ok_none_has_its_own_ttl(redis: bool) {
    let f = fx(redis);
    let r = &f.repo;
    for (name, call) in [("neg-ttl", 0), ("paths", 1)] {
        let get = |id| async move {
            if call == 0 {
                r.negative_ttl(id).await
            } else {
                r.paths(id).await
            }
        };
        let before = r.calls();
        assert_eq!(get(2).await, Ok(None));
        assert_eq!(get(3).await, Ok(Some("user 3".to_owned())));
        assert_eq!(get(2).await, Ok(None));
        assert_eq!(get(3).await, Ok(Some("user 3".to_owned())));
        assert_eq!(r.calls(), before + 2, "{name}: both stored");
        f.clock.advance(Duration::from_secs(31));
        assert_eq!(get(2).await, Ok(None));
        assert_eq!(
            r.calls(),
            before + 3,
            "{name}: Ok(None) expired after its 30 s"
        );
        assert_eq!(get(3).await, Ok(Some("user 3".to_owned())));
        assert_eq!(r.calls(), before + 3, "{name}: Ok(Some) still fresh");
    }
}

macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod redis {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(true).await;
                }
            )*
        }
        mod memory {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(false).await;
                }
            )*
        }
    };
}

on_both_backends!(
    ok_none_not_stored_without_cache_none,
    ok_none_stored_with_cache_none,
    ok_none_has_its_own_ttl,
);
