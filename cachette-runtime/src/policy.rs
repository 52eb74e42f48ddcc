//! Which return values of a cached computation are stored, and how a stored value becomes a
//! return value again. `#[cached]` picks the policy from the function's return type.

use crate::config::Ttl;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A value cachette can store: serializable and deserializable with serde.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be cached: it must implement `serde::Serialize` and `serde::de::DeserializeOwned`",
    label = "this type is not serializable",
    note = "derive them: `#[derive(serde::Serialize, serde::Deserialize)]`"
)]
pub trait CacheValue: Serialize + DeserializeOwned {}

impl<T: Serialize + DeserializeOwned> CacheValue for T {}

/// Maps a computation's return type `R` to what is stored.
pub trait ReturnPolicy<R> {
    /// The stored type.
    type Stored: CacheValue;
    /// The value to store for `ret`, with a TTL that overrides the call's; `None`: store
    /// nothing.
    fn to_store<'a>(&'a self, ret: &'a R) -> Option<(&'a Self::Stored, Option<&'a Ttl>)>;
    /// The return value for a stored value.
    fn restore(&self, stored: Self::Stored) -> R;
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
}

/// `Some` values are stored; `None` only with `cache_none` (negative caching), for
/// `none_ttl` when given (`-> Option<T>`).
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
}
