//! Storage backends. Each operation here is one round trip for Redis (lookups of concurrent
//! callers may share theirs: `batch.rs`).
//!
//! The [`Cache`](crate::Cache) holds the logic (envelopes, tag checks, degradation); a backend
//! only moves bytes and tag versions, so that both backends behave alike by construction.

mod batch;
pub(crate) mod memory;
pub(crate) mod redis;

use crate::error::Result;
use std::sync::Arc;
use std::time::Duration;

/// What one lookup brings back: the entry's bytes and the current version of each tag asked
/// for (`None`: the tag key is missing, which makes entries carrying it invalid).
#[derive(Debug, Default)]
pub(crate) struct Fetched {
    /// Shared, not copied: a memory hit hands out the stored bytes themselves.
    pub entry: Option<bytes::Bytes>,
    pub versions: Vec<Option<String>>,
    /// The namespace's pattern-invalidation count, read with an entry (0 otherwise).
    pub patterns: u64,
}

/// What a lookup of the cached-call path brings back: the entry, in the form its backend
/// keeps it, and the current version of each tag asked for.
pub(crate) struct Found {
    pub entry: Option<Stored>,
    pub versions: Versions,
    /// Pattern invalidations of the namespace so far (what an absent key's fill is fenced
    /// with; see [`Seen::Absent`]).
    pub patterns: u64,
}

/// A stored entry as a backend hands it out.
pub(crate) enum Stored {
    /// Envelope bytes (Redis), parsed by the caller.
    Bytes(bytes::Bytes),
    /// A memory entry, its header parsed when it was stored.
    Memory(Arc<memory::MemEntry>),
}

/// The state of an entry's key as a lookup saw it. A fill stores its value only if the key
/// is still in that state (compare-and-set), so that a computation that began before a write,
/// a delete (which leaves a tombstone) or another fill of the key never overwrites it; and a
/// caller compares it with a flight's to know that nothing was written between two reads.
#[derive(Clone)]
pub(crate) enum Seen {
    /// Nothing was stored under the key, after this many pattern invalidations of the
    /// namespace. A pattern invalidation cannot leave a tombstone under a key that does not
    /// exist yet, so it counts itself before it scans: a fill of an absent key stores only
    /// if no pattern invalidation began since its lookup.
    Absent { patterns: u64 },
    /// These bytes were (Redis): an entry, a tombstone or anything else.
    Bytes(bytes::Bytes),
    /// This memory entry was (held, so its address cannot be reused while compared).
    Memory(Arc<memory::MemEntry>),
}

impl Seen {
    /// The state a lookup found, taking its entry (cloning `Bytes` made from a `Vec` would
    /// allocate a shared header: a hit does not pay for that).
    pub(crate) fn found(entry: Option<Stored>, patterns: u64) -> Seen {
        match entry {
            None => Seen::Absent { patterns },
            Some(Stored::Bytes(b)) => Seen::Bytes(b),
            Some(Stored::Memory(e)) => Seen::Memory(e),
        }
    }

    /// Whether two reads saw the key in the same state.
    pub(crate) fn same(&self, other: &Seen) -> bool {
        match (self, other) {
            (Seen::Absent { patterns: a }, Seen::Absent { patterns: b }) => a == b,
            (Seen::Bytes(a), Seen::Bytes(b)) => a == b,
            (Seen::Memory(a), Seen::Memory(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// Current tag versions (`None`: the tag key is missing).
pub(crate) enum Versions {
    Owned(Vec<Option<String>>),
    /// The memory store's own versions, shared rather than copied.
    Shared(Vec<Option<Arc<str>>>),
}

impl Versions {
    /// The version of the `i`-th tag asked for.
    pub(crate) fn get(&self, i: usize) -> Option<&str> {
        match self {
            Versions::Owned(v) => v.get(i).and_then(Option::as_deref),
            Versions::Shared(v) => v.get(i).and_then(Option::as_deref),
        }
    }

    /// How many versions (the call's tags, then the epoch on Redis).
    pub(crate) fn len(&self) -> usize {
        match self {
            Versions::Owned(v) => v.len(),
            Versions::Shared(v) => v.len(),
        }
    }

    pub(crate) fn into_owned(self) -> Vec<Option<String>> {
        match self {
            Versions::Owned(v) => v,
            Versions::Shared(v) => v
                .into_iter()
                .map(|v| v.map(|v| String::from(&*v)))
                .collect(),
        }
    }
}

impl From<Fetched> for Found {
    fn from(f: Fetched) -> Found {
        Found {
            entry: f.entry.map(Stored::Bytes),
            versions: Versions::Owned(f.versions),
            patterns: f.patterns,
        }
    }
}

// One per cache, behind the cache's `Arc`: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Backend {
    Redis(redis::RedisBackend),
    Memory(memory::MemoryBackend),
    /// Stores nothing; its locks still exclude, within the process (see `Cache::disabled`).
    Disabled(crate::lock::MemoryLocks),
}

impl Backend {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Backend::Redis(_) => "redis",
            Backend::Memory(_) => "memory",
            Backend::Disabled(_) => "disabled",
        }
    }

    /// The entry at `key` and the versions of `tag_keys`, in one round trip, in the form the
    /// backend keeps them (what the cached-call path reads). The stores that answer without
    /// waiting spend a unit of the task's cooperative budget (Redis waits on its socket,
    /// which does), so that a loop of lookups lets the runtime's other tasks run.
    pub(crate) async fn lookup(&self, key: &str, tag_keys: &[String]) -> Result<Found> {
        if !matches!(self, Backend::Redis(_)) {
            tokio::task::coop::consume_budget().await;
        }
        match self {
            Backend::Redis(r) => Ok(r.fetch(Some(key), tag_keys).await?.into()),
            Backend::Memory(m) => {
                let looked = m.lookup(key, tag_keys);
                Ok(Found {
                    entry: looked.entry.map(Stored::Memory),
                    versions: Versions::Shared(looked.versions),
                    patterns: looked.patterns,
                })
            }
            Backend::Disabled(_) => Ok(Found {
                entry: None,
                versions: Versions::Owned(vec![None; tag_keys.len()]),
                patterns: 0,
            }),
        }
    }

    /// The current versions of `tag_keys`.
    pub(crate) async fn versions(&self, tag_keys: &[String]) -> Result<Vec<Option<String>>> {
        Ok(match self {
            Backend::Redis(r) => r.fetch(None, tag_keys).await?.versions,
            Backend::Memory(m) => m.versions(tag_keys),
            Backend::Disabled(_) => vec![None; tag_keys.len()],
        })
    }

    /// Creates each missing tag key with a fresh version (keeping existing ones) and returns
    /// the version each key holds afterwards.
    pub(crate) async fn ensure_tags(
        &self,
        tag_keys: &[String],
        ttl: Duration,
    ) -> Result<Vec<Option<String>>> {
        match self {
            Backend::Redis(r) => r.ensure_tags(tag_keys, ttl).await,
            Backend::Memory(m) => Ok(m.ensure_tags(tag_keys)),
            Backend::Disabled(_) => Ok(vec![None; tag_keys.len()]),
        }
    }

    /// Gives every tag key a new version: every entry stored with an older one is invalid.
    pub(crate) async fn bump_tags(&self, tag_keys: &[String], ttl: Duration) -> Result<()> {
        match self {
            Backend::Redis(r) => r.bump_tags(tag_keys, ttl).await,
            Backend::Memory(m) => {
                m.bump_tags(tag_keys);
                Ok(())
            }
            Backend::Disabled(_) => Ok(()),
        }
    }

    /// Stores an entry: unconditionally (`expect` is `None`), or only if the key is still in
    /// the state `expect` (compare-and-set); whether it was stored. `keep_decoded`: the memory
    /// store gives it room for a decoded copy of its value (the caller can use one).
    pub(crate) async fn store(
        &self,
        key: &str,
        bytes: Vec<u8>,
        ttl: Duration,
        keep_decoded: bool,
        expect: Option<&Seen>,
    ) -> Result<bool> {
        match self {
            Backend::Redis(r) => r.store(key, bytes, ttl, expect).await,
            Backend::Memory(m) => Ok(m.store(key, bytes, ttl, keep_decoded, expect)),
            Backend::Disabled(_) => Ok(false),
        }
    }

    /// Replaces what is stored at `key` by a tombstone living `fence_ttl` (a fence against
    /// computations that began before); whether an entry was there.
    pub(crate) async fn delete(&self, key: &str, fence_ttl: Duration) -> Result<bool> {
        match self {
            Backend::Redis(r) => r.delete(key, fence_ttl).await,
            Backend::Memory(m) => Ok(m.delete(key, fence_ttl)),
            Backend::Disabled(_) => Ok(false),
        }
    }

    /// Removes every key matching the glob `pattern`; how many. With `fence`, first counts a
    /// pattern invalidation, so that fills of keys that were absent do not store afterwards
    /// (see [`Seen::Absent`]).
    pub(crate) async fn delete_matching(&self, pattern: &str, fence: bool) -> Result<u64> {
        match self {
            Backend::Redis(r) => r.delete_matching(pattern, fence).await,
            Backend::Memory(m) => Ok(m.delete_matching(pattern, fence)),
            Backend::Disabled(_) => Ok(0),
        }
    }

    pub(crate) async fn try_lock(
        &self,
        lock_key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<bool> {
        match self {
            Backend::Redis(r) => r.try_lock(lock_key, token, ttl).await,
            Backend::Memory(m) => Ok(m.locks.try_lock(lock_key, token, ttl)),
            Backend::Disabled(locks) => Ok(locks.try_lock(lock_key, token, ttl)),
        }
    }

    /// A lookup and a lock attempt, in one round trip.
    pub(crate) async fn lookup_and_lock(
        &self,
        key: &str,
        tag_keys: &[String],
        lock_key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<(Found, bool)> {
        match self {
            Backend::Redis(r) => {
                let (fetched, locked) = r
                    .fetch_and_lock(key, tag_keys, lock_key, token, ttl)
                    .await?;
                Ok((fetched.into(), locked))
            }
            _ => {
                let locked = self.try_lock(lock_key, token, ttl).await?;
                Ok((self.lookup(key, tag_keys).await?, locked))
            }
        }
    }

    pub(crate) async fn release_lock(&self, lock_key: &str, token: &str) -> Result<bool> {
        match self {
            Backend::Redis(r) => r.release_lock(lock_key, token).await,
            Backend::Memory(m) => Ok(m.locks.release(lock_key, token)),
            Backend::Disabled(locks) => Ok(locks.release(lock_key, token)),
        }
    }

    pub(crate) async fn extend_lock(
        &self,
        lock_key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<bool> {
        match self {
            Backend::Redis(r) => r.extend_lock(lock_key, token, ttl).await,
            Backend::Memory(m) => Ok(m.locks.extend(lock_key, token, ttl)),
            Backend::Disabled(locks) => Ok(locks.extend(lock_key, token, ttl)),
        }
    }

    /// Round trips made so far (Redis only; 0 otherwise).
    pub(crate) fn round_trips(&self) -> u64 {
        match self {
            Backend::Redis(r) => r.round_trips(),
            _ => 0,
        }
    }
}

/// A fresh, unique tag version: 128 random bits as 32 hex digits. Unique across processes
/// and restarts, so a re-created tag key can never revive an entry made under an old one.
pub(crate) fn new_version() -> String {
    format!("{:032x}", rand::random::<u128>())
}
