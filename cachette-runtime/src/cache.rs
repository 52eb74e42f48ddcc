//! The [`Cache`] handle: lookups, fills, invalidation, degradation.

// Call names travel as `&Cow<'static, str>` so that a static name becomes a metrics label
// without an allocation.
#![allow(clippy::ptr_arg)]

use crate::backend::{Backend, memory::MemoryBackend, redis::RedisBackend};
use crate::codec::{self, DecodeError};
use crate::config::{BackendChoice, CacheBuilder, Config, Options, Ttl};
use crate::error::{Error, Result};
use crate::policy::{CacheValue, Fallible, Plain, ReturnPolicy};
use crate::stats::{LogLimiter, Stats, StatsSnapshot, bump};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Delays before the attempts of an invalidation (first attempt at once).
const INVALIDATION_RETRY_DELAYS: [Duration; 3] = [
    Duration::ZERO,
    Duration::from_millis(25),
    Duration::from_millis(100),
];

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
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    config: Config,
    /// `namespace[:version]:`
    prefix: String,
    /// `namespace#tag:`
    tag_prefix: String,
    stats: Stats,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Cache");
        d.field("backend", &self.inner.backend.kind());
        if let Backend::Redis(r) = &self.inner.backend {
            d.field("url", &r.redacted_url());
        }
        d.field("prefix", &self.inner.prefix).finish()
    }
}

/// What a lookup found.
enum Probe<T> {
    Hit(T),
    /// Run the computation; store its value with these tag versions (`None`: do not store,
    /// because the backend failed or the tag versions could not be established).
    Miss(Option<Vec<(String, String)>>),
}

/// What checking stored bytes found.
enum Check<T> {
    Valid(T),
    /// Invalidated (a tag moved on, is missing, or the entry does not carry a required tag).
    Stale,
    Undecodable(String),
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Cache {
    /// A builder, starting from the embedded memory store and the defaults.
    pub fn builder() -> CacheBuilder {
        CacheBuilder::new()
    }

    /// Redis at `url`, with the default settings. Fails only on a malformed URL; Redis need
    /// not be up (see [`CacheBuilder::redis`]).
    pub fn redis(url: &str) -> Result<Cache> {
        CacheBuilder::new().redis(url).build()
    }

    /// The embedded memory store bounded by `max_bytes`, with the default settings.
    pub fn memory(max_bytes: u64) -> Cache {
        let config = CacheBuilder::new().memory(max_bytes);
        // The defaults always validate; fall back to a disabled cache rather than panic.
        config.build().unwrap_or_else(|_| Cache::disabled())
    }

    /// A cache that stores nothing: every call runs its computation.
    pub fn disabled() -> Cache {
        let config = CacheBuilder::new().disabled();
        match config.build() {
            Ok(c) => c,
            Err(_) => Cache::from_parts_unchecked(Backend::Disabled, default_config()),
        }
    }

    /// Configured from the environment (see [`CacheBuilder::from_env`]).
    pub fn from_env() -> Result<Cache> {
        CacheBuilder::new().from_env().build()
    }

    pub(crate) fn from_parts(choice: BackendChoice, config: Config) -> Result<Cache> {
        let backend = match choice {
            BackendChoice::Redis(url) => {
                Backend::Redis(RedisBackend::new(&url, config.op_timeout)?)
            }
            BackendChoice::Memory(bytes) => {
                Backend::Memory(MemoryBackend::new(bytes, config.memory_max_tags))
            }
            BackendChoice::Disabled => Backend::Disabled,
        };
        Ok(Self::from_parts_unchecked(backend, config))
    }

    fn from_parts_unchecked(backend: Backend, config: Config) -> Cache {
        let prefix = match &config.version {
            Some(v) => format!("{}:{}:", config.namespace, v),
            None => format!("{}:", config.namespace),
        };
        let tag_prefix = format!("{}#tag:", config.namespace);
        Cache {
            inner: Arc::new(Inner {
                backend,
                config,
                prefix,
                tag_prefix,
                stats: Stats::default(),
            }),
        }
    }

    /// `"redis"`, `"memory"` or `"disabled"`.
    pub fn backend_kind(&self) -> &'static str {
        self.inner.backend.kind()
    }

    /// The backend key of an entry: `namespace[:version]:body`.
    pub fn full_key(&self, body: &str) -> String {
        let mut k = String::with_capacity(self.inner.prefix.len() + body.len());
        k.push_str(&self.inner.prefix);
        k.push_str(body);
        k
    }

    /// The backend key holding the current version of `tag`: `namespace#tag:tag`.
    pub fn tag_key(&self, tag: &str) -> String {
        let mut k = String::with_capacity(self.inner.tag_prefix.len() + tag.len());
        k.push_str(&self.inner.tag_prefix);
        k.push_str(tag);
        k
    }

    /// The duration a [`Ttl`] stands for in this cache. An unknown profile gives the default
    /// TTL (logged and counted, see [`StatsSnapshot::unknown_profiles`]).
    pub fn resolve_ttl(&self, ttl: &Ttl) -> Duration {
        self.ttl_for(ttl, &Cow::Borrowed("manual"))
    }

    fn ttl_for(&self, ttl: &Ttl, name: &Cow<'static, str>) -> Duration {
        let c = &self.inner.config;
        match ttl {
            Ttl::Default => c.default_ttl,
            Ttl::Fixed(d) if d.is_zero() => c.default_ttl,
            Ttl::Fixed(d) => *d,
            Ttl::Profile(p) => match c.profiles.get(p.as_ref()) {
                Some(d) => *d,
                None => {
                    bump(
                        &self.inner.stats.unknown_profiles,
                        "cachette_unknown_profile_total",
                        name,
                    );
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

    fn tag_keys(&self, tags: &[String]) -> Vec<String> {
        tags.iter().map(|t| self.tag_key(t)).collect()
    }

    fn log_error(
        &self,
        limiter: &LogLimiter,
        name: &Cow<'static, str>,
        op: &'static str,
        e: &Error,
    ) {
        bump(
            &self.inner.stats.backend_errors,
            "cachette_errors_total",
            name,
        );
        metrics::counter!("cachette_backend_errors_total", "cache" => crate::stats::label(name), "op" => op, "kind" => e.kind())
            .increment(1);
        if let Some(held) = limiter.allow() {
            tracing::warn!(
                cache = %name, op, kind = e.kind(), error = %e, suppressed = held,
                "cache backend failed; going on without the cache"
            );
        }
    }

    // ----- the cached-call path ------------------------------------------------------------

    /// Returns the cached value of `key`, or runs `compute`, stores its value and returns it.
    ///
    /// This is the entry point of `#[cached]`. It never fails because of the cache: when the
    /// backend is slow, down or returns garbage, the computation runs and its value is
    /// returned (the problem is logged, rate-limited, and counted). One round trip on a hit
    /// (entry and tag versions together); on a miss, that lookup, one more if a tag key had to
    /// be created, and one store.
    pub async fn get_or_compute<T, F, Fut>(&self, key: &str, opts: &Options, compute: F) -> T
    where
        T: CacheValue,
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        self.cached_with(key, opts, Plain, compute).await
    }

    /// Like [`get_or_compute`](Self::get_or_compute) for a fallible computation: only `Ok`
    /// values are stored; an `Err` is returned as it is and nothing is cached.
    pub async fn get_or_try_compute<T, E, F, Fut>(
        &self,
        key: &str,
        opts: &Options,
        compute: F,
    ) -> Result<T, E>
    where
        T: CacheValue,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.cached_with(key, opts, Fallible, compute).await
    }

    /// The general form of [`get_or_compute`](Self::get_or_compute): `policy` says which
    /// return values are stored and how a stored value becomes a return value
    /// ([`Plain`], [`Fallible`], [`Optional`]).
    ///
    /// ```
    /// use cachette_runtime::{Cache, Optional, Options, Ttl};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = Cache::memory(1 << 20);
    /// // Negative caching: a `None` is stored too, for 30 seconds.
    /// let policy = Optional { cache_none: true, none_ttl: Some(Ttl::Fixed(Duration::from_secs(30))) };
    /// let found: Option<u32> = cache
    ///     .cached_with("user:404", &Options::new(), policy, || async { None })
    ///     .await;
    /// assert_eq!(found, None);
    /// assert!(cache.exists("user:404").await.unwrap());
    /// # }
    /// ```
    pub async fn cached_with<R, P, F, Fut>(
        &self,
        key: &str,
        opts: &Options,
        policy: P,
        compute: F,
    ) -> R
    where
        P: ReturnPolicy<R>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = R>,
    {
        self.run_cached(key, opts, policy, compute, false).await
    }

    /// Recomputes the value of `key` and stores it, without looking it up first (cache
    /// warming, or refreshing after an out-of-band change). Returns the computed value. The
    /// tag versions are read before the computation starts, as on a miss.
    pub async fn refresh<R, P, F, Fut>(&self, key: &str, opts: &Options, policy: P, compute: F) -> R
    where
        P: ReturnPolicy<R>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = R>,
    {
        self.run_cached(key, opts, policy, compute, true).await
    }

    async fn run_cached<R, P, F, Fut>(
        &self,
        key: &str,
        opts: &Options,
        policy: P,
        compute: F,
        refresh: bool,
    ) -> R
    where
        P: ReturnPolicy<R>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = R>,
    {
        if matches!(self.inner.backend, Backend::Disabled) {
            bump(
                &self.inner.stats.misses,
                "cachette_misses_total",
                &opts.name,
            );
            return compute().await;
        }
        let full_key = self.full_key(key);
        let tag_keys = self.tag_keys(&opts.tags);
        let ttl = self.ttl_for(&opts.ttl, &opts.name);
        let versions = if refresh {
            let versions = match self.inner.backend.versions(&tag_keys).await {
                Ok(v) => v,
                Err(e) => {
                    self.log_error(&self.inner.stats.log_backend, &opts.name, "fetch_tags", &e);
                    return compute().await;
                }
            };
            self.fill_versions(&opts.tags, &tag_keys, versions, ttl, &opts.name)
                .await
        } else {
            match self
                .probe::<P::Stored>(&full_key, &opts.tags, &tag_keys, ttl, &opts.name)
                .await
            {
                Probe::Hit(v) => {
                    bump(&self.inner.stats.hits, "cachette_hits_total", &opts.name);
                    tracing::debug!(cache = %opts.name, key = %full_key, "cache hit");
                    return policy.restore(v);
                }
                Probe::Miss(versions) => {
                    bump(
                        &self.inner.stats.misses,
                        "cachette_misses_total",
                        &opts.name,
                    );
                    tracing::debug!(cache = %opts.name, key = %full_key, "cache miss");
                    versions
                }
            }
        };
        let started = Instant::now();
        let result = compute().await;
        if let (Some((value, ttl_override)), Some(versions)) = (policy.to_store(&result), versions)
        {
            let compute_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            let ttl = match ttl_override {
                Some(t) => self.ttl_for(t, &opts.name),
                None => ttl,
            };
            if let Err(e) = self
                .store_entry(&full_key, value, &versions, ttl, compute_ms, &opts.name)
                .await
                && !matches!(e, Error::TooLarge { .. } | Error::Encode(_))
            {
                self.log_error(&self.inner.stats.log_backend, &opts.name, "store", &e);
            }
        }
        result
    }

    /// One lookup: the entry and the tag versions in one round trip, then, on a miss, the tag
    /// versions the fill will be stored with (created when missing).
    async fn probe<T: DeserializeOwned>(
        &self,
        full_key: &str,
        tags: &[String],
        tag_keys: &[String],
        entry_ttl: Duration,
        name: &Cow<'static, str>,
    ) -> Probe<T> {
        let fetched = match self.inner.backend.fetch(full_key, tag_keys).await {
            Ok(f) => f,
            Err(e) => {
                self.log_error(&self.inner.stats.log_backend, name, "fetch", &e);
                return Probe::Miss(None);
            }
        };
        if let Some(bytes) = &fetched.entry {
            match self.check::<T>(bytes, tags, &fetched.versions).await {
                Ok(Check::Valid(v)) => return Probe::Hit(v),
                Ok(Check::Stale) => {}
                Ok(Check::Undecodable(why)) => self.decode_failure(name, full_key, &why),
                Err(e) => {
                    self.log_error(&self.inner.stats.log_backend, name, "fetch_tags", &e);
                    return Probe::Miss(None);
                }
            }
        }
        self.fill_versions(tags, tag_keys, fetched.versions, entry_ttl, name)
            .await
            .map_or(Probe::Miss(None), |v| Probe::Miss(Some(v)))
    }

    /// The tag versions a fill starting now is stored with; creates missing tag keys.
    async fn fill_versions(
        &self,
        tags: &[String],
        tag_keys: &[String],
        mut versions: Vec<Option<String>>,
        entry_ttl: Duration,
        name: &Cow<'static, str>,
    ) -> Option<Vec<(String, String)>> {
        let missing: Vec<usize> = (0..tags.len())
            .filter(|&i| versions.get(i).is_none_or(Option::is_none))
            .collect();
        if !missing.is_empty() {
            let keys: Vec<String> = missing.iter().map(|&i| tag_keys[i].clone()).collect();
            let ttl = self.inner.config.tag_ttl.max(entry_ttl);
            match self.inner.backend.ensure_tags(&keys, ttl).await {
                Ok(created) => {
                    versions.resize(tags.len(), None);
                    for (&i, v) in missing.iter().zip(created) {
                        versions[i] = v;
                    }
                }
                Err(e) => {
                    self.log_error(&self.inner.stats.log_backend, name, "create_tags", &e);
                    return None;
                }
            }
        }
        tags.iter()
            .zip(versions)
            .map(|(t, v)| v.map(|v| (t.clone(), v)))
            .collect()
    }

    /// Checks stored bytes against the current tag versions and decodes the value.
    ///
    /// `versions[i]` is the current version of `tags[i]`. The entry is valid only if it
    /// carries every tag in `tags` and each of its tags still has the version it was stored
    /// with; tags the entry carries beyond `tags` are fetched (one more round trip).
    async fn check<T: DeserializeOwned>(
        &self,
        bytes: &[u8],
        tags: &[String],
        versions: &[Option<String>],
    ) -> Result<Check<T>> {
        let env = match codec::decode_header(bytes) {
            Ok(env) => env,
            Err(e @ (DecodeError::Malformed(_) | DecodeError::Version(_))) => {
                return Ok(Check::Undecodable(e.to_string()));
            }
        };
        if !tags
            .iter()
            .all(|t| env.tags.iter().any(|(et, _)| et.as_ref() == t.as_str()))
        {
            return Ok(Check::Stale);
        }
        let mut extra_tags = Vec::new();
        for (tag, stored) in &env.tags {
            match tags.iter().position(|t| t.as_str() == tag.as_ref()) {
                Some(i) => {
                    if versions.get(i).and_then(Option::as_deref) != Some(stored.as_ref()) {
                        return Ok(Check::Stale);
                    }
                }
                None => extra_tags.push((tag, stored)),
            }
        }
        if !extra_tags.is_empty() {
            let keys: Vec<String> = extra_tags.iter().map(|(t, _)| self.tag_key(t)).collect();
            let current = self.inner.backend.versions(&keys).await?;
            for ((_, stored), cur) in extra_tags.iter().zip(current) {
                if cur.as_deref() != Some(stored.as_ref()) {
                    return Ok(Check::Stale);
                }
            }
        }
        Ok(match codec::decode_value::<T>(&env) {
            Ok(v) => Check::Valid(v),
            Err(e) => {
                Check::Undecodable(format!("value does not decode as the expected type: {e}"))
            }
        })
    }

    fn decode_failure(&self, name: &Cow<'static, str>, full_key: &str, why: &str) {
        bump(
            &self.inner.stats.decode_failures,
            "cachette_decode_failures_total",
            name,
        );
        if let Some(held) = self.inner.stats.log_decode.allow() {
            tracing::warn!(
                cache = %name, error = why, suppressed = held,
                "stored entry does not decode; recomputing and overwriting it"
            );
        }
        tracing::debug!(cache = %name, key = %full_key, "undecodable entry");
    }

    async fn store_entry<T: Serialize + ?Sized>(
        &self,
        full_key: &str,
        value: &T,
        versions: &[(String, String)],
        ttl: Duration,
        compute_ms: u64,
        name: &Cow<'static, str>,
    ) -> Result<()> {
        let bytes = codec::encode(value, versions, now_ms(), compute_ms).inspect_err(|e| {
            if let Some(held) = self.inner.stats.log_oversize.allow() {
                tracing::warn!(cache = %name, error = %e, suppressed = held, "value does not serialize; not stored");
            }
        })?;
        let max = self.inner.config.max_value_bytes;
        if bytes.len() > max {
            bump(&self.inner.stats.oversize, "cachette_oversize_total", name);
            if let Some(held) = self.inner.stats.log_oversize.allow() {
                tracing::warn!(
                    cache = %name, size = bytes.len(), max, suppressed = held,
                    "value over the size limit; not stored"
                );
            }
            return Err(Error::TooLarge {
                size: bytes.len(),
                max,
            });
        }
        self.inner.backend.store(full_key, bytes, ttl).await?;
        bump(&self.inner.stats.stores, "cachette_stores_total", name);
        Ok(())
    }

    // ----- the manual API ------------------------------------------------------------------

    /// The value stored at `key`, if there is a valid one (not expired, not invalidated).
    ///
    /// One round trip, plus one when the entry carries tags (their versions are checked). A
    /// value that does not decode as `T` is `Ok(None)` (counted in
    /// [`StatsSnapshot::decode_failures`]); a backend failure is an error.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let full_key = self.full_key(key);
        let name = Cow::Borrowed("manual");
        let fetched = self.inner.backend.fetch(&full_key, &[]).await?;
        let Some(bytes) = fetched.entry else {
            bump(&self.inner.stats.misses, "cachette_misses_total", &name);
            return Ok(None);
        };
        match self.check::<T>(&bytes, &[], &[]).await? {
            Check::Valid(v) => {
                bump(&self.inner.stats.hits, "cachette_hits_total", &name);
                Ok(Some(v))
            }
            Check::Stale => {
                bump(&self.inner.stats.misses, "cachette_misses_total", &name);
                Ok(None)
            }
            Check::Undecodable(why) => {
                self.decode_failure(&name, &full_key, &why);
                bump(&self.inner.stats.misses, "cachette_misses_total", &name);
                Ok(None)
            }
        }
    }

    /// Whether a valid entry is stored at `key` (the value is not decoded).
    pub async fn exists(&self, key: &str) -> Result<bool> {
        let full_key = self.full_key(key);
        let fetched = self.inner.backend.fetch(&full_key, &[]).await?;
        let Some(bytes) = fetched.entry else {
            return Ok(false);
        };
        Ok(matches!(
            self.check::<serde::de::IgnoredAny>(&bytes, &[], &[])
                .await?,
            Check::Valid(_)
        ))
    }

    /// Stores `value` at `key` with the options' TTL and tags. The tag versions are read
    /// before the write, so an invalidation that returns after this call started may or may
    /// not cover the value; one that starts after it returns always does.
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        opts: &Options,
    ) -> Result<()> {
        if matches!(self.inner.backend, Backend::Disabled) {
            return Ok(());
        }
        let full_key = self.full_key(key);
        let tag_keys = self.tag_keys(&opts.tags);
        let ttl = self.ttl_for(&opts.ttl, &opts.name);
        let tag_ttl = self.inner.config.tag_ttl.max(ttl);
        let versions = self.inner.backend.ensure_tags(&tag_keys, tag_ttl).await?;
        let versions: Option<Vec<(String, String)>> = opts
            .tags
            .iter()
            .zip(versions)
            .map(|(t, v)| v.map(|v| (t.clone(), v)))
            .collect();
        let Some(versions) = versions else {
            return Err(Error::Config(
                "a tag key vanished while it was being created; nothing was stored".to_owned(),
            ));
        };
        self.store_entry(&full_key, value, &versions, ttl, 0, &opts.name)
            .await
    }

    /// Removes the entry at `key`; whether there was one. Retried like invalidations.
    ///
    /// A computation that started before this call may still store its value afterwards;
    /// tags are the race-free way to invalidate (see ARCHITECTURE.md).
    pub async fn delete(&self, key: &str) -> Result<bool> {
        let full_key = self.full_key(key);
        self.retrying("delete", || self.inner.backend.delete(&full_key))
            .await
    }

    /// Invalidates every entry carrying any of `tags`, however many there are (one write per
    /// tag). When this returns `Ok`, no read, in this process or any other sharing the
    /// backend, returns a value whose computation started before this call began. Retried
    /// three times; an error means the invalidation may not have happened.
    pub async fn invalidate_tags<I, S>(&self, tags: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let tag_keys: Vec<String> = tags.into_iter().map(|t| self.tag_key(t.as_ref())).collect();
        if tag_keys.is_empty() {
            return Ok(());
        }
        let ttl = self.inner.config.tag_ttl;
        self.retrying("invalidate_tags", || {
            self.inner.backend.bump_tags(&tag_keys, ttl)
        })
        .await
    }

    /// Removes every entry whose body matches the Redis glob `pattern` (`user:*`), with
    /// `SCAN` + `UNLINK` (never `KEYS`); how many were removed. Build patterns with
    /// [`KeyBuilder`](crate::keys::KeyBuilder) so that interpolated values cannot widen them.
    /// Like [`delete`](Self::delete), not race-free against fills already running.
    pub async fn invalidate_pattern(&self, pattern: &str) -> Result<u64> {
        let full = self.full_key(pattern);
        self.retrying("invalidate_pattern", || {
            self.inner.backend.delete_matching(&full)
        })
        .await
    }

    /// Runs an invalidation with retries; counts and logs the outcome.
    async fn retrying<T, F, Fut>(&self, op: &'static str, mut f: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let name = Cow::Borrowed(op);
        let mut last = None;
        for delay in INVALIDATION_RETRY_DELAYS {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            match f().await {
                Ok(v) => {
                    bump(
                        &self.inner.stats.invalidations,
                        "cachette_invalidations_total",
                        &name,
                    );
                    return Ok(v);
                }
                Err(e) => {
                    self.log_error(&self.inner.stats.log_backend, &name, op, &e);
                    last = Some(e);
                }
            }
        }
        bump(
            &self.inner.stats.invalidation_failures,
            "cachette_invalidation_failures_total",
            &name,
        );
        let e = last.unwrap_or(Error::Timeout(self.inner.config.op_timeout));
        tracing::error!(op, error = %e, "invalidation failed after retries");
        Err(e)
    }

    // ----- test support --------------------------------------------------------------------

    pub(crate) fn memory_backend(&self) -> Option<&MemoryBackend> {
        match &self.inner.backend {
            Backend::Memory(m) => Some(m),
            _ => None,
        }
    }
}

fn default_config() -> Config {
    // Only reached if the defaults failed to validate, which they do not.
    Config {
        namespace: crate::config::DEFAULT_NAMESPACE.to_owned(),
        version: None,
        default_ttl: crate::config::DEFAULT_TTL,
        profiles: Default::default(),
        op_timeout: crate::config::DEFAULT_OP_TIMEOUT,
        max_value_bytes: crate::config::DEFAULT_MAX_VALUE_BYTES,
        tag_ttl: crate::config::DEFAULT_TAG_TTL,
        memory_max_tags: 1_000_000,
    }
}
