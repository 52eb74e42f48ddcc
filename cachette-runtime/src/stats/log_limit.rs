//! Keeps a failing backend from flooding the logs: one warning of a kind per interval, with
//! the count of those held back.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

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
}
