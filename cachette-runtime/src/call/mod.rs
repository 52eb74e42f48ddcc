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
use crate::backend::parsed::ParsedEntry;
use crate::backend::{EPOCH_TAG, Found, Seen, Store, Stored, Versions, new_version};
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

mod entry;
mod fill;
mod lock_wait;
mod lookup;

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
}

/// The span of one cached call: `cachette.call{cache, outcome}` at debug level.
fn call_span(opts: &Options) -> tracing::Span {
    tracing::debug_span!("cachette.call", cache = %opts.name, outcome = tracing::field::Empty)
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

#[cfg(test)]
mod tests;
