//! The [`Cache`] handle: lookups, fills, invalidation, degradation.

// Call names travel as `&Cow<'static, str>` so that a static name becomes a metrics label
// without an allocation.
#![allow(clippy::ptr_arg)]

use crate::backend::disabled::DisabledStore;
use crate::backend::{Backend, Store, memory::MemoryBackend, redis::RedisBackend};
use crate::breaker::Breaker;
use crate::clock::Backoff;
use crate::codec::{self, Meta};
use crate::config::{BackendChoice, CacheBuilder, Config, MAX_DURATION, Options, Ttl, Undefined};
use crate::error::{Error, Result};
use crate::flight::Flights;
use crate::lock::Lock;
use crate::pending::{Item, Pending};
use crate::read_through::{Check, ToStore};
use crate::stats::{Event, LogLimiter, Stats, StatsSnapshot};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Delays before the attempts of an invalidation (first attempt at once). Only error replies
/// (`NOPERM`, `READONLY`...) are retried inside the call: after an outage (a timeout, a
/// connection that fails, the breaker open) the caller gets the error at once, about one
/// operation timeout at most, and the kept invalidation is retried in the background.
/// The call name of the manual API's reads, writes and locks.
const MANUAL: &str = "manual";

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

    // ----- the manual API ------------------------------------------------------------------

    /// The value stored at `key`, if there is a valid one (not expired, not invalidated).
    ///
    /// One round trip, plus one when the entry carries tags (their versions are checked). A
    /// value that does not decode as `T` is `Ok(None)` (counted in
    /// [`StatsSnapshot::decode_failures`]); a backend failure is an error.
    ///
    /// `key`: a [`Key`](crate::Key), built with `cachette::key!("user:{}", id)` so that
    /// values are escaped as the attributes escape them, or a string (`&str`, `String`) taken
    /// as **already escaped** (see [`keys`](crate::keys#the-manual-api)).
    pub async fn get<T: DeserializeOwned>(&self, key: impl AsRef<str>) -> Result<Option<T>> {
        let started = Instant::now();
        let name = Cow::Borrowed(MANUAL);
        self.attributed(&name, self.get_timed(key.as_ref(), &name, started))
            .await
    }

    async fn get_timed<T: DeserializeOwned>(
        &self,
        key: &str,
        name: &Cow<'static, str>,
        started: Instant,
    ) -> Result<Option<T>> {
        let full_key = self.full_key(key);
        let name = name.clone();
        self.ensure_pending_worker();
        if self.inner.pending.blocks(&full_key, &[]) {
            self.inner.stats.record(Event::Miss, &name);
            return Ok(None);
        }
        let found = self
            .inner
            .backend
            .lookup(&full_key, &self.inner.base_tag_keys)
            .await?;
        let Some(entry) = found.entry else {
            self.inner.stats.record(Event::Miss, &name);
            return Ok(None);
        };
        match self
            .check_stored::<T>(&entry, &[], &found.versions, None)
            .await?
        {
            Check::Valid(v, meta) if self.is_fresh(meta) => {
                self.inner.stats.record_hit(&name, started);
                Ok(Some(v))
            }
            Check::Valid(..) | Check::Invalid => {
                self.inner.stats.record(Event::Miss, &name);
                Ok(None)
            }
            Check::Undecodable(why) => {
                self.decode_failure(&name, &full_key, &why);
                self.inner.stats.record(Event::Miss, &name);
                Ok(None)
            }
        }
    }

    /// Whether a valid entry is stored at `key` (the value is not decoded). `key` as for
    /// [`get`](Self::get).
    pub async fn exists(&self, key: impl AsRef<str>) -> Result<bool> {
        self.attributed(&Cow::Borrowed(MANUAL), self.exists_raw(key.as_ref()))
            .await
    }

    async fn exists_raw(&self, key: &str) -> Result<bool> {
        let full_key = self.full_key(key);
        self.ensure_pending_worker();
        if self.inner.pending.blocks(&full_key, &[]) {
            return Ok(false);
        }
        let found = self
            .inner
            .backend
            .lookup(&full_key, &self.inner.base_tag_keys)
            .await?;
        let Some(entry) = found.entry else {
            return Ok(false);
        };
        Ok(matches!(
            self.check_stored::<serde::de::IgnoredAny>(&entry, &[], &found.versions, None)
                .await?,
            Check::Valid(_, meta) if self.is_fresh(meta)
        ))
    }

    fn is_fresh(&self, meta: Meta) -> bool {
        meta.fresh_until_ms == 0 || self.inner.config.clock.now_ms() < meta.fresh_until_ms
    }

    /// Stores `value` at `key` with the options' TTL and tags (what `#[cache_put]` calls). The
    /// tag versions are read before the write, so an invalidation that returns after this call
    /// started may or may not cover the value; one that starts after it returns always does.
    /// A computation of the key that began before this call cannot overwrite the value: fills
    /// store only if the key is still as their lookup saw it (the entry is kept at least the
    /// fence TTL for that, as a miss once past its TTL and windows). Two `set`s of one key
    /// racing each other are the caller's to order: the later to arrive wins.
    ///
    /// `key`: a [`Key`](crate::Key), built with `cachette::key!("user:{}", id)` so that
    /// values are escaped as the attributes escape them, or a string (`&str`, `String`) taken
    /// as **already escaped** (see [`keys`](crate::keys#the-manual-api)).
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        key: impl AsRef<str>,
        value: &T,
        opts: &Options,
    ) -> Result<()> {
        if !self.inner.backend.stores() {
            return Ok(());
        }
        let raw = codec::encode_value(value)?;
        self.write_through(&self.full_key(key.as_ref()), &raw, opts, None, false)
            .await
    }

    /// The write of [`set`](Self::set), of an encoded value at a full key: also what a
    /// write-through coupled to a cached call (`#[cache_put(get_user(id))]`,
    /// `cachette::put`) does, from that call's generated code, with the call's options and
    /// `ttl` (the policy's TTL for this value, e.g. `cache_none`'s) instead of `opts.ttl`
    /// when given. Unconditional, so it fences fills that began before it (see `store_raw`).
    /// Its round trips are timed under the options' name.
    pub(crate) async fn write_through(
        &self,
        full_key: &str,
        raw: &serde_json::value::RawValue,
        opts: &Options,
        ttl: Option<&Ttl>,
        keep_decoded: bool,
    ) -> Result<()> {
        self.attributed(
            &opts.name,
            self.write_through_raw(full_key, raw, opts, ttl, keep_decoded),
        )
        .await
    }

    async fn write_through_raw(
        &self,
        full_key: &str,
        raw: &serde_json::value::RawValue,
        opts: &Options,
        ttl: Option<&Ttl>,
        keep_decoded: bool,
    ) -> Result<()> {
        if !self.inner.backend.stores() {
            return Ok(());
        }
        let tag_keys = self.call_tag_keys(opts);
        let ttl = self.ttl_for(ttl.unwrap_or(&opts.ttl), &opts.name);
        let versions = self
            .resolve_versions(&opts.tags, &tag_keys, Vec::new(), ttl)
            .await?;
        let Some(versions) = versions else {
            return Err(Error::Config(
                "a tag key vanished while it was being created; nothing was stored".to_owned(),
            ));
        };
        let entry = ToStore {
            full_key,
            raw,
            versions: &versions,
            ttl,
            compute_us: 0,
            keep_decoded,
        };
        self.store_raw(entry, opts, None).await.map(|_| ())
    }

    /// Removes the entry at `key`; whether there was one. Retried like invalidations. `key` as
    /// for [`get`](Self::get).
    ///
    /// Race-free like a tag invalidation: once this returns `Ok`, no read returns a value
    /// whose computation started before it. The key keeps a small tombstone for the fence TTL
    /// ([`CacheBuilder::fence_ttl`](crate::CacheBuilder::fence_ttl), 10 min by default), so
    /// that a computation that began before cannot store its value afterwards (every fill
    /// stores only if its key is still as its lookup saw it).
    pub async fn delete(&self, key: impl AsRef<str>) -> Result<bool> {
        let full_key = self.full_key(key.as_ref());
        let r = self
            .retrying("delete", || {
                self.inner
                    .backend
                    .delete(&full_key, self.inner.config.fence_ttl)
            })
            .await;
        if r.is_err() {
            self.defer([Item::Key(full_key)]);
        }
        r
    }

    /// Invalidates every entry carrying any of `tags`, however many there are (one write per
    /// tag). When this returns `Ok`, no read, in this process or any other sharing the
    /// backend, returns a value whose computation started before this call began. A refusal is
    /// retried three times, an outage not (see below); an error means the invalidation may
    /// not have happened.
    ///
    /// `tags`: [`Tag`](crate::Tag)s, built with `cachette::tag!("user:{}", id)` so that values
    /// are escaped as in `#[cached(tags = ["user:{id}"])]`, or strings taken as **already
    /// escaped**: `format!("user:{id}")` misses the entry of user `1:*`, whose tag is
    /// `user:1%3A%2A`.
    ///
    /// When Redis is full (`maxmemory` with `noeviction`) and refuses the new versions
    /// (`OOM`), the tag keys are deleted instead, one more round trip: a missing tag key
    /// invalidates the same entries.
    ///
    /// # When it fails
    ///
    /// Redis down or slow, or refusing the command (`NOPERM` from an ACL, `READONLY` from a
    /// replica): the error is returned after the third attempt (after the first one when
    /// Redis is down, slow or skipped by the circuit breaker, so that the caller waits one
    /// operation timeout at most), logged at error level and counted ([`StatsSnapshot::invalidation_failures`]). The invalidation is not dropped: it
    /// is kept, and a background task retries it until Redis accepts it
    /// ([`pending_invalidations`](Self::pending_invalidations), the
    /// `cachette_pending_invalidations` gauge). Until then this process serves no entry
    /// carrying these tags from the cache (reads compute). Other processes sharing Redis cannot
    /// know of it: they may serve those entries until the retry succeeds, for at most the
    /// entries' TTL.
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
        let r = self
            .retrying("invalidate_tags", || {
                self.inner.backend.bump_tags(&tag_keys, ttl)
            })
            .await;
        if r.is_err() {
            self.defer(tag_keys.into_iter().map(Item::Tag));
        }
        r
    }

    /// Removes every entry whose body matches the Redis glob `pattern` (`user:*`), with
    /// `SCAN` + `UNLINK` (never `KEYS`); how many were removed.
    ///
    /// `pattern`: a [`Pattern`](crate::Pattern), built with
    /// `cachette::pattern!("guild:{}:*", id)` so that an interpolated value matches only
    /// itself, or a string taken as **already escaped**, its every `*`, `?` and `[` a glob:
    /// `format!("guild:{id}:*")` with `id = "a*"` also removes guilds `a` and `ab`.
    ///
    /// Race-free like [`delete`](Self::delete): once this returns `Ok`, no read returns a
    /// value whose computation started before it. A computation whose lookup found a matching
    /// entry cannot store over it (its store compares the key with what it read); and since
    /// `SCAN` cannot see a key that does not exist yet, each pattern invalidation first counts
    /// itself (`namespace#patterns`), and a computation that found its key absent stores only
    /// if no pattern invalidation began since its lookup. The price: a fill of *any* absent key
    /// of the namespace that races a pattern invalidation is not stored (its value is still
    /// returned; counted in [`StatsSnapshot::fills_fenced`](crate::StatsSnapshot::fills_fenced)).
    /// Tags remain the cheaper tool: O(1) whatever the number of entries, and they fence only
    /// what they cover.
    ///
    /// # When it fails
    ///
    /// As for [`invalidate_tags`](Self::invalidate_tags): Redis down, or refusing `SCAN` or
    /// `UNLINK` (`NOPERM` from an ACL that forbids them), is an error after three attempts,
    /// logged at error level and counted; the pattern is kept and retried in the background
    /// until Redis accepts it, and until then this process computes every key matching it
    /// instead of reading it. Other processes may serve those keys meanwhile, for at most their
    /// TTL. A refused command does not open the circuit breaker: the other keys stay cached.
    pub async fn invalidate_pattern(&self, pattern: impl AsRef<str>) -> Result<u64> {
        let full = self.full_key(pattern.as_ref());
        let r = self
            .retrying("invalidate_pattern", || {
                self.inner.backend.delete_matching(&full, true)
            })
            .await;
        if r.is_err() {
            self.defer([Item::Pattern(full)]);
        }
        r
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
    /// Not an `async fn`, for the reason given at [`crate::timing::attributed`].
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
        crate::timing::attributed(counters, fut)
    }

    /// Runs an invalidation with retries (error replies only: an outage returns after its first
    /// failed attempt, see [`INVALIDATION_RETRY_DELAYS`]); counts and logs the outcome.
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
            match self.attributed(&name, f()).await {
                Ok(v) => {
                    self.inner.stats.record(Event::Invalidation, &name);
                    return Ok(v);
                }
                Err(e) => {
                    self.log_error(&self.inner.stats.log_backend, &name, op, &e);
                    // An outage (a timeout, a connection that fails) or the breaker open: more
                    // attempts would hold the caller for more timeouts, and the background
                    // worker retries the kept invalidation anyway. An error reply is retried.
                    let outage = e.is_unreachable();
                    last = Some(e);
                    if outage {
                        break;
                    }
                }
            }
        }
        self.inner.stats.record(Event::InvalidationFailure, &name);
        let e = last.unwrap_or(Error::Timeout(self.inner.config.op_timeout));
        // Not rate-limited: each one is an invalidation other processes do not see. A refusal
        // (`NOPERM`...) will not go away by itself: it needs the operator.
        tracing::error!(
            op, kind = e.kind(), refused_by_redis = !e.is_outage(), error = %e,
            "invalidation failed after retries; it is kept and retried in the background, and \
             until then this process reads around what it covers (other processes may serve \
             those entries until their TTL)"
        );
        Err(e)
    }

    // ----- locks ---------------------------------------------------------------------------

    /// Takes the lock `name` for `ttl` if nobody holds it (`SET NX PX` with a fresh random
    /// token). A holder that crashes loses the lock when `ttl` runs out.
    ///
    /// On Redis the lock excludes every process sharing it; on the memory store and on a
    /// [disabled](Self::disabled) cache, which keeps a lock table of its own although it
    /// stores nothing, it excludes within the process (this cache and its clones).
    ///
    /// `name`: a [`Key`](crate::Key) (`cachette::key!("rebuild:{}", id)`) or a string taken as
    /// already escaped, as for [`get`](Self::get).
    pub async fn try_lock(&self, name: impl AsRef<str>, ttl: Duration) -> Result<Option<Lock>> {
        let key = self.lock_key(name.as_ref());
        let token = crate::backend::new_version();
        let taken = self
            .attributed(
                &Cow::Borrowed(MANUAL),
                self.inner.backend.try_lock(&key, &token, ttl),
            )
            .await?;
        if taken {
            Ok(Some(Lock {
                cache: self.clone(),
                key,
                token,
                released: false,
            }))
        } else {
            Ok(None)
        }
    }

    /// Waits up to `wait` for the lock `name` (polling every 10 to 100 ms); `Ok(None)` when
    /// it stayed taken. It excludes as [`try_lock`](Self::try_lock) does, on a
    /// [disabled](Self::disabled) cache too.
    pub async fn lock(
        &self,
        name: impl AsRef<str>,
        ttl: Duration,
        wait: Duration,
    ) -> Result<Option<Lock>> {
        let name = name.as_ref();
        let deadline = crate::clock::instant_after(Instant::now(), wait);
        let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(100));
        loop {
            if let Some(lock) = self.try_lock(name, ttl).await? {
                return Ok(Some(lock));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            backoff.sleep(Some(deadline)).await;
        }
    }

    pub(crate) async fn release_lock_raw(&self, key: &str, token: &str) -> Result<bool> {
        self.attributed(
            &Cow::Borrowed(MANUAL),
            self.inner.backend.release_lock(key, token),
        )
        .await
    }

    pub(crate) async fn extend_lock_raw(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<bool> {
        self.attributed(
            &Cow::Borrowed(MANUAL),
            self.inner.backend.extend_lock(key, token, ttl),
        )
        .await
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
