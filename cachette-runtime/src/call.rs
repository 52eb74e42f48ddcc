//! The cached-call path: lookup, single-flight, fill locks, probabilistic early refresh,
//! stale-while-revalidate, stale-if-error, TTL jitter, and the fill itself.
//!
//! Everything here is shared by `#[cached]`, [`Cache::get_or_compute`] and friends: the
//! macros only build a key and [`Options`] and call [`Cache::cached_with`] (or
//! [`Cache::cached_with_spawn`] when the refresh may run in the background).

// Call names travel as `&Cow<'static, str>` so that a static name becomes a metrics label
// without an allocation.
#![allow(clippy::ptr_arg)]

use crate::Cache;
use crate::backend::{Fetched, new_version};
use crate::codec::{self, DecodeError, Meta};
use crate::config::{EarlyRefresh, LockOptions, Options};
use crate::error::{Error, Result};
use crate::flight::{self, LeaderGuard, Outcome, Role};
use crate::observe::{CallOutcome, report};
use crate::policy::{CacheValue, Fallible, Plain, ReturnPolicy};
use crate::stats::Event;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// How often a caller looks again (instead of computing) before it gives up on sharing.
const MAX_ATTEMPTS: u32 = 8;
/// First and largest pause between two looks of a process waiting for another's fill lock.
const LOCK_POLL_MIN: Duration = Duration::from_millis(5);
const LOCK_POLL_MAX: Duration = Duration::from_millis(50);

/// What checking stored bytes found.
pub(crate) enum Check<T> {
    Valid(T, Meta),
    /// Invalidated: a tag moved on or is missing, or the entry lacks a tag the call requires.
    Invalid,
    Undecodable(String),
}

/// Where a lookup left the call.
enum State<S> {
    /// A fresh, valid value.
    Fresh(S, Meta),
    /// Past its TTL but within the stale-while-revalidate window, and not invalidated.
    Stale(S),
    /// Nothing usable; `fallback` is a value within the stale-if-error window.
    Missing { fallback: Option<S> },
}

struct Lookup<S> {
    state: State<S>,
    /// The tag versions the lookup read (`None`: the backend failed: do not store).
    fetched: Option<Vec<Option<String>>>,
}

/// A computation about to run, with everything its fill needs.
pub(crate) struct Fill<F> {
    full_key: String,
    /// Tag versions read before the computation (`None`: do not store).
    versions: Option<Vec<(String, String)>>,
    ttl: Duration,
    compute: F,
    guard: Option<LeaderGuard>,
}

/// What the call path decided.
enum Step<R, S, F> {
    Done(R),
    /// Serve `stale` and run `fill` (in the background, or inline for the leader).
    Revalidate {
        stale: S,
        fill: Fill<F>,
    },
}

impl Cache {
    /// Returns the cached value of `key`, or runs `compute`, stores its value and returns it.
    ///
    /// This is the entry point of `#[cached]`. It never fails because of the cache: when the
    /// backend is slow, down or returns garbage, the computation runs and its value is
    /// returned (the problem is logged, rate-limited, and counted). One round trip on a hit
    /// (entry and tag versions together); on a miss, that lookup, one more if a tag key had to
    /// be created, and one store. Concurrent misses of one key in this process share one
    /// computation (see [`Options::single_flight`]).
    pub async fn get_or_compute<T, F, Fut>(&self, key: &str, opts: &Options, compute: F) -> T
    where
        T: CacheValue,
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        self.cached_with(key, opts, Plain, compute).await
    }

    /// Like [`get_or_compute`](Self::get_or_compute) for a fallible computation: only `Ok`
    /// values are stored; an `Err` is returned as it is and nothing is cached. Callers that
    /// were waiting on the same key's computation run their own when it fails (an error is
    /// not `Clone` in general; see [`FallibleShared`](crate::FallibleShared)).
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
    /// ([`Plain`], [`Fallible`], [`Optional`](crate::Optional), ...).
    ///
    /// With [`Options::stale`], the caller that finds a stale entry first refreshes it
    /// inline (and gets the new value); everyone else gets the stale value at once. Use
    /// [`cached_with_spawn`](Self::cached_with_spawn) to refresh in the background instead.
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
        let span = call_span(opts);
        async {
            match self.run(key, opts, &policy, compute).await {
                Step::Done(r) => r,
                Step::Revalidate { stale, fill } => {
                    self.fill(fill, &policy, opts, Some(stale), Some(CallOutcome::Stale))
                        .await
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Like [`cached_with`](Self::cached_with), but a stale-while-revalidate refresh runs in
    /// a background task, so every caller, the one that triggered it included, gets the
    /// stale value at once. The computation must own what it uses (`'static`).
    pub async fn cached_with_spawn<R, P, F, Fut>(
        &self,
        key: &str,
        opts: &Options,
        policy: P,
        compute: F,
    ) -> R
    where
        R: Send + 'static,
        P: ReturnPolicy<R> + Clone + Send + Sync + 'static,
        P::Stored: Send + Sync,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = R> + Send + 'static,
    {
        let step = self
            .run(key, opts, &policy, compute)
            .instrument(call_span(opts))
            .await;
        match step {
            Step::Done(r) => r,
            Step::Revalidate { stale, fill } => {
                report(CallOutcome::Stale);
                let restored = policy.restore(stale);
                match tokio::runtime::Handle::try_current() {
                    Ok(handle) => {
                        let cache = self.clone();
                        let opts = opts.clone();
                        let span = tracing::debug_span!("cachette.revalidate", cache = %opts.name);
                        handle.spawn(
                            async move {
                                let _ = cache.fill(fill, &policy, &opts, None, None).await;
                            }
                            .instrument(span),
                        );
                    }
                    Err(_) => drop(fill),
                }
                restored
            }
        }
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
        if self.is_disabled() {
            return compute().await;
        }
        let full_key = self.full_key(key);
        let tag_keys = self.tag_keys(&opts.tags);
        let ttl = self.ttl_for(&opts.ttl, &opts.name);
        let fetched = match self.inner.backend.versions(&tag_keys).await {
            Ok(v) => Some(v),
            Err(e) => {
                self.log_error(&self.inner.stats.log_backend, &opts.name, "fetch_tags", &e);
                None
            }
        };
        let fill = self
            .prepare_fill(&full_key, &tag_keys, opts, ttl, fetched, None, compute)
            .await;
        self.fill(fill, &policy, opts, None, None).await
    }

    fn is_disabled(&self) -> bool {
        matches!(self.inner.backend, crate::backend::Backend::Disabled)
    }

    async fn run<R, P, F, Fut>(
        &self,
        key: &str,
        opts: &Options,
        policy: &P,
        compute: F,
    ) -> Step<R, P::Stored, F>
    where
        P: ReturnPolicy<R>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = R>,
    {
        let stats = &self.inner.stats;
        let counters = stats.name(&opts.name);
        if self.is_disabled() {
            stats.record_in(Event::Miss, &counters);
            report(CallOutcome::Bypass);
            return Step::Done(compute().await);
        }
        let full_key = self.full_key(key);
        let tag_keys = self.tag_keys(&opts.tags);
        let ttl = self.ttl_for(&opts.ttl, &opts.name);
        let flights = &self.inner.flights;
        let mut counted_miss = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let epoch = flights.epoch(&full_key);
            let lookup = self.lookup::<P::Stored>(&full_key, &tag_keys, opts).await;
            let fill = |fetched, guard, compute| {
                self.prepare_fill(&full_key, &tag_keys, opts, ttl, fetched, guard, compute)
            };
            match lookup.state {
                State::Fresh(value, meta) => {
                    stats.record_in(Event::Hit, &counters);
                    tracing::debug!(cache = %opts.name, key = %full_key, "cache hit");
                    if self.refresh_early(opts, meta)
                        && let Role::Leader(guard) = flights.join(&full_key)
                    {
                        stats.record(Event::EarlyRefresh, &opts.name);
                        report(CallOutcome::Miss);
                        let fill = fill(lookup.fetched, Some(guard), compute).await;
                        return Step::Done(
                            self.fill(fill, policy, opts, Some(value), Some(CallOutcome::Hit))
                                .await,
                        );
                    }
                    report(CallOutcome::Hit);
                    return Step::Done(policy.restore(value));
                }
                State::Stale(value) => {
                    stats.record(Event::StaleServed, &opts.name);
                    tracing::debug!(cache = %opts.name, key = %full_key, "stale hit; revalidating");
                    let guard = if opts.single_flight {
                        match flights.join(&full_key) {
                            Role::Leader(g) => Some(g),
                            // Someone is refreshing already.
                            Role::Follower(_) => {
                                report(CallOutcome::Stale);
                                return Step::Done(policy.restore(value));
                            }
                        }
                    } else {
                        None
                    };
                    let fill = fill(lookup.fetched, guard, compute).await;
                    return Step::Revalidate { stale: value, fill };
                }
                State::Missing { fallback } => {
                    if !counted_miss {
                        counted_miss = true;
                        stats.record_in(Event::Miss, &counters);
                        report(CallOutcome::Miss);
                        tracing::debug!(cache = %opts.name, key = %full_key, "cache miss");
                    }
                    if !opts.single_flight || attempt >= MAX_ATTEMPTS {
                        let fill = fill(lookup.fetched, None, compute).await;
                        return Step::Done(self.fill(fill, policy, opts, fallback, None).await);
                    }
                    match flights.join(&full_key) {
                        Role::Leader(guard) => {
                            if flights.epoch(&full_key) != epoch {
                                // A flight of this shard ended after our lookup began: its
                                // value may be stored now. Look again.
                                drop(guard);
                                continue;
                            }
                            if let Some(lock) = opts.lock {
                                let r = self
                                    .locked_fill(
                                        &full_key, &tag_keys, opts, ttl, lock, policy, guard,
                                        compute, fallback,
                                    )
                                    .await;
                                return Step::Done(r);
                            }
                            let fill = fill(lookup.fetched, Some(guard), compute).await;
                            return Step::Done(self.fill(fill, policy, opts, fallback, None).await);
                        }
                        Role::Follower(rx) => {
                            stats.record(Event::Coalesced, &opts.name);
                            match flight::wait(rx).await {
                                Outcome::Value(bytes) => {
                                    if let Ok(v) = serde_json::from_slice::<P::Stored>(&bytes) {
                                        report(CallOutcome::Coalesced);
                                        return Step::Done(policy.restore(v));
                                    }
                                }
                                Outcome::Shared(shared) => {
                                    if let Some(r) = policy.restore_error(shared.as_ref()) {
                                        report(CallOutcome::Coalesced);
                                        return Step::Done(r);
                                    }
                                }
                                // The leader's future was dropped: elect a new leader.
                                Outcome::Abandoned => continue,
                                Outcome::Unshareable | Outcome::Pending => {}
                            }
                            // Each follower runs its own computation.
                            let fill = fill(lookup.fetched, None, compute).await;
                            return Step::Done(self.fill(fill, policy, opts, fallback, None).await);
                        }
                    }
                }
            }
        }
    }

    /// Reads (or creates) the tag versions a computation starting now is stored with.
    #[allow(clippy::too_many_arguments)]
    async fn prepare_fill<F>(
        &self,
        full_key: &str,
        tag_keys: &[String],
        opts: &Options,
        ttl: Duration,
        fetched: Option<Vec<Option<String>>>,
        guard: Option<LeaderGuard>,
        compute: F,
    ) -> Fill<F> {
        let versions = self
            .fill_versions(&opts.tags, tag_keys, fetched, ttl, &opts.name)
            .await;
        Fill {
            full_key: full_key.to_owned(),
            versions,
            ttl,
            compute,
            guard,
        }
    }

    /// Whether a fresh hit should be recomputed now (XFetch).
    fn refresh_early(&self, opts: &Options, meta: Meta) -> bool {
        let beta = match opts.early_refresh {
            EarlyRefresh::Default => self.inner.config.early_refresh_beta,
            EarlyRefresh::Off => None,
            EarlyRefresh::Beta(b) => Some(b),
        };
        let Some(beta) = beta.filter(|b| b.is_finite() && *b > 0.0) else {
            return false;
        };
        if meta.fresh_until_ms == 0 || meta.compute_us == 0 {
            return false;
        }
        let now = self.inner.config.clock.now_ms();
        let left_ms = meta.fresh_until_ms.saturating_sub(now) as f64;
        let delta_ms = meta.compute_us as f64 / 1000.0;
        let p = (-left_ms / (beta * delta_ms)).exp();
        self.inner.config.random.next_f64() < p
    }

    /// One round trip: the entry and the versions of the call's tags; then the entry is
    /// classified by validity and freshness.
    async fn lookup<S: DeserializeOwned>(
        &self,
        full_key: &str,
        tag_keys: &[String],
        opts: &Options,
    ) -> Lookup<S> {
        let fetched = match self.inner.backend.fetch(full_key, tag_keys).await {
            Ok(f) => f,
            Err(e) => {
                self.log_error(&self.inner.stats.log_backend, &opts.name, "fetch", &e);
                return Lookup {
                    state: State::Missing { fallback: None },
                    fetched: None,
                };
            }
        };
        let state = if self.inner.pending.blocks(full_key, tag_keys) {
            State::Missing { fallback: None }
        } else {
            self.classify(full_key, &fetched, opts).await
        };
        Lookup {
            state,
            fetched: Some(fetched.versions),
        }
    }

    async fn classify<S: DeserializeOwned>(
        &self,
        full_key: &str,
        fetched: &Fetched,
        opts: &Options,
    ) -> State<S> {
        let Some(bytes) = &fetched.entry else {
            return State::Missing { fallback: None };
        };
        match self.check::<S>(bytes, &opts.tags, &fetched.versions).await {
            Ok(Check::Valid(v, meta)) => {
                let now = self.inner.config.clock.now_ms();
                let fresh_until = meta.fresh_until_ms;
                if fresh_until == 0 || now < fresh_until {
                    State::Fresh(v, meta)
                } else if now < fresh_until.saturating_add(millis(opts.stale)) {
                    State::Stale(v)
                } else if now < fresh_until.saturating_add(millis(opts.stale_if_error)) {
                    State::Missing { fallback: Some(v) }
                } else {
                    State::Missing { fallback: None }
                }
            }
            Ok(Check::Invalid) => State::Missing { fallback: None },
            Ok(Check::Undecodable(why)) => {
                self.decode_failure(&opts.name, full_key, &why);
                State::Missing { fallback: None }
            }
            Err(e) => {
                self.log_error(&self.inner.stats.log_backend, &opts.name, "fetch_tags", &e);
                State::Missing { fallback: None }
            }
        }
    }

    /// A miss under a distributed lock: one process computes, the others poll (lookup and
    /// lock attempt in one round trip) until the value is there, the lock is theirs, or
    /// `lock.wait` has passed, after which they compute themselves.
    #[allow(clippy::too_many_arguments)]
    async fn locked_fill<R, P, F, Fut>(
        &self,
        full_key: &str,
        tag_keys: &[String],
        opts: &Options,
        ttl: Duration,
        lock: LockOptions,
        policy: &P,
        guard: LeaderGuard,
        compute: F,
        fallback: Option<P::Stored>,
    ) -> R
    where
        P: ReturnPolicy<R>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = R>,
    {
        let lock_key = self.lock_key(full_key);
        let token = new_version();
        let deadline = Instant::now() + lock.wait;
        let mut pause = LOCK_POLL_MIN;
        let mut waited = false;
        let mut last_versions = None;
        loop {
            match self
                .inner
                .backend
                .fetch_and_lock(full_key, tag_keys, &lock_key, &token, lock.ttl)
                .await
            {
                Ok((fetched, locked)) => {
                    if let State::Fresh(v, _) =
                        self.classify::<P::Stored>(full_key, &fetched, opts).await
                    {
                        if locked {
                            self.release_quietly(&lock_key, &token, &opts.name).await;
                        }
                        let outcome = codec::encode_value(&v)
                            .map(|raw| Outcome::Value(Arc::from(raw.get().as_bytes())))
                            .unwrap_or(Outcome::Unshareable);
                        guard.finish(outcome);
                        return policy.restore(v);
                    }
                    if locked {
                        let fill = self
                            .prepare_fill(
                                full_key,
                                tag_keys,
                                opts,
                                ttl,
                                Some(fetched.versions),
                                Some(guard),
                                compute,
                            )
                            .await;
                        let r = self.fill(fill, policy, opts, fallback, None).await;
                        self.release_quietly(&lock_key, &token, &opts.name).await;
                        return r;
                    }
                    last_versions = Some(fetched.versions);
                    if !waited {
                        waited = true;
                        self.inner.stats.record(Event::LockWait, &opts.name);
                    }
                }
                Err(e) => {
                    self.log_error(&self.inner.stats.log_backend, &opts.name, "lock", &e);
                    break;
                }
            }
            let now = Instant::now();
            if now >= deadline {
                self.inner.stats.record(Event::LockTimeout, &opts.name);
                break;
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(LOCK_POLL_MAX);
        }
        let fill = self
            .prepare_fill(
                full_key,
                tag_keys,
                opts,
                ttl,
                last_versions,
                Some(guard),
                compute,
            )
            .await;
        self.fill(fill, policy, opts, fallback, None).await
    }

    async fn release_quietly(&self, lock_key: &str, token: &str, name: &Cow<'static, str>) {
        if let Err(e) = self.inner.backend.release_lock(lock_key, token).await {
            self.log_error(&self.inner.stats.log_backend, name, "unlock", &e);
        }
    }

    /// Runs the computation, stores what the policy stores, tells the flight's followers,
    /// and falls back to `fallback` when the computation fails and a fallback applies
    /// (stale-if-error; or, with `fallback_on_error`, the value being refreshed).
    async fn fill<R, P, F, Fut>(
        &self,
        fill: Fill<F>,
        policy: &P,
        opts: &Options,
        fallback: Option<P::Stored>,
        fallback_on_error: Option<CallOutcome>,
    ) -> R
    where
        P: ReturnPolicy<R>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = R>,
    {
        let Fill {
            full_key,
            versions,
            ttl,
            compute,
            guard,
        } = fill;
        let started = Instant::now();
        let result = compute().await;
        let elapsed = started.elapsed();
        let compute_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.inner
            .stats
            .name(&opts.name)
            .compute_seconds
            .record(elapsed.as_secs_f64());

        if policy.is_error(&result)
            && let Some(stale) = fallback
        {
            if fallback_on_error.is_none() {
                self.inner.stats.record(Event::StaleIfError, &opts.name);
                tracing::debug!(cache = %opts.name, key = %full_key, "computation failed; serving the stale value");
            }
            report(fallback_on_error.unwrap_or(CallOutcome::Stale));
            if let Some(guard) = guard {
                let outcome = codec::encode_value(&stale)
                    .map(|raw| Outcome::Value(Arc::from(raw.get().as_bytes())))
                    .unwrap_or(Outcome::Unshareable);
                guard.finish(outcome);
            }
            return policy.restore(stale);
        }

        let raw = policy.share(&result).and_then(|v| match codec::encode_value(v) {
            Ok(raw) => Some(raw),
            Err(e) => {
                if let Some(held) = self.inner.stats.log_oversize.allow() {
                    tracing::warn!(cache = %opts.name, error = %e, suppressed = held, "value does not serialize; not stored");
                }
                None
            }
        });
        if let (Some(raw), Some((_, ttl_override)), Some(versions)) =
            (&raw, policy.to_store(&result), versions)
        {
            let ttl = match ttl_override {
                Some(t) => self.ttl_for(t, &opts.name),
                None => ttl,
            };
            if let Err(e) = self
                .store_raw(&full_key, raw, &versions, ttl, opts, compute_us)
                .await
                && !matches!(e, Error::TooLarge { .. })
            {
                self.log_error(&self.inner.stats.log_backend, &opts.name, "store", &e);
            }
        }
        if let Some(guard) = guard {
            let outcome = match raw {
                Some(raw) => Outcome::Value(Arc::from(raw.get().as_bytes())),
                None => match policy.share_error(&result) {
                    Some(shared) => Outcome::Shared(shared),
                    None => Outcome::Unshareable,
                },
            };
            guard.finish(outcome);
        }
        result
    }

    /// The tag versions a fill starting now is stored with; creates missing tag keys.
    /// `None`: do not store (the backend failed).
    pub(crate) async fn fill_versions(
        &self,
        tags: &[String],
        tag_keys: &[String],
        fetched: Option<Vec<Option<String>>>,
        entry_ttl: Duration,
        name: &Cow<'static, str>,
    ) -> Option<Vec<(String, String)>> {
        let mut versions = fetched?;
        versions.resize(tags.len(), None);
        let missing: Vec<usize> = (0..tags.len()).filter(|&i| versions[i].is_none()).collect();
        if !missing.is_empty() {
            let keys: Vec<String> = missing.iter().map(|&i| tag_keys[i].clone()).collect();
            let ttl = self.inner.config.tag_ttl.max(entry_ttl);
            match self.inner.backend.ensure_tags(&keys, ttl).await {
                Ok(created) => {
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
    pub(crate) async fn check<T: DeserializeOwned>(
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
            return Ok(Check::Invalid);
        }
        if self.inner.pending.any()
            && env
                .tags
                .iter()
                .any(|(t, _)| self.inner.pending.blocks_tag(&self.tag_key(t)))
        {
            return Ok(Check::Invalid);
        }
        let mut extra_tags = Vec::new();
        for (tag, stored) in &env.tags {
            match tags.iter().position(|t| t.as_str() == tag.as_ref()) {
                Some(i) => {
                    if versions.get(i).and_then(Option::as_deref) != Some(stored.as_ref()) {
                        return Ok(Check::Invalid);
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
                    return Ok(Check::Invalid);
                }
            }
        }
        Ok(match codec::decode_value::<T>(&env) {
            Ok(v) => Check::Valid(v, env.meta()),
            Err(e) => {
                Check::Undecodable(format!("value does not decode as the expected type: {e}"))
            }
        })
    }

    pub(crate) fn decode_failure(&self, name: &Cow<'static, str>, full_key: &str, why: &str) {
        self.inner.stats.record(Event::DecodeFailure, name);
        if let Some(held) = self.inner.stats.log_decode.allow() {
            tracing::warn!(
                cache = %name, error = why, suppressed = held,
                "stored entry does not decode; recomputing and overwriting it"
            );
        }
        tracing::debug!(cache = %name, key = %full_key, "undecodable entry");
    }

    /// Stores a serialized value: fresh for `ttl` shortened by jitter, kept by the backend
    /// for the stale windows beyond that.
    pub(crate) async fn store_raw(
        &self,
        full_key: &str,
        raw: &RawValue,
        versions: &[(String, String)],
        ttl: Duration,
        opts: &Options,
        compute_us: u64,
    ) -> Result<()> {
        let config = &self.inner.config;
        let jitter = opts.jitter.unwrap_or(config.jitter).clamp(0.0, 1.0);
        let ttl = if jitter > 0.0 {
            let cut = ttl.mul_f64(jitter * config.random.next_f64().clamp(0.0, 1.0));
            ttl.saturating_sub(cut).max(Duration::from_millis(1))
        } else {
            ttl
        };
        let now = config.clock.now_ms();
        let meta = Meta {
            created_ms: now,
            fresh_until_ms: now.saturating_add(millis(ttl)),
            compute_us,
        };
        let bytes = codec::encode_raw(raw, versions, meta)?;
        let max = config.max_value_bytes;
        if bytes.len() > max {
            self.inner.stats.record(Event::Oversize, &opts.name);
            if let Some(held) = self.inner.stats.log_oversize.allow() {
                tracing::warn!(
                    cache = %opts.name, size = bytes.len(), max, suppressed = held,
                    "value over the size limit; not stored"
                );
            }
            return Err(Error::TooLarge {
                size: bytes.len(),
                max,
            });
        }
        let keep = ttl + opts.stale.max(opts.stale_if_error);
        self.inner.backend.store(full_key, bytes, keep).await?;
        self.inner.stats.record(Event::Store, &opts.name);
        Ok(())
    }

    /// The backend key of a fill lock or a user lock: `namespace#lock:name`.
    pub(crate) fn lock_key(&self, name: &str) -> String {
        format!("{}#lock:{}", self.inner.config.namespace, name)
    }
}

/// The span of one cached call: `cachette.call{cache, outcome}` at debug level.
fn call_span(opts: &Options) -> tracing::Span {
    tracing::debug_span!("cachette.call", cache = %opts.name, outcome = tracing::field::Empty)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
