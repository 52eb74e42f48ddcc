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

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Wall-clock milliseconds since the Unix epoch, as cachette sees them.
pub trait Clock: Send + Sync + 'static {
    /// Now, in milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
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
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
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

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.ms.fetch_add(by, Ordering::SeqCst);
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
