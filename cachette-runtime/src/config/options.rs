//! Per-call options: [`Options`] (TTL, tags, freshness options), [`Ttl`], [`EarlyRefresh`],
//! [`LockOptions`].

use super::*;

/// Appends each of `tags` not already in `into`, in order: a call's tags, each once
/// ([`Options::tags`], and the options the macros build per call).
pub(crate) fn push_unique(into: &mut Tags, tags: impl IntoIterator<Item = String>) {
    for t in tags {
        if !into.contains(&t) {
            into.push(t);
        }
    }
}

/// A call's tags: up to four held inline (options built per call allocate no vector).
pub(crate) type Tags = smallvec::SmallVec<[String; 4]>;

/// Probabilistic early refresh (XFetch, Vattani et al., VLDB 2015): a hit with `Δ` left
/// before expiry recomputes early with probability `exp(-Δ / (β·δ))`, `δ` being how long the
/// value's computation took.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum EarlyRefresh {
    /// The cache's setting ([`CacheBuilder::early_refresh`], on with β = 1 by default).
    #[default]
    Default,
    /// Never refresh early.
    Off,
    /// Refresh early with this β (larger: earlier).
    Beta(f64),
}

/// A distributed lock around the computation of a missing entry: one process computes, the
/// others wait for its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockOptions {
    /// Lifetime of the lock: a crashed holder's lock expires after it. At most
    /// [`MAX_DURATION`] (a longer one is taken as that).
    pub ttl: Duration,
    /// How long the other processes wait for the value before computing it themselves. At
    /// most [`MAX_DURATION`] (a longer one is taken as that).
    pub wait: Duration,
}

impl LockOptions {
    /// The default lifetime of a fill lock, and how long others wait for its value: 10 s.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(10);
}

impl Default for LockOptions {
    fn default() -> Self {
        LockOptions {
            ttl: LockOptions::DEFAULT_TTL,
            wait: LockOptions::DEFAULT_TTL,
        }
    }
}

/// How long an entry lives.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Ttl {
    /// The cache's default TTL ([`CacheBuilder::default_ttl`]).
    #[default]
    Default,
    /// A fixed duration.
    Fixed(Duration),
    /// A named profile ([`CacheBuilder::ttl_profile`]); an unknown name falls back to the
    /// default TTL, with a logged and counted warning.
    Profile(Cow<'static, str>),
}

impl From<Duration> for Ttl {
    fn from(d: Duration) -> Self {
        Ttl::Fixed(d)
    }
}

/// Options of one cached call or one `set`: TTL, tags and the label used in metrics and logs.
///
/// ```
/// use cachette_runtime::Options;
/// use std::time::Duration;
///
/// let opts = Options::new()
///     .ttl(Duration::from_secs(600))
///     .tags(["users", "user:42"])
///     .name("get_user");
/// assert_eq!(opts.tag_list(), ["users", "user:42"]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub(crate) ttl: Ttl,
    pub(crate) tags: Tags,
    pub(crate) name: Cow<'static, str>,
    pub(crate) stale: Duration,
    pub(crate) stale_if_error: Duration,
    pub(crate) jitter: Option<f64>,
    pub(crate) early_refresh: EarlyRefresh,
    pub(crate) lock: Option<LockOptions>,
    pub(crate) single_flight: bool,
    /// The backend keys of `tags` in the cache with this id, built by the first call that
    /// needed them (see `Cache::call_tag_keys`); reset when the tags change.
    pub(crate) tag_keys: OnceLock<(u64, Box<[String]>)>,
}

impl Options {
    /// Default TTL, no tags, the label `manual`.
    pub fn new() -> Self {
        Options {
            ttl: Ttl::Default,
            tags: Tags::new(),
            name: Cow::Borrowed("manual"),
            stale: Duration::ZERO,
            stale_if_error: Duration::ZERO,
            jitter: None,
            early_refresh: EarlyRefresh::Default,
            lock: None,
            single_flight: true,
            tag_keys: OnceLock::new(),
        }
    }

    /// Stale-while-revalidate: for `window` after the TTL, callers get the old value at once
    /// while a single refresh replaces it. An invalidated entry is never served stale. The
    /// entry is kept its TTL plus this window, at most [`MAX_DURATION`].
    pub fn stale(mut self, window: Duration) -> Self {
        self.stale = window;
        self
    }

    /// Stale-if-error: when the computation fails and a stale (not invalidated) value within
    /// `window` after its TTL exists, that value is returned instead of the error (counted).
    /// Applies to policies with an error case ([`Fallible`](crate::Fallible)). The entry is
    /// kept its TTL plus this window, at most [`MAX_DURATION`].
    pub fn stale_if_error(mut self, window: Duration) -> Self {
        self.stale_if_error = window;
        self
    }

    /// TTL jitter for this call: the stored TTL is shortened by a random fraction up to
    /// `fraction` (0 to 1; default [`CacheBuilder::DEFAULT_JITTER`]).
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = Some(fraction);
        self
    }

    /// Probabilistic early refresh for this call.
    pub fn early_refresh(mut self, setting: EarlyRefresh) -> Self {
        self.early_refresh = setting;
        self
    }

    /// A distributed lock around misses (see [`LockOptions`]).
    pub fn lock(mut self, lock: LockOptions) -> Self {
        self.lock = Some(lock);
        self
    }

    /// Single-flight in the process (on by default): concurrent misses of one key share one
    /// computation.
    pub fn single_flight(mut self, on: bool) -> Self {
        self.single_flight = on;
        self
    }

    /// Sets the TTL (a `Duration` or a [`Ttl`]). A TTL longer than [`MAX_DURATION`] (such as
    /// `Duration::MAX`, "forever") is taken as that.
    pub fn ttl(mut self, ttl: impl Into<Ttl>) -> Self {
        self.ttl = ttl.into();
        self
    }

    /// Uses the named TTL profile.
    pub fn profile(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.ttl = Ttl::Profile(name.into());
        self
    }

    /// Replaces the tags. Duplicates are ignored. Each tag is a [`Tag`](crate::Tag), built
    /// with `cachette::tag!("user:{}", id)` so that values are escaped as in
    /// `#[cached(tags = ["user:{id}"])]`, or a string taken as **already escaped**.
    pub fn tags<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tags.clear();
        self.tag_keys = OnceLock::new();
        push_unique(&mut self.tags, tags.into_iter().map(Into::into));
        self
    }

    /// The label used in metrics and logs (the macros use the function's path).
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = name.into();
        self
    }

    /// The tags, in order.
    pub fn tag_list(&self) -> &[String] {
        &self.tags
    }
}
