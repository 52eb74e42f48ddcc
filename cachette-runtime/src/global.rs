//! The process-wide default cache used by the macros when no `cache = ...` is given.

use crate::{Cache, Error, Result};
use std::sync::OnceLock;

static DEFAULT: OnceLock<Cache> = OnceLock::new();

/// Installs `cache` as the process-wide default. Call it once at start-up, before the first
/// cached call; afterwards (or if the default was already created from the environment) it
/// returns [`Error::DefaultAlreadySet`] and leaves the existing default in place.
///
/// ```
/// let cache = cachette_runtime::Cache::memory(8 * 1024 * 1024);
/// cachette_runtime::install_default(cache).expect("first install");
/// assert_eq!(cachette_runtime::default_cache().backend_kind(), "memory");
/// assert!(cachette_runtime::install_default(cachette_runtime::Cache::disabled()).is_err());
/// ```
pub fn install_default(cache: Cache) -> Result<()> {
    DEFAULT.set(cache).map_err(|_| Error::DefaultAlreadySet)
}

/// The process-wide default cache. When none was installed, it is created on first use from
/// the environment ([`CacheBuilder::from_env`](crate::CacheBuilder::from_env)): Redis when
/// `CACHETTE_REDIS_URL` or `REDIS_URL` is set, the memory store otherwise. If the environment
/// is malformed (a bad URL, a bad TTL profile), the error is logged and the default is a
/// **disabled** cache: results stay correct, nothing is cached. Falling back to a per-process
/// memory store instead could serve values another process has invalidated. A TTL profile
/// named in code (`ttl = profile("name")`) and missing from `CACHETTE_TTL_PROFILES` is logged
/// at error level and counted (`cachette_undefined_profiles_total`), and the default cache is
/// built anyway: calls naming that profile use the default TTL.
pub fn default_cache() -> &'static Cache {
    DEFAULT.get_or_init(|| match crate::CacheBuilder::new().from_env().build_reporting() {
        Ok(cache) => cache,
        Err(e) => {
            tracing::error!(error = %e, "cachette: cannot configure the default cache from the environment; caching is disabled");
            metrics::counter!("cachette_config_errors_total").increment(1);
            Cache::disabled()
        }
    })
}
