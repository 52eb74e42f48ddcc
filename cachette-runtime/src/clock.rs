//! Time and randomness, behind traits so that tests can drive early refresh, stale windows
//! and TTL jitter deterministically, without sleeping.
//!
//! ```
//! use cachette_runtime::clock::{Clock, ManualClock};
//! use std::time::Duration;
//!
//! let clock = ManualClock::new(1_000);
//! clock.advance(Duration::from_secs(2));
//! assert_eq!(clock.now_ms(), 3_000);
//! ```

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The longest duration cachette keeps an entry, a tag version, a fence or a lock, or waits
/// for anything: 100 years, which stands for "forever".
///
/// [`CacheBuilder::build`](crate::CacheBuilder::build) refuses a longer setting on every backend, so that a configuration
/// that passes on the memory store does not fail on Redis (which takes a TTL only while
/// `now + TTL` fits in 63 bits of milliseconds, and otherwise refuses every store and
/// invalidation). A longer duration given per call
/// ([`Options::ttl`](crate::Options::ttl), [`Options::stale`](crate::Options::stale),
/// [`Options::stale_if_error`](crate::Options::stale_if_error),
/// [`LockOptions`](crate::LockOptions),
/// [`Cache::lock`](crate::Cache::lock), [`Cache::try_lock`](crate::Cache::try_lock),
/// [`Lock::extend`](crate::Lock::extend)) is taken as this one, as is a TTL plus its windows.
///
/// ```
/// use cachette_runtime::{Cache, MAX_DURATION};
/// use std::time::Duration;
///
/// let cache = Cache::memory(1 << 20);
/// assert_eq!(cache.resolve_ttl(&Duration::MAX.into()), MAX_DURATION);
/// assert!(Cache::builder().default_ttl(Duration::MAX).build().is_err());
/// assert!(Cache::builder().default_ttl(MAX_DURATION).build().is_ok());
/// ```
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Wall-clock milliseconds since the Unix epoch, as cachette sees them.
pub trait Clock: Send + Sync + 'static {
    /// Now, in milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;

    /// The time at `at`, a monotonic instant read a moment ago (the embedded store reads one
    /// on every lookup): lets a clock answer without reading the time again. By default,
    /// [`now_ms`](Self::now_ms).
    fn now_ms_at(&self, at: Instant) -> u64 {
        let _ = at;
        self.now_ms()
    }

    /// Whether this clock moves with the monotonic clock, as the system clock does: the
    /// engine may then turn the time an entry stays fresh into a monotonic deadline once, and
    /// judge later hits of that entry against it without converting instants. By default,
    /// `false` (a test clock set by hand).
    fn steady(&self) -> bool {
        false
    }
}

/// Uniform random numbers in `[0, 1)`.
pub trait RandomSource: Send + Sync + 'static {
    /// The next number.
    fn next_f64(&self) -> f64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(millis)
            .unwrap_or(0)
    }

    /// The wall clock at `at`: the monotonic instant plus the offset between the two clocks,
    /// read again once `at` is more than a second past the last reading (so a step of
    /// the wall clock shows within that long). Reading the wall clock costs tens of
    /// nanoseconds on some machines, a good part of a memory hit.
    fn now_ms_at(&self, at: Instant) -> u64 {
        wall_anchor().wall_ms(at)
    }

    fn steady(&self) -> bool {
        true
    }
}

/// Milliseconds of a duration, in 64 bits (`Duration::as_millis` works in 128), saturating:
/// the one conversion of the runtime (the Redis backend bounds it further for `PX`).
pub(crate) fn millis(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(d.subsec_millis()))
}

/// Pauses between attempts that double from a first one up to a largest one: the retry
/// worker of kept invalidations, `Cache::lock`, and a process waiting for another's fill lock.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// Pauses from `first`, doubling, at most `max`.
    pub(crate) const fn new(first: Duration, max: Duration) -> Backoff {
        Backoff { next: first, max }
    }

    /// Sleeps the next pause, cut short at `deadline` if one is given, then doubles it.
    pub(crate) async fn sleep(&mut self, deadline: Option<Instant>) {
        let pause = match deadline {
            Some(d) => self.next.min(d.saturating_duration_since(Instant::now())),
            None => self.next,
        };
        tokio::time::sleep(pause).await;
        self.next = self.next.saturating_mul(2).min(self.max);
    }
}

/// The instant `d` after `now`, `d` taken as at most [`MAX_DURATION`]; where the platform's
/// clock cannot represent that, the latest instant it can on the way (a deadline too far to
/// name is one that never comes).
pub(crate) fn instant_after(now: Instant, d: Duration) -> Instant {
    let mut d = d.min(MAX_DURATION);
    loop {
        if let Some(t) = now.checked_add(d) {
            return t;
        }
        // Terminates: `now + 0` is `now`.
        d = d.checked_div(2).unwrap_or_default();
    }
}

/// How long an offset between the monotonic and the wall clock is used before it is read
/// again.
const WALL_RESYNC: Duration = Duration::from_secs(1);

/// The offset between the wall clock and a monotonic origin, re-read every [`WALL_RESYNC`].
struct WallAnchor {
    origin: Instant,
    /// Wall-clock ms minus monotonic ms since `origin`.
    offset_ms: AtomicI64,
    /// Monotonic ms since `origin` when `offset_ms` was read.
    read_at_ms: AtomicI64,
}

fn wall_anchor() -> &'static WallAnchor {
    static ANCHOR: OnceLock<WallAnchor> = OnceLock::new();
    ANCHOR.get_or_init(|| {
        let origin = Instant::now();
        WallAnchor {
            origin,
            offset_ms: AtomicI64::new(SystemClock.now_ms().try_into().unwrap_or(i64::MAX)),
            read_at_ms: AtomicI64::new(0),
        }
    })
}

impl WallAnchor {
    /// Monotonic milliseconds since `origin` (negative before it).
    fn mono_ms(&self, at: Instant) -> i64 {
        match at.checked_duration_since(self.origin) {
            Some(d) => i64::try_from(millis(d)).unwrap_or(i64::MAX),
            None => i64::try_from(millis(self.origin.duration_since(at)))
                .map_or(i64::MIN, i64::wrapping_neg),
        }
    }

    fn wall_ms(&self, at: Instant) -> u64 {
        let mono = self.mono_ms(at);
        let read_at = self.read_at_ms.load(Ordering::Acquire);
        let offset = if mono.saturating_sub(read_at).unsigned_abs() > millis(WALL_RESYNC) {
            let mono_now = self.mono_ms(Instant::now());
            let wall_now = i64::try_from(SystemClock.now_ms()).unwrap_or(i64::MAX);
            let offset = wall_now.saturating_sub(mono_now);
            self.offset_ms.store(offset, Ordering::Release);
            self.read_at_ms.store(mono_now, Ordering::Release);
            offset
        } else {
            self.offset_ms.load(Ordering::Acquire)
        };
        u64::try_from(mono.saturating_add(offset)).unwrap_or(0)
    }
}

/// The thread-local generator of `rand`.
#[derive(Debug, Default, Clone, Copy)]
pub struct ThreadRandom;

impl RandomSource for ThreadRandom {
    fn next_f64(&self) -> f64 {
        rand::random::<f64>()
    }
}

/// A clock that moves only when told to.
#[derive(Debug, Default)]
pub struct ManualClock {
    ms: AtomicU64,
}

impl ManualClock {
    /// A clock showing `start_ms`.
    pub fn new(start_ms: u64) -> Self {
        ManualClock {
            ms: AtomicU64::new(start_ms),
        }
    }

    /// Moves the clock forward (to the end of time at most, never round to its start).
    pub fn advance(&self, by: Duration) {
        let by = millis(by);
        let _ = self
            .ms
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |ms| {
                Some(ms.saturating_add(by))
            });
    }

    /// Sets the clock.
    pub fn set_ms(&self, ms: u64) {
        self.ms.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.ms.load(Ordering::SeqCst)
    }
}

/// Random numbers that tests choose: the queued values in order, then `fallback` forever.
#[derive(Debug)]
pub struct ScriptedRandom {
    queue: Mutex<std::collections::VecDeque<f64>>,
    fallback: AtomicU64,
}

impl ScriptedRandom {
    /// Always returns `value`.
    pub fn constant(value: f64) -> Self {
        ScriptedRandom {
            queue: Mutex::new(Default::default()),
            fallback: AtomicU64::new(value.to_bits()),
        }
    }

    /// Returns the `values` in order, then `fallback`.
    pub fn sequence(values: impl IntoIterator<Item = f64>, fallback: f64) -> Self {
        ScriptedRandom {
            queue: Mutex::new(values.into_iter().collect()),
            fallback: AtomicU64::new(fallback.to_bits()),
        }
    }

    /// Changes the value returned once the queue is empty.
    pub fn set(&self, value: f64) {
        self.fallback.store(value.to_bits(), Ordering::SeqCst);
    }
}

impl RandomSource for ScriptedRandom {
    fn next_f64(&self) -> f64 {
        let queued = self.queue.lock().ok().and_then(|mut q| q.pop_front());
        queued.unwrap_or_else(|| f64::from_bits(self.fallback.load(Ordering::SeqCst)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wall_clock_at_an_instant_is_the_wall_clock_then() {
        let before = SystemClock.now_ms();
        let at = SystemClock.now_ms_at(Instant::now());
        let after = SystemClock.now_ms();
        assert!(
            at + 2 >= before && at <= after + 2,
            "{before} <= {at} <= {after}, give or take rounding"
        );
        if let Some(earlier) = Instant::now().checked_sub(Duration::from_secs(3)) {
            let then = SystemClock.now_ms_at(earlier);
            let now = SystemClock.now_ms();
            assert!(
                now.abs_diff(then + 3_000) <= 5,
                "3 s ago: {then}, now: {now}"
            );
        }
        // Other clocks ignore the instant.
        assert_eq!(ManualClock::new(5).now_ms_at(Instant::now()), 5);
    }

    #[test]
    fn a_deadline_too_far_for_the_clock_is_the_bound() {
        let now = Instant::now();
        assert_eq!(
            instant_after(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        let far = instant_after(now, Duration::MAX);
        assert!(far > now + Duration::from_secs(10 * 365 * 24 * 3600));
        assert!(far <= now + MAX_DURATION);
    }

    #[test]
    fn a_manual_clock_advanced_past_the_end_of_time_stays_there() {
        let clock = ManualClock::new(5);
        clock.advance(Duration::MAX);
        assert_eq!(clock.now_ms(), u64::MAX);
        clock.advance(Duration::from_secs(1));
        assert_eq!(clock.now_ms(), u64::MAX);
    }
}
