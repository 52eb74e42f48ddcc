//! A circuit breaker for the Redis backend. After `failures` consecutive failed round trips
//! (timeouts, connection errors) it opens: calls skip Redis at once, so a cached function
//! costs its computation, not computation plus timeout. After `cool_down` one round trip is
//! let through as a probe; its success closes the breaker, its failure opens it again.
//!
//! An error reply (`NOPERM`, `OOM`, `WRONGTYPE`, `READONLY`...) is an answer, not a failure
//! here: the server is up, and skipping it would cost every healthy key its cache
//! (`Error::is_outage` decides).

use crate::clock::Clock;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// Settings of the breaker ([`CacheBuilder::breaker`](crate::CacheBuilder::breaker)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerOptions {
    /// Consecutive failed round trips (timeouts, connection errors; error replies do not
    /// count) that open it (default 5).
    pub failures: u32,
    /// How long it stays open before a probe (default 1 s).
    pub cool_down: Duration,
}

impl Default for BreakerOptions {
    fn default() -> Self {
        BreakerOptions {
            failures: 5,
            cool_down: Duration::from_secs(1),
        }
    }
}

/// What the breaker says about a round trip about to start.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admit {
    Yes,
    /// The probe after a cool-down: its result decides.
    Probe,
    /// Open: do not touch Redis.
    No,
}

pub(crate) struct Breaker {
    options: Option<BreakerOptions>,
    clock: Arc<dyn Clock>,
    consecutive: AtomicU32,
    /// 0 when closed; else the time (ms, monotonic) it opened or last failed a probe.
    opened_at: AtomicU64,
    probing: AtomicBool,
    opened_total: metrics::Counter,
    rejected_total: metrics::Counter,
    state: metrics::Gauge,
}

impl Breaker {
    pub(crate) fn new(options: Option<BreakerOptions>, clock: Arc<dyn Clock>) -> Breaker {
        Breaker {
            options,
            clock,
            consecutive: AtomicU32::new(0),
            opened_at: AtomicU64::new(0),
            probing: AtomicBool::new(false),
            opened_total: metrics::counter!("cachette_breaker_opened_total"),
            rejected_total: metrics::counter!("cachette_breaker_rejected_total"),
            state: metrics::gauge!("cachette_breaker_open"),
        }
    }

    pub(crate) fn admit(&self) -> Admit {
        let Some(opts) = self.options else {
            return Admit::Yes;
        };
        let opened = self.opened_at.load(Ordering::Acquire);
        if opened == 0 {
            return Admit::Yes;
        }
        let cool = u64::try_from(opts.cool_down.as_millis()).unwrap_or(u64::MAX);
        if self.clock.now_ms().saturating_sub(opened) >= cool
            && self
                .probing
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            return Admit::Probe;
        }
        self.rejected_total.increment(1);
        Admit::No
    }

    pub(crate) fn success(&self, admit: &Admit) {
        self.consecutive.store(0, Ordering::Relaxed);
        if *admit == Admit::Probe || self.opened_at.load(Ordering::Relaxed) != 0 {
            self.opened_at.store(0, Ordering::Release);
            self.probing.store(false, Ordering::Release);
            self.state.set(0.0);
            tracing::info!("cache backend answers again; circuit breaker closed");
        }
    }

    pub(crate) fn failure(&self, admit: &Admit) {
        let Some(opts) = self.options else { return };
        if *admit == Admit::Probe {
            self.opened_at
                .store(self.clock.now_ms().max(1), Ordering::Release);
            self.probing.store(false, Ordering::Release);
            return;
        }
        let n = self
            .consecutive
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        if n >= opts.failures
            && self
                .opened_at
                .compare_exchange(
                    0,
                    self.clock.now_ms().max(1),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
        {
            self.opened_total.increment(1);
            self.state.set(1.0);
            tracing::warn!(
                failures = n,
                cool_down = ?opts.cool_down,
                "cache backend keeps failing; circuit breaker open, calls skip the cache"
            );
        }
    }

    /// Records a round trip's result: only an outage ([`Error::is_outage`]: a timeout, a
    /// connection that fails) is a failure; an error reply is an answer, which tells the
    /// breaker Redis is there.
    ///
    /// [`Error::is_outage`]: crate::Error
    pub(crate) fn record<T>(&self, admit: &Admit, result: &crate::error::Result<T>) {
        match result {
            Err(e) if e.is_outage() => self.failure(admit),
            _ => self.success(admit),
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        self.opened_at.load(Ordering::Acquire) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn opens_after_consecutive_failures_and_probes_after_cool_down() {
        let clock = Arc::new(ManualClock::new(1_000));
        let b = Breaker::new(
            Some(BreakerOptions {
                failures: 3,
                cool_down: Duration::from_millis(30),
            }),
            clock.clone(),
        );
        for _ in 0..2 {
            let a = b.admit();
            assert_eq!(a, Admit::Yes);
            b.failure(&a);
        }
        b.success(&Admit::Yes); // a success resets the count
        for _ in 0..3 {
            let a = b.admit();
            b.failure(&a);
        }
        assert!(b.is_open());
        assert_eq!(b.admit(), Admit::No);
        clock.advance(Duration::from_millis(40));
        let probe = b.admit();
        assert_eq!(probe, Admit::Probe);
        assert_eq!(b.admit(), Admit::No, "one probe at a time");
        b.failure(&probe);
        assert_eq!(b.admit(), Admit::No, "a failed probe reopens it");
        clock.advance(Duration::from_millis(40));
        let probe = b.admit();
        assert_eq!(probe, Admit::Probe);
        b.success(&probe);
        assert!(!b.is_open());
        assert_eq!(b.admit(), Admit::Yes);
    }

    #[test]
    fn disabled_breaker_always_admits() {
        let b = Breaker::new(None, Arc::new(ManualClock::new(1)));
        for _ in 0..100 {
            let a = b.admit();
            b.failure(&a);
        }
        assert_eq!(b.admit(), Admit::Yes);
    }
}
