//! Administration: the backend's own statistics, keys by pattern, one entry with its TTL,
//! clearing a namespace. Everything is bounded (`SCAN`, never `KEYS`; never `FLUSHDB`).

use crate::Cache;
use crate::backend::{Backend, Versions};
use crate::call::Check;
use crate::codec;
use crate::error::Result;
use std::borrow::Cow;
use std::time::Duration;

/// The call name under which the admin operations' round trips are timed.
const ADMIN: &str = "admin";

/// The backend's view of itself. Fields a backend cannot tell are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackendStats {
    /// `"redis"`, `"memory"` or `"disabled"`.
    pub backend: &'static str,
    /// Redis `used_memory`, or the memory store's weighted size: its entries and its tag
    /// versions, what its byte budget bounds (see
    /// [`CacheBuilder::memory`](crate::CacheBuilder::memory)).
    pub used_memory_bytes: Option<u64>,
    /// Redis `evicted_keys`, or entries the memory store evicted for room.
    pub evicted_keys: Option<u64>,
    /// Redis `keyspace_hits` (all clients).
    pub keyspace_hits: Option<u64>,
    /// Redis `keyspace_misses` (all clients).
    pub keyspace_misses: Option<u64>,
    /// Redis `connected_clients`.
    pub connected_clients: Option<u64>,
    /// Keys in the Redis database (all namespaces, `DBSIZE`: tag keys, tombstones and locks
    /// included), or the memory store's live entries: those a lookup could still find (within
    /// their TTL and stale windows), never a delete's tombstone nor an expired entry.
    pub keys: Option<u64>,
    /// Redis `maxmemory` as it reports it (`0`: no limit), or the memory store's byte budget
    /// (entries and tag versions: see [`CacheBuilder::memory`](crate::CacheBuilder::memory)).
    pub maxmemory_bytes: Option<u64>,
    /// Redis `maxmemory_policy` (`noeviction`, `allkeys-lru`, ...): what Redis does when
    /// full, which decides whether entries, tag keys and fences may be evicted (see
    /// ARCHITECTURE.md, *Not guaranteed*). `None` on the memory store (moka evicts entries by
    /// TinyLFU and tag versions by LRU, within its budget).
    pub eviction_policy: Option<String>,
}

/// One stored entry, for inspection.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EntryInfo {
    /// The key body (without the namespace prefix).
    pub key: String,
    /// The value as JSON, or `None` when the stored bytes are not a readable envelope.
    pub value: Option<serde_json::Value>,
    /// The tags and the versions the entry was stored with (on Redis, the epoch too, as the
    /// tag `#epoch`: see ARCHITECTURE.md).
    pub tags: Vec<(String, String)>,
    /// Whether the tags are still current (the entry is not invalidated).
    pub valid: bool,
    /// Time left before the backend drops it (stale windows included; an entry written
    /// through [`Cache::set`] stays at least the fence TTL, as a miss once past its
    /// windows: see [`CacheBuilder::fence_ttl`](crate::CacheBuilder::fence_ttl)).
    pub ttl: Duration,
    /// `fresh_until_ms` of the envelope (0: none recorded).
    pub fresh_until_ms: u64,
}

impl Cache {
    /// The backend's statistics: for Redis from `INFO` and `DBSIZE` (one round trip: memory,
    /// `maxmemory` and its eviction policy, evictions, keyspace hits and misses, clients,
    /// keys), for the memory store its size, budget and evictions.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), cachette_runtime::Error> {
    /// let cache = cachette_runtime::Cache::memory(1 << 20);
    /// let stats = cache.backend_stats().await?;
    /// assert_eq!(stats.maxmemory_bytes, Some(1 << 20));
    /// assert_eq!(stats.eviction_policy, None);
    /// # Ok(()) }
    /// ```
    pub async fn backend_stats(&self) -> Result<BackendStats> {
        self.attributed(&Cow::Borrowed(ADMIN), self.backend_stats_raw())
            .await
    }

    async fn backend_stats_raw(&self) -> Result<BackendStats> {
        Ok(match &self.inner.backend {
            Backend::Redis(r) => {
                let (info, dbsize) = r.info().await?;
                let text = |name: &str| {
                    info.lines().find_map(|l| {
                        l.strip_prefix(name)
                            .and_then(|rest| rest.strip_prefix(':'))
                            .map(str::trim)
                    })
                };
                let field = |name: &str| text(name).and_then(|v| v.parse::<u64>().ok());
                BackendStats {
                    backend: "redis",
                    used_memory_bytes: field("used_memory"),
                    evicted_keys: field("evicted_keys"),
                    keyspace_hits: field("keyspace_hits"),
                    keyspace_misses: field("keyspace_misses"),
                    connected_clients: field("connected_clients"),
                    keys: Some(dbsize),
                    maxmemory_bytes: field("maxmemory"),
                    eviction_policy: text("maxmemory_policy")
                        .filter(|p| !p.is_empty())
                        .map(str::to_owned),
                }
            }
            Backend::Memory(m) => {
                let (entries, bytes) = m.usage();
                let (_, tag_bytes) = m.tag_usage();
                BackendStats {
                    backend: "memory",
                    used_memory_bytes: Some(bytes.saturating_add(tag_bytes)),
                    evicted_keys: Some(m.evictions()),
                    keys: Some(entries),
                    maxmemory_bytes: Some(m.max_bytes()),
                    ..Default::default()
                }
            }
            Backend::Disabled(_) => BackendStats {
                backend: "disabled",
                ..Default::default()
            },
        })
    }

    /// Key bodies of this cache's namespace (and version) matching the glob `pattern`, at most
    /// `limit` (`SCAN`, so the keyspace is walked in steps and never blocks Redis). `pattern`
    /// as for [`invalidate_pattern`](Self::invalidate_pattern).
    pub async fn keys(&self, pattern: impl AsRef<str>, limit: usize) -> Result<Vec<String>> {
        self.attributed(
            &Cow::Borrowed(ADMIN),
            self.keys_raw(pattern.as_ref(), limit),
        )
        .await
    }

    async fn keys_raw(&self, pattern: &str, limit: usize) -> Result<Vec<String>> {
        let full = self.full_key(pattern);
        let prefix_len = self.full_key("").len();
        let keys = match &self.inner.backend {
            Backend::Redis(r) => r.keys(&full, limit).await?,
            Backend::Memory(m) => m.keys(&full, limit),
            Backend::Disabled(_) => Vec::new(),
        };
        Ok(keys
            .into_iter()
            .map(|k| k.get(prefix_len..).unwrap_or_default().to_owned())
            .collect())
    }

    /// The entry at `key` with its tags, validity and remaining TTL (no value decoding into a
    /// Rust type; never counted as a hit or miss).
    pub async fn inspect(&self, key: impl AsRef<str>) -> Result<Option<EntryInfo>> {
        self.attributed(&Cow::Borrowed(ADMIN), self.inspect_raw(key.as_ref()))
            .await
    }

    async fn inspect_raw(&self, key: &str) -> Result<Option<EntryInfo>> {
        let full = self.full_key(key);
        let found = match &self.inner.backend {
            Backend::Redis(r) => r.inspect(&full).await?,
            Backend::Memory(m) => m.inspect(&full),
            Backend::Disabled(_) => None,
        };
        let Some((bytes, ttl)) = found else {
            return Ok(None);
        };
        let (value, tags, fresh_until_ms) = match codec::decode_header(&bytes) {
            Ok(env) => (
                serde_json::from_str(env.value.get()).ok(),
                env.tags
                    .iter()
                    .map(|(t, v)| (t.to_string(), v.to_string()))
                    .collect(),
                env.fresh_until_ms,
            ),
            Err(_) => (None, Vec::new(), 0),
        };
        // The epoch too, on Redis (an entry of an older server life is not valid).
        let base = Versions::Owned(
            self.inner
                .backend
                .versions(&self.inner.base_tag_keys)
                .await?,
        );
        let valid = value.is_some()
            && matches!(
                self.check::<serde::de::IgnoredAny>(&bytes, &[], &base)
                    .await?,
                Check::Valid(..)
            );
        Ok(Some(EntryInfo {
            key: key.to_owned(),
            value,
            tags,
            valid,
            ttl,
            fresh_until_ms,
        }))
    }

    /// Removes every entry of this cache's namespace (all versions), its tag versions and its
    /// locks: `SCAN` + `UNLINK` over `namespace:*` and `namespace#*`, never `FLUSHDB`; keys
    /// of other namespaces are left alone. Returns how many keys were removed.
    pub async fn clear(&self) -> Result<u64> {
        self.attributed(&Cow::Borrowed(ADMIN), self.clear_raw())
            .await
    }

    pub(crate) async fn clear_raw(&self) -> Result<u64> {
        let ns = &self.inner.config.namespace;
        match &self.inner.backend {
            Backend::Redis(r) => {
                // No pattern fence needed: the epoch goes with the internal keys, which makes
                // any entry stored under it invalid.
                let entries = r.delete_matching(&format!("{ns}:*"), false).await?;
                let internal = r.delete_matching(&format!("{ns}#*"), false).await?;
                Ok(entries.saturating_add(internal))
            }
            Backend::Memory(m) => Ok(m.clear()),
            Backend::Disabled(_) => Ok(0),
        }
    }
}
