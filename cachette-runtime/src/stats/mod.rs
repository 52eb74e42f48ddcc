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
//! | `cachette_near_pushes_total` | counter | | invalidation pushes the near cache received from Redis |
//! | `cachette_near_flushes_total` | counter | | times the near cache dropped every entry (tracking connection lost or re-made, `FLUSHALL`, a pattern invalidation or clear by this process) |
//! | `cachette_near_bytes` | gauge | | what the near cache's entries weigh (set at each fill) |
//! | `cachette_near_barrier_seconds` | histogram | | time a near lookup waited for its barrier (the `PING` on the tracking connection) |
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

// One job per file: `event.rs` what is counted, `striped.rs` counters that threads do not
// contend for, `names.rs` the counters and `metrics` handles of each call name and a cache's
// totals, `round_trips.rs` which call a Redis round trip is timed under, `log_limit.rs` the
// rate limiter of warnings.

mod event;
mod log_limit;
mod names;
mod round_trips;
mod striped;

pub(crate) use event::Event;
pub(crate) use log_limit::{LogLimiter, rate_limited};
pub(crate) use names::{Stats, label};
pub(crate) use round_trips::{attributed, record_round_trip};
pub(crate) use striped::Counts;

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

#[cfg(test)]
mod tests {
    use super::*;

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
