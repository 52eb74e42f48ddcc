//! What `#[cached]` calls: the entry points per return shape, and the sorting of a call by
//! its mode.

use super::*;

/// The body of a `#[cached]` function: looks `key` (a full key, built with
/// [`KeyBuilder::for_cache`] or [`HashKey::finish_for`]) up in `cache` or runs `compute`,
/// following the call mode. A key that could not be built (an argument's `Serialize` failed) runs the
/// computation without the cache, logged and counted. With `decoded` (the stored type is
/// `Clone`), the memory store keeps a decoded copy of the value for later hits.
pub async fn cached<R, P, F, Fut>(
    cache: &Cache,
    key: Result<String, HashError>,
    opts: &Options,
    policy: P,
    decoded: Option<DecodedCopy<P::Stored>>,
    compute: F,
) -> R
where
    P: ReturnPolicy<R>,
    F: FnOnce() -> Fut,
    Fut: Future<Output = R>,
{
    match begin(cache, key, opts) {
        Begin::Normal(key) => cache.cached_full(key, opts, policy, decoded, compute).await,
        // Boxed: its future would make every call's future larger.
        Begin::Special(call) => {
            Box::pin(special(
                cache,
                call,
                opts,
                policy,
                decoded.is_some(),
                compute,
            ))
            .await
        }
    }
}

/// Where a `#[cached]` call goes, by call mode and key.
pub(super) enum Begin {
    /// A cached call of this full key: what nearly every call is.
    Normal(String),
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

/// Takes the call mode (see the module's documentation) and sorts the call out.
pub(super) fn begin(cache: &Cache, key: Result<String, HashError>, opts: &Options) -> Begin {
    let mode = take_mode();
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
        Ok(key) => Begin::Normal(key),
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

/// [`cached`] for `-> T`. The bound sits on `T` itself and `T` is named by the marker
/// argument, which the generated code spans at the return type: a type that is not cacheable
/// gives a readable error there (one per missing trait), instead of a page of serde bounds.
pub fn cached_plain<T: CacheValue, F, Fut>(
    _stored: PhantomData<T>,
    decoded: Option<DecodedCopy<T>>,
    cache: &Cache,
    key: Result<String, HashError>,
    opts: &Options,
    compute: F,
) -> impl Future<Output = T>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = T>,
{
    cached(cache, key, opts, crate::Plain, decoded, compute)
}

/// [`cached`] for `-> Result<T, E>`: only `Ok` is stored.
pub fn cached_fallible<T: CacheValue, E, F, Fut>(
    _stored: PhantomData<T>,
    decoded: Option<DecodedCopy<T>>,
    cache: &Cache,
    key: Result<String, HashError>,
    opts: &Options,
    compute: F,
) -> impl Future<Output = Result<T, E>>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    cached(cache, key, opts, crate::Fallible, decoded, compute)
}

/// [`cached`] for `-> Option<T>`: `None` is stored only with `policy.cache_none`.
pub fn cached_optional<T: CacheValue, F, Fut>(
    _stored: PhantomData<T>,
    decoded: Option<DecodedCopy<Option<T>>>,
    cache: &Cache,
    key: Result<String, HashError>,
    opts: &Options,
    policy: crate::Optional,
    compute: F,
) -> impl Future<Output = Option<T>>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    cached(cache, key, opts, policy, decoded, compute)
}

/// [`cached`] for `-> Result<Option<T>, E>`: `Ok(Some)` is stored, `Ok(None)` only with
/// `policy.cache_none` (as `None` for [`cached_optional`]), `Err` never.
pub fn cached_fallible_optional<T: CacheValue, E, F, Fut>(
    _stored: PhantomData<T>,
    decoded: Option<DecodedCopy<Option<T>>>,
    cache: &Cache,
    key: Result<String, HashError>,
    opts: &Options,
    policy: crate::Optional,
    compute: F,
) -> impl Future<Output = Result<Option<T>, E>>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Option<T>, E>>,
{
    cached(cache, key, opts, policy, decoded, compute)
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
