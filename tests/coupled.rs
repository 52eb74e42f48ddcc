//! Writers coupled to the cached call whose entry they fill or evict: `#[cache_put(call)]`,
//! `#[invalidates(calls = [...])]` and `cachette::put`, each scenario on a real `redis-server`
//! (one per test) and on the memory store. The readers' bodies count their runs, so a hit is
//! a body that did not run.

#[path = "support/fixture.rs"]
mod fixture;
#[path = "support/redis_cluster.rs"]
mod redis_cluster;
#[path = "support/redis_server.rs"]
mod redis_server;

use cachette::clock::ManualClock;
use cachette::{Cache, CacheBuilder, CallError, cache_put, cached, invalidates};
use fixture::Fixture;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
}

#[derive(Debug, PartialEq)]
struct DbError;

/// A reader's computation that stops half-way: `started` is notified once it has read the
/// database, and it waits for `release` before returning.
#[derive(Default)]
struct Gate {
    armed: AtomicBool,
    started: Notify,
    release: Notify,
}

/// The "database" behind the cache, and the readers and writers of one service.
struct Users {
    cache: Cache,
    names: Mutex<HashMap<u64, String>>,
    scores: Mutex<HashMap<u64, f64>>,
    /// Runs of the readers' bodies.
    reads: AtomicUsize,
    gate: Gate,
}

impl Users {
    fn new(cache: &Cache) -> Users {
        Users {
            cache: cache.clone(),
            names: Mutex::new(HashMap::new()),
            scores: Mutex::new(HashMap::new()),
            reads: AtomicUsize::new(0),
            gate: Gate::default(),
        }
    }

    fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }

    fn name_in_db(&self, id: u64) -> Option<String> {
        self.names.lock().ok()?.get(&id).cloned()
    }

    fn write_db(&self, id: u64, name: Option<&str>) {
        if let Ok(mut names) = self.names.lock() {
            match name {
                Some(n) => names.insert(id, n.to_owned()),
                None => names.remove(&id),
            };
        }
    }

    // ----- readers: one per return shape ------------------------------------------------------

    /// `-> Result<T, E>`, with tags.
    #[cached(key = "user:{id}", ttl = "10m", tags = ["users", "user:{id}"], cache = self.cache)]
    async fn user(&self, id: u64) -> Result<User, DbError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        let name = self.name_in_db(id).ok_or(DbError)?;
        if self.gate.armed.swap(false, Ordering::SeqCst) {
            self.gate.started.notify_one();
            self.gate.release.notified().await;
        }
        Ok(User { id, name })
    }

    /// `-> Option<T>`.
    #[cached(key = "find:{id}", cache = self.cache)]
    async fn find(&self, id: u64) -> Option<User> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.name_in_db(id).map(|name| User { id, name })
    }

    /// `-> Result<Option<T>, E>`.
    #[cached(key = "lookup:{id}", tags = ["users"], cache = self.cache)]
    async fn lookup(&self, id: u64) -> Result<Option<User>, DbError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        Ok(self.name_in_db(id).map(|name| User { id, name }))
    }

    /// `-> T`, with a key hashed from the arguments (no template to restate at all).
    #[cached(cache = self.cache)]
    async fn name_len(&self, id: u64) -> usize {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.name_in_db(id).map_or(0, |n| n.len())
    }

    /// A short TTL, to see that the writer's entry gets the reader's.
    #[cached(key = "brief:{id}", ttl = "1m", cache = self.cache)]
    async fn brief(&self, id: u64) -> u64 {
        self.reads.fetch_add(1, Ordering::SeqCst);
        id
    }

    #[cache_put(self.brief(id))]
    async fn set_brief(&self, id: u64, value: u64) -> u64 {
        value
    }

    /// `-> Option<f64>`: a `Some(NaN)` would read back as `None`.
    #[cached(key = "score:{id}", cache = self.cache)]
    async fn score(&self, id: u64) -> Option<f64> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.scores.lock().ok()?.get(&id).copied()
    }

    // ----- writers coupled to them ------------------------------------------------------------

    /// A `Result` writer (with its own error type) filling a `Result` reader: after `Ok`.
    #[cache_put(self.user(id))]
    async fn rename(&self, id: u64, name: &str, fail: bool) -> Result<User, std::io::Error> {
        if fail {
            return Err(std::io::Error::other("write failed"));
        }
        self.write_db(id, Some(name));
        Ok(User {
            id,
            name: name.to_owned(),
        })
    }

    /// An `Option` writer filling an `Option` reader: after `Some`, stored as `Some(user)`.
    #[cache_put(self.find(id))]
    async fn insert(&self, id: u64, name: &str) -> Option<User> {
        self.write_db(id, Some(name));
        Some(User {
            id,
            name: name.to_owned(),
        })
    }

    /// A plain writer filling a `Result<Option<T>, E>` reader: stored as `Some(user)`.
    #[cache_put(self.lookup(id))]
    async fn create(&self, id: u64, name: &str) -> User {
        self.write_db(id, Some(name));
        User {
            id,
            name: name.to_owned(),
        }
    }

    /// A `Result<Option<T>, E>` writer filling an `Option` reader: `Ok(None)` is a value the
    /// reader's policy does not store (no `cache_none`), so the entry is deleted.
    #[cache_put(self.find(id))]
    async fn remove(&self, id: u64) -> Result<Option<User>, DbError> {
        self.write_db(id, None);
        Ok(None)
    }

    /// A plain writer filling a hashed-key reader.
    #[cache_put(self.name_len(id))]
    async fn set_name_len(&self, id: u64, name: &str) -> usize {
        self.write_db(id, Some(name));
        name.len()
    }

    #[cache_put(self.score(id))]
    async fn set_score(&self, id: u64, score: f64) -> f64 {
        if let Ok(mut scores) = self.scores.lock() {
            scores.insert(id, score);
        }
        score
    }

    /// Evicts the entries of two calls after `Ok`; the error type differs from the readers'.
    #[invalidates(calls = [self.user(id), self.find(id)])]
    async fn forget(&self, id: u64, fail: bool) -> Result<(), String> {
        if fail {
            return Err("delete failed".into());
        }
        self.write_db(id, None);
        Ok(())
    }

    /// Calls together with a tag, in one attribute.
    #[invalidates(tags = ["users"], calls = [self.name_len(id)], cache = self.cache)]
    async fn purge(&self, id: u64) {
        self.write_db(id, None);
    }

    /// Names a call of a function that is not `#[cached]`: not detectable at compile time, so
    /// a logged and counted error at run time; the writer's own result is returned.
    #[cache_put(not_cached(id))]
    async fn put_into_nothing(&self, id: u64) -> User {
        User {
            id,
            name: "lost".into(),
        }
    }
}

/// Not a cached function.
async fn not_cached(id: u64) -> User {
    User {
        id,
        name: "never runs to completion".into(),
    }
}

fn user(id: u64, name: &str) -> User {
    User {
        id,
        name: name.to_owned(),
    }
}

mod suite {
    use super::*;

    /// What a coupled writer stores is read as a hit by its reader, for every reader shape.
    pub async fn put_is_a_hit(fx: Fixture) {
        let users = Users::new(&fx.cache);
        assert_eq!(
            users.rename(1, "Ada", false).await.ok(),
            Some(user(1, "Ada"))
        );
        assert_eq!(users.user(1).await, Ok(user(1, "Ada")));
        assert_eq!(users.insert(2, "Bob").await, Some(user(2, "Bob")));
        assert_eq!(users.find(2).await, Some(user(2, "Bob")));
        assert_eq!(users.create(3, "Cy").await, user(3, "Cy"));
        assert_eq!(users.lookup(3).await, Ok(Some(user(3, "Cy"))));
        assert_eq!(users.set_name_len(4, "Dora").await, 4);
        assert_eq!(users.name_len(4).await, 4);
        assert_eq!(
            users.reads(),
            0,
            "every read was a hit on the writer's value"
        );

        // The write replaced an entry the reader had filled.
        users.write_db(5, Some("old"));
        assert_eq!(users.user(5).await, Ok(user(5, "old")));
        assert_eq!(users.reads(), 1);
        users.rename(5, "new", false).await.ok();
        assert_eq!(users.user(5).await, Ok(user(5, "new")));
        assert_eq!(users.reads(), 1);

        // An `Err` stores nothing.
        assert!(users.rename(6, "x", true).await.is_err());
        assert!(!fx.cache.exists("user:6").await.unwrap());
    }

    /// The entry carries the reader's tags: invalidating one of them drops it.
    pub async fn reader_tags_apply(fx: Fixture) {
        let users = Users::new(&fx.cache);
        users.rename(1, "Ada", false).await.ok();
        users.rename(2, "Bob", false).await.ok();
        fx.cache.invalidate_tags(["user:1"]).await.unwrap();
        assert_eq!(users.user(1).await, Ok(user(1, "Ada")));
        assert_eq!(users.reads(), 1, "user:1 was invalidated");
        assert_eq!(users.user(2).await, Ok(user(2, "Bob")));
        assert_eq!(users.reads(), 1, "user:2 was not");

        users.create(3, "Cy").await;
        fx.cache.invalidate_tags(["users"]).await.unwrap();
        assert_eq!(users.lookup(3).await, Ok(Some(user(3, "Cy"))));
        assert_eq!(users.user(2).await, Ok(user(2, "Bob")));
        assert_eq!(users.reads(), 3, "`users` reached both entries");
    }

    /// `#[invalidates(calls = [...])]` evicts exactly the entries of those calls, after `Ok`.
    pub async fn invalidates_calls(fx: Fixture) {
        let users = Users::new(&fx.cache);
        for id in [1, 2] {
            users.write_db(id, Some("n"));
            users.user(id).await.ok();
            users.find(id).await;
        }
        assert_eq!(users.reads(), 4);
        assert_eq!(users.forget(1, true).await, Err("delete failed".into()));
        users.user(1).await.ok();
        users.find(1).await;
        assert_eq!(users.reads(), 4, "an Err evicts nothing");

        assert_eq!(users.forget(1, false).await, Ok(()));
        assert!(!fx.cache.exists("user:1").await.unwrap());
        assert!(!fx.cache.exists("find:1").await.unwrap());
        assert_eq!(users.user(1).await, Err(DbError));
        assert_eq!(users.find(1).await, None);
        users.user(2).await.ok();
        users.find(2).await;
        assert_eq!(users.reads(), 6, "only the entries of id 1 were evicted");

        // With a tag in the same attribute.
        users.write_db(3, Some("abc"));
        assert_eq!(users.name_len(3).await, 3);
        users.create(4, "Dee").await;
        assert_eq!(users.reads(), 7);
        users.purge(3).await;
        assert_eq!(users.name_len(3).await, 0);
        assert_eq!(users.lookup(4).await, Ok(Some(user(4, "Dee"))));
        assert_eq!(
            users.reads(),
            9,
            "the call's entry and the tagged entry were dropped"
        );
    }

    /// A reader's computation that began before the coupled writer returned never overwrites
    /// the writer's value: the write-through fences it like `Cache::set`.
    pub async fn racing_fill_is_fenced(fx: Fixture) {
        let users = Arc::new(Users::new(&fx.cache));
        users.write_db(1, Some("old"));
        users.gate.armed.store(true, Ordering::SeqCst);
        let reader = tokio::spawn({
            let users = users.clone();
            async move { users.user(1).await }
        });
        // The reader looked the key up, missed, and read "old" from the database.
        users.gate.started.notified().await;
        users.rename(1, "new", false).await.ok();
        users.gate.release.notify_one();
        assert_eq!(reader.await.ok(), Some(Ok(user(1, "old"))));
        assert_eq!(users.reads(), 1);
        assert_eq!(users.user(1).await, Ok(user(1, "new")));
        assert_eq!(users.reads(), 1, "the writer's value is still the entry");
        assert!(fx.cache.stats().fills_fenced >= 1);
    }

    /// `None` from a writer whose reader does not store `None` deletes the entry; a value that
    /// would not read back as written is not stored (the entry is deleted, counted as lossy).
    pub async fn values_the_reader_would_not_store(fx: Fixture) {
        let users = Users::new(&fx.cache);
        users.insert(1, "Ada").await;
        assert_eq!(users.find(1).await, Some(user(1, "Ada")));
        assert_eq!(users.remove(1).await, Ok(None));
        assert!(!fx.cache.exists("find:1").await.unwrap());
        assert_eq!(users.find(1).await, None);
        assert_eq!(users.reads(), 1);

        assert_eq!(users.set_score(2, 0.5).await, 0.5);
        assert_eq!(users.score(2).await, Some(0.5));
        assert_eq!(users.reads(), 1);
        assert!(users.set_score(2, f64::NAN).await.is_nan());
        assert_eq!(fx.cache.stats().lossy, 1);
        assert!(!fx.cache.exists("score:2").await.unwrap());
        assert!(users.score(2).await.is_some_and(f64::is_nan));
        assert_eq!(users.reads(), 2);
    }

    /// `cachette::put`: the same coupling at run time (cache warming), with typed errors.
    pub async fn put_function(fx: Fixture) {
        let users = Users::new(&fx.cache);
        cachette::put(users.user(7), &user(7, "Eve")).await.unwrap();
        assert_eq!(users.user(7).await, Ok(user(7, "Eve")));
        cachette::put(users.find(7), &user(7, "Eve")).await.unwrap();
        assert_eq!(users.find(7).await, Some(user(7, "Eve")));
        assert_eq!(users.reads(), 0);

        assert!(matches!(
            cachette::put(not_cached(7), &user(7, "x")).await,
            Err(CallError::NotCached(""))
        ));
        // A writer refuses without running its body.
        assert!(matches!(
            cachette::put(users.create(8, "Fay"), &user(8, "Fay")).await,
            Err(CallError::NotCached(name)) if name.ends_with("create")
        ));
        assert_eq!(users.name_in_db(8), None);
        assert_eq!(users.put_into_nothing(9).await, user(9, "lost"));
        assert_eq!(users.reads(), 0);
    }
}

/// The entry gets the reader's TTL (cachette's clock decides freshness: a manual one here).
async fn reader_ttl_applies(fx: Fixture, clock: &ManualClock) {
    let users = Users::new(&fx.cache);
    assert_eq!(users.set_brief(1, 7).await, 7);
    clock.advance(Duration::from_secs(50));
    assert_eq!(users.brief(1).await, 7);
    assert_eq!(users.reads(), 0, "fresh within the reader's minute");
    clock.advance(Duration::from_secs(20));
    assert_eq!(users.brief(1).await, 1);
    assert_eq!(
        users.reads(),
        1,
        "expired after the reader's minute, not the default TTL"
    );
}

fn manual_clock() -> (Arc<ManualClock>, impl FnOnce(CacheBuilder) -> CacheBuilder) {
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let c = clock.clone();
    (clock, move |b: CacheBuilder| b.clock(c).jitter(0.0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_ttl_applies_on_redis() {
    let (clock, builder) = manual_clock();
    reader_ttl_applies(Fixture::redis_with(builder), &clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_ttl_applies_on_memory() {
    let (clock, builder) = manual_clock();
    reader_ttl_applies(Fixture::memory_with(builder), &clock).await;
}

fixture::both_backends!(
    std::convert::identity;
    put_is_a_hit,
    reader_tags_apply,
    invalidates_calls,
    racing_fill_is_fenced,
    values_the_reader_would_not_store,
    put_function,
);

/// A call that is not `#[cached]` is logged and counted, and the writer's result returned.
#[test]
fn not_a_cached_call_is_counted() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let users = Users::new(&Cache::memory(1 << 20));
            assert_eq!(users.put_into_nothing(1).await, user(1, "lost"));
        });
    });
    let counted: u64 = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(k, ..)| k.key().name() == "cachette_coupled_call_errors_total")
        .map(|(.., v)| match v {
            DebugValue::Counter(n) => n,
            _ => 0,
        })
        .sum();
    assert_eq!(counted, 1);
}
