//! Counters of one [`Cache`](crate::Cache), mirrored to the `metrics` facade, and the
//! rate limiter that keeps a failing backend from flooding the logs.

// Names travel as `&Cow<'static, str>` so that a static name becomes a label without allocating.
#![allow(clippy::ptr_arg)]

use std::borrow::Cow;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

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
    /// Round trips made to Redis (0 for the other backends).
    pub round_trips: u64,
}

impl StatsSnapshot {
    /// `hits / (hits + misses)`, or 0 when there was no lookup.
    pub fn hit_rate(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            0.0
        } else {
            self.hits as f64 / total as f64
        }
    }
}

#[derive(Default)]
pub(crate) struct Stats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub stores: AtomicU64,
    pub decode_failures: AtomicU64,
    pub oversize: AtomicU64,
    pub backend_errors: AtomicU64,
    pub invalidations: AtomicU64,
    pub invalidation_failures: AtomicU64,
    pub unknown_profiles: AtomicU64,
    pub stale_served: AtomicU64,
    pub stale_if_error: AtomicU64,
    pub early_refreshes: AtomicU64,
    pub coalesced: AtomicU64,
    pub lock_waits: AtomicU64,
    pub lock_timeouts: AtomicU64,
    pub log_backend: LogLimiter,
    pub log_decode: LogLimiter,
    pub log_oversize: LogLimiter,
    pub log_profile: LogLimiter,
}

impl Stats {
    pub fn snapshot(&self, round_trips: u64) -> StatsSnapshot {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            hits: g(&self.hits),
            misses: g(&self.misses),
            stores: g(&self.stores),
            decode_failures: g(&self.decode_failures),
            oversize: g(&self.oversize),
            backend_errors: g(&self.backend_errors),
            invalidations: g(&self.invalidations),
            invalidation_failures: g(&self.invalidation_failures),
            unknown_profiles: g(&self.unknown_profiles),
            stale_served: g(&self.stale_served),
            stale_if_error: g(&self.stale_if_error),
            early_refreshes: g(&self.early_refreshes),
            coalesced: g(&self.coalesced),
            lock_waits: g(&self.lock_waits),
            lock_timeouts: g(&self.lock_timeouts),
            round_trips,
        }
    }
}

/// Increments a local counter and the matching `metrics` counter labelled with the call name.
pub(crate) fn bump(counter: &AtomicU64, metric: &'static str, name: &Cow<'static, str>) {
    counter.fetch_add(1, Ordering::Relaxed);
    metrics::counter!(metric, "cache" => label(name)).increment(1);
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
    pub fn allow(&self) -> Option<u64> {
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
