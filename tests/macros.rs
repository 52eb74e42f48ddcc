//! The attributes end to end: every supported shape of `#[cached]`, `#[invalidates]` and
//! `#[cache_put]`, each scenario run against a real `redis-server` (one per test) and against
//! the embedded memory store. Call counters prove hits and misses.

#[path = "support/redis_cluster.rs"]
mod redis_cluster;
#[path = "support/redis_server.rs"]
mod redis_server;

use cachette::{Cache, CacheBuilder, cache_put, cached, invalidates};
use redis_server::RedisServer;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

// ----- per-test state: the cache the free functions use, and the call counters --------------
//
// Every test runs on its own thread (current-thread runtime), so thread-locals keep parallel
// tests apart.

thread_local! {
    static CURRENT: RefCell<Option<Cache>> = const { RefCell::new(None) };
    static CALLS: RefCell<HashMap<&'static str, usize>> = RefCell::new(HashMap::new());
}

/// The cache of the running test (the free functions say `cache = current()`).
fn current() -> Cache {
    CURRENT
        .with(|c| c.borrow().clone())
        .unwrap_or_else(Cache::disabled)
}

fn bump(name: &'static str) {
    CALLS.with(|c| *c.borrow_mut().entry(name).or_default() += 1);
}

/// How many times the body of `name` ran in this test.
fn calls(name: &'static str) -> usize {
    CALLS.with(|c| c.borrow().get(name).copied().unwrap_or(0))
}

struct Fixture {
    cache: Cache,
    _server: Option<RedisServer>,
}

fn builder(b: CacheBuilder) -> Cache {
    b.ttl_profile("short", std::time::Duration::from_secs(30))
        .build()
        .expect("valid configuration")
}

impl Fixture {
    fn redis() -> Fixture {
        let server = RedisServer::start();
        let cache = builder(Cache::builder().redis(server.url()));
        Self::install(cache, Some(server))
    }

    fn memory() -> Fixture {
        Self::install(builder(Cache::builder().memory(64 << 20)), None)
    }

    /// Redis with a strict near cache.
    fn near() -> Fixture {
        let server = RedisServer::start();
        let cache = builder(Cache::builder().redis(server.url()).near_cache(16 << 20));
        Self::install(cache, Some(server))
    }

    /// A Redis Cluster (one per test binary), in a namespace of the test's own.
    fn cluster() -> Fixture {
        static CLUSTER: std::sync::OnceLock<redis_cluster::RedisCluster> =
            std::sync::OnceLock::new();
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let cluster = CLUSTER.get_or_init(redis_cluster::RedisCluster::start);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let cache = builder(
            Cache::builder()
                .redis_cluster(cluster.urls())
                .namespace(format!("m{n}")),
        );
        Self::install(cache, None)
    }

    fn install(cache: Cache, server: Option<RedisServer>) -> Fixture {
        CURRENT.with(|c| *c.borrow_mut() = Some(cache.clone()));
        CALLS.with(|c| c.borrow_mut().clear());
        Fixture {
            cache,
            _server: server,
        }
    }

    fn repo(&self) -> Repo {
        Repo {
            cache: self.cache.clone(),
            tenant: "acme".to_owned(),
            bumps: 0,
        }
    }
}

// ----- domain ------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
}

#[derive(Debug, PartialEq)]
struct AppError(&'static str);

/// A database handle: not serializable, so it must be skipped.
struct Db {
    rows: HashMap<u64, String>,
}

// ----- free functions (cache = current()) -----------------------------------------------------

/// 1. Hashed key, plain return.
#[cached(cache = current())]
async fn double(n: u32) -> u32 {
    bump("double");
    n * 2
}

/// 2. Template over a `&str` argument.
#[cached(key = "greet:{name}", cache = current())]
async fn greet(name: &str) -> String {
    bump("greet");
    format!("hello {name}")
}

/// 3. Hashed `&[u8]` argument, seconds TTL.
#[cached(ttl = 600, cache = current())]
async fn byte_sum(data: &[u8]) -> u64 {
    bump("byte_sum");
    data.iter().map(|b| u64::from(*b)).sum()
}

/// 4. `Option<T>`: `None` not stored.
#[cached(key = "find:{id}", cache = current())]
async fn find(id: u64) -> Option<User> {
    bump("find");
    (id != 404).then(|| User {
        id,
        name: format!("u{id}"),
    })
}

/// 5. `Option<T>` with negative caching for a shorter TTL.
#[cached(key = "find_neg:{id}", cache_none(ttl = "30s"), cache = current())]
async fn find_neg(id: u64) -> Option<User> {
    bump("find_neg");
    (id != 404).then(|| User {
        id,
        name: format!("u{id}"),
    })
}

/// 6. `Result<T, E>`: only `Ok` stored; `?` and early `return` work in the body.
#[cached(key = "load:{id}", ttl = "10m", cache = current())]
async fn load(id: u64) -> Result<User, AppError> {
    bump("load");
    if id == 0 {
        return Err(AppError("zero"));
    }
    let n: u64 = "1".parse().map_err(|_| AppError("parse"))?;
    Ok(User {
        id,
        name: format!("u{}", id * n),
    })
}

/// 7. Generic, hashed: the key distinguishes instantiations.
#[cached(cache = current())]
async fn default_of<T: Default + Serialize + DeserializeOwned>() -> T {
    bump("default_of");
    T::default()
}

/// 8. Generic with a template naming the type parameter.
#[cached(key = "list:{T}:{n}", cache = current())]
async fn filled<T: Default + Clone + Serialize + DeserializeOwned>(n: usize) -> Vec<T> {
    bump("filled");
    vec![T::default(); n]
}

/// 9. A skipped, non-serializable argument.
#[cached(skip(db), cache = current())]
async fn row(db: &Db, id: u64) -> Option<String> {
    bump("row");
    db.rows.get(&id).cloned()
}

/// 10. A skipped `impl Trait` argument.
#[cached(skip(log), cache = current())]
async fn traced(id: u64, log: impl Fn(u64)) -> u64 {
    bump("traced");
    log(id);
    id + 1
}

/// 11. Arguments named like generated locals.
#[cached(key = "r:{key}:{cache}:{value}:{ttl}:{opts}", ttl = 60, cache = current())]
async fn reserved(key: u32, cache: u32, value: u32, ttl: u32, opts: u32) -> u32 {
    bump("reserved");
    key + cache + value + ttl + opts
}

/// 12. A TTL profile.
#[cached(key = "prof:{id}", ttl = profile("short"), cache = current())]
async fn profiled(id: u64) -> u64 {
    bump("profiled");
    id
}

/// 13. A field of an argument in the key.
#[cached(key = "uf:{user.id}", cache = current())]
async fn user_label(user: &User) -> String {
    bump("user_label");
    format!("{}#{}", user.name, user.id)
}

/// 14. A guild member, for pattern invalidation.
/// Per-call tags that can render to the same text (the call's options keep it once).
#[cached(key = "pair:{a}:{b}", tags = ["n:{a}", "n:{b}", "m:{b}"], cache = current())]
async fn pair(a: u32, b: u32) -> u32 {
    bump("pair");
    a + b
}

#[cached(key = "guild:{guild}:member:{member}", name = "guild_member", cache = current())]
async fn guild_member(guild: &str, member: u32) -> String {
    bump("guild_member");
    format!("{member}@{guild}")
}

/// 15. Invalidation of an exact key, always (no `Result`).
#[invalidates(keys = ["greet:{name}"], cache = current())]
async fn forget_greeting(name: &str) {
    bump("forget_greeting");
}

/// 16. Pattern invalidation; the value is escaped, literal text is a glob.
#[invalidates(patterns = ["guild:{guild}:*"], cache = current())]
async fn reset_guild(guild: &str) -> usize {
    bump("reset_guild");
    guild.len()
}

// ----- methods (cache = self.cache) ------------------------------------------------------------

struct Repo {
    cache: Cache,
    tenant: String,
    bumps: u64,
}

impl Repo {
    /// 17. `&self`, a receiver field in the key, tags.
    #[cached(
        key = "{self.tenant}:user:{id}",
        ttl = "10m",
        tags = ["users", "user:{id}"],
        cache = self.cache,
    )]
    async fn user(&self, id: u64) -> Result<User, AppError> {
        bump("user");
        if id == 0 {
            return Err(AppError("no user 0"));
        }
        Ok(User {
            id,
            name: format!("{}-{id}", self.tenant),
        })
    }

    /// 18. A tagged list.
    #[cached(key = "users:page:{page}", tags = ["users"], cache = self.cache)]
    async fn page(&self, page: u32) -> Vec<u64> {
        bump("page");
        (u64::from(page) * 10..u64::from(page) * 10 + 3).collect()
    }

    /// 19. `&mut self`.
    #[cached(key = "bump:{id}", cache = self.cache)]
    async fn bumped(&mut self, id: u64) -> u64 {
        bump("bumped");
        self.bumps += 1;
        id + self.bumps
    }

    /// 20. `self: Arc<Self>`, hashed key (hashes `Self` too).
    #[cached(cache = self.cache)]
    async fn shared(self: Arc<Self>, id: u64) -> String {
        bump("shared");
        format!("{}:{id}", self.tenant)
    }

    /// 21. Invalidation by tag after `Ok` only.
    #[invalidates(tags = ["user:{id}"], cache = self.cache)]
    async fn rename(&self, id: u64, fail: bool) -> Result<(), AppError> {
        bump("rename");
        if fail {
            Err(AppError("rename failed"))
        } else {
            Ok(())
        }
    }

    /// 22. Invalidation of a whole tag.
    #[invalidates(tags = ["users"], cache = self.cache)]
    async fn reset_users(&self) -> Result<usize, AppError> {
        bump("reset_users");
        Ok(1)
    }

    /// 23. Write-through (`Ok` stored under the reader's key, with the reader's tags).
    #[cache_put(
        key = "{self.tenant}:user:{user.id}",
        ttl = "10m",
        tags = ["users", "user:{user.id}"],
        cache = self.cache,
    )]
    async fn save(&self, user: User, fail: bool) -> Result<User, AppError> {
        bump("save");
        if fail {
            return Err(AppError("save failed"));
        }
        Ok(user)
    }

    /// 25. Stacked, `#[invalidates]` on top: it runs first, then the write-through stores the
    /// value under the tags' new versions, so the value survives.
    #[invalidates(tags = ["users"], cache = self.cache)]
    #[cache_put(
        key = "{self.tenant}:user:{user.id}",
        tags = ["users", "user:{user.id}"],
        cache = self.cache,
    )]
    async fn replace(&self, user: User) -> Result<User, AppError> {
        bump("replace");
        Ok(user)
    }

    /// 26. Stacked the other way: the write-through runs first, then the invalidation of a tag
    /// the stored value carries (never stale, but the value written is not kept).
    #[cache_put(
        key = "{self.tenant}:user:{user.id}",
        tags = ["users", "user:{user.id}"],
        cache = self.cache,
    )]
    #[invalidates(tags = ["users"], cache = self.cache)]
    async fn replace_put_first(&self, user: User) -> Result<User, AppError> {
        bump("replace_put_first");
        Ok(user)
    }
}

/// A trait with an async method, implemented with a cached method.
trait Store {
    async fn get(&self, id: u64) -> String;
}

impl Store for Repo {
    /// 24. Inside a trait `impl`.
    #[cached(key = "store:{id}", cache = self.cache)]
    async fn get(&self, id: u64) -> String {
        bump("store_get");
        format!("stored {id}")
    }
}

// ----- scenarios -------------------------------------------------------------------------------

mod scenarios {
    use super::*;

    pub async fn hits_and_misses(f: Fixture) {
        assert_eq!(double(2).await, 4);
        assert_eq!(double(2).await, 4);
        assert_eq!(calls("double"), 1, "second call is a hit");
        assert_eq!(double(3).await, 6);
        assert_eq!(calls("double"), 2, "other arguments miss");

        assert_eq!(greet("ada").await, "hello ada");
        assert_eq!(greet("ada").await, "hello ada");
        assert_eq!(calls("greet"), 1);
        assert!(f.cache.exists("greet:ada").await.unwrap());

        assert_eq!(byte_sum(&[1, 2, 3]).await, 6);
        assert_eq!(byte_sum(&[1, 2, 3]).await, 6);
        assert_eq!(byte_sum(&[3, 2, 1]).await, 6);
        assert_eq!(calls("byte_sum"), 2);

        assert_eq!(profiled(5).await, 5);
        assert_eq!(profiled(5).await, 5);
        assert_eq!(calls("profiled"), 1);

        let ada = User {
            id: 9,
            name: "ada".into(),
        };
        assert_eq!(user_label(&ada).await, "ada#9");
        assert_eq!(user_label(&ada).await, "ada#9");
        assert_eq!(calls("user_label"), 1);
        assert!(f.cache.exists("uf:9").await.unwrap());
        let stats = f.cache.stats();
        assert!(stats.hits >= 5 && stats.misses >= 6, "{stats:?}");
    }

    pub async fn err_is_not_stored(f: Fixture) {
        assert_eq!(load(0).await, Err(AppError("zero")));
        assert_eq!(load(0).await, Err(AppError("zero")));
        assert_eq!(calls("load"), 2, "an Err is never stored");
        assert!(!f.cache.exists("load:0").await.unwrap());
        let ok = load(1).await;
        assert_eq!(load(1).await, ok);
        assert_eq!(calls("load"), 3, "Ok is stored");

        let repo = f.repo();
        assert_eq!(repo.user(0).await, Err(AppError("no user 0")));
        assert_eq!(repo.user(0).await, Err(AppError("no user 0")));
        assert_eq!(calls("user"), 2);
    }

    pub async fn none_only_when_asked(f: Fixture) {
        assert_eq!(find(404).await, None);
        assert_eq!(find(404).await, None);
        assert_eq!(calls("find"), 2, "None is not stored without cache_none");
        assert!(find(1).await.is_some());
        assert!(find(1).await.is_some());
        assert_eq!(calls("find"), 3, "Some is stored");

        assert_eq!(find_neg(404).await, None);
        assert_eq!(find_neg(404).await, None);
        assert_eq!(calls("find_neg"), 1, "None is stored with cache_none");
        assert!(f.cache.exists("find_neg:404").await.unwrap());
        assert!(find_neg(2).await.is_some());
        assert!(find_neg(2).await.is_some());
        assert_eq!(calls("find_neg"), 2);
    }

    pub async fn key_evict_refresh(f: Fixture) {
        let repo = f.repo();
        // key_of: the body does not run.
        assert_eq!(cachette::key_of(repo.user(7)).unwrap(), "acme:user:7");
        assert_eq!(cachette::key_of(greet("a:b*")).unwrap(), "greet:a%3Ab%2A");
        assert_eq!(calls("user") + calls("greet"), 0);
        let hashed = cachette::key_of(double(2)).unwrap();
        assert!(hashed.starts_with("macros::double:"), "{hashed}");
        assert_ne!(hashed, cachette::key_of(double(3)).unwrap());
        // An #[invalidates] function refuses, without running.
        assert!(matches!(
            cachette::key_of(repo.reset_users()),
            Err(cachette::CallError::NotCached(_))
        ));
        assert_eq!(calls("reset_users"), 0);

        // refresh: computes and stores without a lookup, even when an entry exists.
        let u = cachette::refresh(repo.user(7)).await.unwrap();
        assert_eq!(calls("user"), 1);
        assert_eq!(repo.user(7).await.unwrap(), u);
        assert_eq!(calls("user"), 1, "refresh stored the value");
        cachette::refresh(repo.user(7)).await.unwrap();
        assert_eq!(calls("user"), 2, "refresh always recomputes");

        // evict: that one entry only.
        repo.user(8).await.unwrap();
        assert_eq!(calls("user"), 3);
        assert!(cachette::evict(repo.user(7)).await.unwrap());
        assert!(
            !cachette::evict(repo.user(7)).await.unwrap(),
            "already gone"
        );
        repo.user(7).await.unwrap();
        repo.user(8).await.unwrap();
        assert_eq!(calls("user"), 4, "7 missed, 8 still hit");

        // Hashed keys and free functions too.
        double(21).await;
        assert!(cachette::evict(double(21)).await.unwrap());
        double(21).await;
        assert_eq!(calls("double"), 2);
        let _ = cachette::refresh(double(21)).await;
        assert_eq!(calls("double"), 3);
    }

    /// A call two of whose tags render the same: a miss, then hits, and an invalidation of
    /// any of its tags reaches it (its first look read `n:1` twice, its options hold it once:
    /// the versions the look read are not the options', and are not stored with them).
    pub async fn duplicate_tags(f: Fixture) {
        assert_eq!(pair(1, 1).await, 2);
        assert_eq!(pair(1, 1).await, 2);
        assert_eq!(pair(1, 1).await, 2);
        assert_eq!(calls("pair"), 1, "hits");
        assert_eq!(pair(1, 2).await, 3);
        f.cache.invalidate_tags(["n:1"]).await.unwrap();
        assert_eq!(pair(1, 1).await, 2);
        assert_eq!(pair(1, 2).await, 3);
        assert_eq!(calls("pair"), 4, "both invalidated");
        assert_eq!(pair(1, 1).await, 2);
        f.cache.invalidate_tags(["n:2"]).await.unwrap();
        assert_eq!(pair(1, 1).await, 2);
        assert_eq!(pair(1, 2).await, 3);
        assert_eq!(calls("pair"), 5, "only the pair carrying n:2");
    }

    pub async fn invalidate_by_tag(f: Fixture) {
        let repo = f.repo();
        repo.user(1).await.unwrap();
        repo.user(2).await.unwrap();
        repo.page(0).await;
        assert_eq!((calls("user"), calls("page")), (2, 1));

        // An Err invalidates nothing.
        assert_eq!(repo.rename(1, true).await, Err(AppError("rename failed")));
        repo.user(1).await.unwrap();
        assert_eq!(calls("user"), 2);

        // Ok invalidates the tag `user:1` only.
        repo.rename(1, false).await.unwrap();
        repo.user(1).await.unwrap();
        repo.user(2).await.unwrap();
        repo.page(0).await;
        assert_eq!((calls("user"), calls("page")), (3, 1));

        // `users` reaches all of them.
        assert_eq!(repo.reset_users().await, Ok(1));
        repo.user(1).await.unwrap();
        repo.user(2).await.unwrap();
        repo.page(0).await;
        assert_eq!((calls("user"), calls("page")), (5, 2));
        assert_eq!(calls("rename"), 2);
        assert_eq!(f.cache.stats().invalidation_failures, 0);
    }

    pub async fn invalidate_by_key_and_pattern(f: Fixture) {
        greet("ada").await;
        greet("bob").await;
        forget_greeting("ada").await;
        greet("ada").await;
        greet("bob").await;
        assert_eq!(calls("greet"), 3, "only greet:ada was deleted");
        assert_eq!(calls("forget_greeting"), 1);

        guild_member("rust", 1).await;
        guild_member("rust", 2).await;
        guild_member("*", 1).await;
        guild_member("rustacean", 1).await;
        assert_eq!(calls("guild_member"), 4);
        // `*` in the value matches only the guild literally named `*`.
        assert_eq!(reset_guild("*").await, 1);
        guild_member("rust", 1).await;
        guild_member("*", 1).await;
        assert_eq!(calls("guild_member"), 5);
        // The literal `*` of the pattern matches every member of `rust`, not `rustacean`.
        reset_guild("rust").await;
        guild_member("rust", 1).await;
        guild_member("rust", 2).await;
        guild_member("rustacean", 1).await;
        assert_eq!(calls("guild_member"), 7);
        assert!(!f.cache.exists("guild:rust:member:3").await.unwrap());
    }

    pub async fn write_through(f: Fixture) {
        let repo = f.repo();
        let old = repo.user(5).await.unwrap();
        assert_eq!(calls("user"), 1);
        let new = User {
            id: 5,
            name: "renamed".into(),
        };
        // A failed save stores nothing.
        assert_eq!(
            repo.save(new.clone(), true).await,
            Err(AppError("save failed"))
        );
        assert_eq!(repo.user(5).await.unwrap(), old);
        // A successful one replaces the entry: the next read is a hit with the new value.
        assert_eq!(repo.save(new.clone(), false).await, Ok(new.clone()));
        assert_eq!(repo.user(5).await.unwrap(), new);
        assert_eq!(calls("user"), 1);
        // The written entry carries the reader's tags.
        repo.rename(5, false).await.unwrap();
        assert_eq!(repo.user(5).await.unwrap().name, "acme-5");
        assert_eq!(calls("user"), 2);
        assert_eq!(calls("save"), 2);
    }

    /// Stacked attributes run in the order they are written, the top one first after the body.
    pub async fn stacked_attributes_run_top_first(f: Fixture) {
        let repo = f.repo();
        repo.user(6).await.unwrap();
        repo.page(0).await;
        assert_eq!((calls("user"), calls("page")), (1, 1));
        let new = User {
            id: 6,
            name: "new".into(),
        };
        // Invalidate, then store: the list is invalidated, the written value is a hit.
        assert_eq!(repo.replace(new.clone()).await, Ok(new.clone()));
        assert_eq!(repo.user(6).await.unwrap(), new);
        repo.page(0).await;
        assert_eq!((calls("user"), calls("page")), (1, 2));

        // Store, then invalidate: the written value is invalidated with the rest.
        let newer = User {
            id: 6,
            name: "newer".into(),
        };
        assert_eq!(repo.replace_put_first(newer.clone()).await, Ok(newer));
        assert_eq!(repo.user(6).await.unwrap().name, "acme-6", "recomputed");
        repo.page(0).await;
        assert_eq!((calls("user"), calls("page")), (2, 3));
        assert_eq!((calls("replace"), calls("replace_put_first")), (1, 1));
    }

    pub async fn generics_skip_and_names(f: Fixture) {
        assert_eq!(default_of::<u32>().await, 0);
        assert_eq!(default_of::<String>().await, "");
        assert_eq!(default_of::<Vec<u8>>().await, Vec::<u8>::new());
        assert_eq!(default_of::<u32>().await, 0);
        assert_eq!(calls("default_of"), 3, "one entry per instantiation");

        assert_eq!(filled::<u8>(2).await, vec![0, 0]);
        assert_eq!(
            filled::<String>(2).await,
            vec![String::new(), String::new()]
        );
        assert_eq!(filled::<u8>(2).await, vec![0, 0]);
        assert_eq!(calls("filled"), 2);
        let k = cachette::key_of(filled::<u8>(2)).unwrap();
        assert_eq!(k, "list:u8:2");

        let db = Db {
            rows: [(1, "one".to_owned())].into_iter().collect(),
        };
        assert_eq!(row(&db, 1).await.as_deref(), Some("one"));
        let other_db = Db {
            rows: HashMap::new(),
        };
        // The database handle is not part of the key.
        assert_eq!(row(&other_db, 1).await.as_deref(), Some("one"));
        assert_eq!(calls("row"), 1);

        let seen = std::cell::Cell::new(0);
        assert_eq!(traced(1, |id| seen.set(id)).await, 2);
        assert_eq!(traced(1, |_| {}).await, 2);
        assert_eq!((calls("traced"), seen.get()), (1, 1));

        assert_eq!(reserved(1, 2, 3, 4, 5).await, 15);
        assert_eq!(reserved(1, 2, 3, 4, 5).await, 15);
        assert_eq!(calls("reserved"), 1);
        assert!(f.cache.exists("r:1:2:3:4:5").await.unwrap());
    }

    pub async fn receivers(f: Fixture) {
        let mut repo = f.repo();
        assert_eq!(repo.bumped(10).await, 11);
        assert_eq!(repo.bumped(10).await, 11, "hit: the body did not run again");
        assert_eq!((calls("bumped"), repo.bumps), (1, 1));

        let shared = Arc::new(f.repo());
        assert_eq!(shared.clone().shared(3).await, "acme:3");
        assert_eq!(shared.clone().shared(3).await, "acme:3");
        assert_eq!(calls("shared"), 1);

        assert_eq!(Store::get(&repo, 4).await, "stored 4");
        assert_eq!(repo.get(4).await, "stored 4");
        assert_eq!(calls("store_get"), 1);
        assert!(f.cache.exists("store:4").await.unwrap());
    }
}

macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod redis {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::scenarios::$scenario(super::Fixture::redis()).await;
                }
            )*
        }
        mod memory {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::scenarios::$scenario(super::Fixture::memory()).await;
                }
            )*
        }
        /// Redis with a strict near cache.
        mod near {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::scenarios::$scenario(super::Fixture::near()).await;
                }
            )*
        }
        /// A Redis Cluster.
        mod cluster {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::scenarios::$scenario(super::Fixture::cluster()).await;
                }
            )*
        }
    };
}

on_both_backends!(
    hits_and_misses,
    err_is_not_stored,
    none_only_when_asked,
    key_evict_refresh,
    invalidate_by_tag,
    duplicate_tags,
    invalidate_by_key_and_pattern,
    write_through,
    stacked_attributes_run_top_first,
    generics_skip_and_names,
    receivers,
);

/// Without `cache = ...`, the process-wide default cache is used.
#[cached(key = "default:{id}")]
async fn on_default(id: u64) -> u64 {
    bump("on_default");
    id
}

#[tokio::test]
async fn default_cache_is_used() {
    let _ = cachette::install_default(Cache::memory(8 << 20));
    CALLS.with(|c| c.borrow_mut().clear());
    assert_eq!(on_default(1).await, 1);
    assert_eq!(on_default(1).await, 1);
    assert_eq!(calls("on_default"), 1);
    assert!(cachette::default_cache().exists("default:1").await.unwrap());
}
