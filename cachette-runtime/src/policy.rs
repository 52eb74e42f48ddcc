//! Which return values of a cached computation are stored, and how a stored value becomes a
//! return value again. `#[cached]` picks the policy from the function's return type.

use crate::config::Ttl;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::any::Any;
use std::sync::Arc;

/// A value cachette can store: serializable and deserializable with serde.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be cached: it must implement `serde::Serialize` and `serde::de::DeserializeOwned`",
    label = "this type is not serializable",
    note = "derive them: `#[derive(serde::Serialize, serde::Deserialize)]`"
)]
pub trait CacheValue: Serialize + DeserializeOwned {}

impl<T: Serialize + DeserializeOwned> CacheValue for T {}

/// How a decoded copy of a stored value of type `T` is kept by the embedded memory store and
/// handed out again, for a `T` that is `Clone` (`Send`, `Sync` and `'static` too).
///
/// A memory hit normally decodes the stored JSON into a new `T`. A call that passes a
/// `DecodedCopy` lets the store keep the first value it decodes for an entry (beside the
/// bytes, counted in the entry's weight); later hits of the same entry by the same type then
/// clone that value instead of decoding. The entry's tag versions are still checked on every
/// hit, so an invalidated entry is never served, decoded copy or not. A hit by another type
/// decodes the bytes as usual. `#[cached]` passes one for every stored type it can see is
/// `Clone`; the Redis backend ignores it.
#[doc(hidden)]
pub struct DecodedCopy<T> {
    keep: fn(&T) -> Arc<dyn Any + Send + Sync>,
    take: fn(&(dyn Any + Send + Sync)) -> Option<T>,
}

impl<T> Clone for DecodedCopy<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for DecodedCopy<T> {}

impl<T> std::fmt::Debug for DecodedCopy<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DecodedCopy")
    }
}

impl<T: Clone + Send + Sync + 'static> DecodedCopy<T> {
    /// Decoded copies of a `T`.
    pub fn new() -> Self {
        DecodedCopy {
            keep: |v| Arc::new(v.clone()),
            take: |any| any.downcast_ref::<T>().cloned(),
        }
    }
}

impl<T: Clone + Send + Sync + 'static> Default for DecodedCopy<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> DecodedCopy<T> {
    /// A copy of `value` to keep.
    pub(crate) fn keep(&self, value: &T) -> Arc<dyn Any + Send + Sync> {
        (self.keep)(value)
    }

    /// A clone of a kept copy, when it is a `T`.
    pub(crate) fn take(&self, kept: &(dyn Any + Send + Sync)) -> Option<T> {
        (self.take)(kept)
    }
}

/// Maps a computation's return type `R` to what is stored.
pub trait ReturnPolicy<R> {
    /// The stored type.
    type Stored: CacheValue;
    /// The value to store for `ret`, with a TTL that overrides the call's; `None`: store
    /// nothing.
    fn to_store<'a>(&'a self, ret: &'a R) -> Option<(&'a Self::Stored, Option<&'a Ttl>)>;
    /// The return value for a stored value.
    fn restore(&self, stored: Self::Stored) -> R;
    /// What callers waiting on the same computation decode (single-flight). By default
    /// what is stored; `Optional` shares a `None` even when it does not store it.
    fn share<'a>(&'a self, ret: &'a R) -> Option<&'a Self::Stored> {
        self.to_store(ret).map(|(v, _)| v)
    }
    /// Whether `ret` is a failure (for stale-if-error).
    fn is_error(&self, _ret: &R) -> bool {
        false
    }
    /// A failure shared as it is with waiting callers, when it can be cloned.
    fn share_error(&self, _ret: &R) -> Option<Arc<dyn Any + Send + Sync>> {
        None
    }
    /// A waiting caller's copy of a shared failure.
    fn restore_error(&self, _shared: &(dyn Any + Send + Sync)) -> Option<R> {
        None
    }
}

/// Every value is stored (`-> T`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Plain;

impl<T: CacheValue> ReturnPolicy<T> for Plain {
    type Stored = T;
    fn to_store<'a>(&'a self, ret: &'a T) -> Option<(&'a T, Option<&'a Ttl>)> {
        Some((ret, None))
    }
    fn restore(&self, stored: T) -> T {
        stored
    }
}

/// `Ok` values are stored; an `Err` passes through and nothing is stored (`-> Result<T, E>`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Fallible;

impl<T: CacheValue, E> ReturnPolicy<Result<T, E>> for Fallible {
    type Stored = T;
    fn to_store<'a>(&'a self, ret: &'a Result<T, E>) -> Option<(&'a T, Option<&'a Ttl>)> {
        ret.as_ref().ok().map(|v| (v, None))
    }
    fn restore(&self, stored: T) -> Result<T, E> {
        Ok(stored)
    }
    fn is_error(&self, ret: &Result<T, E>) -> bool {
        ret.is_err()
    }
}

/// Like [`Fallible`], for an error type that is `Clone`: callers waiting on the same
/// computation get a clone of its error instead of running their own computation.
#[derive(Debug, Clone, Copy, Default)]
pub struct FallibleShared;

impl<T: CacheValue, E: Clone + Send + Sync + 'static> ReturnPolicy<Result<T, E>>
    for FallibleShared
{
    type Stored = T;
    fn to_store<'a>(&'a self, ret: &'a Result<T, E>) -> Option<(&'a T, Option<&'a Ttl>)> {
        ret.as_ref().ok().map(|v| (v, None))
    }
    fn restore(&self, stored: T) -> Result<T, E> {
        Ok(stored)
    }
    fn is_error(&self, ret: &Result<T, E>) -> bool {
        ret.is_err()
    }
    fn share_error(&self, ret: &Result<T, E>) -> Option<Arc<dyn Any + Send + Sync>> {
        match ret {
            Err(e) => Some(Arc::new(e.clone())),
            Ok(_) => None,
        }
    }
    fn restore_error(&self, shared: &(dyn Any + Send + Sync)) -> Option<Result<T, E>> {
        shared.downcast_ref::<E>().map(|e| Err(e.clone()))
    }
}

/// `Some` values are stored; `None` only with `cache_none` (negative caching), for
/// `none_ttl` when given (`-> Option<T>`).
///
/// The same policy for `-> Result<Option<T>, E>`: `Ok(Some)` is stored, `Ok(None)` as a `None`
/// is (only with `cache_none`, for `none_ttl` when given), an `Err` never.
///
/// ```
/// use cachette_runtime::{Cache, Optional, Options};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let cache = Cache::memory(1 << 20);
/// let found: Result<Option<u32>, String> = cache
///     .cached_with("user:404", &Options::new(), Optional::default(), || async { Ok(None) })
///     .await;
/// assert_eq!(found, Ok(None));
/// assert!(!cache.exists("user:404").await.unwrap()); // no `cache_none`: not stored
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Optional {
    /// Store `None` results too.
    pub cache_none: bool,
    /// TTL of a stored `None` (default: the call's TTL).
    pub none_ttl: Option<Ttl>,
}

impl<T: CacheValue> ReturnPolicy<Option<T>> for Optional {
    type Stored = Option<T>;
    fn to_store<'a>(&'a self, ret: &'a Option<T>) -> Option<(&'a Option<T>, Option<&'a Ttl>)> {
        match ret {
            Some(_) => Some((ret, None)),
            None if self.cache_none => Some((ret, self.none_ttl.as_ref())),
            None => None,
        }
    }
    fn restore(&self, stored: Option<T>) -> Option<T> {
        stored
    }
    fn share<'a>(&'a self, ret: &'a Option<T>) -> Option<&'a Option<T>> {
        Some(ret)
    }
}

impl<T: CacheValue, E> ReturnPolicy<Result<Option<T>, E>> for Optional {
    type Stored = Option<T>;
    fn to_store<'a>(
        &'a self,
        ret: &'a Result<Option<T>, E>,
    ) -> Option<(&'a Option<T>, Option<&'a Ttl>)> {
        match ret {
            Ok(found) => ReturnPolicy::<Option<T>>::to_store(self, found),
            Err(_) => None,
        }
    }
    fn restore(&self, stored: Option<T>) -> Result<Option<T>, E> {
        Ok(stored)
    }
    fn share<'a>(&'a self, ret: &'a Result<Option<T>, E>) -> Option<&'a Option<T>> {
        ret.as_ref().ok()
    }
    fn is_error(&self, ret: &Result<Option<T>, E>) -> bool {
        ret.is_err()
    }
}
