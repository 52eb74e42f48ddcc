//! The builder: [`CacheBuilder`], the validated [`Config`] it builds, the environment
//! (`CACHETTE_*`) and the check of TTL profiles.

use super::env::EnvSettings;
use super::settings::{BackendChoice, Config};
use super::*;

impl Config {
    pub(crate) fn defaults() -> Config {
        Config {
            clock: Arc::new(SystemClock),
            random: Arc::new(ThreadRandom),
            jitter: CacheBuilder::DEFAULT_JITTER,
            early_refresh_beta: Some(CacheBuilder::DEFAULT_EARLY_REFRESH_BETA),
            namespace: CacheBuilder::DEFAULT_NAMESPACE.to_owned(),
            version: None,
            default_ttl: CacheBuilder::DEFAULT_TTL,
            profiles: HashMap::new(),
            op_timeout: CacheBuilder::DEFAULT_OP_TIMEOUT,
            max_value_bytes: CacheBuilder::DEFAULT_MAX_VALUE_BYTES,
            tag_ttl: CacheBuilder::DEFAULT_TAG_TTL,
            fence_ttl: CacheBuilder::DEFAULT_FENCE_TTL,
            breaker: Some(crate::breaker::BreakerOptions::default()),
            redis_connections: CacheBuilder::DEFAULT_REDIS_CONNECTIONS,
            wait_replicas: None,
            near_bytes: None,
            near_max_staleness: None,
        }
    }
}

/// Builds a [`Cache`](crate::Cache).
///
/// ```
/// use cachette_runtime::Cache;
/// use std::time::Duration;
///
/// let cache = Cache::builder()
///     .memory(64 * 1024 * 1024)
///     .namespace("myapp")
///     .version("v2")
///     .default_ttl(Duration::from_secs(120))
///     .ttl_profile("session", Duration::from_secs(3600))
///     .ttl_profile("presence", Duration::from_secs(60))
///     .op_timeout(Duration::from_millis(100))
///     .build()
///     .expect("valid configuration");
/// assert_eq!(cache.full_key("user:1"), "myapp:v2:user:1");
/// ```
#[derive(Clone)]
pub struct CacheBuilder {
    pub(super) backend: BackendChoice,
    pub(super) config: Config,
    pub(super) profile_spec: Option<String>,
    /// What [`from_env`](CacheBuilder::from_env) read, applied again by `build` so that the
    /// environment wins over settings made in code after it.
    pub(super) env: Option<EnvSettings>,
    pub(super) errors: Vec<String>,
}

impl Default for CacheBuilder {
    fn default() -> Self {
        CacheBuilder {
            backend: BackendChoice::Memory(CacheBuilder::DEFAULT_MEMORY_BYTES),
            config: Config::defaults(),
            profile_spec: None,
            env: None,
            errors: Vec::new(),
        }
    }
}

impl CacheBuilder {
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
    /// Default lifetime of a key fence, the tombstone a delete leaves (see
    /// [`CacheBuilder::fence_ttl`]).
    pub const DEFAULT_FENCE_TTL: Duration = Duration::from_secs(600);

    /// A builder for the embedded memory store with the defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Use Redis at `url` (`redis://[user][:password]@host[:port][/db]`). The connection is
    /// made lazily: building succeeds while Redis is unreachable, and calls run uncached
    /// until it answers.
    pub fn redis(mut self, url: impl Into<String>) -> Self {
        self.backend = BackendChoice::Redis(url.into(), None);
        self
    }

    /// For `rediss://` URLs: trust this root certificate (PEM) instead of the platform's
    /// store, e.g. a private CA. Requires the `tls` feature; without it `rediss://` is
    /// rejected by [`build`](Self::build).
    pub fn tls_root_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        if let BackendChoice::Redis(_, root) | BackendChoice::Cluster(_, root) = &mut self.backend {
            *root = Some(pem.into());
        } else {
            self.errors.push(
                "tls_root_certificate needs a Redis backend: call redis(url) or redis_cluster(urls) first".to_owned(),
            );
        }
        self
    }

    /// Use the embedded memory store, bounded by `max_bytes` in all: entries (key, serialized
    /// value and 512 B of bookkeeping each, what an entry measurably costs) and tag versions
    /// (key and 120 B each, likewise). Tag versions may use a quarter of the budget, the
    /// entries the rest; when the tag versions' share is full, those not read lately are
    /// dropped, which invalidates the entries carrying them (never makes one valid). So a store of a few
    /// kilobytes keeps too few tag versions to serve tagged entries: give it at least a few
    /// hundred kilobytes.
    ///
    /// ```
    /// # fn main() -> Result<(), cachette_runtime::Error> {
    /// let cache = cachette_runtime::Cache::builder().memory(64 * 1024 * 1024).build()?;
    /// # let _ = cache;
    /// # Ok(()) }
    /// ```
    pub fn memory(mut self, max_bytes: u64) -> Self {
        self.backend = BackendChoice::Memory(max_bytes);
        self
    }

    /// Cache nothing: every call runs its computation (for tests and for switching caching off).
    pub fn disabled(mut self) -> Self {
        self.backend = BackendChoice::Disabled;
        self
    }

    /// The first segment of every key (default `cachette`): ASCII letters, digits, `_`, `-`, `.`.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.config.namespace = namespace.into();
        self
    }

    /// A version (epoch) segment after the namespace; bump it when a value's format changes
    /// incompatibly, so the new code never reads the old entries. Tag invalidations still reach
    /// every version.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.config.version = Some(version.into());
        self
    }

    /// The TTL of calls that name none (default 5 minutes; at most [`MAX_DURATION`], longer is
    /// refused by [`build`](Self::build)).
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.config.default_ttl = ttl;
        self
    }

    /// Defines (or redefines) a named TTL profile (at most [`MAX_DURATION`], longer is refused
    /// by [`build`](Self::build)).
    pub fn ttl_profile(mut self, name: impl Into<String>, ttl: Duration) -> Self {
        self.config.profiles.insert(name.into(), ttl);
        self
    }

    /// Defines profiles from a spec such as `"session=1h, presence=1m, land=300s"`
    /// (durations in `humantime` syntax: `ms`, `s`, `m`, `h`, `d`, combinable as `1h30m`; at
    /// most [`MAX_DURATION`]).
    pub fn ttl_profiles(mut self, spec: &str) -> Self {
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item.split_once('=') {
                Some((name, dur)) => match parse_duration(dur.trim()) {
                    Ok(d) => {
                        self.config.profiles.insert(name.trim().to_owned(), d);
                    }
                    Err(e) => self.errors.push(format!("TTL profile `{item}`: {e}")),
                },
                None => self
                    .errors
                    .push(format!("TTL profile `{item}`: expected `name=duration`")),
            }
        }
        self
    }

    /// Budget of one backend round trip (default 200 ms). Past it the call gives up on the cache
    /// for this operation and goes on without it. At most [`MAX_DURATION`], longer is refused by
    /// [`build`](Self::build).
    pub fn op_timeout(mut self, timeout: Duration) -> Self {
        self.config.op_timeout = timeout;
        self
    }

    /// Largest serialized entry that is stored (default 4 MiB).
    pub fn max_value_bytes(mut self, max: usize) -> Self {
        self.config.max_value_bytes = max;
        self
    }

    /// Lifetime of a tag version key (default 24 h). A tag key is created with the longer of
    /// this and the TTL of the entry that needed it; when it expires or is evicted, every entry
    /// carrying the tag becomes a miss (never a stale hit). At most [`MAX_DURATION`], longer is
    /// refused by [`build`](Self::build).
    pub fn tag_ttl(mut self, ttl: Duration) -> Self {
        self.config.tag_ttl = ttl;
        self
    }

    /// Lifetime of a key fence (default 10 min). [`Cache::delete`](crate::Cache::delete)
    /// leaves a small tombstone under the key for this long, so that a computation that
    /// began before the delete cannot store its value afterwards. A computation that found
    /// its key absent and ran for more than half of this is not stored (counted in
    /// [`StatsSnapshot::fills_fenced`](crate::StatsSnapshot::fills_fenced)): its fence may
    /// have expired meanwhile. Between 1 s and [`MAX_DURATION`], otherwise refused by
    /// [`build`](Self::build).
    pub fn fence_ttl(mut self, ttl: Duration) -> Self {
        self.config.fence_ttl = ttl;
        self
    }

    /// Has no effect: the memory store's tag versions count in its byte budget (see
    /// [`memory`](Self::memory)) instead of being bounded by number.
    #[deprecated(
        since = "0.1.0",
        note = "tag versions count in the memory store's byte budget (a quarter of it at most); this setting has no effect"
    )]
    pub fn memory_max_tags(self, _max: u64) -> Self {
        self
    }

    /// How many multiplexed Redis connections to use, round-robin (default
    /// [`CacheBuilder::DEFAULT_REDIS_CONNECTIONS`]). Each is made on first use and re-made after a failure.
    pub fn redis_connections(mut self, n: usize) -> Self {
        self.config.redis_connections = n;
        self
    }

    /// Durable invalidations on a replicated Redis (off by default): after each tag
    /// invalidation and delete, `WAIT` until `replicas` replicas acknowledged it, at most
    /// `timeout` (on top of the operation timeout). Fewer acknowledgements make the
    /// invalidation fail with [`Error::NotReplicated`](crate::Error::NotReplicated), retried
    /// and kept like any failed invalidation: an `Ok` then means the invalidation survives a
    /// failover to one of those replicas. Without it, an acknowledged invalidation can be lost
    /// with an asynchronous replica; the epoch (ARCHITECTURE.md) still makes every entry
    /// stored before a failover invalid, so a lost invalidation cannot revive them. `timeout`
    /// is at most [`MAX_DURATION`], longer is refused by [`build`](Self::build).
    pub fn wait_for_replicas(mut self, replicas: usize, timeout: Duration) -> Self {
        self.config.wait_replicas = Some((replicas, timeout));
        self
    }

    /// A near cache of at most `max_bytes` in this process, in front of Redis (off by
    /// default): the entries Redis answered with, decoded once and shared by every hit,
    /// weighed at their encoded size. Redis tells it of every change to the namespace's keys
    /// (RESP3 client tracking, `BCAST` over the namespace's prefixes), and a near entry is
    /// served only once a `PING` sent on that tracking connection after the call began has
    /// returned (pings are shared by every call waiting meanwhile): an invalidation that
    /// returned before the call began, in any process, is never missed. A call that meets
    /// Redis down (or the circuit breaker open) serves nothing from the near cache. See
    /// ARCHITECTURE.md, *The near cache*.
    /// [`near_max_staleness`](Self::near_max_staleness) trades that proof for speed. Needs a
    /// Redis backend; `build` refuses it on another.
    ///
    /// ```
    /// use cachette_runtime::Cache;
    ///
    /// let cache = Cache::builder()
    ///     .redis("redis://127.0.0.1:6379")
    ///     .near_cache(64 * 1024 * 1024)
    ///     .build()
    ///     .expect("valid configuration");
    /// assert_eq!(cache.backend_kind(), "redis");
    /// assert!(cache.near_stats().is_some());
    /// ```
    pub fn near_cache(mut self, max_bytes: u64) -> Self {
        self.config.near_bytes = Some(max_bytes);
        self
    }

    /// Bounded reads for the near cache: a near entry is served at once when a barrier's
    /// `PING` was sent less than `max` ago, and such a read **may miss invalidations that
    /// returned less than `max` before it began** (never older ones). Without it (the
    /// default) every near hit waits for a barrier begun after the call. Needs
    /// [`near_cache`](Self::near_cache); at most [`MAX_DURATION`].
    pub fn near_max_staleness(mut self, max: Duration) -> Self {
        self.config.near_max_staleness = Some(max);
        self
    }

    /// The Redis circuit breaker (on by default: 5 consecutive failures open it for 1 s).
    /// `None` switches it off. The cool-down is at most [`MAX_DURATION`], longer is refused by
    /// [`build`](Self::build).
    pub fn breaker(mut self, breaker: Option<crate::breaker::BreakerOptions>) -> Self {
        self.config.breaker = breaker;
        self
    }

    /// Default TTL jitter (fraction 0 to 1; [`CacheBuilder::DEFAULT_JITTER`]). `0` switches it off.
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.config.jitter = fraction;
        self
    }

    /// Default probabilistic early refresh: `Some(β)` (default `Some(1.0)`), or `None` for off.
    pub fn early_refresh(mut self, beta: Option<f64>) -> Self {
        self.config.early_refresh_beta = beta;
        self
    }

    /// The clock used for freshness (TTL, stale windows, early refresh). Tests use
    /// [`ManualClock`](crate::clock::ManualClock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.config.clock = clock;
        self
    }

    /// The random source used for early refresh and jitter. Tests use
    /// [`ScriptedRandom`](crate::clock::ScriptedRandom). A number is drawn for each store
    /// with jitter, and for each fresh hit whose early-refresh probability is not zero (not
    /// for hits far from expiry, where it is).
    pub fn random(mut self, random: Arc<dyn RandomSource>) -> Self {
        self.config.random = random;
        self
    }

    /// Validates the configuration and builds the cache. Connecting to Redis happens lazily,
    /// so this succeeds while Redis is down; it fails on a malformed URL or setting (every
    /// problem listed in one [`Error::Config`]), such as a duration longer than
    /// [`MAX_DURATION`], whatever the backend, or a TTL profile named by an attribute of the
    /// program (`ttl = profile("name")`) and defined neither here nor in
    /// `CACHETTE_TTL_PROFILES`.
    ///
    /// ```
    /// use cachette_runtime::{CacheBuilder, Error};
    /// use std::time::Duration;
    ///
    /// let err = CacheBuilder::new().default_ttl(Duration::ZERO).build().unwrap_err();
    /// assert!(matches!(err, Error::Config(_)));
    /// ```
    pub fn build(self) -> Result<crate::Cache> {
        self.build_with(Undefined::Refuse)
    }

    /// [`build`](Self::build), but profiles named in code and defined nowhere are logged and
    /// counted rather than refused (what the default cache and the constructors that take no
    /// profiles do).
    pub(crate) fn build_reporting(self) -> Result<crate::Cache> {
        self.build_with(Undefined::Report)
    }

    pub(crate) fn build_with(mut self, undefined: Undefined) -> Result<crate::Cache> {
        if let Some(env) = self.env.take() {
            self = self.apply_env(&env);
        }
        if let Some(spec) = self.profile_spec.take() {
            self = self.ttl_profiles(&spec);
        }
        let c = &self.config;
        let mut errors = std::mem::take(&mut self.errors);
        if c.near_bytes.is_some() {
            errors.extend(super::deployments::near_refusal(&self.backend));
        }
        errors.extend(super::validate::problems(c));
        let missing = match undefined {
            Undefined::Ignore => Default::default(),
            _ => crate::profiles::undefined(&c.profiles),
        };
        match undefined {
            Undefined::Refuse => errors.extend(crate::profiles::describe(&missing)),
            Undefined::Report if errors.is_empty() => crate::profiles::report(&missing),
            Undefined::Report | Undefined::Ignore => {}
        }
        if !errors.is_empty() {
            return Err(Error::Config(errors.join("; ")));
        }
        crate::cache::Cache::from_parts(self.backend, self.config)
    }
}

/// What [`CacheBuilder::build_with`] does with TTL profiles named in code and defined nowhere.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Undefined {
    /// An error of [`Error::Config`].
    Refuse,
    /// Logged at error level and counted; the cache is built.
    Report,
    /// Not looked at (a disabled cache uses no TTL).
    Ignore,
}

/// Parses a human duration (`"10m"`, `"1h30m"`, `"250ms"`); zero is rejected.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("`{s}` is not a duration: {e}"))?;
    if d.is_zero() {
        return Err(format!("`{s}` is zero"));
    }
    Ok(d)
}

impl std::fmt::Debug for CacheBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("backend", &self.backend)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breaker::BreakerOptions;

    fn config_error(builder: CacheBuilder) -> String {
        match builder.build() {
            Err(Error::Config(msg)) => msg,
            Err(e) => format!("not a configuration error: {e}"),
            Ok(_) => "built".to_owned(),
        }
    }

    #[test]
    fn durations_past_the_bound_are_refused_each_by_name() {
        let too_long = MAX_DURATION + Duration::from_millis(1);
        type Set = fn(CacheBuilder, Duration) -> CacheBuilder;
        let cases: [(&str, Set); 7] = [
            ("default TTL", |b, d| b.default_ttl(d)),
            ("TTL profile `session`", |b, d| b.ttl_profile("session", d)),
            ("tag TTL", |b, d| b.tag_ttl(d)),
            ("fence TTL", |b, d| b.fence_ttl(d)),
            ("operation timeout", |b, d| b.op_timeout(d)),
            ("wait_for_replicas timeout", |b, d| {
                b.wait_for_replicas(1, d)
            }),
            ("circuit breaker cool-down", |b, d| {
                b.breaker(Some(BreakerOptions {
                    failures: 5,
                    cool_down: d,
                }))
            }),
        ];
        let mut all = CacheBuilder::new();
        for (name, set) in cases {
            for d in [Duration::MAX, too_long] {
                let msg = config_error(set(CacheBuilder::new(), d));
                assert!(
                    msg.starts_with(name) && msg.contains("MAX_DURATION"),
                    "{name} = {d:?}: {msg}"
                );
                assert!(!msg.contains(';'), "one problem: {msg}");
                assert!(
                    set(CacheBuilder::new(), MAX_DURATION).build().is_ok(),
                    "{name}"
                );
            }
            all = set(all, Duration::MAX);
        }
        // Every problem in one message.
        let msg = config_error(all.ttl_profile("presence", Duration::MAX));
        for (name, _) in cases {
            assert!(msg.contains(name), "{name} in {msg}");
        }
        assert!(msg.contains("TTL profile `presence`"), "{msg}");
        assert_eq!(
            msg.matches("MAX_DURATION").count(),
            cases.len() + 1,
            "{msg}"
        );
    }

    #[test]
    fn a_profile_spec_past_the_bound_is_refused() {
        let msg = config_error(CacheBuilder::new().ttl_profiles("forever=200y, short=1m"));
        assert!(msg.starts_with("TTL profile `forever`"), "{msg}");
        assert!(!msg.contains("short"), "{msg}");
    }
}
