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

pub use cachette_macros::{cache_put, cached, invalidates};

// The runtime, item by item: what a user names, and nothing else.
pub use cachette_runtime::{
    BackendError, BreakerOptions, Cache, CacheBuilder, CacheValue, EarlyRefresh, Error, Fallible,
    FallibleShared, Key, Lock, LockOptions, MAX_DURATION, NearStats, Optional, Options, Pattern,
    Plain, Result, ReturnPolicy, StatsSnapshot, Tag, Ttl, default_cache, install_default,
    parse_duration,
};
pub use cachette_runtime::{admin, clock, codec, keys, observe, stats};

pub mod calls;
pub use calls::{CallError, evict, key_of, put, refresh};

// What generated code calls (named after the runtime's version) and the hooks of cachette's
// own tests and fuzz targets: not an API.
#[doc(hidden)]
pub use cachette_runtime::{__private, __private0_1};

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

/// The code blocks of `README.md`, run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
