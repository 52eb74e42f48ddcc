//! The environment (`CACHETTE_*`, `REDIS_URL`): read by [`CacheBuilder::from_env`] and
//! applied over the settings made in code, once when read and again at `build` (the
//! environment wins).

use super::*;

/// The settings read from the environment (only the variables that were set).
#[derive(Clone, Default)]
pub(super) struct EnvSettings {
    backend: Option<EnvBackend>,
    namespace: Option<String>,
    version: Option<String>,
}

#[derive(Clone)]
pub(super) enum EnvBackend {
    Disabled,
    Redis(String),
    Cluster(Vec<String>),
    #[cfg(feature = "sentinel")]
    Sentinel(String, Vec<String>),
    Memory(u64),
}

/// `CACHETTE_REDIS_SENTINEL_URLS` and `CACHETTE_REDIS_SENTINEL_MASTER`, when set (one without
/// the other, or without the `sentinel` feature, is an error of `build`).
fn env_sentinel(builder: &mut CacheBuilder) -> Option<EnvBackend> {
    let urls = env_var("CACHETTE_REDIS_SENTINEL_URLS");
    let master = env_var("CACHETTE_REDIS_SENTINEL_MASTER");
    match (urls, master) {
        (None, None) => None,
        #[cfg(feature = "sentinel")]
        (Some(urls), Some(master)) => Some(EnvBackend::Sentinel(
            master.trim().to_owned(),
            super::deployments::seed_list(&urls),
        )),
        #[cfg(not(feature = "sentinel"))]
        (Some(_), Some(_)) => {
            builder.errors.push(
                "CACHETTE_REDIS_SENTINEL_URLS needs cachette's `sentinel` feature".to_owned(),
            );
            None
        }
        _ => {
            builder.errors.push(
                "CACHETTE_REDIS_SENTINEL_URLS and CACHETTE_REDIS_SENTINEL_MASTER go together"
                    .to_owned(),
            );
            None
        }
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl CacheBuilder {
    /// Reads the environment. **The environment wins**: a variable that is set overrides the
    /// setting made in code, whether that setting comes before or after `from_env()` (the
    /// variables are read here and applied again by [`build`](Self::build)); a variable that
    /// is unset or blank leaves the code's setting (or the default) alone.
    ///
    /// | variable | overrides |
    /// |---|---|
    /// | `CACHETTE_DISABLED` = `1`/`true`/`yes` | the backend: [`disabled`](Self::disabled) |
    /// | `CACHETTE_REDIS_SENTINEL_URLS` = `redis://s1:26379,redis://s2:26379` and `CACHETTE_REDIS_SENTINEL_MASTER` = `mymaster` (feature `sentinel`) | the backend: `redis_sentinel` |
    /// | `CACHETTE_REDIS_CLUSTER_URLS` = `redis://h1:7000,redis://h2:7001` (no sentinels set) | the backend: [`redis_cluster`](Self::redis_cluster) with those seeds (a root certificate set in code is kept) |
    /// | `CACHETTE_REDIS_URL`, else `REDIS_URL` (no cluster URLs set) | the backend: [`redis`](Self::redis) (a root certificate set in code is kept) |
    /// | `CACHETTE_MEMORY_BYTES` (neither of the above set) | the backend: [`memory`](Self::memory) of that many bytes |
    /// | `CACHETTE_NAMESPACE` | [`namespace`](Self::namespace) |
    /// | `CACHETTE_VERSION` | [`version`](Self::version) |
    /// | `CACHETTE_TTL_PROFILES` = `session=1h,presence=1m` | the profiles it names ([`ttl_profiles`](Self::ttl_profiles)); other profiles set in code stay |
    ///
    /// Malformed values are reported by [`build`](Self::build).
    pub fn from_env(mut self) -> Self {
        let mut env = EnvSettings::default();
        if env_var("CACHETTE_DISABLED").is_some_and(|v| matches!(v.trim(), "1" | "true" | "yes")) {
            env.backend = Some(EnvBackend::Disabled);
        } else if let Some(urls) = env_sentinel(&mut self) {
            env.backend = Some(urls);
        } else if let Some(urls) = env_var("CACHETTE_REDIS_CLUSTER_URLS") {
            env.backend = Some(EnvBackend::Cluster(super::deployments::seed_list(&urls)));
        } else if let Some(url) = env_var("CACHETTE_REDIS_URL").or_else(|| env_var("REDIS_URL")) {
            env.backend = Some(EnvBackend::Redis(url.trim().to_owned()));
        } else if let Some(v) = env_var("CACHETTE_MEMORY_BYTES") {
            match v.trim().parse::<u64>() {
                Ok(b) => env.backend = Some(EnvBackend::Memory(b)),
                Err(_) => self
                    .errors
                    .push(format!("CACHETTE_MEMORY_BYTES={v:?} is not a byte count")),
            }
        }
        env.namespace = env_var("CACHETTE_NAMESPACE").map(|v| v.trim().to_owned());
        env.version = env_var("CACHETTE_VERSION").map(|v| v.trim().to_owned());
        if let Some(spec) = env_var("CACHETTE_TTL_PROFILES") {
            self.profile_spec = Some(spec);
        }
        // Applied now too, so that settings in code that depend on them (a root certificate
        // after a Redis URL) see them.
        self = self.apply_env(&env);
        self.env = Some(env);
        self
    }

    /// Applies what [`from_env`](Self::from_env) read (the environment wins).
    pub(super) fn apply_env(mut self, env: &EnvSettings) -> Self {
        match &env.backend {
            Some(EnvBackend::Disabled) => self.backend = BackendChoice::Disabled,
            Some(EnvBackend::Redis(url)) => {
                let root = match &mut self.backend {
                    BackendChoice::Redis(_, root) | BackendChoice::Cluster(_, root) => root.take(),
                    _ => None,
                };
                self.backend = BackendChoice::Redis(url.clone(), root);
            }
            Some(EnvBackend::Cluster(urls)) => {
                let root = match &mut self.backend {
                    BackendChoice::Redis(_, root) | BackendChoice::Cluster(_, root) => root.take(),
                    _ => None,
                };
                self.backend = BackendChoice::Cluster(urls.clone(), root);
            }
            #[cfg(feature = "sentinel")]
            Some(EnvBackend::Sentinel(master, sentinels)) => {
                self.backend = BackendChoice::Sentinel {
                    master: master.clone(),
                    sentinels: sentinels.clone(),
                };
            }
            Some(EnvBackend::Memory(bytes)) => self.backend = BackendChoice::Memory(*bytes),
            None => {}
        }
        if let Some(ns) = &env.namespace {
            self.config.namespace = ns.clone();
        }
        if let Some(v) = &env.version {
            self.config.version = Some(v.clone());
        }
        self
    }
}
