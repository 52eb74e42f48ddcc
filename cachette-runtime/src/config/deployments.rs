//! The settings of Redis deployments beyond one server: a cluster's seeds, Sentinel's
//! sentinels and primary (in code and from the environment), and why a near cache refuses
//! them.

use super::*;

impl CacheBuilder {
    /// Use a Redis Cluster, found through any of `seeds` (URLs as for [`redis`](Self::redis):
    /// every node is reached with the first seed's scheme, credentials and TLS settings, at
    /// the address the cluster gives). Connections are made lazily, as for one server. The
    /// environment's `CACHETTE_REDIS_CLUSTER_URLS` (comma-separated) sets the same.
    ///
    /// Lookups, fills and invalidations are grouped by hash slot and sent to the primaries in
    /// parallel; replicas are never read. After a failover or a restart of a primary, every
    /// entry it holds and every entry whose tags it holds is invalid (ARCHITECTURE.md, *Redis
    /// Cluster*). A [`near_cache`](Self::near_cache) is refused on a cluster.
    ///
    /// ```
    /// # fn main() -> Result<(), cachette_runtime::Error> {
    /// let cache = cachette_runtime::Cache::builder()
    ///     .redis_cluster(["redis://127.0.0.1:7000", "redis://127.0.0.1:7001"])
    ///     .build()?;
    /// assert_eq!(cache.backend_kind(), "redis-cluster");
    /// # Ok(()) }
    /// ```
    pub fn redis_cluster<S: Into<String>>(mut self, seeds: impl IntoIterator<Item = S>) -> Self {
        self.backend = BackendChoice::Cluster(seeds.into_iter().map(Into::into).collect(), None);
        self
    }

    /// Use the primary that Redis Sentinel names `master`, asked of the sentinels at
    /// `sentinels` (`redis://host:26379`, or `rediss://` with the `tls` feature) whenever a
    /// connection is made: after a failover the next connection reaches the new primary.
    /// The primary is reached with the first sentinel URL's scheme, credentials and
    /// database. Replicas are never read. Failovers are met as on one server: every entry
    /// stored before one is invalid (the epoch, ARCHITECTURE.md *Rollbacks*). Needs the
    /// `sentinel` feature; the environment's `CACHETTE_REDIS_SENTINEL_URLS` (comma-separated)
    /// and `CACHETTE_REDIS_SENTINEL_MASTER` set the same. A
    /// [`near_cache`](Self::near_cache) is refused behind Sentinel.
    ///
    /// ```
    /// # fn main() -> Result<(), cachette_runtime::Error> {
    /// let cache = cachette_runtime::Cache::builder()
    ///     .redis_sentinel("mymaster", ["redis://127.0.0.1:26379"])
    ///     .build()?;
    /// assert_eq!(cache.backend_kind(), "redis");
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "sentinel")]
    pub fn redis_sentinel<S: Into<String>>(
        mut self,
        master: impl Into<String>,
        sentinels: impl IntoIterator<Item = S>,
    ) -> Self {
        self.backend = BackendChoice::Sentinel {
            master: master.into(),
            sentinels: sentinels.into_iter().map(Into::into).collect(),
        };
        self
    }
}

/// The seeds of `CACHETTE_REDIS_CLUSTER_URLS`: comma-separated URLs.
pub(super) fn seed_list(urls: &str) -> Vec<String> {
    urls.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Why a near cache cannot run on `backend`, if it cannot.
pub(super) fn near_refusal(backend: &BackendChoice) -> Option<String> {
    match backend {
        BackendChoice::Redis(..) => None,
        // The tracking link would have to follow the primary through failovers.
        #[cfg(feature = "sentinel")]
        BackendChoice::Sentinel { .. } => Some(
            "near_cache needs a single Redis server: behind Sentinel the primary changes, and \
             its invalidation tracking would have to follow it"
                .to_owned(),
        ),
        // Tracking reports keys per connection, and its barrier (a `PING` after the call
        // began) proves only that one server's pushes were delivered: a cluster needs a
        // tracking link and a barrier per primary, re-made at every failover and resharding.
        BackendChoice::Cluster(..) => Some(
            "near_cache needs a single Redis server: on a Redis Cluster its invalidation \
             tracking and barrier would have to follow every primary through failovers and \
             reshardings, which cachette does not do yet"
                .to_owned(),
        ),
        _ => Some(
            "near_cache needs a Redis backend (set redis(url) or CACHETTE_REDIS_URL)".to_owned(),
        ),
    }
}
