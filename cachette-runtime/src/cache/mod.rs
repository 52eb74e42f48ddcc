//! The [`Cache`] handle: a thin, cheaply cloned handle over the store, the configuration,
//! the counters, the flights and the kept invalidations.
//!
//! Files: this one holds the handle, its counters, error logging and accessors; `build.rs` the
//! constructors; `naming.rs` key naming and TTLs; `manual.rs` the manual API's reads and
//! writes (`get`, `exists`, `set`);
//! `invalidate.rs` invalidation (`delete`, `invalidate_tags`, `invalidate_pattern`, their
//! retries); `kept.rs` what happens to an invalidation that failed (kept, and retried by a
//! background worker over `pending.rs`'s queue). The cached-call path is the read-through
//! engine (`read_through/`), user locks are `lock.rs`, admin operations `admin.rs`.

// Call names travel as `&Cow<'static, str>` so that a static name becomes a metrics label
// without an allocation.
#![allow(clippy::ptr_arg)]

use crate::backend::disabled::DisabledStore;
use crate::backend::near::{NearMode, NearStore};
use crate::backend::redis::{ClusterStore, RedisBackend, Target};
use crate::backend::{Backend, NearStats, Store, memory::MemoryBackend};
use crate::config::{BackendChoice, CacheBuilder, Config, MAX_DURATION, Options, Ttl, Undefined};
use crate::error::{Error, Result};
use crate::flight::Flights;
use crate::pending::Pending;
use crate::stats::{Event, LogLimiter, Stats, StatsSnapshot};
use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

mod build;
mod invalidate;
mod kept;
mod manual;
mod naming;

/// The call name of the manual API's reads, writes and locks.
pub(crate) const MANUAL: &str = "manual";

/// A cache: Redis, the embedded memory store, or disabled. Cheap to clone (an `Arc`), `Send`
/// and `Sync`; clones share the connection and the counters.
///
/// ```
/// use cachette_runtime::{Cache, Options};
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), cachette_runtime::Error> {
/// let cache = Cache::memory(16 * 1024 * 1024);
/// let opts = Options::new().ttl(Duration::from_secs(60)).tags(["users", "user:42"]);
///
/// let name = cache
///     .get_or_compute("user:42", &opts, || async { "Ada".to_owned() })
///     .await;
/// assert_eq!(name, "Ada");
/// // Served from the cache now:
/// assert_eq!(cache.get::<String>("user:42").await?, Some("Ada".to_owned()));
///
/// cache.invalidate_tags(["user:42"]).await?;
/// assert_eq!(cache.get::<String>("user:42").await?, None);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Cache {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub backend: Backend,
    pub config: Config,
    /// `namespace[:version]:`
    pub prefix: String,
    /// `namespace#tag:`
    pub tag_prefix: String,
    /// What the store's tag keys start with: [`tag_prefix`](Self::tag_prefix), or nothing on
    /// the memory store (a call's tags are then its lookup's keys, borrowed).
    pub store_tag_prefix: String,
    /// Keys every lookup reads besides the call's tags: the store's base keys (the epoch key
    /// on Redis: its version comes after the tags' in a lookup's versions, and is stored in
    /// every entry under `EPOCH_TAG`), nothing on the other stores.
    pub base_tag_keys: Box<[String]>,
    pub stats: Stats,
    pub flights: Arc<Flights>,
    pub pending: Pending,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Cache");
        d.field("backend", &self.inner.backend.kind());
        if let Some(url) = self.inner.backend.location() {
            d.field("url", &url);
        }
        d.field("prefix", &self.inner.prefix).finish()
    }
}

impl Cache {
    /// `"redis"` (one server, or the primary Sentinel names), `"redis-cluster"`, `"memory"` or
    /// `"disabled"`.
    ///
    /// ```
    /// # use cachette_runtime::Cache;
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), cachette_runtime::Error> {
    /// assert_eq!(Cache::memory(1 << 20).backend_kind(), "memory");
    /// assert_eq!(Cache::disabled().backend_kind(), "disabled");
    /// # Ok(()) }
    /// ```
    pub fn backend_kind(&self) -> &'static str {
        self.inner.backend.kind()
    }

    /// The counters of this cache since it was built.
    ///
    /// ```
    /// # use cachette_runtime::{Cache, Options};
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), cachette_runtime::Error> {
    /// let cache = Cache::memory(1 << 20);
    /// let _: u32 = cache.get_or_compute("k", &Options::new(), || async { 1 }).await; // a miss
    /// let _: u32 = cache.get_or_compute("k", &Options::new(), || async { 1 }).await; // a hit
    /// let s = cache.stats();
    /// assert_eq!((s.hits, s.misses), (1, 1));
    /// assert_eq!(s.hit_rate(), 0.5);
    /// # Ok(()) }
    /// ```
    pub fn stats(&self) -> StatsSnapshot {
        self.inner.stats.snapshot(self.inner.backend.round_trips())
    }

    /// The counters of each call name (the macros use the function's path), sorted by name.
    /// `round_trips` is 0 in these; see [`stats`](Self::stats) for the cache's total.
    ///
    /// ```
    /// # use cachette_runtime::{Cache, Options};
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), cachette_runtime::Error> {
    /// let cache = Cache::memory(1 << 20);
    /// let opts = Options::new().name("prices");
    /// let _: u32 = cache.get_or_compute("price:1", &opts, || async { 1 }).await;
    /// let by_name = cache.stats_by_name();
    /// assert!(by_name.iter().any(|(name, s)| name == "prices" && s.misses == 1));
    /// # Ok(()) }
    /// ```
    pub fn stats_by_name(&self) -> Vec<(String, StatsSnapshot)> {
        self.inner.stats.by_name()
    }

    pub(crate) fn log_error(
        &self,
        limiter: &LogLimiter,
        name: &Cow<'static, str>,
        op: &'static str,
        e: &Error,
    ) {
        if matches!(e, Error::CircuitOpen) {
            // Skipped, not failed: counted by `cachette_breaker_rejected_total`.
            return;
        }
        self.inner.stats.record(Event::BackendError, name);
        metrics::counter!("cachette_backend_errors_total", "cache" => crate::stats::label(name), "op" => op, "kind" => e.kind())
            .increment(1);
        if let Some(held) = limiter.allow() {
            tracing::warn!(
                cache = %name, op, kind = e.kind(), error = %e, suppressed = held,
                "cache backend failed; going on without the cache"
            );
        }
    }

    /// Checks that the backend answers and accepts the credentials (one `PING`). Call it at
    /// start-up when the service must not run without its cache: a wrong password is then
    /// [`Error::Auth`], an unreachable server a connection error. Without it, cachette starts
    /// anyway and runs uncached (logged, counted) until Redis answers.
    ///
    /// ```
    /// # use cachette_runtime::{Cache, Options};
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), cachette_runtime::Error> {
    /// // The memory store has nothing to connect to; with Redis this fails while it is unreachable.
    /// Cache::memory(1 << 20).connect().await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(&self) -> Result<()> {
        self.inner.backend.ping().await
    }

    /// Invalidations that failed and wait to be applied (see
    /// [`invalidate_tags`](Self::invalidate_tags)).
    ///
    /// ```
    /// # use cachette_runtime::{Cache, Options};
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), cachette_runtime::Error> {
    /// let cache = Cache::memory(1 << 20);
    /// cache.invalidate_tags(["users"]).await?;
    /// assert_eq!(cache.pending_invalidations(), 0); // applied, nothing kept for later
    /// # Ok(()) }
    /// ```
    pub fn pending_invalidations(&self) -> usize {
        self.inner.pending.len()
    }

    /// Whether the Redis circuit breaker is open (calls skip Redis until it answers again).
    ///
    /// ```
    /// # use cachette_runtime::Cache;
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), cachette_runtime::Error> {
    /// assert!(!Cache::memory(1 << 20).breaker_open()); // only Redis has a breaker
    /// # Ok(()) }
    /// ```
    pub fn breaker_open(&self) -> bool {
        self.inner.backend.breaker_open()
    }

    /// `fut`, with its Redis round trips timed under the call name `name`
    /// (`cachette_backend_seconds{cache}`; the other backends make none, and name nothing).
    /// Not an `async fn`, for the reason given at [`crate::stats::attributed`].
    pub(crate) fn attributed<F: Future>(
        &self,
        name: &Cow<'static, str>,
        fut: F,
    ) -> impl Future<Output = F::Output> {
        let counters = self
            .inner
            .backend
            .times_round_trips()
            .then(|| self.inner.stats.counters(name));
        crate::stats::attributed(counters, fut)
    }

    /// The counters, for the runtime's other modules (the macros' support records on them).
    pub(crate) fn recorder(&self) -> &Stats {
        &self.inner.stats
    }

    /// The store, through the storage contract ([`Store`]).
    pub(crate) fn store(&self) -> &Backend {
        &self.inner.backend
    }

    /// The configuration the cache was built with.
    pub(crate) fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The cache's single-flight table.
    pub(crate) fn flights(&self) -> &Arc<Flights> {
        &self.inner.flights
    }

    /// The invalidations kept for the background worker.
    pub(crate) fn pending(&self) -> &Pending {
        &self.inner.pending
    }

    /// Keys every lookup reads besides the call's tags (the store's base keys).
    pub(crate) fn base_keys(&self) -> &[String] {
        &self.inner.base_tag_keys
    }

    // ----- test support --------------------------------------------------------------------

    pub(crate) fn memory_backend(&self) -> Option<&MemoryBackend> {
        self.inner.backend.memory()
    }

    pub(crate) fn near_store(&self) -> Option<&NearStore> {
        self.inner.backend.near()
    }

    pub(crate) fn cluster_store(&self) -> Option<&ClusterStore> {
        self.inner.backend.cluster()
    }

    /// What the near cache did since the cache was built (`None`: the cache has none; see
    /// [`CacheBuilder::near_cache`]).
    ///
    /// ```
    /// # use cachette_runtime::Cache;
    /// let near = Cache::builder()
    ///     .redis("redis://127.0.0.1:6379")
    ///     .near_cache(16 << 20)
    ///     .build()
    ///     .expect("valid configuration");
    /// assert_eq!(near.near_stats().map(|s| s.hits), Some(0));
    /// assert!(Cache::memory(1 << 20).near_stats().is_none());
    /// ```
    pub fn near_stats(&self) -> Option<NearStats> {
        self.inner.backend.near().map(NearStore::stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn call_tag_keys_are_built_once_per_cache_and_follow_the_tags() -> Result<()> {
        let a = Cache::builder().memory(1 << 20).namespace("a").build()?;
        let b = Cache::builder().memory(1 << 20).namespace("b").build()?;
        let opts = Options::new().tags(["users", "user:1"]);
        let expect = |c: &Cache| vec![c.store_tag_key("users"), c.store_tag_key("user:1")];
        assert!(matches!(a.call_tag_keys(&opts), Cow::Borrowed(_)));
        assert_eq!(a.call_tag_keys(&opts).to_vec(), expect(&a));
        // A clone of the cache is the same cache; another cache gets its own keys.
        assert!(matches!(a.clone().call_tag_keys(&opts), Cow::Borrowed(_)));
        assert_eq!(b.call_tag_keys(&opts).to_vec(), expect(&b));
        assert_eq!(a.call_tag_keys(&opts).to_vec(), expect(&a));
        // New tags, new keys (also on a clone of options already used).
        let retagged = opts.clone().tags(["posts"]);
        assert_eq!(
            a.call_tag_keys(&retagged).to_vec(),
            vec![a.store_tag_key("posts")]
        );
        assert!(a.call_tag_keys(&Options::new()).is_empty());
        Ok(())
    }
}
