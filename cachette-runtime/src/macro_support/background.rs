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

use super::{AsCache, Begin, CallTarget, Ready, SiteCall, begin, special};
use crate::CacheValue;
use crate::policy::ReturnPolicy;
use crate::read_through::CallOptions;
use std::borrow::Borrow;
use std::future::Future;

impl<C: CallTarget, S> Ready<C, S> {
    /// `go` with background refreshes: the same steps, but the normal call is
    /// `cached_spawn_full`. Two functions rather than one generic over where refreshes run: a
    /// trait method returning `impl Future` (tried) loses the future's `Send` for computations
    /// capturing higher-ranked types (`fn(&str)`: `tests/ui/pass/background-refresh.rs`).
    async fn go_background<R, P, F, Fut>(self, policy: P, compute: F) -> R
    where
        P: ReturnPolicy<R, Stored = S> + Clone + Send + Sync + 'static,
        R: Send + 'static,
        S: Send + Sync,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = R> + Send + 'static,
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
                    .cached_spawn_full(key, &opts, policy, self.stored.decoded, compute)
                    .await
            }
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

impl<C: CallTarget, T> Ready<C, T> {
    /// `run_plain` with background refreshes.
    pub fn run_plain_background<F, Fut>(self, compute: F) -> impl Future<Output = T>
    where
        T: CacheValue + Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
    {
        self.go_background(crate::Plain, compute)
    }

    /// `run_result` with background refreshes.
    pub fn run_result_background<E, F, Fut>(self, compute: F) -> impl Future<Output = Result<T, E>>
    where
        T: CacheValue + Send + Sync + 'static,
        E: Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        self.go_background(crate::Fallible, compute)
    }
}

impl<C: CallTarget, T> Ready<C, Option<T>> {
    /// `run_option` with background refreshes.
    pub fn run_option_background<F, Fut>(self, compute: F) -> impl Future<Output = Option<T>>
    where
        T: CacheValue + Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Option<T>> + Send + 'static,
    {
        let policy = self.site.optional();
        self.go_background(policy, compute)
    }

    /// `run_result_option` with background refreshes.
    pub fn run_result_option_background<E, F, Fut>(
        self,
        compute: F,
    ) -> impl Future<Output = Result<Option<T>, E>>
    where
        T: CacheValue + Send + Sync + 'static,
        E: Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Option<T>, E>> + Send + 'static,
    {
        let policy = self.site.optional();
        self.go_background(policy, compute)
    }
}
