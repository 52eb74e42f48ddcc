//! `#[cached(..., background_refresh)]`: cached calls whose refreshes run in a background
//! task ([`Cache::cached_with_spawn`]): an early refresh (XFetch) serves the fresh hit to the
//! caller picked to refresh, stale-while-revalidate serves the stale value to every caller,
//! and the recomputation runs in a task of the caller's Tokio runtime, as a flight like any
//! other (one per key in this process; what it shares obeys ARCHITECTURE.md's *Sharing*).
//!
//! The computation is moved into that task, so it and its output must be `Send + 'static`:
//! the macro rejects borrowed arguments and `&self` receivers with a compile error; other
//! non-`'static` types (a type parameter without a `'static` bound) fail on these bounds.
//! Call modes (`key_of`, `evict`, `refresh`) work as for [`cached`](super::cached).

use super::{Begin, begin, special};
use crate::config::Options;
use crate::keys::hash::HashError;
use crate::policy::{DecodedCopy, ReturnPolicy};
use crate::{Cache, CacheValue};
use std::future::Future;
use std::marker::PhantomData;

/// [`cached`](super::cached) with background refreshes.
pub async fn cached_background<R, P, F, Fut>(
    cache: &Cache,
    key: Result<String, HashError>,
    opts: &Options,
    policy: P,
    decoded: Option<DecodedCopy<P::Stored>>,
    compute: F,
) -> R
where
    R: Send + 'static,
    P: ReturnPolicy<R> + Clone + Send + Sync + 'static,
    P::Stored: Send + Sync,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = R> + Send + 'static,
{
    match begin(cache, key, opts) {
        Begin::Normal(key) => {
            cache
                .cached_spawn_full(key, opts, policy, decoded, compute)
                .await
        }
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

/// [`cached_plain`](super::cached_plain) with background refreshes.
pub fn cached_plain_background<T, F, Fut>(
    _stored: PhantomData<T>,
    decoded: Option<DecodedCopy<T>>,
    cache: &Cache,
    key: Result<String, HashError>,
    opts: &Options,
    compute: F,
) -> impl Future<Output = T>
where
    T: CacheValue + Send + Sync + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    cached_background(cache, key, opts, crate::Plain, decoded, compute)
}

/// [`cached_fallible`](super::cached_fallible) with background refreshes.
pub fn cached_fallible_background<T, E, F, Fut>(
    _stored: PhantomData<T>,
    decoded: Option<DecodedCopy<T>>,
    cache: &Cache,
    key: Result<String, HashError>,
    opts: &Options,
    compute: F,
) -> impl Future<Output = Result<T, E>>
where
    T: CacheValue + Send + Sync + 'static,
    E: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
{
    cached_background(cache, key, opts, crate::Fallible, decoded, compute)
}

/// [`cached_optional`](super::cached_optional) with background refreshes.
pub fn cached_optional_background<T, F, Fut>(
    _stored: PhantomData<T>,
    decoded: Option<DecodedCopy<Option<T>>>,
    cache: &Cache,
    key: Result<String, HashError>,
    opts: &Options,
    policy: crate::Optional,
    compute: F,
) -> impl Future<Output = Option<T>>
where
    T: CacheValue + Send + Sync + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Option<T>> + Send + 'static,
{
    cached_background(cache, key, opts, policy, decoded, compute)
}

/// [`cached_fallible_optional`](super::cached_fallible_optional) with background refreshes.
pub fn cached_fallible_optional_background<T, E, F, Fut>(
    _stored: PhantomData<T>,
    decoded: Option<DecodedCopy<Option<T>>>,
    cache: &Cache,
    key: Result<String, HashError>,
    opts: &Options,
    policy: crate::Optional,
    compute: F,
) -> impl Future<Output = Result<Option<T>, E>>
where
    T: CacheValue + Send + Sync + 'static,
    E: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<Option<T>, E>> + Send + 'static,
{
    cached_background(cache, key, opts, policy, decoded, compute)
}
