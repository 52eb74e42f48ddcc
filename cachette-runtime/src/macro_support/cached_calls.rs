//! What `#[cached]` calls: the call site ([`Site`]), the entry point ([`cached`], then
//! `Ready::run_*` per return shape), and the sorting of a call by its mode.

use super::*;
use crate::read_through::CallOptions as _;

/// What a `#[cached]` call site fixes at compile time, a `static` of the generated code: the
/// call's name, TTL, constant tags, freshness options and `cache_none` setting. Its
/// [`Options`] are built once when no tag interpolates an argument, per call otherwise.
#[derive(Debug)]
pub struct Site {
    name: &'static str,
    ttl: SiteTtl,
    tags: &'static [&'static str],
    stale: Option<Duration>,
    stale_if_error: Option<Duration>,
    jitter: Option<f64>,
    early_refresh: EarlyRefresh,
    lock: Option<LockOptions>,
    single_flight: bool,
    cache_none: bool,
    none_ttl: Option<SiteTtl>,
    options: OnceLock<Options>,
}

impl Site {
    /// The call site of the function `name` (its path, or `name = "..."`), with the defaults.
    pub const fn new(name: &'static str) -> Self {
        Site {
            name,
            ttl: SiteTtl::Default,
            tags: &[],
            stale: None,
            stale_if_error: None,
            jitter: None,
            early_refresh: EarlyRefresh::Default,
            lock: None,
            single_flight: true,
            cache_none: false,
            none_ttl: None,
            options: OnceLock::new(),
        }
    }

    /// `ttl = "10m"`.
    pub const fn ttl(mut self, secs: u64, nanos: u32) -> Self {
        self.ttl = SiteTtl::Fixed(Duration::new(secs, nanos));
        self
    }

    /// `ttl = profile("name")`.
    pub const fn profile(mut self, name: &'static str) -> Self {
        self.ttl = SiteTtl::Profile(name);
        self
    }

    /// `tags = [...]` when no tag interpolates an argument.
    pub const fn tags(mut self, tags: &'static [&'static str]) -> Self {
        self.tags = tags;
        self
    }

    /// `stale = "..."`.
    pub const fn stale(mut self, secs: u64, nanos: u32) -> Self {
        self.stale = Some(Duration::new(secs, nanos));
        self
    }

    /// `stale_if_error = "..."`.
    pub const fn stale_if_error(mut self, secs: u64, nanos: u32) -> Self {
        self.stale_if_error = Some(Duration::new(secs, nanos));
        self
    }

    /// `jitter = ...`.
    pub const fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = Some(fraction);
        self
    }

    /// `early_refresh = ...` (`None`: `false`).
    pub const fn early_refresh(mut self, beta: Option<f64>) -> Self {
        self.early_refresh = match beta {
            Some(beta) => EarlyRefresh::Beta(beta),
            None => EarlyRefresh::Off,
        };
        self
    }

    /// `lock(ttl = ..., wait = ...)`: both as seconds and nanoseconds.
    pub const fn lock(mut self, ttl: (u64, u32), wait: (u64, u32)) -> Self {
        self.lock = Some(LockOptions {
            ttl: Duration::new(ttl.0, ttl.1),
            wait: Duration::new(wait.0, wait.1),
        });
        self
    }

    /// `single_flight = ...`.
    pub const fn single_flight(mut self, on: bool) -> Self {
        self.single_flight = on;
        self
    }

    /// `cache_none`, and its TTL (`cache_none(ttl = ...)`; [`Site::none_profile`] for a
    /// profile).
    pub const fn cache_none(mut self, ttl: Option<(u64, u32)>) -> Self {
        self.cache_none = true;
        if let Some((secs, nanos)) = ttl {
            self.none_ttl = Some(SiteTtl::Fixed(Duration::new(secs, nanos)));
        }
        self
    }

    /// `cache_none(ttl = profile("name"))`.
    pub const fn none_profile(mut self, name: &'static str) -> Self {
        self.cache_none = true;
        self.none_ttl = Some(SiteTtl::Profile(name));
        self
    }

    /// The options without per-call tags, built once.
    pub(super) fn options(&'static self) -> &'static Options {
        self.options.get_or_init(|| self.build())
    }

    pub(super) fn build(&self) -> Options {
        self.build_tagged(self.tags.iter().map(|t| String::from(*t)), self.tags.len())
    }

    /// The options of a call at this site with `tags` (about `count` of them; duplicates
    /// dropped, as [`Options::tags`] does), built in one go: no builder step moves them.
    pub(super) fn build_tagged(
        &self,
        tags: impl IntoIterator<Item = String>,
        count: usize,
    ) -> Options {
        let mut unique = crate::config::Tags::with_capacity(count);
        crate::config::push_unique(&mut unique, tags);
        Options {
            ttl: self.ttl.ttl(),
            tags: unique,
            name: Cow::Borrowed(self.name),
            stale: self.stale.unwrap_or(Duration::ZERO),
            stale_if_error: self.stale_if_error.unwrap_or(Duration::ZERO),
            jitter: self.jitter,
            early_refresh: self.early_refresh,
            lock: self.lock,
            single_flight: self.single_flight,
            tag_keys: OnceLock::new(),
        }
    }

    /// The policy of `-> Option<T>` and `-> Result<Option<T>, E>`.
    pub(super) fn optional(&self) -> crate::Optional {
        crate::Optional {
            cache_none: self.cache_none,
            none_ttl: self.none_ttl.map(SiteTtl::ttl),
        }
    }
}

/// A [`Ttl`] a `static` can hold.
#[derive(Debug, Clone, Copy)]
enum SiteTtl {
    Default,
    Fixed(Duration),
    Profile(&'static str),
}

impl SiteTtl {
    fn ttl(self) -> Ttl {
        match self {
            SiteTtl::Default => Ttl::Default,
            SiteTtl::Fixed(d) => Ttl::Fixed(d),
            SiteTtl::Profile(name) => Ttl::Profile(Cow::Borrowed(name)),
        }
    }
}

/// One call of a `#[cached]` function, as its generated code hands it over: what the call is
/// made of, before the body. [`cached`] builds the key and the per-call tags from it (the
/// placeholders' borrows of the arguments end there), and `Ready::run_*` then takes the body,
/// which may move the arguments; the call's options are built from the tags when its future
/// starts.
#[derive(Debug)]
pub struct CachedCall<C, K, G, S> {
    /// The cache: a `&Cache` ([`cache_ref`], [`default_cache_ref`]) or a `Cache`
    /// ([`cache_of`]).
    pub cache: C,
    /// The key (a `KeySource`): a template or a [`HashKey`].
    pub key: K,
    /// The tags that interpolate arguments (a `TagList`), `()` when none does.
    pub tags: G,
    /// What the call site fixes.
    pub site: &'static Site,
    /// The stored type, its shape and whether it is kept decoded ([`Probe`]).
    pub stored: Stored<S>,
}

/// What a `#[cached]` call's options are made from ([`TagList::Options`]): the call's own
/// tags, when they interpolate arguments, or nothing but the call site ([`SiteOptions`]).
/// A first look at the memory store judges a hit by the site's options and these tags
/// ([`look`](Self::look)); the options themselves are built only when the call goes past it
/// ([`build`](Self::build)): a hit builds, moves and drops no [`Options`].
pub trait CallTags {
    /// A tag.
    type Tag: AsRef<str>;
    /// The options: owned, or the site's.
    type Built: Borrow<Options>;
    /// The options a hit at `site` is judged with, and the call's tags.
    fn look(&self, site: &'static Site) -> (&Options, &[Self::Tag]);
    /// The options of a call at `site`.
    fn build(&self, site: &'static Site) -> Self::Built;
}

/// Per-call tags: [`TagText`]s (what tuples of templates give) or strings (past 12 tags).
impl<T: AsRef<str>, const N: usize> CallTags for [T; N] {
    type Tag = T;
    type Built = Options;

    #[inline]
    fn look(&self, site: &'static Site) -> (&Options, &[T]) {
        // The site's options hold no tag: its tags are all per call.
        (site.options(), self)
    }

    #[inline]
    fn build(&self, site: &'static Site) -> Options {
        site.build_tagged(self.iter().map(|t| String::from(t.as_ref())), N)
    }
}

/// The options of a call site whose tags interpolate no argument: built once
/// ([`Site::options`]), so a call carries, builds and drops none.
#[derive(Debug, Clone, Copy)]
pub struct SiteOptions;

impl CallTags for SiteOptions {
    type Tag = String;
    type Built = &'static Options;

    #[inline]
    fn look(&self, site: &'static Site) -> (&Options, &[String]) {
        let opts = site.options();
        (opts, &opts.tags)
    }

    #[inline]
    fn build(&self, site: &'static Site) -> &'static Options {
        site.options()
    }
}

/// A `#[cached]` call's options as the engine takes them ([`crate::read_through::CallOptions`],
/// by reference: the call's future keeps its tags, and the engine's futures hold a pointer
/// to them, not a copy): its site and its tags.
pub(super) struct SiteCall<O> {
    pub(super) site: &'static Site,
    pub(super) tags: O,
}

impl<O: CallTags> crate::read_through::CallOptions for &SiteCall<O> {
    type Tag = O::Tag;
    type Built = O::Built;

    #[inline]
    fn look(&self) -> (&Options, &[O::Tag]) {
        self.tags.look(self.site)
    }

    #[inline]
    fn build(self) -> O::Built {
        self.tags.build(self.site)
    }
}

/// The cache of a `#[cached]` call and what its options are built from ([`CallTags`]): a
/// [`Ready`] call's first parameter ([`CallTarget`]).
#[derive(Debug)]
pub struct Target<C, O> {
    cache: C,
    opts: O,
}

/// What a [`Ready`] call runs against: its cache and what its options are built from.
pub trait CallTarget {
    /// The cache ([`AsCache`]).
    type Cache: AsCache;
    /// What the options are built from.
    type Options: CallTags;
    /// The two apart.
    fn split(self) -> (Self::Cache, Self::Options);
}

impl<C: AsCache, O: CallTags> CallTarget for Target<C, O> {
    type Cache = C;
    type Options = O;

    #[inline]
    fn split(self) -> (C, O) {
        (self.cache, self.opts)
    }
}

/// A `#[cached]` call with its key and tags built, waiting for its body (`run_plain`,
/// `run_result`, `run_option`, `run_result_option`: one per return shape).
#[derive(Debug)]
pub struct Ready<C, S> {
    /// The cache, and what the options are built from: the call's tags, or the site
    /// ([`Target`]).
    pub(super) target: C,
    pub(super) key: Result<KeyText, HashError>,
    pub(super) site: &'static Site,
    pub(super) stored: Stored<S>,
}

/// Builds the full key (the cache's prefix, then the template or the hash) and the per-call
/// tags of a call (its options are built from them when its future starts).
#[inline]
pub fn cached<C, K, G, S>(call: CachedCall<C, K, G, S>) -> Ready<Target<C, G::Options>, S>
where
    C: AsCache,
    K: KeySource,
    G: TagList,
{
    let CachedCall {
        cache,
        key,
        tags,
        site,
        stored,
    } = call;
    let key = key.full_key(cache.as_cache());
    let opts = tags.options();
    Ready {
        target: Target { cache, opts },
        key,
        site,
        stored,
    }
}

impl<C: CallTarget, S> Ready<C, S> {
    /// Looks the call's key up in its cache or runs `compute`, following the call mode. A key
    /// that could not be built (an argument's `Serialize` failed) runs the computation without
    /// the cache, logged and counted. With a decoded copy (the stored type is `Clone`), the
    /// memory store keeps one for later hits.
    async fn go<R, P, F, Fut>(self, policy: P, compute: F) -> R
    where
        P: ReturnPolicy<R, Stored = S>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = R>,
    {
        let (cache, tags) = self.target.split();
        let cache = cache.as_cache();
        let opts = SiteCall {
            site: self.site,
            tags,
        };
        match begin(cache, self.key, self.site.options()) {
            Begin::Normal(key) => {
                cache
                    .cached_full(key, &opts, policy, self.stored.decoded, compute)
                    .await
            }
            // Boxed: its future would make every call's future larger.
            Begin::Special(call) => {
                let keep_decoded = self.stored.decoded.is_some();
                Box::pin(async move {
                    let built = opts.build();
                    special(cache, call, built.borrow(), policy, keep_decoded, compute).await
                })
                .await
            }
        }
    }
}

// One `run_*` per return shape, each bounding only the stored type (`T: CacheValue`): the generated
// code spans the call at the user's return type, so that a type that is not cacheable is
// reported there, once per missing trait, with `CacheValue`'s message.

impl<C: CallTarget, T> Ready<C, T> {
    /// The body of a `#[cached]` function returning `T`: the value is stored.
    pub fn run_plain<F, Fut>(self, compute: F) -> impl Future<Output = T>
    where
        T: CacheValue,
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        self.go(crate::Plain, compute)
    }

    /// The body of a `#[cached]` function returning `Result<T, E>`: only `Ok` is stored.
    pub fn run_result<E, F, Fut>(self, compute: F) -> impl Future<Output = Result<T, E>>
    where
        T: CacheValue,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.go(crate::Fallible, compute)
    }
}

impl<C: CallTarget, T> Ready<C, Option<T>> {
    /// The body of a `#[cached]` function returning `Option<T>`: `None` is stored only with
    /// `cache_none`.
    pub fn run_option<F, Fut>(self, compute: F) -> impl Future<Output = Option<T>>
    where
        T: CacheValue,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let policy = self.site.optional();
        self.go(policy, compute)
    }

    /// The body of a `#[cached]` function returning `Result<Option<T>, E>`: `Ok(Some)` is
    /// stored, `Ok(None)` only with `cache_none`, `Err` never.
    pub fn run_result_option<E, F, Fut>(
        self,
        compute: F,
    ) -> impl Future<Output = Result<Option<T>, E>>
    where
        T: CacheValue,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<T>, E>>,
    {
        let policy = self.site.optional();
        self.go(policy, compute)
    }
}

/// Where a `#[cached]` call goes, by call mode and key.
pub(super) enum Begin {
    /// A cached call of this full key: what nearly every call is (inline when short).
    Normal(KeyText),
    /// Any other mode, or a key that could not be built ([`special`]).
    Special(Special),
}

/// The calls that are not [`Begin::Normal`].
pub(super) enum Special {
    /// A `Capture` poll: the key was handed over; the call stays pending.
    Captured,
    /// The key could not be built (logged, counted): compute without the cache.
    Uncached,
    /// `cachette::refresh`: recompute and store, without a lookup.
    Refresh(String),
    /// A `Put` poll (`#[cache_put(call)]`, `cachette::put`): store the value handed over.
    Put(Result<String, HashError>),
}

/// Takes the call mode (see the module's documentation) and sorts the call out: inlined for
/// what nearly every call is, a normal call of a key that was built.
#[inline]
pub(super) fn begin(cache: &Cache, key: Result<KeyText, HashError>, opts: &Options) -> Begin {
    let mode = take_mode();
    match key {
        Ok(key) if mode == Mode::Normal => Begin::Normal(key),
        key => begin_in(mode, cache, key, opts),
    }
}

/// [`begin`] in `mode`.
fn begin_in(mode: Mode, cache: &Cache, key: Result<KeyText, HashError>, opts: &Options) -> Begin {
    let key = key.map(KeyText::into_string);
    if mode == Mode::Capture {
        CAPTURED.with(|c| {
            *c.borrow_mut() = Some(Captured::Key {
                cache: cache.clone(),
                key,
            })
        });
        return Begin::Special(Special::Captured);
    }
    if mode == Mode::Put {
        return Begin::Special(Special::Put(key));
    }
    match key {
        Err(e) => {
            key_failure(opts, &e);
            Begin::Special(Special::Uncached)
        }
        Ok(key) if mode == Mode::Refresh => Begin::Special(Special::Refresh(key)),
        Ok(key) => Begin::Normal(key.into()),
    }
}

/// Runs a [`Special`] call: what [`cached`] and the background variant share.
pub(super) async fn special<R, P, F, Fut>(
    cache: &Cache,
    call: Special,
    opts: &Options,
    policy: P,
    keep_decoded: bool,
    compute: F,
) -> R
where
    P: ReturnPolicy<R>,
    F: FnOnce() -> Fut,
    Fut: Future<Output = R>,
{
    match call {
        Special::Captured => std::future::pending::<R>().await,
        Special::Uncached => compute().await,
        Special::Refresh(key) => {
            cache
                .refresh_full(key, opts, policy, keep_decoded, compute)
                .await
        }
        Special::Put(key) => coupled::store_here(cache, key, opts, &policy, keep_decoded).await,
    }
}

pub(super) fn key_failure(opts: &Options, e: &HashError) {
    metrics::counter!("cachette_key_errors_total", "cache" => crate::stats::label(&opts.name))
        .increment(1);
    rate_limited!(
        warn,
        cache = %opts.name, error = %e,
        "cannot build the cache key; running without the cache"
    );
}
