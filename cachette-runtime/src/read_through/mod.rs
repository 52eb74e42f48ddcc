//! The read-through engine: lookup, single-flight, fill locks, probabilistic early refresh,
//! stale-while-revalidate, stale-if-error, TTL jitter, and the fill itself.
//!
//! Everything here is shared by `#[cached]`, [`Cache::get_or_compute`] and friends. The
//! manual API enters through [`Cache::cached_with`] or [`Cache::cached_with_spawn`]; the
//! macros build a full key and [`Options`] and enter through `__private::cached*`, which
//! calls `cached_full` (with the memory store's decoded copies) or, for
//! `#[cached(background_refresh)]`, `cached_spawn_full`, after the call modes of `key_of`,
//! `evict`, `refresh` and `put` are sorted out.
//!
//! Files: this one holds the call's context ([`Call`]: key, tag keys, options, TTL, policy,
//! decoded copy) and the types its steps pass along; `machine.rs` the state machine of one call
//! (lookup -> validity and freshness -> share, lock or fill -> store) as one
//! [`State`](machine::State) enum whose transitions are one `match`; `entry.rs` the entry
//! points and the first look without an `.await`; `lookup.rs` lookup and validity;
//! `freshness.rs` freshness, XFetch and the quiet deadline of a parsed entry; `lock_wait.rs`
//! waiting on another process's fill lock; `fill.rs` the computation, the tag versions it is
//! stored with (shared with `Cache::set`) and the compare-and-set store. The engine reaches its
//! store only through [`Store`](crate::backend::Store).

// Call names travel as `&Cow<'static, str>` so that a static name becomes a metrics label
// without an allocation.
#![allow(clippy::ptr_arg)]

use crate::Cache;
use crate::backend::parsed::{EntryTags, ParsedEntry};
use crate::backend::{EPOCH_TAG, Found, Seen, Store, Stored, Versions, new_version};
use crate::clock::Backoff;
use crate::clock::millis;
use crate::codec::{self, Meta, WholeError};
use crate::config::{EarlyRefresh, LockOptions, MAX_DURATION, Options, Ttl};
use crate::error::{Error, Result};
use crate::flight::{self, Basis, LeaderGuard, Mark, Outcome, Role, View};
use crate::keys::KeyText;
use crate::lossless;
use crate::observe::{CallOutcome, report};
use crate::policy::{CacheValue, DecodedCopy, Fallible, Plain, ReturnPolicy};
use crate::stats::Event;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use std::borrow::{Borrow, Cow};
use std::future::Future;
use std::marker::PhantomData;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

mod entry;
mod fill;
mod freshness;
mod lock_wait;
mod lookup;
mod machine;
mod manual;

pub(crate) use fill::ToStore;

/// How often a caller looks again (instead of computing) before it gives up on sharing: after
/// an abandoned flight, or a flight whose value was not fresh for it.
const MAX_ATTEMPTS: u32 = 8;
/// First and largest pause between two looks of a process waiting for another's fill lock.
const LOCK_POLL_MIN: Duration = Duration::from_millis(5);
const LOCK_POLL_MAX: Duration = Duration::from_millis(50);

/// A computation: what the engine calls once, at most, and awaits. Every closure returning
/// a future is one; the bound is written here once instead of on every step.
pub(crate) trait Compute<R>: FnOnce() -> Self::Fut {
    type Fut: Future<Output = R>;
}

impl<R, F, Fut> Compute<R> for F
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = R>,
{
    type Fut = Fut;
}

/// One cached call: what every step of it needs, built once (no argument lists).
pub(crate) struct Call<'o, R, P: ReturnPolicy<R>> {
    cache: &'o Cache,
    opts: &'o Options,
    policy: &'o P,
    full_key: String,
    /// The backend keys of the call's tags, then the store's base keys.
    tag_keys: Cow<'o, [String]>,
    ttl: Duration,
    /// A decoded copy of the value may be used and kept (the memory store).
    decoded: Option<DecodedCopy<P::Stored>>,
    /// The store may keep a decoded copy of what this call stores.
    keep_decoded: bool,
    /// When the call started (for `cachette_hit_seconds`).
    started: Instant,
    _returns: PhantomData<fn() -> R>,
}

impl<'o, R, P: ReturnPolicy<R>> Call<'o, R, P> {
    /// A call of `full_key` that started at `started`: its tag keys resolved now, and its TTL
    /// too unless a first look resolved it (`ttl`; an unknown profile is counted once).
    fn new(
        cache: &'o Cache,
        full_key: String,
        opts: &'o Options,
        policy: &'o P,
        decoded: Option<DecodedCopy<P::Stored>>,
        (ttl, started): (Option<Duration>, Instant),
    ) -> Self {
        Call {
            cache,
            opts,
            policy,
            full_key,
            tag_keys: cache.call_tag_keys(opts),
            ttl: ttl.unwrap_or_else(|| cache.ttl_for(&opts.ttl, &opts.name)),
            decoded,
            keep_decoded: decoded.is_some(),
            started,
            _returns: PhantomData,
        }
    }
}

/// What checking stored bytes found.
pub(crate) enum Check<T> {
    Valid(T, Meta),
    /// Invalidated: a tag moved on or is missing, or the entry lacks a tag the call requires.
    Invalid,
    Undecodable(String),
}

/// What a lookup's entry is worth to the call, by validity and freshness.
enum Freshness<S> {
    /// A fresh, valid value.
    Fresh(S, Meta),
    /// Past its TTL but within the stale-while-revalidate window, and not invalidated.
    Stale(S),
    /// Nothing usable; `fallback` is a value within the stale-if-error window.
    Missing { fallback: Option<S> },
}

struct Lookup<S> {
    state: Freshness<S>,
    /// The tag versions the lookup read (`None`: the backend failed: do not store).
    fetched: Option<Versions>,
    /// The state of the key the lookup read (`None`: the backend failed).
    seen: Option<Seen>,
    /// Cachette's clock when the entry was classified.
    now_ms: u64,
}

impl<S> Lookup<S> {
    /// A lookup that classified what a store found as `state` at `now_ms`.
    /// What a lookup that failed leaves: a miss, with nothing to store against.
    fn failed() -> Self {
        Lookup {
            state: Freshness::Missing { fallback: None },
            fetched: None,
            seen: None,
            now_ms: 0,
        }
    }

    fn found(state: Freshness<S>, now_ms: u64, found: Found) -> Self {
        Lookup {
            state,
            fetched: Some(found.versions),
            seen: Some(Seen::found(found.entry, found.patterns)),
            now_ms,
        }
    }
}

/// What a lookup read that a fill is stored against: the tag versions and the key's state
/// (`None`: the store failed: do not store).
type Read = (Option<Versions>, Option<Seen>);

/// What a call's first look (without an `.await`) hands to the full path when it was not a
/// plain fresh hit, so that nothing is looked up, decided or counted twice. It owns all it
/// holds: the call's options are built after it (`CallOptions::build`).
struct Looked<S> {
    full_key: String,
    /// The shard's mark read before the lookup, and the lookup.
    first: (Mark, Lookup<S>),
    /// How many tags the lookup read: its versions are the built options' only when they
    /// are as many (building drops duplicates; otherwise the full path looks again).
    tags: usize,
    /// For a fresh lookup: that it is refreshed early (XFetch is rolled once per lookup).
    refresh_early: Option<bool>,
    /// A profile's TTL, resolved by the first look (an unknown profile is counted once).
    ttl: Option<Duration>,
    started: Instant,
}

/// Where [`Call::run`] starts.
enum Start<S> {
    /// From the lookup, at this full key.
    Key(String),
    /// From what the first look found.
    Looked(Box<Looked<S>>),
}

/// What a call's options are made of, as a call that looks before it builds them takes
/// them: the options a hit is judged with and the call's tags (all a first look needs), and
/// the options themselves, built only when the call goes past its first look. A `&Options`
/// is both at once (the manual API); a `#[cached]` call's are its site's options and its
/// per-call tags, held inline (`macro_support`), so that a memory hit builds no `Options`.
pub(crate) trait CallOptions {
    /// A tag of the call.
    type Tag: AsRef<str>;
    /// The built options.
    type Built: Borrow<Options>;
    /// The options a hit is judged with (name, TTL, freshness; their own tags unused) and
    /// the call's tags, in order, duplicates included.
    fn look(&self) -> (&Options, &[Self::Tag]);
    /// The call's options, its tags deduplicated.
    fn build(self) -> Self::Built;
}

impl<'a> CallOptions for &'a Options {
    type Tag = String;
    type Built = &'a Options;

    #[inline]
    fn look(&self) -> (&Options, &[String]) {
        (self, &self.tags)
    }

    #[inline]
    fn build(self) -> &'a Options {
        self
    }
}

/// A computation about to run, with everything its fill needs (owned: a background refresh
/// takes it into its task).
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
    /// The store may keep a decoded copy of the value (the caller can use one).
    keep_decoded: bool,
}

/// What a call decided.
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

#[cfg(test)]
mod tests;

/// The span of one cached call: `cachette.call{cache, outcome}` at debug level.
#[inline]
fn call_span(opts: &Options) -> tracing::Span {
    tracing::debug_span!("cachette.call", cache = %opts.name, outcome = tracing::field::Empty)
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
