//! The settings a [`Cache`](crate::Cache) runs with, as [`CacheBuilder`](super::CacheBuilder)
//! built and checked them, and the backend it chose.

use crate::clock::{Clock, RandomSource};
use crate::error::redact_url;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Which backend a builder builds.
#[derive(Clone)]
pub(crate) enum BackendChoice {
    Redis(String, Option<Vec<u8>>),
    /// A Redis Cluster: seed URLs, and a TLS root certificate.
    Cluster(Vec<String>, Option<Vec<u8>>),
    /// The primary Sentinel names.
    #[cfg(feature = "sentinel")]
    Sentinel {
        master: String,
        sentinels: Vec<String>,
    },
    Memory(u64),
    Disabled,
}

impl std::fmt::Debug for BackendChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendChoice::Redis(url, _) => f.debug_tuple("Redis").field(&redact_url(url)).finish(),
            BackendChoice::Cluster(urls, _) => f
                .debug_tuple("Cluster")
                .field(&urls.iter().map(|u| redact_url(u)).collect::<Vec<_>>())
                .finish(),
            #[cfg(feature = "sentinel")]
            BackendChoice::Sentinel { master, sentinels } => f
                .debug_struct("Sentinel")
                .field("master", master)
                .field(
                    "sentinels",
                    &sentinels.iter().map(|u| redact_url(u)).collect::<Vec<_>>(),
                )
                .finish(),
            BackendChoice::Memory(b) => f.debug_tuple("Memory").field(b).finish(),
            BackendChoice::Disabled => f.write_str("Disabled"),
        }
    }
}

/// The settings a [`Cache`](crate::Cache) runs with.
#[derive(Clone)]
pub(crate) struct Config {
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn RandomSource>,
    pub jitter: f64,
    pub early_refresh_beta: Option<f64>,
    pub namespace: String,
    pub version: Option<String>,
    pub default_ttl: Duration,
    pub profiles: HashMap<String, Duration>,
    pub op_timeout: Duration,
    pub max_value_bytes: usize,
    pub tag_ttl: Duration,
    pub fence_ttl: Duration,
    pub breaker: Option<crate::breaker::BreakerOptions>,
    pub redis_connections: usize,
    pub wait_replicas: Option<(usize, Duration)>,
    /// A near cache in front of Redis: its byte budget.
    pub near_bytes: Option<u64>,
    /// The near cache's staleness bound (`None`: strict).
    pub near_max_staleness: Option<Duration>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("namespace", &self.namespace)
            .field("version", &self.version)
            .field("default_ttl", &self.default_ttl)
            .field("op_timeout", &self.op_timeout)
            .finish_non_exhaustive()
    }
}
