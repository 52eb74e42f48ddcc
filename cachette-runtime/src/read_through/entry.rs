//! The entry points of a cached call: the manual API (`get_or_compute`, `cached_with`,
//! `cached_with_spawn`, `refresh`) and the macros' (`cached_full`, `cached_spawn_full`,
//! `refresh_full`), and a call's first look at the memory store.

use super::*;

impl Cache {
    /// Returns the cached value of `key`, or runs `compute`, stores its value and returns it.
    ///
    /// This is the entry point of `#[cached]`. It never fails because of the cache: when the
    /// backend is slow, down or returns garbage, the computation runs and its value is
    /// returned (the problem is logged, rate-limited, and counted). One round trip on a hit
    /// (entry and tag versions together); on a miss, that lookup, one more if a tag key had to
    /// be created, and one store. Concurrent misses of one key in this process share one
    /// computation (see [`Options::single_flight`]).
    ///
    /// With the memory store, a hit parses nothing (the envelope's header is parsed when the
    /// entry is stored) but decodes the value from its JSON each time: `T` need not be
    /// `Clone`. `#[cached]` on a `Clone` type goes further and keeps one decoded copy per
    /// entry, cloned by later hits.
    ///
    /// `key`: a [`Key`](crate::Key), built with `cachette::key!("user:{}", id)` so that
    /// values are escaped as the attributes escape them, or a string taken as **already
    /// escaped** (see [`keys`](crate::keys#the-manual-api)); the same for every method taking
    /// a key.
    ///
    /// ```
    /// # use cachette_runtime::{Cache, Options};
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), cachette_runtime::Error> {
    /// let cache = Cache::memory(1 << 20);
    /// let opts = Options::new().ttl(Duration::from_secs(600)).tags(["users"]);
    /// let name: String = cache.get_or_compute("user:1", &opts, || async { "Ada".into() }).await;
    /// assert_eq!(name, "Ada");
    /// // A hit: the computation does not run.
    /// let again: String = cache.get_or_compute("user:1", &opts, || async { unreachable!() }).await;
    /// assert_eq!(again, "Ada");
    /// # Ok(()) }
    /// ```
    pub async fn get_or_compute<T, F, Fut>(
        &self,
        key: impl AsRef<str>,
        opts: &Options,
        compute: F,
    ) -> T
    where
        T: CacheValue,
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        self.cached_with(key, opts, Plain, compute).await
    }

    /// Like [`get_or_compute`](Self::get_or_compute) for a fallible computation: only `Ok`
    /// values are stored; an `Err` is returned as it is and nothing is cached. Callers that
    /// were waiting on the same key's computation run their own when it fails (an error is
    /// not `Clone` in general; see [`FallibleShared`](crate::FallibleShared)).
    ///
    /// ```
    /// # use cachette_runtime::{Cache, Options};
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), cachette_runtime::Error> {
    /// let cache = Cache::memory(1 << 20);
    /// let failed: Result<u32, std::io::Error> = cache
    ///     .get_or_try_compute("n", &Options::new(), || async { Err(std::io::Error::other("db down")) })
    ///     .await;
    /// assert!(failed.is_err());
    /// assert!(!cache.exists("n").await?); // errors are not stored
    /// let ok: Result<u32, std::io::Error> =
    ///     cache.get_or_try_compute("n", &Options::new(), || async { Ok(5) }).await;
    /// assert_eq!(ok.ok(), Some(5));
    /// # Ok(()) }
    /// ```
    pub async fn get_or_try_compute<T, E, F, Fut>(
        &self,
        key: impl AsRef<str>,
        opts: &Options,
        compute: F,
    ) -> Result<T, E>
    where
        T: CacheValue,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.cached_with(key, opts, Fallible, compute).await
    }

    /// The general form of [`get_or_compute`](Self::get_or_compute): `policy` says which
    /// return values are stored and how a stored value becomes a return value
    /// ([`Plain`], [`Fallible`], [`Optional`](crate::Optional), ...).
    ///
    /// With [`Options::stale`], the caller that finds a stale entry first refreshes it
    /// inline (and gets the new value); everyone else gets the stale value at once. Use
    /// [`cached_with_spawn`](Self::cached_with_spawn) to refresh in the background instead.
    ///
    /// ```
    /// use cachette_runtime::{Cache, Optional, Options, Ttl};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = Cache::memory(1 << 20);
    /// // Negative caching: a `None` is stored too, for 30 seconds.
    /// let policy = Optional { cache_none: true, none_ttl: Some(Ttl::Fixed(Duration::from_secs(30))) };
    /// let found: Option<u32> = cache
    ///     .cached_with("user:404", &Options::new(), policy, || async { None })
    ///     .await;
    /// assert_eq!(found, None);
    /// assert!(cache.exists("user:404").await.unwrap());
    /// # }
    /// ```
    pub async fn cached_with<R, P, F, Fut>(
        &self,
        key: impl AsRef<str>,
        opts: &Options,
        policy: P,
        compute: F,
    ) -> R
    where
        P: ReturnPolicy<R>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = R>,
    {
        let full_key = self.full_key(key.as_ref()).into();
        self.cached_full(full_key, opts, policy, None, compute)
            .await
    }

    /// [`cached_with`](Self::cached_with) of a full key (namespace included), letting the
    /// memory store keep a decoded copy of the value when `decoded` is given (what
    /// `#[cached]` calls). The options are built only past the first look ([`CallOptions`]):
    /// a memory hit of a `#[cached]` call builds none.
    pub(crate) async fn cached_full<R, P, O, F, Fut>(
        &self,
        full_key: KeyText,
        opts: O,
        policy: P,
        decoded: Option<DecodedCopy<P::Stored>>,
        compute: F,
    ) -> R
    where
        P: ReturnPolicy<R>,
        O: CallOptions,
        F: FnOnce() -> Fut,
        Fut: Future<Output = R>,
    {
        let (look, tags) = opts.look();
        let span = call_span(look);
        let start = match self
            .first_look(full_key, look, tags, &policy, decoded, &span)
            .await
        {
            ControlFlow::Break(hit) => return hit,
            ControlFlow::Continue(start) => start,
        };
        // Boxed: the path beyond a memory hit is a large future, which would otherwise make
        // every call's future (moved on each call) as large.
        Box::pin(async move {
            let built = opts.build();
            let opts = built.borrow();
            self.attributed(
                &opts.name,
                async {
                    match self.run(start, opts, &policy, decoded, compute).await {
                        Step::Done(r) => r,
                        Step::Revalidate { stale, fill } => {
                            self.fill(fill, &policy, opts, Some(stale), Some(CallOutcome::Stale))
                                .await
                        }
                        Step::Refresh { fresh, fill } => {
                            report(CallOutcome::Miss);
                            self.fill(fill, &policy, opts, Some(fresh), Some(CallOutcome::Hit))
                                .await
                        }
                    }
                }
                .instrument(span),
            )
            .await
        })
        .await
    }

    /// A call's first step: on a store that answers without waiting (the memory store), a
    /// fresh hit is served at once (`Break`); otherwise (`Continue`) where
    /// [`run`](Self::run) starts. Such a store waits for nothing, so the call spends a unit
    /// of the task's cooperative budget first (yielding once the budget is spent, no
    /// allocation): a loop of hits lets the runtime's other tasks run.
    async fn first_look<R, P: ReturnPolicy<R>, T: AsRef<str>>(
        &self,
        full_key: KeyText,
        opts: &Options,
        tags: &[T],
        policy: &P,
        decoded: Option<DecodedCopy<P::Stored>>,
        span: &tracing::Span,
    ) -> ControlFlow<R, Start<P::Stored>> {
        // The first look asks with the call's tags, not the store's tag keys (the store names
        // its own).
        if !self.store().answers_now() {
            return ControlFlow::Continue(Start::Key(full_key.into_string()));
        }
        tokio::task::coop::consume_budget().await;
        let started = Instant::now();
        if self.store().settles()
            && let Err(e) = self.store().settle().await
        {
            // As after a failed lookup: no second wait for the store in this call.
            self.log_error(&self.recorder().log_backend, &opts.name, "fetch", &e);
            let key = full_key.as_str();
            return ControlFlow::Continue(Start::Looked(Box::new(Looked {
                first: (self.flights().mark(key), Lookup::failed()),
                full_key: full_key.into_string(),
                tags: tags.len(),
                refresh_early: None,
                ttl: self.first_ttl(opts),
                started,
            })));
        }
        let _entered = span.enter();
        match self.look_now(full_key, opts, tags, policy, decoded, started) {
            Ok(hit) => ControlFlow::Break(hit),
            Err(start) => ControlFlow::Continue(start),
        }
    }

    /// A call's first look at a store that answers without waiting, without an `.await`: a
    /// fresh hit that is not refreshed early is served here (counted and reported as by
    /// [`run`](Self::run)); anything else is handed to `run` with what was found.
    fn look_now<R, P: ReturnPolicy<R>, T: AsRef<str>>(
        &self,
        full_key: KeyText,
        opts: &Options,
        tags: &[T],
        policy: &P,
        decoded: Option<DecodedCopy<P::Stored>>,
        started: Instant,
    ) -> std::result::Result<R, Start<P::Stored>> {
        let ttl = self.first_ttl(opts);
        let key = full_key.as_str();
        let mark = self.flights().mark(key);
        let Some(found) = self.store().lookup_tags_now(key, tags, started) else {
            return Err(Start::Key(full_key.into_string()));
        };
        let (state, now_ms, quiet) = self.classify_now(key, tags, opts, decoded, &found);
        let refresh_early = match state {
            Freshness::Fresh(value, meta) if quiet || !self.refresh_early(opts, meta, now_ms) => {
                self.recorder().record_hit(&opts.name, started);
                tracing::debug!(cache = %opts.name, key = %key, "cache hit");
                report(CallOutcome::Hit);
                return Ok(policy.restore(value));
            }
            Freshness::Fresh(..) => Some(true),
            _ => None,
        };
        Err(Start::Looked(Box::new(Looked {
            full_key: full_key.into_string(),
            first: (mark, Lookup::found(state, now_ms, found)),
            tags: tags.len(),
            refresh_early,
            ttl,
            started,
        })))
    }

    /// The TTL a first look resolves: a profile's on every call (an unknown one is counted per
    /// call); a fixed TTL only when a fill may follow.
    fn first_ttl(&self, opts: &Options) -> Option<Duration> {
        matches!(opts.ttl, crate::config::Ttl::Profile(_))
            .then(|| self.ttl_for(&opts.ttl, &opts.name))
    }

    /// The state machine of a call ([`Call::run`]) from where its first look left it; on a
    /// cache that stores nothing, the computation.
    async fn run<'o, R, P: ReturnPolicy<R>, F: Compute<R>>(
        &'o self,
        start: Start<P::Stored>,
        opts: &'o Options,
        policy: &'o P,
        decoded: Option<DecodedCopy<P::Stored>>,
        compute: F,
    ) -> Step<R, P::Stored, F> {
        if self.is_disabled() {
            self.recorder().record(Event::Miss, &opts.name);
            report(CallOutcome::Bypass);
            return Step::Done(compute().await);
        }
        let (full_key, first, refresh_early, resolved) = match start {
            Start::Key(full_key) => (full_key, None, None, (None, Instant::now())),
            Start::Looked(looked) => {
                let Looked {
                    full_key,
                    first,
                    tags,
                    refresh_early,
                    ttl,
                    started,
                } = *looked;
                // The first look's lookup stands only if it read these options' tags (building
                // drops a tag rendered twice); otherwise the call looks again.
                let stands = tags == opts.tags.len();
                let first = stands.then_some(first);
                (
                    full_key,
                    first,
                    refresh_early.filter(|_| stands),
                    (ttl, started),
                )
            }
        };
        let call = Call::new(self, full_key, opts, policy, decoded, resolved);
        call.run(first, refresh_early, compute).await
    }

    /// Like [`cached_with`](Self::cached_with), but refreshes run in a background task: a
    /// stale-while-revalidate refresh (every caller, the one that triggered it included, gets
    /// the stale value at once) and an early refresh (XFetch: the caller picked to refresh
    /// gets the fresh hit at once). The refresh is a flight like any other: one at a time
    /// per key in this process, and a value it shares obeys the same rule (ARCHITECTURE.md,
    /// *Sharing*). The computation must own what it uses (`'static`, `Send`); without a
    /// Tokio runtime the refresh is skipped.
    ///
    /// ```
    /// # use cachette_runtime::{Cache, Options};
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), cachette_runtime::Error> {
    /// use cachette_runtime::Plain;
    /// let cache = Cache::memory(1 << 20);
    /// let opts = Options::new().stale(Duration::from_secs(60));
    /// let n: u32 = cache.cached_with_spawn("k", &opts, Plain, || async { 1 }).await;
    /// assert_eq!(n, 1);
    /// # Ok(()) }
    /// ```
    pub async fn cached_with_spawn<R, P, F, Fut>(
        &self,
        key: impl AsRef<str>,
        opts: &Options,
        policy: P,
        compute: F,
    ) -> R
    where
        R: Send + 'static,
        P: ReturnPolicy<R> + Clone + Send + Sync + 'static,
        P::Stored: Send + Sync,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = R> + Send + 'static,
    {
        let full_key = self.full_key(key.as_ref()).into();
        self.cached_spawn_full(full_key, opts, policy, None, compute)
            .await
    }

    /// [`cached_with_spawn`](Self::cached_with_spawn) of a full key, with the memory fast
    /// path and decoded copies of [`cached_full`](Self::cached_full) (what `#[cached(...,
    /// background_refresh)]` calls).
    pub(crate) async fn cached_spawn_full<R, P, O, F, Fut>(
        &self,
        full_key: KeyText,
        opts: O,
        policy: P,
        decoded: Option<DecodedCopy<P::Stored>>,
        compute: F,
    ) -> R
    where
        R: Send + 'static,
        P: ReturnPolicy<R> + Clone + Send + Sync + 'static,
        P::Stored: Send + Sync,
        O: CallOptions,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = R> + Send + 'static,
    {
        let (look, tags) = opts.look();
        let span = call_span(look);
        let start = match self
            .first_look(full_key, look, tags, &policy, decoded, &span)
            .await
        {
            ControlFlow::Break(hit) => return hit,
            ControlFlow::Continue(start) => start,
        };
        let built = opts.build();
        let opts: &Options = built.borrow();
        let step = Box::pin(
            self.attributed(
                &opts.name,
                self.run(start, opts, &policy, decoded, compute)
                    .instrument(span),
            ),
        )
        .await;
        let (served, fill) = match step {
            Step::Done(r) => return r,
            Step::Revalidate { stale, fill } => {
                report(CallOutcome::Stale);
                (stale, fill)
            }
            Step::Refresh { fresh, fill } => {
                report(CallOutcome::Hit);
                (fresh, fill)
            }
        };
        let restored = policy.restore(served);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                let cache = self.clone();
                let opts = opts.clone();
                let span = tracing::debug_span!("cachette.revalidate", cache = %opts.name);
                handle.spawn(
                    async move {
                        let refresh = cache.fill(fill, &policy, &opts, None, None);
                        let _ = cache.attributed(&opts.name, refresh).await;
                    }
                    .instrument(span),
                );
            }
            // Dropping the fill drops its flight's guard: waiting callers elect a leader.
            Err(_) => drop(fill),
        }
        restored
    }

    /// Recomputes the value of `key` and stores it, without looking it up first (cache
    /// warming, or refreshing after an out-of-band change). Returns the computed value. The
    /// tag versions are read before the computation starts, as on a miss.
    ///
    /// ```
    /// # use cachette_runtime::{Cache, Options};
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), cachette_runtime::Error> {
    /// use cachette_runtime::Plain;
    /// let cache = Cache::memory(1 << 20);
    /// cache.set("k", &1u32, &Options::new()).await?;
    /// // Recomputed and stored without a lookup.
    /// let n: u32 = cache.refresh("k", &Options::new(), Plain, || async { 2 }).await;
    /// assert_eq!(n, 2);
    /// assert_eq!(cache.get::<u32>("k").await?, Some(2));
    /// # Ok(()) }
    /// ```
    pub async fn refresh<R, P, F, Fut>(
        &self,
        key: impl AsRef<str>,
        opts: &Options,
        policy: P,
        compute: F,
    ) -> R
    where
        P: ReturnPolicy<R>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = R>,
    {
        self.refresh_full(self.full_key(key.as_ref()), opts, policy, false, compute)
            .await
    }

    /// [`refresh`](Self::refresh) of a full key (namespace included, as
    /// [`cached_full`](Self::cached_full)); `keep_decoded`: the memory store may keep a
    /// decoded copy of the value.
    pub(crate) async fn refresh_full<R, P, F, Fut>(
        &self,
        full_key: String,
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
        if self.is_disabled() {
            return compute().await;
        }
        self.attributed(
            &opts.name,
            self.refresh_looked(full_key, opts, policy, keep_decoded, compute),
        )
        .await
    }

    /// [`refresh_full`](Self::refresh_full) on a backend that stores.
    async fn refresh_looked<R, P: ReturnPolicy<R>, F: Compute<R>>(
        &self,
        full_key: String,
        opts: &Options,
        policy: P,
        keep_decoded: bool,
        compute: F,
    ) -> R {
        let mut call = Call::new(self, full_key, opts, &policy, None, (None, Instant::now()));
        call.keep_decoded = keep_decoded;
        // The key's state too, not only the tag versions: the refreshed value is stored only
        // if nothing was written or deleted at the key meanwhile.
        let read = match self.store().lookup(&call.full_key, &call.tag_keys).await {
            Ok(found) => {
                let seen = Seen::found(found.entry, found.patterns);
                (Some(found.versions), Some(seen))
            }
            Err(e) => {
                self.log_error(&self.recorder().log_backend, &opts.name, "fetch_tags", &e);
                (None, None)
            }
        };
        let fill = call.prepare_fill(read, None, compute).await;
        self.fill(fill, &policy, opts, None, None).await
    }

    pub(super) fn is_disabled(&self) -> bool {
        !self.store().stores()
    }
}
