//! What the counters count: one event per counter of [`StatsSnapshot`](super::StatsSnapshot)
//! and per `metrics` counter.

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

/// How many kinds of event there are.
pub(crate) const EVENTS: usize = 18;

impl Event {
    pub(crate) const ALL: [Event; EVENTS] = [
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
