//! The cached-call path: lookup, single-flight, fill locks, probabilistic early refresh,
//! stale-while-revalidate, stale-if-error, TTL jitter, and the fill itself.
//!
//! Everything here is shared by `#[cached]`, [`Cache::get_or_compute`] and friends. The
//! manual API enters through [`Cache::cached_with`] or [`Cache::cached_with_spawn`]; the
//! macros build a full key and [`Options`] and enter through `__private::cached*`, which
//! calls `cached_full` (with the memory store's decoded copies) or, for
//! `#[cached(background_refresh)]`, `cached_spawn_full`, after the call modes of `key_of`,
//! `evict`, `refresh` and `put` are sorted out.

// Call names travel as `&Cow<'static, str>` so that a static name becomes a metrics label
// without an allocation.
#![allow(clippy::ptr_arg)]

use crate::Cache;
use crate::backend::memory::{MemEntry, MemoryBackend};
use crate::backend::redis::EPOCH_TAG;
use crate::backend::{Backend, Found, Seen, Stored, Versions, new_version};
use crate::clock::Backoff;
use crate::clock::millis;
use crate::codec::{self, Meta, WholeError};
use crate::config::{EarlyRefresh, LockOptions, MAX_DURATION, Options};
use crate::error::{Error, Result};
use crate::flight::{self, Basis, LeaderGuard, Mark, Outcome, Role, View};
use crate::lossless;
use crate::observe::{CallOutcome, report};
use crate::policy::{CacheValue, DecodedCopy, Fallible, Plain, ReturnPolicy};
use crate::stats::Event;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::future::Future;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// How often a caller looks again (instead of computing) before it gives up on sharing: after
/// an abandoned flight, or a flight whose value was not fresh for it.
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
    fetched: Option<Versions>,
    /// The state of the key the lookup read (`None`: the backend failed).
    seen: Option<Seen>,
    /// Cachette's clock when the entry was classified.
    now_ms: u64,
}

/// What a call's first look (the memory fast path) hands to the full path when it was not a
/// plain fresh hit, so that nothing is looked up, decided or counted twice.
struct Prepared<'o, S> {
    /// When the call started (for `cachette_hit_seconds`).
    started: Instant,
    full_key: String,
    tag_keys: Cow<'o, [String]>,
    ttl: Duration,
    /// The shard's mark read before the lookup, and the lookup.
    first: (Mark, Lookup<S>),
    /// For a fresh lookup: that it is refreshed early (XFetch is rolled once per lookup).
    refresh_early: Option<bool>,
}

/// Where [`run`](Cache::run) starts.
enum Start<'o, S> {
    /// From the lookup, at this full key.
    Key(String),
    /// From what the memory fast path found.
    Looked(Box<Prepared<'o, S>>),
}

/// Whether the tags of an entry let it be served, before the versions of tags it carries
/// beyond the call's are known.
enum TagCheck<'a> {
    Valid,
    Invalid,
    /// Valid if each of these tags still has the version it was stored with.
    Extra(Vec<(&'a str, &'a str)>),
}

/// A computation about to run, with everything its fill needs.
pub(crate) struct Fill<F> {
    full_key: String,
    /// Tag versions read before the computation (`None`: do not store).
    versions: Option<Vec<(String, String)>>,
    /// The state of the key read before the computation: the value is stored only if the key
    /// is still in it (`None`: do not store).
    seen: Option<Seen>,
    /// When that state was read: a fill that found the key absent and outlasted half the
    /// fence TTL is not stored (a delete's tombstone may have expired meanwhile).
    looked_at: Instant,
    ttl: Duration,
    compute: F,
    guard: Option<LeaderGuard>,
    /// The memory store may keep a decoded copy of the value (the caller can use one).
    keep_decoded: bool,
}

/// What the call path decided.
enum Step<R, S, F> {
    Done(R),
    /// Serve `stale` and run `fill` (in the background, or inline for the leader).
    Revalidate {
        stale: S,
        fill: Fill<F>,
    },
    /// A fresh hit picked for an early refresh (XFetch): this call leads the refresh's
    /// flight and runs `fill` (inline, returning its value; or in the background, serving
    /// `fresh` at once).
    Refresh {
        fresh: S,
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
    ///
    /// With the memory store, a hit parses nothing (the envelope's header is parsed when the
    /// entry is stored) but decodes the value from its JSON each time: `T` need not be
    /// `Clone`. `#[cached]` on a `Clone` type goes further and keeps one decoded copy per
    /// entry, cloned by later hits.
    ///
    /// `key`: a [`Key`](crate::Key), built with `cachette::key!("user:{}", id)` so that
    /// values are escaped as the attributes escape them, or a string taken as **already
    /// escaped** (see [`keys`](crate::keys#the-manual-api)); the same for every method taking
    /// a key.
    pub async fn get_or_compute<T, F, Fut>(
        &self,
        key: impl AsRef<str>,
        opts: &Options,
        compute: F,
    ) -> T
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
        key: impl AsRef<str>,
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
        key: impl AsRef<str>,
        opts: &Options,
        policy: P,
        compute: F,
    ) -> R
    where
        P: ReturnPolicy<R>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = R>,
    {
        self.cached_full(self.full_key(key.as_ref()), opts, policy, None, compute)
            .await
    }

    /// [`cached_with`](Self::cached_with) of a full key (namespace included), letting the
    /// memory store keep a decoded copy of the value when `decoded` is given (what
    /// `#[cached]` calls).
    pub(crate) async fn cached_full<R, P, F, Fut>(
        &self,
        full_key: String,
        opts: &Options,
        policy: P,
        decoded: Option<DecodedCopy<P::Stored>>,
        compute: F,
    ) -> R
    where
        P: ReturnPolicy<R>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = R>,
    {
        let span = call_span(opts);
        let (start, started) = match self
            .first_look(full_key, opts, &policy, decoded, &span)
            .await
        {
            ControlFlow::Break(hit) => return hit,
            ControlFlow::Continue(start) => start,
        };
        // Boxed: the path beyond a memory hit is a large future, which would otherwise make
        // every call's future (moved on each call) as large.
        Box::pin(
            self.attributed(
                &opts.name,
                async {
                    match self
                        .run(start, opts, &policy, decoded, started, compute)
                        .await
                    {
                        Step::Done(r) => r,
                        Step::Revalidate { stale, fill } => {
                            self.fill(fill, &policy, opts, Some(stale), Some(CallOutcome::Stale))
                                .await
                        }
                        Step::Refresh { fresh, fill } => {
                            report(CallOutcome::Miss);
                            self.fill(fill, &policy, opts, Some(fresh), Some(CallOutcome::Hit))
                                .await
                        }
                    }
                }
                .instrument(span),
            ),
        )
        .await
    }

    /// A call's first step: on the memory store, a fresh hit is served at once (`Break`);
    /// otherwise (`Continue`) where [`run`](Self::run) starts and when the call started.
    /// A memory hit waits for nothing, so it spends a unit of the task's cooperative budget
    /// (yielding once the budget is spent, no allocation): a loop of hits lets the runtime's
    /// other tasks run.
    async fn first_look<'o, R, P>(
        &'o self,
        full_key: String,
        opts: &'o Options,
        policy: &P,
        decoded: Option<DecodedCopy<P::Stored>>,
        span: &tracing::Span,
    ) -> ControlFlow<R, (Start<'o, P::Stored>, Instant)>
    where
        P: ReturnPolicy<R>,
    {
        let start = match &self.inner.backend {
            Backend::Memory(m) => {
                tokio::task::coop::consume_budget().await;
                let started = Instant::now();
                let _entered = span.enter();
                match self.memory_fast(m, full_key, opts, policy, decoded, started) {
                    Ok(hit) => return ControlFlow::Break(hit),
                    Err(prepared) => Start::Looked(prepared),
                }
            }
            _ => Start::Key(full_key),
        };
        let started = match &start {
            Start::Looked(p) => p.started,
            Start::Key(_) => Instant::now(),
        };
        ControlFlow::Continue((start, started))
    }

    /// A call's first look at the memory store, without an `.await`: a fresh hit that is not
    /// refreshed early is served here (counted and reported as by [`run`](Self::run));
    /// anything else is handed to `run` with what was found.
    fn memory_fast<'o, R, P>(
        &'o self,
        m: &MemoryBackend,
        full_key: String,
        opts: &'o Options,
        policy: &P,
        decoded: Option<DecodedCopy<P::Stored>>,
        started: Instant,
    ) -> std::result::Result<R, Box<Prepared<'o, P::Stored>>>
    where
        P: ReturnPolicy<R>,
    {
        let tag_keys = self.call_tag_keys(opts);
        // A profile is resolved on every call (an unknown one is counted per call); a fixed
        // TTL only when a fill may follow.
        let profile_ttl = matches!(opts.ttl, crate::config::Ttl::Profile(_))
            .then(|| self.ttl_for(&opts.ttl, &opts.name));
        let mark = self.inner.flights.mark(&full_key);
        let Lookup {
            state,
            fetched,
            seen,
            now_ms,
        } = self.lookup_memory(m, &full_key, &tag_keys, opts, decoded);
        let (state, refresh_early) = match state {
            State::Fresh(value, meta) => {
                if !self.refresh_early(opts, meta, now_ms) {
                    self.inner.stats.record_hit(&opts.name, started);
                    tracing::debug!(cache = %opts.name, key = %full_key, "cache hit");
                    report(CallOutcome::Hit);
                    return Ok(policy.restore(value));
                }
                (State::Fresh(value, meta), Some(true))
            }
            other => (other, None),
        };
        let ttl = profile_ttl.unwrap_or_else(|| self.ttl_for(&opts.ttl, &opts.name));
        Err(Box::new(Prepared {
            started,
            full_key,
            tag_keys,
            ttl,
            first: (
                mark,
                Lookup {
                    state,
                    fetched,
                    seen,
                    now_ms,
                },
            ),
            refresh_early,
        }))
    }

    /// Like [`cached_with`](Self::cached_with), but refreshes run in a background task: a
    /// stale-while-revalidate refresh (every caller, the one that triggered it included, gets
    /// the stale value at once) and an early refresh (XFetch: the caller picked to refresh
    /// gets the fresh hit at once). The refresh is a flight like any other: one at a time
    /// per key in this process, and a value it shares obeys the same rule (ARCHITECTURE.md,
    /// *Sharing*). The computation must own what it uses (`'static`, `Send`); without a
    /// Tokio runtime the refresh is skipped.
    pub async fn cached_with_spawn<R, P, F, Fut>(
        &self,
        key: impl AsRef<str>,
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
        self.cached_spawn_full(self.full_key(key.as_ref()), opts, policy, None, compute)
            .await
    }

    /// [`cached_with_spawn`](Self::cached_with_spawn) of a full key, with the memory fast
    /// path and decoded copies of [`cached_full`](Self::cached_full) (what `#[cached(...,
    /// background_refresh)]` calls).
    pub(crate) async fn cached_spawn_full<R, P, F, Fut>(
        &self,
        full_key: String,
        opts: &Options,
        policy: P,
        decoded: Option<DecodedCopy<P::Stored>>,
        compute: F,
    ) -> R
    where
        R: Send + 'static,
        P: ReturnPolicy<R> + Clone + Send + Sync + 'static,
        P::Stored: Send + Sync,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = R> + Send + 'static,
    {
        let span = call_span(opts);
        let (start, started) = match self
            .first_look(full_key, opts, &policy, decoded, &span)
            .await
        {
            ControlFlow::Break(hit) => return hit,
            ControlFlow::Continue(start) => start,
        };
        let step = Box::pin(
            self.attributed(
                &opts.name,
                self.run(start, opts, &policy, decoded, started, compute)
                    .instrument(span),
            ),
        )
        .await;
        let (served, fill) = match step {
            Step::Done(r) => return r,
            Step::Revalidate { stale, fill } => {
                report(CallOutcome::Stale);
                (stale, fill)
            }
            Step::Refresh { fresh, fill } => {
                report(CallOutcome::Hit);
                (fresh, fill)
            }
        };
        let restored = policy.restore(served);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                let cache = self.clone();
                let opts = opts.clone();
                let span = tracing::debug_span!("cachette.revalidate", cache = %opts.name);
                handle.spawn(
                    async move {
                        let refresh = cache.fill(fill, &policy, &opts, None, None);
                        let _ = cache.attributed(&opts.name, refresh).await;
                    }
                    .instrument(span),
                );
            }
            // Dropping the fill drops its flight's guard: waiting callers elect a leader.
            Err(_) => drop(fill),
        }
        restored
    }

    /// Recomputes the value of `key` and stores it, without looking it up first (cache
    /// warming, or refreshing after an out-of-band change). Returns the computed value. The
    /// tag versions are read before the computation starts, as on a miss.
    pub async fn refresh<R, P, F, Fut>(
        &self,
        key: impl AsRef<str>,
        opts: &Options,
        policy: P,
        compute: F,
    ) -> R
    where
        P: ReturnPolicy<R>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = R>,
    {
        self.refresh_full(self.full_key(key.as_ref()), opts, policy, false, compute)
            .await
    }

    /// [`refresh`](Self::refresh) of a full key (namespace included, as
    /// [`cached_full`](Self::cached_full)); `keep_decoded`: the memory store may keep a
    /// decoded copy of the value.
    pub(crate) async fn refresh_full<R, P, F, Fut>(
        &self,
        full_key: String,
        opts: &Options,
        policy: P,
        keep_decoded: bool,
        compute: F,
    ) -> R
    where
        P: ReturnPolicy<R>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = R>,
    {
        if self.is_disabled() {
            return compute().await;
        }
        self.attributed(
            &opts.name,
            self.refresh_looked(full_key, opts, policy, keep_decoded, compute),
        )
        .await
    }

    /// [`refresh_full`](Self::refresh_full) on a backend that stores.
    async fn refresh_looked<R, P, F, Fut>(
        &self,
        full_key: String,
        opts: &Options,
        policy: P,
        keep_decoded: bool,
        compute: F,
    ) -> R
    where
        P: ReturnPolicy<R>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = R>,
    {
        let tag_keys = self.call_tag_keys(opts);
        let ttl = self.ttl_for(&opts.ttl, &opts.name);
        // The key's state too, not only the tag versions: the refreshed value is stored only
        // if nothing was written or deleted at the key meanwhile.
        let (fetched, seen) = match self.inner.backend.lookup(&full_key, &tag_keys).await {
            Ok(found) => {
                let seen = Seen::found(found.entry, found.patterns);
                (Some(found.versions), Some(seen))
            }
            Err(e) => {
                self.log_error(&self.inner.stats.log_backend, &opts.name, "fetch_tags", &e);
                (None, None)
            }
        };
        let fill = self
            .prepare_fill(
                &full_key,
                &tag_keys,
                opts,
                ttl,
                (fetched, seen),
                None,
                keep_decoded,
                compute,
            )
            .await;
        self.fill(fill, &policy, opts, None, None).await
    }

    fn is_disabled(&self) -> bool {
        matches!(self.inner.backend, crate::backend::Backend::Disabled(_))
    }

    async fn run<'o, R, P, F, Fut>(
        &'o self,
        start: Start<'o, P::Stored>,
        opts: &'o Options,
        policy: &P,
        decoded: Option<DecodedCopy<P::Stored>>,
        started: Instant,
        compute: F,
    ) -> Step<R, P::Stored, F>
    where
        P: ReturnPolicy<R>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = R>,
    {
        let stats = &self.inner.stats;
        if self.is_disabled() {
            stats.record(Event::Miss, &opts.name);
            report(CallOutcome::Bypass);
            return Step::Done(compute().await);
        }
        let (full_key, tag_keys, ttl, mut first, mut refresh_first) = match start {
            Start::Looked(p) => {
                let p = *p;
                (
                    p.full_key,
                    p.tag_keys,
                    p.ttl,
                    Some(p.first),
                    p.refresh_early,
                )
            }
            Start::Key(full_key) => (
                full_key,
                self.call_tag_keys(opts),
                self.ttl_for(&opts.ttl, &opts.name),
                None,
                None,
            ),
        };
        let flights = &self.inner.flights;
        let keep_decoded = decoded.is_some();
        let fill = |looked, guard, compute| {
            self.prepare_fill(
                &full_key,
                &tag_keys,
                opts,
                ttl,
                looked,
                guard,
                keep_decoded,
                compute,
            )
        };
        let mut counted_miss = false;
        let mut attempt: u32 = 0;
        loop {
            attempt = attempt.saturating_add(1);
            let (mark, lookup) = match first.take() {
                Some(first) => first,
                None => {
                    let mark = flights.mark(&full_key);
                    let lookup = self
                        .lookup::<P::Stored>(&full_key, &tag_keys, opts, decoded)
                        .await;
                    (mark, lookup)
                }
            };
            let Lookup {
                state,
                fetched,
                seen,
                now_ms,
            } = lookup;
            match state {
                State::Fresh(value, meta) => {
                    stats.record_hit(&opts.name, started);
                    tracing::debug!(cache = %opts.name, key = %full_key, "cache hit");
                    let refresh = match refresh_first.take() {
                        Some(decided) => decided,
                        None => self.refresh_early(opts, meta, now_ms),
                    };
                    if refresh && let Role::Leader(guard) = flights.join(&full_key) {
                        stats.record(Event::EarlyRefresh, &opts.name);
                        let fill = fill((fetched, seen), Some(guard), compute).await;
                        return Step::Refresh { fresh: value, fill };
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
                            // Someone is refreshing already. The stale value was checked
                            // against this call's own lookup: it is this call's to serve.
                            Role::Follower(_) => {
                                report(CallOutcome::Stale);
                                return Step::Done(policy.restore(value));
                            }
                        }
                    } else {
                        None
                    };
                    let fill = fill((fetched, seen), guard, compute).await;
                    return Step::Revalidate { stale: value, fill };
                }
                State::Missing { fallback } => {
                    if !counted_miss {
                        counted_miss = true;
                        stats.record(Event::Miss, &opts.name);
                        report(CallOutcome::Miss);
                        tracing::debug!(cache = %opts.name, key = %full_key, "cache miss");
                    }
                    if !opts.single_flight || attempt >= MAX_ATTEMPTS {
                        let fill = fill((fetched, seen), None, compute).await;
                        return Step::Done(self.fill(fill, policy, opts, fallback, None).await);
                    }
                    match flights.join(&full_key) {
                        Role::Leader(guard) => {
                            // A flight of this shard ended after the lookup began: its value
                            // may be stored now. Look again, still leading (callers arriving
                            // meanwhile wait for this flight; nothing is handed over).
                            let (guard, fetched, seen, fallback) =
                                if flights.ended_since(&full_key, mark) {
                                    match self
                                        .relook(&full_key, &tag_keys, opts, decoded, guard)
                                        .await
                                    {
                                        Relook::Found(v) => {
                                            stats.record_hit(&opts.name, started);
                                            return Step::Done(policy.restore(v));
                                        }
                                        // Its own fallback, never the first lookup's: a
                                        // fallback is shared under the basis of the read
                                        // that found it.
                                        Relook::Missing(again) => again,
                                    }
                                } else {
                                    (guard, fetched, seen, fallback)
                                };
                            if let Some(lock) = opts.lock {
                                let r = self
                                    .locked_fill(
                                        &full_key, &tag_keys, opts, ttl, lock, policy, decoded,
                                        guard, compute, fallback,
                                    )
                                    .await;
                                return Step::Done(r);
                            }
                            let fill = fill((fetched, seen), Some(guard), compute).await;
                            return Step::Done(self.fill(fill, policy, opts, fallback, None).await);
                        }
                        Role::Follower(rx) => {
                            stats.record(Event::Coalesced, &opts.name);
                            let view = View {
                                mark,
                                versions: fetched.as_ref(),
                                seen: seen.as_ref(),
                            };
                            match flight::wait(rx).await {
                                Outcome::Value(bytes, basis) => {
                                    if !basis.serves(&view) {
                                        stats.record(Event::ShareRefused, &opts.name);
                                        continue;
                                    }
                                    if let Ok(v) = serde_json::from_slice::<P::Stored>(&bytes) {
                                        report(CallOutcome::Coalesced);
                                        return Step::Done(policy.restore(v));
                                    }
                                }
                                Outcome::Shared(shared, basis) => {
                                    if !basis.serves(&view) {
                                        stats.record(Event::ShareRefused, &opts.name);
                                        continue;
                                    }
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
                            let fill = fill((fetched, seen), None, compute).await;
                            return Step::Done(self.fill(fill, policy, opts, fallback, None).await);
                        }
                    }
                }
            }
        }
    }

    /// A leader's second look, taken when a flight of its shard ended after its first lookup
    /// began: a fresh value found is shared with the flight's followers (with the basis of
    /// this read) and returned; otherwise the leader goes on to compute with what it read.
    async fn relook<S: DeserializeOwned + serde::Serialize>(
        &self,
        full_key: &str,
        tag_keys: &[String],
        opts: &Options,
        decoded: Option<DecodedCopy<S>>,
        guard: LeaderGuard,
    ) -> Relook<S> {
        let started = guard.tick();
        let again = self.lookup::<S>(full_key, tag_keys, opts, decoded).await;
        let fallback = match again.state {
            State::Fresh(v, _) => {
                let basis = Basis {
                    started,
                    versions: again
                        .fetched
                        .as_ref()
                        .and_then(|f| basis_versions(f, tag_keys.len())),
                    seen: again.seen,
                };
                share_found(guard, &v, basis);
                report(CallOutcome::Hit);
                return Relook::Found(v);
            }
            State::Stale(v) => Some(v),
            State::Missing { fallback } => fallback,
        };
        Relook::Missing((guard, again.fetched, again.seen, fallback))
    }

    /// Reads (or creates) the tag versions a computation starting now is stored with.
    #[allow(clippy::too_many_arguments)]
    async fn prepare_fill<F>(
        &self,
        full_key: &str,
        tag_keys: &[String],
        opts: &Options,
        ttl: Duration,
        (fetched, seen): (Option<Versions>, Option<Seen>),
        guard: Option<LeaderGuard>,
        keep_decoded: bool,
        compute: F,
    ) -> Fill<F> {
        let looked_at = Instant::now();
        let versions = self
            .fill_versions(
                &opts.tags,
                tag_keys,
                fetched.map(Versions::into_owned),
                ttl,
                &opts.name,
            )
            .await;
        Fill {
            full_key: full_key.to_owned(),
            versions,
            seen,
            looked_at,
            ttl,
            compute,
            guard,
            keep_decoded,
        }
    }

    /// Whether a fresh hit should be recomputed now (XFetch); `now` is cachette's clock.
    fn refresh_early(&self, opts: &Options, meta: Meta, now: u64) -> bool {
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
        let left_ms = meta.fresh_until_ms.saturating_sub(now) as f64;
        let delta_ms = meta.compute_us as f64 / 1000.0;
        let exponent = -left_ms / (beta * delta_ms);
        // Below -746, `exp` is 0 and no number in [0, 1) is under it: no draw (most hits).
        exponent >= -746.0 && self.inner.config.random.next_f64() < exponent.exp()
    }

    /// One round trip: the entry and the versions of the call's tags; then the entry is
    /// classified by validity and freshness.
    async fn lookup<S: DeserializeOwned>(
        &self,
        full_key: &str,
        tag_keys: &[String],
        opts: &Options,
        decoded: Option<DecodedCopy<S>>,
    ) -> Lookup<S> {
        if let Backend::Memory(m) = &self.inner.backend {
            return self.lookup_memory(m, full_key, tag_keys, opts, decoded);
        }
        self.ensure_pending_worker();
        let found = match self.inner.backend.lookup(full_key, tag_keys).await {
            Ok(f) => f,
            Err(e) => {
                self.log_error(&self.inner.stats.log_backend, &opts.name, "fetch", &e);
                return Lookup {
                    state: State::Missing { fallback: None },
                    fetched: None,
                    seen: None,
                    now_ms: 0,
                };
            }
        };
        let (state, now_ms) = if self.inner.pending.blocks(full_key, tag_keys) {
            (State::Missing { fallback: None }, 0)
        } else {
            self.classify(full_key, &found, opts, decoded).await
        };
        Lookup {
            state,
            seen: Some(Seen::found(found.entry, found.patterns)),
            fetched: Some(found.versions),
            now_ms,
        }
    }

    /// [`lookup`](Self::lookup) in the memory store: no `.await`.
    fn lookup_memory<S: DeserializeOwned>(
        &self,
        m: &MemoryBackend,
        full_key: &str,
        tag_keys: &[String],
        opts: &Options,
        decoded: Option<DecodedCopy<S>>,
    ) -> Lookup<S> {
        self.ensure_pending_worker();
        let looked = m.lookup(full_key, tag_keys);
        let versions = Versions::Shared(looked.versions);
        let (state, now_ms) = match &looked.entry {
            Some(entry) if !self.inner.pending.blocks(full_key, tag_keys) => {
                let checked = self.check_memory(m, entry, &opts.tags, &versions, decoded);
                self.state_of(full_key, opts, checked, looked.read_at)
            }
            _ => (State::Missing { fallback: None }, 0),
        };
        Lookup {
            state,
            fetched: Some(versions),
            seen: Some(match looked.entry {
                Some(entry) => Seen::Memory(entry),
                None => Seen::Absent {
                    patterns: looked.patterns,
                },
            }),
            now_ms,
        }
    }

    /// Classifies a found entry by validity and freshness; with the clock's time.
    async fn classify<S: DeserializeOwned>(
        &self,
        full_key: &str,
        found: &Found,
        opts: &Options,
        decoded: Option<DecodedCopy<S>>,
    ) -> (State<S>, u64) {
        let Some(entry) = &found.entry else {
            return (State::Missing { fallback: None }, 0);
        };
        let checked = self
            .check_stored::<S>(entry, &opts.tags, &found.versions, decoded)
            .await;
        self.state_of(full_key, opts, checked, None)
    }

    /// Where a checked entry leaves the call, by freshness; with the clock's time (at
    /// `read_at`, the instant the backend read the entry, when it knows it).
    fn state_of<S>(
        &self,
        full_key: &str,
        opts: &Options,
        checked: Result<Check<S>>,
        read_at: Option<std::time::Instant>,
    ) -> (State<S>, u64) {
        match checked {
            Ok(Check::Valid(v, meta)) => {
                let clock = &self.inner.config.clock;
                let now = match read_at {
                    Some(at) => clock.now_ms_at(at),
                    None => clock.now_ms(),
                };
                let fresh_until = meta.fresh_until_ms;
                let state = if fresh_until == 0 || now < fresh_until {
                    State::Fresh(v, meta)
                } else if now < fresh_until.saturating_add(millis(opts.stale)) {
                    State::Stale(v)
                } else if now < fresh_until.saturating_add(millis(opts.stale_if_error)) {
                    State::Missing { fallback: Some(v) }
                } else {
                    State::Missing { fallback: None }
                };
                (state, now)
            }
            Ok(Check::Invalid) => (State::Missing { fallback: None }, 0),
            Ok(Check::Undecodable(why)) => {
                self.decode_failure(&opts.name, full_key, &why);
                (State::Missing { fallback: None }, 0)
            }
            Err(e) => {
                self.log_error(&self.inner.stats.log_backend, &opts.name, "fetch_tags", &e);
                (State::Missing { fallback: None }, 0)
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
        decoded: Option<DecodedCopy<P::Stored>>,
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
        let deadline = crate::clock::instant_after(Instant::now(), lock.wait);
        let mut backoff = Backoff::new(LOCK_POLL_MIN, LOCK_POLL_MAX);
        let mut waited = false;
        let mut last = (None, None);
        // The stale-if-error fallback of the last poll: a fallback is shared with the flight's
        // followers under the basis of the read that found it, never under a later one.
        let mut last_fallback = None;
        loop {
            // The basis of a value this poll finds, should it be shared with this flight's
            // followers: the poll's own read.
            let started = guard.tick();
            match self
                .inner
                .backend
                .lookup_and_lock(full_key, tag_keys, &lock_key, &token, lock.ttl)
                .await
            {
                Ok((fetched, locked)) => {
                    let (state, _) = self
                        .classify::<P::Stored>(full_key, &fetched, opts, decoded)
                        .await;
                    let seen = Seen::found(fetched.entry, fetched.patterns);
                    let poll_fallback = match state {
                        State::Fresh(v, _) => Ok(v),
                        State::Stale(v) => Err(Some(v)),
                        State::Missing { fallback } => Err(fallback),
                    };
                    if let Ok(v) = poll_fallback {
                        if locked {
                            self.release_quietly(&lock_key, &token, &opts.name).await;
                        }
                        let basis = Basis {
                            started,
                            versions: basis_versions(&fetched.versions, tag_keys.len()),
                            seen: Some(seen),
                        };
                        share_found(guard, &v, basis);
                        return policy.restore(v);
                    }
                    if locked {
                        let fill = self
                            .prepare_fill(
                                full_key,
                                tag_keys,
                                opts,
                                ttl,
                                (Some(fetched.versions), Some(seen)),
                                Some(guard),
                                decoded.is_some(),
                                compute,
                            )
                            .await;
                        let fallback = poll_fallback.err().flatten();
                        let r = self.fill(fill, policy, opts, fallback, None).await;
                        self.release_quietly(&lock_key, &token, &opts.name).await;
                        return r;
                    }
                    last = (Some(fetched.versions), Some(seen));
                    last_fallback = Some(poll_fallback.err().flatten());
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
            if Instant::now() >= deadline {
                self.inner.stats.record(Event::LockTimeout, &opts.name);
                break;
            }
            backoff.sleep(Some(deadline)).await;
        }
        let fill = self
            .prepare_fill(
                full_key,
                tag_keys,
                opts,
                ttl,
                last,
                Some(guard),
                decoded.is_some(),
                compute,
            )
            .await;
        // No poll answered: the first lookup's fallback, under no basis (no follower takes it).
        let fallback = last_fallback.unwrap_or(fallback);
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
            seen,
            looked_at,
            ttl,
            compute,
            guard,
            keep_decoded,
        } = fill;
        // What the computation is made under, for the flight's followers (see `flight.rs`).
        let basis = guard.as_ref().map(|g| {
            Arc::new(Basis {
                started: g.tick(),
                versions: versions
                    .as_ref()
                    .map(|v| v.iter().map(|(_, v)| Box::from(v.as_str())).collect()),
                seen: seen.clone(),
            })
        });
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
            if let (Some(guard), Some(basis)) = (guard, basis) {
                // The fallback was checked by the leader's lookup, not computed: it serves
                // only followers that read the same versions and key state.
                let basis = Basis {
                    started: 0,
                    versions: basis.versions.clone(),
                    seen: basis.seen.clone(),
                };
                share_found(guard, &stale, basis);
            }
            return policy.restore(stale);
        }

        let raw = policy.share(&result).and_then(|v| match codec::encode_value(v) {
            Ok(raw) if lossless::reads_back(v, &raw) => Some(raw),
            Ok(_) => {
                // Neither stored nor shared as bytes: followers would read the same wrong value.
                self.inner.stats.record(Event::Lossy, &opts.name);
                if let Some(held) = self.inner.stats.log_lossy.allow() {
                    tracing::warn!(
                        cache = %opts.name, suppressed = held,
                        "value would not read back from JSON as computed (e.g. Some(NaN), Some(None)); not stored"
                    );
                }
                None
            }
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
            let fence_ttl = self.inner.config.fence_ttl;
            let outlived_fence = matches!(seen, Some(Seen::Absent { .. }))
                && looked_at.elapsed() >= fence_ttl.checked_div(2).unwrap_or_default();
            let stored = match (&seen, outlived_fence) {
                (Some(seen), false) => self
                    .store_raw(
                        &full_key,
                        raw,
                        &versions,
                        ttl,
                        opts,
                        compute_us,
                        keep_decoded,
                        Some(seen),
                    )
                    .await
                    .map(Some),
                _ => Ok(None),
            };
            match stored {
                Ok(Some(true)) => {}
                Ok(Some(false) | None) => {
                    self.inner.stats.record(Event::FillFenced, &opts.name);
                    tracing::debug!(
                        cache = %opts.name, key = %full_key,
                        "the key was written or deleted since the computation began; not stored"
                    );
                }
                Err(Error::TooLarge { .. }) => {}
                Err(e) => self.log_error(&self.inner.stats.log_backend, &opts.name, "store", &e),
            }
        }
        if let (Some(guard), Some(basis)) = (guard, basis) {
            let outcome = match raw {
                Some(raw) => Outcome::Value(Arc::from(raw.get().as_bytes()), basis),
                None => match policy.share_error(&result) {
                    Some(shared) => Outcome::Shared(shared, basis),
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
        let known = fetched?;
        match self
            .resolve_versions(tags, tag_keys, known, entry_ttl)
            .await
        {
            Ok(versions) => versions,
            Err(e) => {
                self.log_error(&self.inner.stats.log_backend, name, "create_tags", &e);
                None
            }
        }
    }

    /// The tag versions an entry is stored with (what a fill and a write-through share):
    /// `known`, read by a lookup (`None` where a tag key was missing; the write-through knows
    /// none), with the missing tag keys created. `Ok(None)`: a tag key vanished while it was
    /// created.
    pub(crate) async fn resolve_versions(
        &self,
        tags: &[String],
        tag_keys: &[String],
        mut known: Vec<Option<String>>,
        entry_ttl: Duration,
    ) -> Result<Option<Vec<(String, String)>>, crate::Error> {
        known.resize(tag_keys.len(), None);
        let missing: Vec<usize> = (0..tag_keys.len())
            .filter(|&i| known[i].is_none())
            .collect();
        if !missing.is_empty() {
            let keys: Vec<String> = missing.iter().map(|&i| tag_keys[i].clone()).collect();
            let ttl = self.inner.config.tag_ttl.max(entry_ttl);
            let created = self.inner.backend.ensure_tags(&keys, ttl).await?;
            for (&i, v) in missing.iter().zip(created) {
                known[i] = v;
            }
        }
        Ok(named_versions(tags, known))
    }

    /// Checks a stored entry against the current tag versions and decodes its value.
    pub(crate) async fn check_stored<T: DeserializeOwned>(
        &self,
        entry: &Stored,
        tags: &[String],
        versions: &Versions,
        decoded: Option<DecodedCopy<T>>,
    ) -> Result<Check<T>> {
        match (entry, &self.inner.backend) {
            (Stored::Memory(entry), Backend::Memory(m)) => {
                self.check_memory::<T>(m, entry, tags, versions, decoded)
            }
            (Stored::Memory(entry), _) => Ok(Check::Undecodable(format!(
                "a memory entry outside the memory store ({} bytes)",
                entry.value().len()
            ))),
            (Stored::Bytes(bytes), _) => self.check::<T>(bytes, tags, versions).await,
        }
    }

    /// Checks stored bytes against the current tag versions and decodes the value.
    ///
    /// `versions.get(i)` is the current version of `tags[i]`. The entry is valid only if it
    /// carries every tag in `tags` and each of its tags still has the version it was stored
    /// with; tags the entry carries beyond `tags` are fetched (one more round trip).
    pub(crate) async fn check<T: DeserializeOwned>(
        &self,
        bytes: &[u8],
        tags: &[String],
        versions: &Versions,
    ) -> Result<Check<T>> {
        let env = match codec::decode_whole::<T>(bytes) {
            Ok(env) => env,
            // A deleted key: a miss, not a decode failure.
            Err(WholeError::Envelope(_)) if codec::is_tombstone(bytes) => {
                return Ok(Check::Invalid);
            }
            Err(WholeError::Envelope(e)) => return Ok(Check::Undecodable(e.to_string())),
            Err(WholeError::Value(header, e)) => {
                // Rare: an entry whose value is of another type is still only `Invalid` (not
                // a decode failure) when its tags say it was invalidated anyway.
                let invalid = matches!(
                    self.check_tags(&header.tags, tags, versions),
                    TagCheck::Invalid
                );
                return Ok(if invalid {
                    Check::Invalid
                } else {
                    Check::Undecodable(wrong_type(&e))
                });
            }
        };
        match self.check_tags(&env.tags, tags, versions) {
            TagCheck::Valid => {}
            TagCheck::Invalid => return Ok(Check::Invalid),
            TagCheck::Extra(extra) => {
                let keys: Vec<String> = extra.iter().map(|(t, _)| self.tag_key(t)).collect();
                let current = self.inner.backend.versions(&keys).await?;
                if !extra_still_valid(&extra, current.iter().map(Option::as_deref)) {
                    return Ok(Check::Invalid);
                }
            }
        }
        let meta = env.meta();
        Ok(Check::Valid(env.value, meta))
    }

    /// [`check`](Self::check) for a memory entry, whose header was parsed when it was stored:
    /// no parsing, no `.await`. With `decoded`, the entry's decoded copy is cloned instead of
    /// decoding the bytes, and the first value decoded is kept as that copy. The tag versions
    /// are checked either way, before the value is touched.
    fn check_memory<T: DeserializeOwned>(
        &self,
        m: &MemoryBackend,
        entry: &MemEntry,
        tags: &[String],
        versions: &Versions,
        decoded: Option<DecodedCopy<T>>,
    ) -> Result<Check<T>> {
        let header = match entry.header() {
            Ok(h) => h,
            Err(_) if entry.is_tombstone() => return Ok(Check::Invalid),
            Err(why) => return Ok(Check::Undecodable(why.to_owned())),
        };
        match self.check_tags(&header.tags, tags, versions) {
            TagCheck::Valid => {}
            TagCheck::Invalid => return Ok(Check::Invalid),
            TagCheck::Extra(extra) => {
                let current = extra.iter().map(|(t, _)| m.version(&self.tag_key(t)));
                if !extra_still_valid(&extra, current) {
                    return Ok(Check::Invalid);
                }
            }
        }
        if let Some(copy) = decoded
            && let Some(v) = entry.decoded().and_then(|kept| copy.take(kept.as_ref()))
        {
            return Ok(Check::Valid(v, header.meta));
        }
        Ok(match serde_json::from_slice::<T>(entry.value()) {
            Ok(v) => {
                if let Some(copy) = decoded {
                    entry.keep_decoded(|| copy.keep(&v));
                }
                Check::Valid(v, header.meta)
            }
            Err(e) => Check::Undecodable(wrong_type(&e)),
        })
    }

    /// Whether an entry carrying `entry_tags` (each with the version it was stored with) is
    /// valid for a call asking for `tags`, whose current versions are `versions`: it must
    /// carry every tag asked for, and each of its tags must still have its stored version
    /// (for tags beyond the call's, the caller fetches the current versions). An entry
    /// carrying a tag whose invalidation is kept (`pending.rs`) is not valid.
    fn check_tags<'a, S: AsRef<str>>(
        &self,
        entry_tags: &'a [(S, S)],
        tags: &[String],
        versions: &Versions,
    ) -> TagCheck<'a> {
        if !tags
            .iter()
            .all(|t| entry_tags.iter().any(|(et, _)| et.as_ref() == t.as_str()))
        {
            return TagCheck::Invalid;
        }
        // On Redis the lookup also read the epoch, after the tags: the entry must have been
        // stored under it (a revived entry of an older server life never is).
        if versions.len() > tags.len() {
            let epoch = versions.get(tags.len());
            let stored = entry_tags
                .iter()
                .find(|(t, _)| t.as_ref() == EPOCH_TAG)
                .map(|(_, v)| v.as_ref());
            if epoch.is_none() || stored != epoch {
                return TagCheck::Invalid;
            }
        }
        if self.inner.pending.any()
            && entry_tags
                .iter()
                .any(|(t, _)| self.inner.pending.blocks_tag(&self.tag_key(t.as_ref())))
        {
            return TagCheck::Invalid;
        }
        let mut extra = Vec::new();
        for (tag, stored) in entry_tags {
            if tag.as_ref() == EPOCH_TAG {
                continue;
            }
            match tags.iter().position(|t| t.as_str() == tag.as_ref()) {
                Some(i) => {
                    if versions.get(i) != Some(stored.as_ref()) {
                        return TagCheck::Invalid;
                    }
                }
                None => extra.push((tag.as_ref(), stored.as_ref())),
            }
        }
        if extra.is_empty() {
            TagCheck::Valid
        } else {
            TagCheck::Extra(extra)
        }
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
    /// With `expect`, only if the key is still in that state (see [`Seen`]); whether it was
    /// stored.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn store_raw(
        &self,
        full_key: &str,
        raw: &RawValue,
        versions: &[(String, String)],
        ttl: Duration,
        opts: &Options,
        compute_us: u64,
        keep_decoded: bool,
        expect: Option<&Seen>,
    ) -> Result<bool> {
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
        let mut keep = ttl
            .saturating_add(opts.stale.max(opts.stale_if_error))
            .min(MAX_DURATION);
        if expect.is_none() {
            // An unconditional write (`set`, `#[cache_put]`) is also a fence: a computation
            // that found the key absent before it must not find it absent again when it
            // stores, so the entry stays (as a miss once past its windows) for at least the
            // fence TTL, like a delete's tombstone.
            keep = keep.max(self.inner.config.fence_ttl);
        }
        let stored = self
            .inner
            .backend
            .store(full_key, bytes, keep, keep_decoded, expect)
            .await?;
        if stored {
            self.inner.stats.record(Event::Store, &opts.name);
        }
        Ok(stored)
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

/// Whether each extra tag (with its stored version) still has that version; `current` gives
/// their current versions, in order.
fn extra_still_valid<V: AsRef<str>>(
    extra: &[(&str, &str)],
    current: impl IntoIterator<Item = Option<V>>,
) -> bool {
    let mut current = current.into_iter();
    extra.iter().all(|(_, stored)| {
        current
            .next()
            .flatten()
            .is_some_and(|cur| cur.as_ref() == *stored)
    })
}

fn wrong_type(e: &serde_json::Error) -> String {
    format!("value does not decode as the expected type: {e}")
}

/// Versions named by their tags, in order: the call's tags, then (on Redis) the epoch;
/// `None` when one is missing.
pub(crate) fn named_versions(
    tags: &[String],
    versions: Vec<Option<String>>,
) -> Option<Vec<(String, String)>> {
    versions
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let name = tags.get(i).map_or(EPOCH_TAG, String::as_str);
            v.map(|v| (name.to_owned(), v))
        })
        .collect()
}

/// A leader's flight and what its last look read: versions, key state, fallback.
type Looked<S> = (LeaderGuard, Option<Versions>, Option<Seen>, Option<S>);

/// What a leader's second look found.
enum Relook<S> {
    /// A fresh value, already shared with the flight's followers.
    Found(S),
    /// Nothing fresh: the flight, still led, and what the look read (versions, key state,
    /// stale-if-error fallback).
    Missing(Looked<S>),
}

/// The versions of a lookup as a flight's basis: `None` unless every tag had one.
fn basis_versions(versions: &Versions, tags: usize) -> Option<Box<[Box<str>]>> {
    (0..tags).map(|i| versions.get(i).map(Box::from)).collect()
}

/// Ends a flight with a value read from the store (not computed by the flight), under the
/// basis of that read.
fn share_found<S: serde::Serialize>(guard: LeaderGuard, value: &S, basis: Basis) {
    let outcome = codec::encode_value(value)
        .map(|raw| Outcome::Value(Arc::from(raw.get().as_bytes()), Arc::new(basis)))
        .unwrap_or(Outcome::Unshareable);
    guard.finish(outcome);
}
