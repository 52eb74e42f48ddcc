//! Building a [`Cache`]: the constructors and the assembly of a built configuration.

use super::*;

impl Cache {
    /// A builder, starting from the embedded memory store and the defaults.
    ///
    /// ```
    /// # use cachette_runtime::Cache;
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), cachette_runtime::Error> {
    /// let cache = Cache::builder()
    ///     .memory(16 << 20)
    ///     .namespace("shop")
    ///     .default_ttl(Duration::from_secs(60))
    ///     .build()?;
    /// assert_eq!(cache.full_key("cart:1"), "shop:cart:1");
    /// # Ok(()) }
    /// ```
    pub fn builder() -> CacheBuilder {
        CacheBuilder::new()
    }

    /// Redis at `url`, with the default settings. Fails only on a malformed URL; Redis need
    /// not be up (see [`CacheBuilder::redis`]). It defines no TTL profile: those the
    /// program's attributes name are logged at error level and counted (use the builder to
    /// define them, and to have missing ones refused).
    ///
    /// ```
    /// # use cachette_runtime::Cache;
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), cachette_runtime::Error> {
    /// // Connects lazily: this succeeds while Redis is down (calls run uncached until it answers).
    /// let cache = Cache::redis("redis://127.0.0.1:6379/0")?;
    /// assert_eq!(cache.backend_kind(), "redis");
    /// assert!(Cache::redis("http://not-redis").is_err());
    /// # Ok(()) }
    /// ```
    pub fn redis(url: &str) -> Result<Cache> {
        CacheBuilder::new().redis(url).build_reporting()
    }

    /// The embedded memory store bounded by `max_bytes`, with the default settings. It
    /// defines no TTL profile: those the program's attributes name are logged at error level
    /// and counted (use the builder to define them, and to have missing ones refused).
    ///
    /// ```
    /// # use cachette_runtime::Cache;
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), cachette_runtime::Error> {
    /// let cache = Cache::memory(64 << 20); // 64 MiB, entries and tag versions included
    /// assert_eq!(cache.backend_kind(), "memory");
    /// # Ok(()) }
    /// ```
    pub fn memory(max_bytes: u64) -> Cache {
        let config = CacheBuilder::new().memory(max_bytes);
        // The defaults always validate; fall back to a disabled cache rather than panic. TTL
        // profiles named in code cannot be defined here: missing ones are logged and counted.
        config
            .build_reporting()
            .unwrap_or_else(|_| Cache::disabled())
    }

    /// A cache that stores nothing: every call runs its computation.
    ///
    /// Its locks ([`try_lock`](Self::try_lock), [`lock`](Self::lock)) still exclude, like
    /// the memory store's: within this process, among this cache and its clones (not across
    /// processes, nor with another `Cache::disabled()`). A service that relies on them for
    /// mutual exclusion keeps it when caching is switched off.
    ///
    /// ```
    /// # use cachette_runtime::{Cache, Options};
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), cachette_runtime::Error> {
    /// let cache = Cache::disabled();
    /// let n: u32 = cache.get_or_compute("k", &Options::new(), || async { 7 }).await;
    /// assert_eq!(n, 7); // computed, and nothing stored
    /// assert!(!cache.exists("k").await?);
    /// # Ok(()) }
    /// ```
    pub fn disabled() -> Cache {
        let config = CacheBuilder::new().disabled();
        // It uses no TTL: profiles are not its concern.
        match config.build_with(Undefined::Ignore) {
            Ok(c) => c,
            Err(_) => Cache::from_parts_unchecked(
                Backend::Disabled(DisabledStore::default()),
                default_config(),
            ),
        }
    }

    /// Configured from the environment (see [`CacheBuilder::from_env`]).
    ///
    /// ```
    /// # use cachette_runtime::Cache;
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), cachette_runtime::Error> {
    /// // Redis when CACHETTE_REDIS_URL (or REDIS_URL) is set, the embedded store otherwise.
    /// let cache = Cache::from_env()?;
    /// assert!(["redis", "memory", "disabled"].contains(&cache.backend_kind()));
    /// # Ok(()) }
    /// ```
    pub fn from_env() -> Result<Cache> {
        CacheBuilder::new().from_env().build()
    }

    pub(crate) fn from_parts(choice: BackendChoice, config: Config) -> Result<Cache> {
        let backend = match choice {
            BackendChoice::Redis(url, root_cert) => {
                let redis = RedisBackend::new(Target::server(&url, root_cert)?, &config);
                match config.near_bytes {
                    None => Backend::Redis(redis),
                    Some(bytes) => {
                        let ns = &config.namespace;
                        // The entries (every version), the tag keys and the epoch.
                        let prefixes = [
                            format!("{ns}:"),
                            format!("{ns}#tag:"),
                            format!("{ns}#epoch"),
                        ];
                        let mode = config
                            .near_max_staleness
                            .map_or(NearMode::Strict, NearMode::Bounded);
                        Backend::Near(NearStore::new(
                            redis,
                            bytes,
                            mode,
                            &prefixes,
                            format!("{ns}#tag:"),
                            config.op_timeout,
                        )?)
                    }
                }
            }
            BackendChoice::Cluster(urls, root_cert) => {
                Backend::Cluster(ClusterStore::new(&urls, root_cert, &config)?)
            }
            #[cfg(feature = "sentinel")]
            BackendChoice::Sentinel { master, sentinels } => Backend::Redis(RedisBackend::new(
                Target::sentinel(&sentinels, &master)?,
                &config,
            )),
            BackendChoice::Memory(bytes) => Backend::Memory(MemoryBackend::new(bytes)),
            BackendChoice::Disabled => Backend::Disabled(DisabledStore::default()),
        };
        Ok(Self::from_parts_unchecked(backend, config))
    }

    fn from_parts_unchecked(backend: Backend, config: Config) -> Cache {
        let prefix = match &config.version {
            Some(v) => format!("{}:{}:", config.namespace, v),
            None => format!("{}:", config.namespace),
        };
        let tag_prefix = format!("{}#tag:", config.namespace);
        // The memory store is the cache's alone: its tag versions are keyed by the tags
        // themselves, so that a call's tags are its lookup's keys (nothing built per call).
        let store_tag_prefix = match backend {
            Backend::Memory(_) => String::new(),
            _ => tag_prefix.clone(),
        };
        let base_tag_keys = backend.base_keys().to_vec().into_boxed_slice();
        Cache {
            inner: Arc::new(Inner {
                backend,
                config,
                prefix,
                tag_prefix,
                store_tag_prefix,
                base_tag_keys,
                stats: Stats::default(),
                flights: Flights::new(),
                pending: Pending::default(),
            }),
        }
    }
}

fn default_config() -> Config {
    // Only reached if the defaults failed to validate, which they do not.
    Config::defaults()
}
