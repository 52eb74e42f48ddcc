//! Administration: the backend's own statistics, keys by pattern, one entry with its TTL,
//! clearing a namespace. Everything is bounded (`SCAN`, never `KEYS`; never `FLUSHDB`).

use crate::Cache;
use crate::backend::{Store, Stored, Versions};
use crate::codec;
use crate::error::Result;
use crate::read_through::Check;
use std::borrow::Cow;
use std::time::Duration;

/// The call name under which the admin operations' round trips are timed.
const ADMIN: &str = "admin";

pub use crate::backend::BackendStats;

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
        self.store().backend_stats().await
    }

    /// Key bodies of this cache's namespace (and version) matching the glob `pattern`, at most
    /// `limit` (`SCAN`, so the keyspace is walked in steps and never blocks Redis). `pattern`
    /// as for [`invalidate_pattern`](Self::invalidate_pattern).
    ///
    /// ```
    /// # use cachette_runtime::{Cache, Options};
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), cachette_runtime::Error> {
    /// let cache = Cache::memory(1 << 20);
    /// cache.set("user:1", &1u32, &Options::new()).await?;
    /// cache.set("order:1", &1u32, &Options::new()).await?;
    /// assert_eq!(cache.keys("user:*", 100).await?, ["user:1"]);
    /// # Ok(()) }
    /// ```
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
        let keys = self.store().keys(&full, limit).await?;
        Ok(keys
            .into_iter()
            .map(|k| k.get(prefix_len..).unwrap_or_default().to_owned())
            .collect())
    }

    /// The entry at `key` with its tags, validity and remaining TTL (no value decoding into a
    /// Rust type; never counted as a hit or miss).
    ///
    /// ```
    /// # use cachette_runtime::{Cache, Options};
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), cachette_runtime::Error> {
    /// let cache = Cache::memory(1 << 20);
    /// cache.set("user:1", "Ada", &Options::new().tags(["users"])).await?;
    /// let info = cache.inspect("user:1").await?;
    /// assert!(info.is_some_and(|i| i.valid && i.tags.len() == 1));
    /// assert!(cache.inspect("user:2").await?.is_none());
    /// # Ok(()) }
    /// ```
    pub async fn inspect(&self, key: impl AsRef<str>) -> Result<Option<EntryInfo>> {
        self.attributed(&Cow::Borrowed(ADMIN), self.inspect_raw(key.as_ref()))
            .await
    }

    async fn inspect_raw(&self, key: &str) -> Result<Option<EntryInfo>> {
        let full = self.full_key(key);
        let found = self.store().inspect(&full).await?;
        let Some((bytes, ttl)) = found else {
            return Ok(None);
        };
        let bytes = bytes::Bytes::from(bytes);
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
        let base = Versions::Owned(self.store().versions(self.base_keys()).await?);
        let valid = value.is_some()
            && matches!(
                self.check_stored::<serde::de::IgnoredAny>(
                    &Stored::Bytes(bytes.clone()),
                    &[],
                    &base,
                    None
                )
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
    ///
    /// ```
    /// # use cachette_runtime::{Cache, Options};
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), cachette_runtime::Error> {
    /// let cache = Cache::memory(1 << 20);
    /// cache.set("a", &1u32, &Options::new()).await?;
    /// cache.set("b", &2u32, &Options::new()).await?;
    /// cache.clear().await?;
    /// assert!(!cache.exists("a").await? && !cache.exists("b").await?);
    /// # Ok(()) }
    /// ```
    pub async fn clear(&self) -> Result<u64> {
        self.attributed(&Cow::Borrowed(ADMIN), self.clear_raw())
            .await
    }

    pub(crate) async fn clear_raw(&self) -> Result<u64> {
        self.store().clear(&self.config().namespace).await
    }
}
