//! cachette: declarative caching for async Rust.
//!
//! The attributes [`cached`], [`invalidates`] and [`cache_put`] turn a caching layer into
//! annotations on `async fn`s; the [`Cache`] they call (Redis, the embedded memory store, or
//! disabled) is the runtime re-exported here, usable directly too.
//!
//! ```
//! use cachette::{Cache, cached, invalidates};
//!
//! struct Users {
//!     cache: Cache,
//! }
//!
//! impl Users {
//!     #[cached(key = "user:{id}", ttl = "10m", tags = ["users"], cache = self.cache)]
//!     async fn name(&self, id: u64) -> Result<String, std::io::Error> {
//!         Ok(format!("user {id}")) // a database query, in real life
//!     }
//!
//!     #[invalidates(tags = ["users"], cache = self.cache)]
//!     async fn rename_all(&self) -> Result<(), std::io::Error> {
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let users = Users { cache: Cache::memory(16 << 20) };
//! assert_eq!(users.name(7).await?, "user 7"); // computed and stored
//! assert_eq!(users.name(7).await?, "user 7"); // from the cache
//! users.rename_all().await?; // every entry tagged `users` is now stale
//! # Ok(()) }
//! ```
//!
//! # Acting on the entry of one call
//!
//! [`key_of`], [`evict`], [`refresh`] and [`put`] take a *call* of a `#[cached]` function (the
//! future it returns, not awaited) and act on the entry that call reads and writes, without
//! restating its key template. They work for every cached function: free functions, methods,
//! trait `impl`s and generic functions alike. Writers name such a call in their attribute:
//! `#[cache_put(get_user(db, id))]` stores the returned value in that call's entry (its key,
//! tags, TTL and stored type, checked at compile time), `#[invalidates(calls = [get_user(db,
//! id)])]` evicts it.
//!
//! ```
//! use cachette::{Cache, cached};
//!
//! struct Users {
//!     cache: Cache,
//! }
//!
//! impl Users {
//!     #[cached(key = "user:{id}", cache = self.cache)]
//!     async fn name(&self, id: u64) -> String {
//!         format!("user {id}")
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let users = Users { cache: Cache::memory(16 << 20) };
//! assert_eq!(cachette::key_of(users.name(7))?, "user:7");
//!
//! // Cache warming at start-up: compute and store without looking up first.
//! let warmed = cachette::refresh(users.name(7)).await;
//! assert_eq!(warmed, "user 7");
//! assert!(users.cache.exists("user:7").await?);
//!
//! // Drop that one entry.
//! assert!(cachette::evict(users.name(7)).await?);
//! assert!(!users.cache.exists("user:7").await?);
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::future::Future;

pub use cachette_macros::{cache_put, cached, invalidates};

// The runtime, item by item: what a user names, and nothing else.
pub use cachette_runtime::{
    BackendError, BreakerOptions, Cache, CacheBuilder, CacheValue, EarlyRefresh, Error, Fallible,
    FallibleShared, Key, Lock, LockOptions, MAX_DURATION, Optional, Options, Pattern, Plain,
    Result, ReturnPolicy, StatsSnapshot, Tag, Ttl, default_cache, install_default, parse_duration,
};
pub use cachette_runtime::{admin, clock, codec, keys, observe, stats};

#[doc(hidden)]
pub use cachette_runtime::__private;

#[doc(hidden)]
pub use cachette_macros::__escaped;

/// An escaped key body for the manual API ([`Cache::get`], [`set`](Cache::set),
/// [`delete`](Cache::delete), [`exists`](Cache::exists),
/// [`get_or_compute`](Cache::get_or_compute), the locks): a [`Key`].
///
/// A template as in `format!`, escaped as the attributes escape: its literal text is kept as
/// written, and each interpolated value is formatted with `Display` and escaped by the same
/// code `#[cached]` runs (see [`keys`]), so `key!("user:{}", id)` is the key of
/// `#[cached(key = "user:{id}")]` for that `id`, whatever the value holds (`:`, `*`, `%`...).
/// Placeholders: `{}` (the next argument), `{0}` (by position), `{name}` (a `name = value`
/// argument, else a variable in scope), and field paths of these (`{user.id}`, `{0.id}`); `{{`
/// and `}}` are literal braces. No format specs. Each argument is evaluated once and must be
/// used; a mistake is a compile error.
///
/// Plain strings are taken as **already escaped**: `format!("user:{id}")` in their place
/// misses the entry of a user whose id holds a `:` or a `*`.
///
/// ```
/// use cachette::{Cache, Options, cached};
///
/// #[cached(key = "user:{id}", cache = cache)]
/// async fn name(cache: &Cache, id: &str) -> String {
///     format!("user {id}")
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let cache = Cache::memory(16 << 20);
/// let id = "1:admin";
/// name(&cache, id).await;
/// assert_eq!(cachette::key!("user:{}", id), "user:1%3Aadmin");
/// assert_eq!(cachette::key!("user:{id}"), cachette::key_of(name(&cache, id))?);
/// assert!(cache.exists(cachette::key!("user:{id}")).await?);
///
/// cache.set(cachette::key!("user:{}", "2:*"), &"warmed", &Options::new()).await?;
/// assert_eq!(name(&cache, "2:*").await, "warmed");
/// # Ok(()) }
/// ```
#[macro_export]
macro_rules! key {
    () => {
        ::core::compile_error!("`key!` needs a template: `key!(\"user:{}\", id)` or `key!(\"user:{id}\")`")
    };
    ($($template_and_args:tt)+) => {
        $crate::__escaped!($crate; Key; $($template_and_args)+)
    };
}

/// An escaped tag for [`Cache::invalidate_tags`] and [`Options::tags`]: a [`Tag`], built as
/// [`key!`] builds keys, so `tag!("user:{}", id)` is the tag `"user:{id}"` of
/// `#[cached(tags = ["user:{id}"])]` for that `id`.
///
/// ```
/// use cachette::{Cache, cached};
///
/// #[cached(key = "user:{id}", tags = ["user:{id}"], cache = cache)]
/// async fn name(cache: &Cache, id: &str) -> String {
///     format!("user {id}")
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let cache = Cache::memory(16 << 20);
/// name(&cache, "1:*").await;
/// name(&cache, "1").await;
/// // Drops the entry of user `1:*` and no other (`format!("user:{id}")` would miss it).
/// cache.invalidate_tags([cachette::tag!("user:{}", "1:*")]).await?;
/// assert!(!cache.exists(cachette::key!("user:{}", "1:*")).await?);
/// assert!(cache.exists(cachette::key!("user:{}", "1")).await?);
/// # Ok(()) }
/// ```
#[macro_export]
macro_rules! tag {
    () => {
        ::core::compile_error!("`tag!` needs a template: `tag!(\"user:{}\", id)` or `tag!(\"user:{id}\")`")
    };
    ($($template_and_args:tt)+) => {
        $crate::__escaped!($crate; Tag; $($template_and_args)+)
    };
}

/// An escaped Redis glob for [`Cache::invalidate_pattern`]: a [`Pattern`], built as [`key!`]
/// builds keys. The template's own `*`, `?` and `[...]` are globs; interpolated values are
/// escaped, so they match only themselves.
///
/// ```
/// use cachette::{Cache, Options};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let cache = Cache::memory(16 << 20);
/// for guild in ["a*", "a", "ab"] {
///     cache.set(cachette::key!("guild:{guild}:roles"), &1, &Options::new()).await?;
/// }
/// // Removes guild `a*`'s keys only (`format!("guild:{id}:*")` would remove all three).
/// let id = "a*";
/// assert_eq!(cachette::pattern!("guild:{}:*", id), "guild:a%2A:*");
/// assert_eq!(cache.invalidate_pattern(cachette::pattern!("guild:{}:*", id)).await?, 1);
/// assert!(cache.exists(cachette::key!("guild:{}:roles", "a")).await?);
/// # Ok(()) }
/// ```
#[macro_export]
macro_rules! pattern {
    () => {
        ::core::compile_error!("`pattern!` needs a template: `pattern!(\"guild:{}:*\", id)` or `pattern!(\"guild:{id}:*\")`")
    };
    ($($template_and_args:tt)+) => {
        $crate::__escaped!($crate; Pattern; $($template_and_args)+)
    };
}

/// Why [`key_of`] or [`evict`] could not act on a call.
pub use cachette_runtime::__private::CallError;

/// The key (body, without the cache's `namespace[:version]:` prefix) of the entry that `call`
/// reads and writes: what [`Cache::get`], [`Cache::exists`] and [`Cache::delete`] take.
///
/// `call` is a call of a `#[cached]` function, not awaited. It is polled once: the function's
/// generated code builds its key and stops before running the function's body, and the call
/// is dropped. Any other future is an error ([`CallError::NotCached`]); an `#[invalidates]` or
/// `#[cache_put]` function refuses without running its body, but a plain `async fn` is
/// polled once like any future, so pass cached calls only.
///
/// ```
/// use cachette::{Cache, cached};
///
/// #[cached(key = "user:{id}:{lang}", cache = Cache::disabled())]
/// async fn greeting(id: u64, lang: &str) -> String {
///     format!("hello {id} ({lang})")
/// }
///
/// // Values are escaped: `:` in a value cannot forge a segment.
/// assert_eq!(cachette::key_of(greeting(7, "en:gb")).unwrap(), "user:7:en%3Agb");
/// assert!(cachette::key_of(async { 1 }).is_err());
/// ```
pub fn key_of<F: Future>(call: F) -> Result<String, CallError> {
    cachette_runtime::__private::key_of(call)
}

/// Removes the entry of `call` (a call of a `#[cached]` function, not awaited, whose body does
/// not run): whether there was one. See [`key_of`] for how the call is inspected, and
/// [`Cache::delete`] for what removing guarantees (race-free: the key keeps a tombstone, so a
/// computation that began before cannot store its value afterwards).
pub async fn evict<F: Future>(call: F) -> Result<bool, CallError> {
    cachette_runtime::__private::evict(call).await
}

/// Runs `call` (a call of a `#[cached]` function) without looking its entry up: the function's
/// body runs and its value is stored as on a miss, and returned. For cache warming at start-up,
/// or after an out-of-band change to the data behind an entry.
///
/// Only the outermost cached call is refreshed: cached functions the body calls are looked up
/// as usual. A future that is not a cached call runs normally (a warning is logged).
pub async fn refresh<F: Future>(call: F) -> F::Output {
    cachette_runtime::__private::refresh(call).await
}

/// Stores `value` in the entry of `call` (a call of a `#[cached]` function, not awaited, whose
/// body does not run): under that call's key, tags and TTL options and as the type it stores,
/// exactly as if the call had computed `value`. For cache warming with values at hand, and
/// what `#[cache_put(call)]` does after its body.
///
/// The type is checked at compile time: `value` must be the `T` the function stores, for a
/// function returning `T`, `Result<T, E>`, `Option<T>` (stored as `Some(value)`) or
/// `Result<Option<T>, E>`. The write is the one of [`Cache::set`]: a computation of the entry
/// that began before it cannot overwrite it. If it cannot store (the backend fails, or the
/// value would not read back as given, such as `Some(f64::NAN)`), the entry is deleted instead
/// and the error returned. A future that is not a cached call is [`CallError::NotCached`] (it
/// is polled once, see [`key_of`]).
///
/// ```
/// use cachette::{Cache, cached};
///
/// struct Users {
///     cache: Cache,
/// }
///
/// impl Users {
///     #[cached(key = "user:{id}", tags = ["users"], cache = self.cache)]
///     async fn name(&self, id: u64) -> Result<String, std::io::Error> {
///         Err(std::io::Error::other("the database, in real life"))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let users = Users { cache: Cache::memory(16 << 20) };
/// // Warming from a bulk export: no key template, tag or type restated.
/// for (id, name) in [(1, "Ada"), (2, "Bob")] {
///     cachette::put(users.name(id), &name.to_owned()).await?;
/// }
/// assert_eq!(users.name(2).await?, "Bob"); // a hit: the body did not run
/// # Ok(()) }
/// ```
///
/// A value of another type does not compile:
///
/// ```compile_fail,E0277
/// # use cachette::{Cache, cached};
/// # #[cached(key = "user:{id}", cache = Cache::disabled())]
/// # async fn name(id: u64) -> Result<String, std::io::Error> { Ok(String::new()) }
/// # async fn warm() {
/// cachette::put(name(1), &42u64).await; // `name` stores a `String`
/// # }
/// ```
pub async fn put<F, V>(call: F, value: &V) -> Result<(), CallError>
where
    F: Future,
    F::Output: cachette_runtime::__private::Fills<V>,
{
    cachette_runtime::__private::put(call, value).await
}

/// The code blocks of `README.md`, run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
