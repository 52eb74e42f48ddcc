//! Configuration: the defaults and bounds (here), per-call [`Options`] (`options.rs`, a leaf
//! for callers), and the [`CacheBuilder`] with the environment (`builder.rs`).

use crate::clock::{Clock, RandomSource, SystemClock, ThreadRandom};
use crate::error::{Error, Result, redact_url};
use crate::keys::valid_segment;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

mod builder;
mod env;
mod options;

pub(crate) use builder::{BackendChoice, Config, Undefined};
pub use builder::{CacheBuilder, parse_duration};
pub use options::{EarlyRefresh, LockOptions, Options, Ttl};

/// Default namespace prefix of every key.
pub const DEFAULT_NAMESPACE: &str = "cachette";
/// Default time-to-live of an entry when the call names none.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// Default budget for one backend operation (one round trip) before the call gives up on the
/// cache and goes on without it.
pub const DEFAULT_OP_TIMEOUT: Duration = Duration::from_millis(200);
/// Default largest serialized entry that is stored (larger values are computed, returned and
/// not stored).
pub const DEFAULT_MAX_VALUE_BYTES: usize = 4 * 1024 * 1024;
/// Default byte budget of the embedded memory store.
pub const DEFAULT_MEMORY_BYTES: u64 = 256 * 1024 * 1024;
/// Default lifetime of a tag version key (see [`CacheBuilder::tag_ttl`]).
pub const DEFAULT_TAG_TTL: Duration = Duration::from_secs(24 * 3600);
/// Default TTL jitter: each stored TTL is shortened by a random fraction of up to 10%, so
/// that entries filled together do not expire together. A TTL is never lengthened.
pub const DEFAULT_JITTER: f64 = 0.1;
/// Default β of probabilistic early refresh (XFetch).
pub const DEFAULT_EARLY_REFRESH_BETA: f64 = 1.0;
/// Default number of multiplexed Redis connections a cache uses, round-robin. One: on the
/// 2-core machines measured (BENCHMARKS.md), more connections meant less pipelining per
/// socket write and 38% less throughput at 64 tasks; raise it where cores are plentiful.
pub const DEFAULT_REDIS_CONNECTIONS: usize = 1;
/// Default lifetime of a distributed fill lock (see [`LockOptions`]).
pub const DEFAULT_LOCK_TTL: Duration = Duration::from_secs(10);
/// Default lifetime of a key fence, the tombstone a delete leaves (see
/// [`CacheBuilder::fence_ttl`]).
pub const DEFAULT_FENCE_TTL: Duration = Duration::from_secs(600);

/// The longest duration cachette keeps an entry, a tag version, a fence or a lock, or waits
/// for anything: 100 years, which stands for "forever".
///
/// [`CacheBuilder::build`] refuses a longer setting on every backend, so that a configuration
/// that passes on the memory store does not fail on Redis (which takes a TTL only while
/// `now + TTL` fits in 63 bits of milliseconds, and otherwise refuses every store and
/// invalidation). A longer duration given per call
/// ([`Options::ttl`], [`Options::stale`], [`Options::stale_if_error`], [`LockOptions`],
/// [`Cache::lock`](crate::Cache::lock), [`Cache::try_lock`](crate::Cache::try_lock),
/// [`Lock::extend`](crate::Lock::extend)) is taken as this one, as is a TTL plus its windows.
///
/// ```
/// use cachette_runtime::{Cache, MAX_DURATION, Options};
/// use std::time::Duration;
///
/// let cache = Cache::memory(1 << 20);
/// assert_eq!(cache.resolve_ttl(&Duration::MAX.into()), MAX_DURATION);
/// assert!(Cache::builder().default_ttl(Duration::MAX).build().is_err());
/// assert!(Cache::builder().default_ttl(MAX_DURATION).build().is_ok());
/// ```
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
