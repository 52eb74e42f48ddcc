//! The [`Cache`] handle: a thin, cheaply cloned handle over the store, the configuration,
//! the counters, the flights and the kept invalidations.
//!
//! Files: this one holds the handle, its constructors, key naming, TTLs, counters and error
//! logging; `manual.rs` the manual API's reads and writes (`get`, `exists`, `set`);
//! `invalidate.rs` invalidation (`delete`, `invalidate_tags`, `invalidate_pattern`, their
//! retries); `kept.rs` what happens to an invalidation that failed (kept, and retried by a
//! background worker over `pending.rs`'s queue). The cached-call path is the read-through
//! engine (`read_through/`), user locks are `lock.rs`, admin operations `admin.rs`.

// Call names travel as `&Cow<'static, str>` so that a static name becomes a metrics label
// without an allocation.
#![allow(clippy::ptr_arg)]

use crate::backend::disabled::DisabledStore;
use crate::backend::{Backend, Store, memory::MemoryBackend, redis::RedisBackend};
use crate::breaker::Breaker;
use crate::config::{BackendChoice, CacheBuilder, Config, MAX_DURATION, Options, Ttl, Undefined};
use crate::error::{Error, Result};
use crate::flight::Flights;
use crate::pending::Pending;
use crate::stats::{Event, LogLimiter, Stats, StatsSnapshot};
use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

mod invalidate;
mod kept;
mod manual;

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
    /// A builder, starting from the embedded memory store and the defaults.
    pub fn builder() -> CacheBuilder {
        CacheBuilder::new()
    }

    /// Redis at `url`, with the default settings. Fails only on a malformed URL; Redis need
    /// not be up (see [`CacheBuilder::redis`]). It defines no TTL profile: those the
    /// program's attributes name are logged at error level and counted (use the builder to
    /// define them, and to have missing ones refused).
    pub fn redis(url: &str) -> Result<Cache> {
        CacheBuilder::new().redis(url).build_reporting()
    }

    /// The embedded memory store bounded by `max_bytes`, with the default settings. It
    /// defines no TTL profile: those the program's attributes name are logged at error level
    /// and counted (use the builder to define them, and to have missing ones refused).
    pub fn memory(max_bytes: u64) -> Cache {
        let config = CacheBuilder::new().memory(max_bytes);
        // The defaults always validate; fall back to a disabled cache rather than panic. TTL
        // profiles named in code cannot be defined here: missing ones are logged and counted.
        config
            .build_reporting()
            .unwrap_or_else(|_| Cache::disabled())
    }

    /// A cache that stores nothing: every call runs its computation.
    ///
    /// Its locks ([`try_lock`](Self::try_lock), [`lock`](Self::lock)) still exclude, like
    /// the memory store's: within this process, among this cache and its clones (not across
    /// processes, nor with another `Cache::disabled()`). A service that relies on them for
    /// mutual exclusion keeps it when caching is switched off.
    pub fn disabled() -> Cache {
        let config = CacheBuilder::new().disabled();
        // It uses no TTL: profiles are not its concern.
        match config.build_with(Undefined::Ignore) {
            Ok(c) => c,
            Err(_) => Cache::from_parts_unchecked(
                Backend::Disabled(DisabledStore::default()),
                default_config(),
            ),
        }
    }

    /// Configured from the environment (see [`CacheBuilder::from_env`]).
    pub fn from_env() -> Result<Cache> {
        CacheBuilder::new().from_env().build()
    }

    pub(crate) fn from_parts(choice: BackendChoice, config: Config) -> Result<Cache> {
        let backend = match choice {
            BackendChoice::Redis(url, root_cert) => Backend::Redis(RedisBackend::new(
                &url,
                root_cert,
                config.op_timeout,
                Breaker::new(config.breaker, Arc::clone(&config.clock)),
                config.redis_connections,
                &config.namespace,
                config.wait_replicas,
            )?),
            BackendChoice::Memory(bytes) => Backend::Memory(MemoryBackend::new(bytes)),
            BackendChoice::Disabled => Backend::Disabled(DisabledStore::default()),
        };
        Ok(Self::from_parts_unchecked(backend, config))
    }

    fn from_parts_unchecked(backend: Backend, config: Config) -> Cache {
        let prefix = match &config.version {
            Some(v) => format!("{}:{}:", config.namespace, v),
            None => format!("{}:", config.namespace),
        };
        let tag_prefix = format!("{}#tag:", config.namespace);
        let base_tag_keys = backend.base_keys().to_vec().into_boxed_slice();
        Cache {
            inner: Arc::new(Inner {
                backend,
                config,
                prefix,
                tag_prefix,
                base_tag_keys,
                stats: Stats::default(),
                flights: Flights::new(),
                pending: Pending::default(),
            }),
        }
    }

    /// `"redis"`, `"memory"` or `"disabled"`.
    pub fn backend_kind(&self) -> &'static str {
        self.inner.backend.kind()
    }

    /// The backend key of an entry: `namespace[:version]:body`.
    pub fn full_key(&self, body: &str) -> String {
        let mut k = String::with_capacity(self.inner.prefix.len().saturating_add(body.len()));
        k.push_str(&self.inner.prefix);
        k.push_str(body);
        k
    }

    /// The `namespace[:version]:` prefix of entry keys.
    pub(crate) fn key_prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The body of a full key (the full key itself if it lacks the prefix).
    pub(crate) fn key_body<'k>(&self, full_key: &'k str) -> &'k str {
        full_key
            .strip_prefix(self.inner.prefix.as_str())
            .unwrap_or(full_key)
    }

    /// The backend key holding the current version of `tag`: `namespace#tag:tag`.
    pub fn tag_key(&self, tag: &str) -> String {
        let mut k = String::with_capacity(self.inner.tag_prefix.len().saturating_add(tag.len()));
        k.push_str(&self.inner.tag_prefix);
        k.push_str(tag);
        k
    }

    /// The backend key of a fill lock or a user lock: `namespace#lock:name`.
    pub(crate) fn lock_key(&self, name: &str) -> String {
        format!("{}#lock:{}", self.inner.config.namespace, name)
    }

    /// The duration a [`Ttl`] stands for in this cache. An unknown profile gives the default
    /// TTL (logged and counted, see [`StatsSnapshot::unknown_profiles`]).
    pub fn resolve_ttl(&self, ttl: &Ttl) -> Duration {
        self.ttl_for(ttl, &Cow::Borrowed("manual"))
    }

    pub(crate) fn ttl_for(&self, ttl: &Ttl, name: &Cow<'static, str>) -> Duration {
        let c = &self.inner.config;
        match ttl {
            Ttl::Default => c.default_ttl,
            Ttl::Fixed(d) if d.is_zero() => c.default_ttl,
            Ttl::Fixed(d) => (*d).min(MAX_DURATION),
            Ttl::Profile(p) => match c.profiles.get(p.as_ref()) {
                Some(d) => *d,
                None => {
                    self.inner.stats.record(Event::UnknownProfile, name);
                    if let Some(held) = self.inner.stats.log_profile.allow() {
                        tracing::warn!(
                            cache = %name, profile = %p, suppressed = held,
                            "unknown TTL profile; using the default TTL"
                        );
                    }
                    c.default_ttl
                }
            },
        }
    }

    /// The counters of this cache since it was built.
    pub fn stats(&self) -> StatsSnapshot {
        self.inner.stats.snapshot(self.inner.backend.round_trips())
    }

    /// The counters of each call name (the macros use the function's path), sorted by name.
    /// `round_trips` is 0 in these; see [`stats`](Self::stats) for the cache's total.
    pub fn stats_by_name(&self) -> Vec<(String, StatsSnapshot)> {
        self.inner.stats.by_name()
    }

    /// The backend keys of a call's tags, built once per options value and cache: the options
    /// of a `#[cached]` call site whose tags interpolate no argument live in a static, so its
    /// calls build no tag key. Options built per call pay what they did before.
    pub(crate) fn call_tag_keys<'o>(&'o self, opts: &'o Options) -> Cow<'o, [String]> {
        if opts.tags.is_empty() {
            return Cow::Borrowed(&self.inner.base_tag_keys);
        }
        let id = self.inner.stats.id();
        let (built_for, keys) = opts
            .tag_keys
            .get_or_init(|| (id, self.lookup_keys(&opts.tags).into_boxed_slice()));
        if *built_for == id {
            Cow::Borrowed(keys)
        } else {
            // Options shared by calls of several caches: the first cache's keys are kept.
            Cow::Owned(self.lookup_keys(&opts.tags))
        }
    }

    /// The keys a lookup of an entry carrying `tags` reads: the tag keys, then the base keys.
    fn lookup_keys(&self, tags: &[String]) -> Vec<String> {
        let mut keys = self.tag_keys(tags);
        keys.extend(self.inner.base_tag_keys.iter().cloned());
        keys
    }

    #[inline]
    pub(crate) fn tag_keys(&self, tags: &[String]) -> Vec<String> {
        if tags.is_empty() {
            return Vec::new();
        }
        tags.iter().map(|t| self.tag_key(t)).collect()
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
    pub async fn connect(&self) -> Result<()> {
        self.inner.backend.ping().await
    }

    /// Invalidations that failed and wait to be applied (see
    /// [`invalidate_tags`](Self::invalidate_tags)).
    pub fn pending_invalidations(&self) -> usize {
        self.inner.pending.len()
    }

    /// Whether the Redis circuit breaker is open (calls skip Redis until it answers again).
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
}

fn default_config() -> Config {
    // Only reached if the defaults failed to validate, which they do not.
    Config::defaults()
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
        let expect = |c: &Cache| vec![c.tag_key("users"), c.tag_key("user:1")];
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
            vec![a.tag_key("posts")]
        );
        assert!(a.call_tag_keys(&Options::new()).is_empty());
        Ok(())
    }
}
