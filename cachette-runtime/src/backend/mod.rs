//! Storage: the contract every store implements (`contract.rs`), the stores (`redis/`,
//! `memory/`, `disabled.rs`), the parsed entry that stores keeping entries in this process
//! hand out (`parsed.rs`), and lookup batching (`batch.rs`).
//!
//! The engine holds the logic (envelopes, tag checks, degradation); a store only moves bytes
//! and tag versions, so that every store behaves alike by construction. The cache holds one
//! [`Backend`], an enum of the stores that implements [`Store`] by delegating to its variant
//! (static dispatch: nothing boxed on the hit path); nothing outside this module names a
//! variant except the constructors and the test hooks.

mod batch;
mod contract;
pub(crate) mod disabled;
pub(crate) mod memory;
pub(crate) mod near;
pub(crate) mod parsed;
pub(crate) mod redis;

pub use contract::{BackendStats, NearStats};
pub(crate) use contract::{EPOCH_TAG, Found, Patterns, Seen, Store, Stored, Versions, new_version};

use crate::error::Result;
use std::time::{Duration, Instant};

/// What one Redis lookup brings back: the entry's bytes and the current version of each tag
/// asked for (`None`: the tag key is missing, which makes entries carrying it invalid).
#[derive(Debug, Default)]
pub(crate) struct Fetched {
    /// Shared, not copied.
    pub entry: Option<bytes::Bytes>,
    pub versions: Vec<Option<String>>,
    /// The namespace's pattern-invalidation count, read with an entry (0 otherwise).
    pub patterns: Patterns,
}

impl From<Fetched> for Found {
    fn from(f: Fetched) -> Found {
        Found {
            entry: f.entry.map(Stored::Bytes),
            versions: Versions::Owned(f.versions),
            patterns: f.patterns,
            read_at: None,
            verified: false,
        }
    }
}

// One per cache, behind the cache's `Arc`: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Backend {
    Redis(redis::RedisBackend),
    /// A Redis Cluster.
    Cluster(redis::ClusterStore),
    Memory(memory::MemoryBackend),
    /// Redis with a near cache in front.
    Near(near::NearStore),
    /// Stores nothing; its locks still exclude, within the process (see `Cache::disabled`).
    Disabled(disabled::DisabledStore),
}

impl Backend {
    /// The memory store, for the test hooks of `__private::testing`.
    pub(crate) fn memory(&self) -> Option<&memory::MemoryBackend> {
        match self {
            Backend::Memory(m) => Some(m),
            _ => None,
        }
    }

    /// The near cache, if the cache has one.
    pub(crate) fn cluster(&self) -> Option<&redis::ClusterStore> {
        match self {
            Backend::Cluster(c) => Some(c),
            _ => None,
        }
    }

    pub(crate) fn near(&self) -> Option<&near::NearStore> {
        match self {
            Backend::Near(n) => Some(n),
            _ => None,
        }
    }
}

/// `$body` with `$s` bound to the variant's store.
macro_rules! each {
    ($self:expr, $s:ident => $body:expr) => {
        match $self {
            Backend::Redis($s) => $body,
            Backend::Cluster($s) => $body,
            Backend::Memory($s) => $body,
            Backend::Near($s) => $body,
            Backend::Disabled($s) => $body,
        }
    };
}

impl Store for Backend {
    fn kind(&self) -> &'static str {
        each!(self, s => s.kind())
    }

    fn stores(&self) -> bool {
        each!(self, s => s.stores())
    }

    fn base_keys(&self) -> &[String] {
        each!(self, s => s.base_keys())
    }

    #[inline]
    fn answers_now(&self) -> bool {
        each!(self, s => s.answers_now())
    }

    #[inline]
    fn lookup_now<K: AsRef<str>>(&self, key: &str, tag_keys: &[K], now: Instant) -> Option<Found> {
        each!(self, s => s.lookup_now(key, tag_keys, now))
    }

    #[inline]
    fn settles(&self) -> bool {
        each!(self, s => s.settles())
    }

    async fn settle(&self) -> Result<()> {
        each!(self, s => Store::settle(s).await)
    }

    #[inline]
    fn lookup_tags_now<T: AsRef<str>>(&self, key: &str, tags: &[T], now: Instant) -> Option<Found> {
        each!(self, s => s.lookup_tags_now(key, tags, now))
    }

    fn versions_now(&self, tag_keys: &[String]) -> Option<Versions> {
        each!(self, s => s.versions_now(tag_keys))
    }

    async fn lookup(&self, key: &str, tag_keys: &[String]) -> Result<Found> {
        each!(self, s => Store::lookup(s, key, tag_keys).await)
    }

    async fn versions(&self, tag_keys: &[String]) -> Result<Vec<Option<String>>> {
        each!(self, s => Store::versions(s, tag_keys).await)
    }

    async fn ensure_tags(&self, tag_keys: &[String], ttl: Duration) -> Result<Vec<Option<String>>> {
        each!(self, s => Store::ensure_tags(s, tag_keys, ttl).await)
    }

    async fn bump_tags(&self, tag_keys: &[String], ttl: Duration) -> Result<()> {
        each!(self, s => Store::bump_tags(s, tag_keys, ttl).await)
    }

    async fn store(
        &self,
        key: &str,
        bytes: Vec<u8>,
        ttl: Duration,
        keep_decoded: bool,
        expect: Option<&Seen>,
    ) -> Result<bool> {
        each!(self, s => Store::store(s, key, bytes, ttl, keep_decoded, expect).await)
    }

    async fn delete(&self, key: &str, fence_ttl: Duration) -> Result<bool> {
        each!(self, s => Store::delete(s, key, fence_ttl).await)
    }

    async fn delete_matching(&self, pattern: &str, fence: bool) -> Result<u64> {
        each!(self, s => Store::delete_matching(s, pattern, fence).await)
    }

    async fn try_lock(&self, lock_key: &str, token: &str, ttl: Duration) -> Result<bool> {
        each!(self, s => Store::try_lock(s, lock_key, token, ttl).await)
    }

    async fn lookup_and_lock(
        &self,
        key: &str,
        tag_keys: &[String],
        lock_key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<(Found, bool)> {
        each!(self, s => Store::lookup_and_lock(s, key, tag_keys, lock_key, token, ttl).await)
    }

    async fn release_lock(&self, lock_key: &str, token: &str) -> Result<bool> {
        each!(self, s => Store::release_lock(s, lock_key, token).await)
    }

    async fn extend_lock(&self, lock_key: &str, token: &str, ttl: Duration) -> Result<bool> {
        each!(self, s => Store::extend_lock(s, lock_key, token, ttl).await)
    }

    fn round_trips(&self) -> u64 {
        each!(self, s => Store::round_trips(s))
    }

    fn times_round_trips(&self) -> bool {
        each!(self, s => s.times_round_trips())
    }

    async fn ping(&self) -> Result<()> {
        each!(self, s => Store::ping(s).await)
    }

    fn breaker_open(&self) -> bool {
        each!(self, s => Store::breaker_open(s))
    }

    fn location(&self) -> Option<&str> {
        each!(self, s => s.location())
    }

    async fn backend_stats(&self) -> Result<BackendStats> {
        each!(self, s => Store::backend_stats(s).await)
    }

    async fn keys(&self, pattern: &str, limit: usize) -> Result<Vec<String>> {
        each!(self, s => Store::keys(s, pattern, limit).await)
    }

    async fn inspect(&self, key: &str) -> Result<Option<(Vec<u8>, Duration)>> {
        each!(self, s => Store::inspect(s, key).await)
    }

    async fn clear(&self, namespace: &str) -> Result<u64> {
        each!(self, s => Store::clear(s, namespace).await)
    }
}
