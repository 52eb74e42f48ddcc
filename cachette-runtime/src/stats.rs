//! Counters of one [`Cache`](crate::Cache), mirrored to the `metrics` facade, and the
//! rate limiter that keeps a failing backend from flooding the logs.
//!
//! # Metrics
//!
//! cachette records through the [`metrics`](https://docs.rs/metrics) facade: install the
//! exporter of your choice (Prometheus, StatsD, ...) **before the first cached call**, since
//! handles are registered once per call name and reused. `cache` is the call's name (the
//! function's path for `#[cached]`, `manual` or the operation for the manual API).
//!
//! | metric | kind | labels | what |
//! |---|---|---|---|
//! | `cachette_hits_total` | counter | `cache` | fresh values served from the cache |
//! | `cachette_misses_total` | counter | `cache` | lookups that found nothing usable |
//! | `cachette_stores_total` | counter | `cache` | entries written |
//! | `cachette_stale_served_total` | counter | `cache` | stale values served while revalidating |
//! | `cachette_stale_if_error_total` | counter | `cache` | stale values served because the computation failed |
//! | `cachette_early_refreshes_total` | counter | `cache` | probabilistic early refreshes |
//! | `cachette_coalesced_total` | counter | `cache` | calls that waited for another call's computation |
//! | `cachette_lock_waits_total` | counter | `cache` | misses that waited for another process's fill lock |
//! | `cachette_lock_timeouts_total` | counter | `cache` | lock waits that gave up and computed |
//! | `cachette_fills_fenced_total` | counter | `cache` | computed values not stored: their key was written or deleted after the lookup that started them |
//! | `cachette_shares_refused_total` | counter | `cache` | shared computations a call did not take because they may predate an invalidation it saw |
//! | `cachette_decode_failures_total` | counter | `cache` | stored entries that did not decode |
//! | `cachette_oversize_total` | counter | `cache` | values not stored for their size |
//! | `cachette_lossy_total` | counter | `cache` | values not stored because JSON would not read them back as computed (`Some(NaN)`, `Some(None)`, ...) |
//! | `cachette_unknown_profile_total` | counter | `cache` | calls naming an unconfigured TTL profile |
//! | `cachette_errors_total` | counter | `cache` | failed or timed-out backend operations |
//! | `cachette_backend_errors_total` | counter | `cache`, `op`, `kind` | the same, by operation and error kind (`timeout`, `connection`, `backend`, ...) |
//! | `cachette_invalidations_total` | counter | `cache` (`invalidate_tags`, `invalidate_pattern`, `delete`) | invalidations that succeeded |
//! | `cachette_invalidation_failures_total` | counter | `cache` (as above) | invalidations that failed after their retries |
//! | `cachette_pending_invalidations` | gauge | | failed invalidations kept for the retry worker (every cache of the process); back to 0 once applied |
//! | `cachette_tag_unlink_fallbacks_total` | counter | | tag invalidations Redis refused for `maxmemory` (`OOM`), done by deleting the tag keys (`UNLINK`) instead |
//! | `cachette_config_errors_total` | counter | | a malformed environment disabled the default cache |
//! | `cachette_undefined_profiles_total` | counter | | TTL profiles named by attributes (`ttl = profile("name")`) and defined nowhere, found when the default cache, `Cache::memory` or `Cache::redis` was built (logged at error level; `CacheBuilder::build` refuses them) |
//! | `cachette_put_failures_total` | counter | `cache` | `#[cache_put]` writes that failed (the key was then deleted) |
//! | `cachette_refresh_not_cached_total` | counter | | `cachette::refresh` given a call that is not `#[cached]` |
//! | `cachette_coupled_call_errors_total` | counter | `function`, `attribute` (`cache_put`, `invalidates`) | calls named by `#[cache_put(call)]` or `#[invalidates(calls = ...)]` that could not be acted on (not a `#[cached]` call, a key that could not be built, a value that does not fit the call's stored type) |
//! | `cachette_breaker_opened_total` | counter | | times the Redis circuit breaker opened |
//! | `cachette_breaker_rejected_total` | counter | | round trips skipped while it was open |
//! | `cachette_breaker_open` | gauge | | 1 while it is open, 0 once closed |
//! | `cachette_compute_seconds` | histogram | `cache` | time the computations took |
//! | `cachette_hit_seconds` | histogram | `cache` | time to serve each fresh hit, memory hits included: from the call's start (after its cooperative-budget check) to the value, lookup, tag checks and decoding included |
//! | `cachette_backend_seconds` | histogram | `cache`, `backend` (`redis`), `op` (`fetch`, `create_tags`, `invalidate`, `store`, `delete`, `scan`, `lock`, `unlock`) | time of each Redis round trip, under the name of the call that sent it (`manual` for `get`/`set`/`exists`/locks, the operation for invalidations, `deferred` for kept invalidations retried in the background, `admin` for the admin operations, `internal` otherwise). A batched lookup (`op="fetch"`) also carries other calls' lookups: it is timed once, under the sender's name |
//!
//! The hit ratio is derived, not exported (a ratio gauge cannot be summed across processes
//! or windows). Per call name, over 5 minutes, in PromQL:
//!
//! ```text
//! sum by (cache) (rate(cachette_hits_total[5m]))
//!   / (sum by (cache) (rate(cachette_hits_total[5m])) + sum by (cache) (rate(cachette_misses_total[5m])))
//! ```
//!
//! Stale values served (`cachette_stale_served_total`, `cachette_stale_if_error_total`) and
//! coalesced calls (`cachette_coalesced_total`, counted besides their miss) are neither hits
//! nor misses: add the stale ones to the numerator and denominator for "answered without
//! computing". The 99th percentile of hit latency per name:
//! `histogram_quantile(0.99, sum by (cache, le) (rate(cachette_hit_seconds_bucket[5m])))`
//! (with an exporter that renders histograms as buckets).

// Names travel as `&Cow<'static, str>` so that a static name becomes a label without allocating.
#![allow(clippy::ptr_arg)]

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use crate::timing::RoundTripTimers;

/// A point-in-time copy of a cache's counters (since the cache was built).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that found nothing usable (absent, expired, invalidated, undecodable, or the
    /// backend failed) and ran the computation.
    pub misses: u64,
    /// Entries written.
    pub stores: u64,
    /// Stored entries that did not decode (changed type, corrupted, foreign), treated as misses.
    pub decode_failures: u64,
    /// Values not stored because they were over the size limit.
    pub oversize: u64,
    /// Values not stored because their JSON would not read back as the value computed:
    /// `Some(f64::NAN)` and `Some(None)` are both written as `null`, which reads back as
    /// `None`. Such values are returned, and computed again by the next call.
    pub lossy: u64,
    /// Backend operations that failed or timed out (each attempt counts).
    pub backend_errors: u64,
    /// Tag and pattern invalidations and deletes that succeeded.
    pub invalidations: u64,
    /// Invalidations that still failed after their retries (returned as errors).
    pub invalidation_failures: u64,
    /// Calls that named a TTL profile that is not configured (the default TTL was used).
    pub unknown_profiles: u64,
    /// Stale values served while a refresh ran (stale-while-revalidate).
    pub stale_served: u64,
    /// Stale values served because the computation failed (stale-if-error).
    pub stale_if_error: u64,
    /// Probabilistic early refreshes started.
    pub early_refreshes: u64,
    /// Calls that waited for another call's computation of the same key (single-flight).
    pub coalesced: u64,
    /// Misses that waited for another process's fill lock.
    pub lock_waits: u64,
    /// Lock waits that timed out (the waiter then computed itself).
    pub lock_timeouts: u64,
    /// Computed values not stored because their key was written, deleted or refilled after
    /// the lookup that started the computation (the fill's compare-and-set lost), or because
    /// the computation outlasted the key fence's lifetime. The value was still returned.
    pub fills_fenced: u64,
    /// Values of another call's computation (single-flight, a refresh, a fill lock) that a
    /// call did not take because that computation may have begun before an invalidation this
    /// call had seen; the call looked again instead.
    pub shares_refused: u64,
    /// Round trips made to Redis (0 for the other backends).
    pub round_trips: u64,
}

impl StatsSnapshot {
    /// `hits / (hits + misses)`, or 0 when there was no lookup.
    pub fn hit_rate(&self) -> f64 {
        let total = self.hits.saturating_add(self.misses);
        if total == 0 {
            0.0
        } else {
            self.hits as f64 / total as f64
        }
    }
}

/// What the counters count. Each event is a counter in [`StatsSnapshot`] and a `metrics`
/// counter named [`Event::metric`], labelled `cache` (the call's name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    Hit,
    Miss,
    Store,
    DecodeFailure,
    Oversize,
    Lossy,
    BackendError,
    Invalidation,
    InvalidationFailure,
    UnknownProfile,
    StaleServed,
    StaleIfError,
    EarlyRefresh,
    Coalesced,
    LockWait,
    LockTimeout,
    FillFenced,
    ShareRefused,
}

const EVENTS: usize = 18;

impl Event {
    const ALL: [Event; EVENTS] = [
        Event::Hit,
        Event::Miss,
        Event::Store,
        Event::DecodeFailure,
        Event::Oversize,
        Event::Lossy,
        Event::BackendError,
        Event::Invalidation,
        Event::InvalidationFailure,
        Event::UnknownProfile,
        Event::StaleServed,
        Event::StaleIfError,
        Event::EarlyRefresh,
        Event::Coalesced,
        Event::LockWait,
        Event::LockTimeout,
        Event::FillFenced,
        Event::ShareRefused,
    ];

    /// The `metrics` counter this event increments.
    pub(crate) const fn metric(self) -> &'static str {
        match self {
            Event::Hit => "cachette_hits_total",
            Event::Miss => "cachette_misses_total",
            Event::Store => "cachette_stores_total",
            Event::DecodeFailure => "cachette_decode_failures_total",
            Event::Oversize => "cachette_oversize_total",
            Event::Lossy => "cachette_lossy_total",
            Event::BackendError => "cachette_errors_total",
            Event::Invalidation => "cachette_invalidations_total",
            Event::InvalidationFailure => "cachette_invalidation_failures_total",
            Event::UnknownProfile => "cachette_unknown_profile_total",
            Event::StaleServed => "cachette_stale_served_total",
            Event::StaleIfError => "cachette_stale_if_error_total",
            Event::EarlyRefresh => "cachette_early_refreshes_total",
            Event::Coalesced => "cachette_coalesced_total",
            Event::LockWait => "cachette_lock_waits_total",
            Event::LockTimeout => "cachette_lock_timeouts_total",
            Event::FillFenced => "cachette_fills_fenced_total",
            Event::ShareRefused => "cachette_shares_refused_total",
        }
    }
}

/// Stripes of a set of counters: threads count in their own stripe (its own cache line), so
/// that threads counting hits at the same time do not contend for one line; a read sums them.
const STRIPES: usize = 8;

#[derive(Default)]
#[repr(align(128))]
struct Stripe([AtomicU64; EVENTS]);

/// One counter per event, striped.
#[derive(Default)]
struct Counts(Box<[Stripe; STRIPES]>);

impl Counts {
    fn add(&self, event: Event) {
        self.0[stripe()].0[event as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn get(&self, event: Event) -> u64 {
        self.0.iter().fold(0u64, |n, s| {
            n.wrapping_add(s.0[event as usize].load(Ordering::Relaxed))
        })
    }
}

/// This thread's stripe (threads take stripes in turn).
fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    STRIPE
        .try_with(|s| {
            let mut i = s.get();
            if i == usize::MAX {
                i = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
                s.set(i);
            }
            i
        })
        .unwrap_or(0)
        % STRIPES
}

/// The counters of one call name, with the `metrics` handles registered once for it.
pub(crate) struct NameCounters {
    name: metrics::SharedString,
    counts: Counts,
    metrics: [metrics::Counter; EVENTS],
    pub compute_seconds: metrics::Histogram,
    hit_seconds: metrics::Histogram,
    /// Registered by the first Redis round trip of the name (a memory store has none).
    round_trips: OnceLock<RoundTripTimers>,
}

impl NameCounters {
    fn new(name: &Cow<'static, str>) -> NameCounters {
        NameCounters {
            name: label(name),
            counts: Counts::default(),
            metrics: Event::ALL.map(|e| metrics::counter!(e.metric(), "cache" => label(name))),
            compute_seconds: metrics::histogram!("cachette_compute_seconds", "cache" => label(name)),
            hit_seconds: metrics::histogram!("cachette_hit_seconds", "cache" => label(name)),
            round_trips: OnceLock::new(),
        }
    }

    fn snapshot(&self) -> StatsSnapshot {
        snapshot_of(|e| self.counts.get(e), 0)
    }

    /// This name's `cachette_backend_seconds` histograms, registered on first use.
    pub(crate) fn round_trip_timers(&self) -> &RoundTripTimers {
        self.round_trips
            .get_or_init(|| crate::timing::round_trip_timers(self.name.clone()))
    }
}

fn snapshot_of(g: impl Fn(Event) -> u64, round_trips: u64) -> StatsSnapshot {
    StatsSnapshot {
        hits: g(Event::Hit),
        misses: g(Event::Miss),
        stores: g(Event::Store),
        decode_failures: g(Event::DecodeFailure),
        oversize: g(Event::Oversize),
        lossy: g(Event::Lossy),
        backend_errors: g(Event::BackendError),
        invalidations: g(Event::Invalidation),
        invalidation_failures: g(Event::InvalidationFailure),
        unknown_profiles: g(Event::UnknownProfile),
        stale_served: g(Event::StaleServed),
        stale_if_error: g(Event::StaleIfError),
        early_refreshes: g(Event::EarlyRefresh),
        coalesced: g(Event::Coalesced),
        lock_waits: g(Event::LockWait),
        lock_timeouts: g(Event::LockTimeout),
        fills_fenced: g(Event::FillFenced),
        shares_refused: g(Event::ShareRefused),
        round_trips,
    }
}

/// Names beyond this many share the counters of the name `other` (names are meant to be
/// function paths, a bounded set; this keeps a dynamic name from growing the map forever).
const MAX_NAMES: usize = 10_000;

/// A recently used name's counters, cached per thread: a static name (what `#[cached]` and
/// the manual API use) is found by its address, without a lock or a hash of the name.
struct RecentName {
    stats: u64,
    ptr: usize,
    len: usize,
    counters: Arc<NameCounters>,
}

const RECENT_NAMES: usize = 32;

thread_local! {
    static RECENT: RefCell<[Option<RecentName>; RECENT_NAMES]> =
        const { RefCell::new([const { None }; RECENT_NAMES]) };
}

pub(crate) struct Stats {
    /// Unique among the caches of the process (keys the per-thread name cache).
    id: u64,
    totals: Counts,
    by_name: RwLock<HashMap<Cow<'static, str>, Arc<NameCounters>>>,
    pub log_backend: LogLimiter,
    pub log_decode: LogLimiter,
    pub log_oversize: LogLimiter,
    pub log_lossy: LogLimiter,
    pub log_profile: LogLimiter,
}

impl Default for Stats {
    fn default() -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Stats {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            totals: Counts::default(),
            by_name: RwLock::default(),
            log_backend: LogLimiter::default(),
            log_decode: LogLimiter::default(),
            log_oversize: LogLimiter::default(),
            log_lossy: LogLimiter::default(),
            log_profile: LogLimiter::default(),
        }
    }
}

impl Stats {
    /// This cache's id, unique in the process.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Runs `f` with the counters of `name`: for a static name, from this thread's cache of
    /// recent names when it is there (no lock, no hash of the name, no reference count
    /// touched); otherwise from [`name`](Self::name), then cached.
    fn with_name<R>(&self, name: &Cow<'static, str>, f: impl Fn(&Arc<NameCounters>) -> R) -> R {
        let Cow::Borrowed(s) = name else {
            return f(&self.name(name));
        };
        let (ptr, len) = (s.as_ptr() as usize, s.len());
        let slot = (ptr ^ (ptr >> 7) ^ (self.id as usize).wrapping_mul(0x9E37_79B9)) % RECENT_NAMES;
        let cached = RECENT.try_with(|recent| {
            let recent = recent.try_borrow().ok()?;
            let r = recent[slot]
                .as_ref()
                .filter(|r| r.stats == self.id && r.ptr == ptr && r.len == len)?;
            Some(f(&r.counters))
        });
        if let Ok(Some(out)) = cached {
            return out;
        }
        let counters = self.name(name);
        let out = f(&counters);
        let _ = RECENT.try_with(|recent| {
            if let Ok(mut recent) = recent.try_borrow_mut() {
                recent[slot] = Some(RecentName {
                    stats: self.id,
                    ptr,
                    len,
                    counters,
                });
            }
        });
        out
    }

    /// The counters of `name`, shared: through this thread's cache of recent names, as
    /// [`with_name`](Self::with_name) finds them.
    pub(crate) fn counters(&self, name: &Cow<'static, str>) -> Arc<NameCounters> {
        self.with_name(name, Arc::clone)
    }

    /// The counters of `name`, registered on first use.
    pub(crate) fn name(&self, name: &Cow<'static, str>) -> Arc<NameCounters> {
        if let Ok(map) = self.by_name.read()
            && let Some(c) = map.get(name)
        {
            return Arc::clone(c);
        }
        let mut map = self.by_name.write().unwrap_or_else(|e| e.into_inner());
        let key = if map.len() >= MAX_NAMES && !map.contains_key(name) {
            Cow::Borrowed("other")
        } else {
            name.clone()
        };
        Arc::clone(
            map.entry(key)
                .or_insert_with_key(|k| Arc::new(NameCounters::new(k))),
        )
    }

    /// Counts `event` for `name`: the cache's total, the name's counter, the `metrics` counter.
    pub(crate) fn record(&self, event: Event, name: &Cow<'static, str>) {
        self.totals.add(event);
        self.with_name(name, |counters| {
            counters.counts.add(event);
            counters.metrics[event as usize].increment(1);
        });
    }

    /// Counts a hit for `name`, as [`record`](Self::record) does, and times it since
    /// `started` into `cachette_hit_seconds`.
    pub(crate) fn record_hit(&self, name: &Cow<'static, str>, started: Instant) {
        self.totals.add(Event::Hit);
        self.with_name(name, |counters| {
            counters.counts.add(Event::Hit);
            counters.metrics[Event::Hit as usize].increment(1);
            counters.hit_seconds.record(started.elapsed().as_secs_f64());
        });
    }

    pub(crate) fn get(&self, event: Event) -> u64 {
        self.totals.get(event)
    }

    pub(crate) fn snapshot(&self, round_trips: u64) -> StatsSnapshot {
        snapshot_of(|e| self.get(e), round_trips)
    }

    /// Per-name snapshots, sorted by name.
    pub(crate) fn by_name(&self) -> Vec<(String, StatsSnapshot)> {
        let map = self.by_name.read().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = map
            .iter()
            .map(|(k, c)| (k.to_string(), c.snapshot()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

pub(crate) fn label(name: &Cow<'static, str>) -> metrics::SharedString {
    match name {
        Cow::Borrowed(s) => metrics::SharedString::from(*s),
        Cow::Owned(s) => metrics::SharedString::from(s.clone()),
    }
}

/// How often one kind of warning may be logged.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Logs through `tracing` at `$level` at most once per [`LOG_INTERVAL`] for this call site,
/// with `suppressed` = how many were held back since the last one:
/// `rate_limited!(warn, cache = %name, "message")`.
macro_rules! rate_limited {
    ($level:ident, $($field:tt)+) => {{
        static LIMITER: ::std::sync::OnceLock<$crate::stats::LogLimiter> =
            ::std::sync::OnceLock::new();
        if let Some(held) = LIMITER
            .get_or_init($crate::stats::LogLimiter::default)
            .allow()
        {
            ::tracing::$level!(suppressed = held, $($field)+);
        }
    }};
}
pub(crate) use rate_limited;

/// Lets one message through per [`LOG_INTERVAL`] and counts the ones it held back.
#[derive(Default)]
pub(crate) struct LogLimiter {
    /// Milliseconds since [`epoch`] before which nothing is logged; 0 = log now.
    next_ms: AtomicU64,
    suppressed: AtomicU64,
}

impl LogLimiter {
    /// `Some(n)` when the caller should log now (`n` messages were held back since the last
    /// one), `None` when it should stay quiet.
    pub(crate) fn allow(&self) -> Option<u64> {
        let now = u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX);
        let next = self.next_ms.load(Ordering::Relaxed);
        let interval = u64::try_from(LOG_INTERVAL.as_millis()).unwrap_or(u64::MAX);
        if now >= next
            && self
                .next_ms
                .compare_exchange(
                    next,
                    now.saturating_add(interval),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_lets_one_through_per_interval() {
        let l = LogLimiter::default();
        assert_eq!(l.allow(), Some(0));
        assert_eq!(l.allow(), None);
        assert_eq!(l.allow(), None);
        // Pretend the interval has passed.
        l.next_ms.store(0, Ordering::Relaxed);
        assert_eq!(l.allow(), Some(2));
    }

    #[test]
    fn hit_rate() {
        let s = StatsSnapshot {
            hits: 3,
            misses: 1,
            ..Default::default()
        };
        assert!((s.hit_rate() - 0.75).abs() < 1e-9);
        assert_eq!(StatsSnapshot::default().hit_rate(), 0.0);
    }
}
