//! The counters of each call name (with their `metrics` handles, registered once) and a
//! cache's totals.

// Names travel as `&Cow<'static, str>` so that a static name becomes a label without allocating.
#![allow(clippy::ptr_arg)]

use super::StatsSnapshot;
use super::event::{EVENTS, Event};
use super::log_limit::LogLimiter;
use super::striped::Counts;
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Instant;

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
            .get_or_init(|| round_trip_timers(self.name.clone()))
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
            counters.hit_seconds.record(SecondsSince(started));
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

/// The `op` label of `cachette_backend_seconds`, in the order of the Redis backend's
/// round-trip kinds (`backend::redis::round_trip::Op`, which indexes this).
pub(crate) const BACKEND_OPS: [&str; 8] = [
    "fetch",
    "create_tags",
    "invalidate",
    "store",
    "delete",
    "scan",
    "lock",
    "unlock",
];

/// One histogram per round-trip kind, for one call name.
pub(crate) type RoundTripTimers = [metrics::Histogram; BACKEND_OPS.len()];

/// Registers the round-trip histograms of the call name `name`.
pub(crate) fn round_trip_timers(name: metrics::SharedString) -> RoundTripTimers {
    BACKEND_OPS.map(|op| {
        metrics::histogram!(
            "cachette_backend_seconds",
            "cache" => name.clone(),
            "backend" => "redis",
            "op" => op
        )
    })
}

/// The seconds since an instant, read when a histogram records them: a handle of no recorder
/// (none installed) records nothing and never reads the clock, so a hit then reads it once.
struct SecondsSince(Instant);

impl metrics::IntoF64 for SecondsSince {
    fn into_f64(self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }
}
