//! Procedural macros of [cachette](https://docs.rs/cachette): `#[cached]`, `#[invalidates]`
//! and `#[cache_put]`, and the builders behind `cachette::key!`, `tag!` and `pattern!`. Use
//! them through the `cachette` facade, which re-exports them and the runtime the generated
//! code calls.
//!
//! Layout, in pipeline order: `args` reads the options, one type and one parser per attribute
//! over a shared `Common` part (`args/values.rs` each value), `template`
//! parses `"user:{id}"`, `ast` reads the function (its parameters, its return shape), `plan` checks
//! the options against it and resolves the templates (every error collected), `expand` generates,
//! one file per attribute (`expand/cached.rs`, `expand/invalidates.rs`, `expand/cache_put.rs`),
//! `coupled` reads and generates the cached calls writers name (`#[cache_put(call)]`, `calls =
//! [...]`), `fallback` emits the user's function unchanged with the errors when anything is wrong;
//! `builder` expands the key, tag and pattern builders; `ctxt` collects every stage's errors,
//! checked once. The generated code calls only
//! `<crate>::__private0_1` (named after the runtime's version, which is this crate's), one module
//! per attribute.

mod args;
mod ast;
mod builder;
mod coupled;
mod ctxt;
mod expand;
mod fallback;
mod plan;
mod suggest;
mod template;

use args::Kind;
use proc_macro::TokenStream;

/// Caches the result of an `async fn`.
///
/// ```
/// use cachette::{Cache, cached};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
/// struct User {
///     id: u64,
///     name: String,
/// }
///
/// struct Repo {
///     cache: Cache,
///     tenant: String,
/// }
///
/// impl Repo {
///     /// Only `Ok` is stored; an `Err` passes through and the next call tries again.
///     #[cached(
///         key = "{self.tenant}:user:{id}",
///         ttl = "10m",
///         tags = ["users", "user:{id}"],
///         cache = self.cache,
///     )]
///     async fn user(&self, id: u64) -> Result<User, std::io::Error> {
///         Ok(User { id, name: format!("user {id}") }) // the database, in real life
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let repo = Repo { cache: Cache::memory(16 << 20), tenant: "acme".into() };
/// let first = repo.user(42).await?;
/// assert_eq!(repo.user(42).await?, first); // a hit
/// assert_eq!(cachette::key_of(repo.user(42))?, "acme:user:42");
/// # Ok(()) }
/// ```
///
/// # Options
///
/// | option | meaning | default |
/// |---|---|---|
/// | `key = "user:{id}"` | the key template (see below) | the function's path and a hash of its arguments |
/// | `skip(db, client)` | arguments left out of the hashed key (only without `key`) | every argument is hashed |
/// | `ttl = 600` / `ttl = "10m"` / `ttl = profile("user_profile")` | seconds, a duration (checked at compile time: not zero, not negative), or a TTL profile of the cache's configuration (one defined nowhere makes `CacheBuilder::build()` fail, naming it) | the cache's default TTL |
/// | `tags = ["users", "user:{id}"]` | tags of the entry (templates), for `#[invalidates(tags = ...)]` | none |
/// | `cache_none`, `cache_none(ttl = "30s")` | for `-> Option<T>` and `-> Result<Option<T>, E>`: store `None` (`Ok(None)`) too (negative caching), optionally for a TTL of its own | `None` (`Ok(None)`) is not stored |
/// | `cache = self.cache` | the [`Cache`] to use: any expression of type `Cache`, `&Cache` or `Arc<Cache>` (no `.await`) | the process-wide `cachette::default_cache()` |
/// | `name = "users.get"` | the label in metrics and logs | the function's path |
/// | `returns = plain \| result \| option` | overrides the detection of the return shape (for type aliases) | from the return type |
/// | `crate = "::my_cachette"` | the path of a renamed `cachette` dependency | `::cachette` |
/// | `stale = "30s"` | stale-while-revalidate: after the TTL, the first caller refreshes and the others get the old value at once (never an invalidated one) | off |
/// | `stale_if_error = "5m"` | for `-> Result`: an `Err` within this window after the TTL returns the stale `Ok` value instead (counted) | off |
/// | `jitter = 0.1` | shortens each stored TTL by a random fraction up to this (0 to 1), so that entries filled together do not expire together | the cache's (10%) |
/// | `early_refresh = 2.0` / `true` / `false` | probabilistic early refresh (XFetch) with this β; `true` is β = 1 | the cache's (β = 1) |
/// | `lock`, `lock = "10s"`, `lock(ttl = "10s", wait = "5s")` | a distributed fill lock: one process computes a missing entry, the others wait for it (at most `wait`, then compute) | off |
/// | `single_flight = false` | switch off the sharing of concurrent misses of one key in this process | on |
/// | `background_refresh` | early refreshes and stale-while-revalidate refreshes run in a background task (a flight like any other: one per key in this process): the caller picked to refresh gets the value it found at once. The computation moves into the task, so it must own what it uses (`Send + 'static`): no reference arguments and no `&self` (take `self: Arc<Self>`), a compile error otherwise; needs a Tokio runtime (without one the refresh is skipped) | off: that caller recomputes before returning |
///
/// [`Cache`]: https://docs.rs/cachette/latest/cachette/struct.Cache.html
///
/// # Keys
///
/// A template is literal text with placeholders: an argument (`{id}`), a field path
/// (`{user.id}`, `{self.tenant}`, `{pair.0}`), or a type or const parameter (`{T}`). Values
/// are formatted with `Display` and escaped (`:` becomes `%3A`, glob characters and braces are
/// encoded), so a value can neither forge a segment nor widen a pattern. `{{` and `}}` are
/// literal braces. Each placeholder is checked at compile time against the function's
/// parameters. The cache prefixes every key with its `namespace[:version]:`. The manual API
/// builds the same keys, tags and patterns with `cachette::key!("user:{}", id)`, `tag!` and
/// `pattern!` (same escaping, same code).
///
/// Without `key`, the key is `module::path::function:` followed by a stable 128-bit hash of
/// the arguments (their canonical serialization), of the type and const parameters, and of
/// `Self` for a method (the receiver itself is never hashed: use `{self.field}` in a template
/// when it matters). Every hashed argument must be `serde::Serialize`; `skip` the others.
/// `impl Trait` arguments must be skipped (or left out of the template): each caller picks
/// their type, and values of different types can serialize alike.
///
/// In a template, a type parameter the return type depends on must appear (`{T}`), so that
/// instantiations never read each other's entries.
///
/// # Return types
///
/// Detected from the last segment of the return type's path (override with `returns`):
///
/// * `T`: every value is stored.
/// * `Result<T, E>` (any `...::Result`): only `Ok` is stored; an `Err` is returned untouched.
/// * `Option<T>`: `Some` is stored; `None` only with `cache_none`.
/// * `Result<Option<T>, E>`: `Ok(Some)` is stored; `Ok(None)` as `None` is for `Option<T>`
///   (only with `cache_none`, for its TTL when given); an `Err` never.
///
/// The stored `T` must implement `Serialize` and `DeserializeOwned`: otherwise one error points
/// at the return type.
///
/// # Shapes
///
/// Free functions, methods taking `&self`, `&mut self`, `self` or `self: Arc<Self>`, in inherent
/// and trait `impl` blocks, generic functions, reference arguments. The function keeps its
/// signature; its body runs inside the cache call. Argument names never collide with the
/// generated code (`key`, `cache`, `value`, `ttl`, `opts` are fine).
///
/// The expansion adds no warning of its own, under `#![deny(warnings, clippy::all,
/// clippy::pedantic)]` included, whatever the body's shape (a one-line `{ Ok(id) }` too), and
/// inner attributes of the body (`#![allow(...)]`) keep applying to it.
///
/// # Acting on one entry
///
/// `cachette::key_of(call)`, `cachette::evict(call).await`, `cachette::refresh(call).await` and
/// `cachette::put(call, &value).await` take a call of the function (not awaited) and compute
/// its key, remove its entry, recompute and store it (cache warming), or store a value in it.
/// Writers name such a call too: `#[cache_put(get_user(db, id))]` and
/// `#[invalidates(calls = [get_user(db, id)])]`. See the facade's documentation.
///
/// # Failure
///
/// The cache never fails the call: when the backend is slow, down or returns garbage, the body
/// runs and its value is returned (logged and counted by the runtime). An argument whose
/// `Serialize` fails runs the body without the cache (logged, counted as
/// `cachette_key_errors_total`).
#[proc_macro_attribute]
pub fn cached(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(Kind::Cached, attr.into(), item.into()).into()
}

/// Invalidates entries after an `async fn` succeeds.
///
/// ```
/// use cachette::{Cache, cached, invalidates};
///
/// struct Guilds {
///     cache: Cache,
/// }
///
/// impl Guilds {
///     #[cached(key = "guild:{guild}:member:{member}", tags = ["guild:{guild}"], cache = self.cache)]
///     async fn member(&self, guild: &str, member: u64) -> String {
///         format!("{member}@{guild}")
///     }
///
///     /// Evicts the entry of that call: no key template restated.
///     #[invalidates(calls = [self.member(guild, member)])]
///     async fn leave(&self, guild: &str, member: u64) -> Result<(), String> {
///         Ok(())
///     }
///
///     /// Runs after `Ok` only: an `Err` invalidates nothing.
///     #[invalidates(tags = ["guild:{guild}"], cache = self.cache)]
///     async fn rename(&self, guild: &str) -> Result<(), String> {
///         Ok(())
///     }
///
///     /// Patterns are SCAN-based; a `*` inside `guild`'s value matches only a literal `*`.
///     #[invalidates(patterns = ["guild:{guild}:*"], keys = ["guild:{guild}"], cache = self.cache)]
///     async fn purge(&self, guild: &str) {}
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let guilds = Guilds { cache: Cache::memory(16 << 20) };
/// guilds.member("rust", 1).await;
/// assert!(guilds.cache.exists("guild:rust:member:1").await?);
/// guilds.leave("rust", 1).await?;
/// assert!(!guilds.cache.exists("guild:rust:member:1").await?);
/// guilds.member("rust", 1).await;
/// guilds.rename("rust").await?;
/// assert!(!guilds.cache.exists("guild:rust:member:1").await?);
/// # Ok(()) }
/// ```
///
/// # Options
///
/// * `tags = [...]`: tags to invalidate (race-free: no read returns a value computed before
///   the invalidation started);
/// * `keys = [...]`: exact keys to delete (race-free too: the key keeps a tombstone for a
///   while, so a computation that began before cannot store its value afterwards);
/// * `patterns = [...]`: Redis glob patterns of keys to delete (SCAN + UNLINK, never `KEYS`);
///   literal text is a pattern, interpolated values are escaped so they match only themselves.
///   Race-free too, at a price: since `SCAN` cannot see a key that does not exist yet, each
///   pattern invalidation counts itself first, and a computation that found *any* key of the
///   namespace absent stores only if no pattern invalidation began meanwhile (its value is
///   still returned). Prefer tags: O(1), and they fence only what they cover. See
///   `Cache::invalidate_pattern`.
///
/// * `calls = [get_user(db, id), self.user(id)]`: calls of `#[cached]` functions whose entries
///   are deleted (as `cachette::evict` does, race-free like `keys`), each in its function's own
///   cache, without restating their key templates. The calls are written with the function's
///   parameters, never awaited, and captured before the body runs (the functions' bodies never
///   run). Whether a call is one of a `#[cached]` function cannot be checked at compile time: a
///   call of another `async fn` is polled once (up to its first `.await`, as by
///   `cachette::key_of`), logged at error level and counted
///   (`cachette_coupled_call_errors_total`); the other invalidations still run.
///
/// At least one of the four is required; tags, keys and patterns are templates over the
/// arguments, like `#[cached]`'s `key`, evaluated with the values the function was called
/// with. Also `cache` (where tags, keys and patterns are invalidated), `name`, `returns` and
/// `crate`, as for `#[cached]`.
///
/// # When and what if it fails
///
/// The invalidation runs after the body: after `Ok` for a function returning `Result`, always
/// otherwise; tags first, then keys, then calls, then patterns. The function's own result is always
/// returned: an invalidation that fails is retried by the runtime (three attempts), then logged
/// and counted (`StatsSnapshot::invalidation_failures`, `cachette_invalidation_failures_total`).
///
/// # Stacked with `#[cache_put]`
///
/// Stacked attributes run in the order they are written, the top one first after the body:
/// Rust expands the top attribute first, around the body, and the ones below it then wrap
/// the result. Write `#[invalidates]` above `#[cache_put]`: the invalidation runs, then the
/// write-through stores the new value under the tags' new versions, and the next read is a
/// hit. Written the other way round, the value is stored and then invalidated whenever the
/// invalidation covers it (a shared tag, its key, a matching pattern): never stale, but the
/// write-through is lost.
///
/// ```
/// use cachette::{Cache, cache_put, cached, invalidates};
///
/// struct Users {
///     cache: Cache,
/// }
///
/// impl Users {
///     #[cached(key = "user:{id}", tags = ["users"], cache = self.cache)]
///     async fn name(&self, id: u64) -> String {
///         format!("user {id}") // the database, in real life
///     }
///
///     #[cached(key = "users:count", tags = ["users"], cache = self.cache)]
///     async fn count(&self) -> u64 {
///         1
///     }
///
///     /// Invalidates every entry tagged `users`, then stores the new name.
///     #[invalidates(tags = ["users"], cache = self.cache)]
///     #[cache_put(key = "user:{id}", tags = ["users"], cache = self.cache)]
///     async fn rename(&self, id: u64, name: String) -> String {
///         name
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let users = Users { cache: Cache::memory(16 << 20) };
/// users.count().await;
/// users.rename(7, "Ada".into()).await;
/// assert_eq!(users.cache.get::<String>("user:7").await?.as_deref(), Some("Ada"));
/// assert!(!users.cache.exists("users:count").await?);
/// # Ok(()) }
/// ```
#[proc_macro_attribute]
pub fn invalidates(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(Kind::Invalidates, attr.into(), item.into()).into()
}

/// Write-through: stores the value an `async fn` returns in the entry of a cached call, after
/// it succeeds.
///
/// ```
/// use cachette::{Cache, cache_put, cached};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
/// struct Item {
///     id: u64,
///     title: String,
/// }
///
/// struct Items {
///     cache: Cache,
/// }
///
/// impl Items {
///     #[cached(key = "item:{id}", ttl = "1h", tags = ["items"], cache = self.cache)]
///     async fn get(&self, id: u64) -> Result<Item, String> {
///         Err("not in this example's database".into())
///     }
///
///     /// Writes the database, then stores the new item as `self.get(item.id)` would have:
///     /// same key, tags, TTL and type. The next `get` is a hit with the new value.
///     #[cache_put(self.get(item.id))]
///     async fn update(&self, item: Item) -> Result<Item, std::io::Error> {
///         Ok(item)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let items = Items { cache: Cache::memory(16 << 20) };
/// let item = Item { id: 1, title: "new".into() };
/// items.update(item.clone()).await?;
/// assert_eq!(items.get(1).await?, item);
/// # Ok(()) }
/// ```
///
/// # The coupled form: `#[cache_put(call)]`
///
/// The first argument is a call of the `#[cached]` function that reads the entry, written with
/// the writer's parameters: `get_user(db, id)`, `self.get(item.id)`, `load::<User>(id)`. It is
/// not awaited, and that function's body never runs. Its arguments are evaluated before the
/// writer's body runs (the values the writer was called with; an argument may not borrow what
/// the body moves: pass a clone), and the call is made after it (so a `&mut self` writer may
/// use `self` in its body).
///
/// What is written: the value for `-> T`, the `Ok` value for `-> Result<T, E>` (nothing after
/// `Err`), the `Some` value for `-> Option<T>` (nothing after `None`). The reader's own
/// generated code stores it, exactly as if it had computed it: under its key, with its tags,
/// TTL and options, and by its return policy (a reader returning `Option<T>` stores
/// `Some(value)`; a `None` it would not store deletes the entry instead). The write is the one
/// of `Cache::set`: no computation of the reader that began before it can overwrite the value.
///
/// **The types are checked at compile time.** The value must be the `T` the reader stores, for
/// a reader returning `T`, `Result<T, E>`, `Option<T>` or `Result<Option<T>, E>` (the error
/// types may differ). Anything else is one error at the call: "the cached call returns
/// `Result<User, DbError>`: its entry cannot hold the `Admin` this writer stores". (A
/// `returns = ...` override on the reader can still make the types differ; that is caught at
/// run time, the entry deleted instead.)
///
/// Whether the call is one of a `#[cached]` function cannot be checked at compile time (an
/// `async fn`'s future is opaque): a call of another `async fn` is polled once (up to its first
/// `.await`, as by `cachette::key_of`) and dropped; nothing is stored, the error is logged at
/// error level and counted (`cachette_coupled_call_errors_total`), and the writer's result is
/// returned.
///
/// Options: `name`, `returns` and `crate`, as for `#[cached]`; `key`, `ttl`, `tags` and `cache`
/// come from the call (giving them is an error).
///
/// # The key form: `#[cache_put(key = "...")]`
///
/// ```
/// use cachette::{Cache, cache_put, cached};
///
/// struct Items {
///     cache: Cache,
/// }
///
/// impl Items {
///     #[cached(key = "title:{id}", cache = self.cache)]
///     async fn title(&self, id: u64) -> Option<String> {
///         None
///     }
///
///     /// The key template, TTL and tags restated by hand: nothing checks them against `title`.
///     #[cache_put(key = "title:{id}", ttl = "1h", cache = self.cache)]
///     async fn retitle(&self, id: u64, title: String) -> Option<String> {
///         Some(title)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let items = Items { cache: Cache::memory(16 << 20) };
/// items.retitle(1, "new".into()).await;
/// assert_eq!(items.title(1).await.as_deref(), Some("new"));
/// # Ok(()) }
/// ```
///
/// `key` is the template of the `#[cached]` function that reads the entry; `ttl`, `tags`,
/// `name`, `cache`, `returns` and `crate` are as for `#[cached]`. What is stored: the value for
/// `-> T`, the `Ok` value for `-> Result<T, E>` (nothing after `Err`), the `Some` value for
/// `-> Option<T>` (nothing after `None`). The value must be serializable. Prefer the coupled
/// form: a template, a tag or a type that differs from the reader's compiles and silently
/// misses.
///
/// # Failure
///
/// If the store fails, the function's result is still returned, and the entry is deleted
/// instead (retried), so that readers do not keep the value the function just replaced; the
/// failure is logged and counted (`cachette_put_failures_total`).
///
/// With `#[invalidates]` on the same function, write `#[invalidates]` above: stacked
/// attributes run top first, and the invalidation must run before the write-through, or it
/// invalidates the value just written (see `#[invalidates]`).
#[proc_macro_attribute]
pub fn cache_put(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(Kind::CachePut, attr.into(), item.into()).into()
}

/// What `cachette::key!`, `cachette::tag!` and `cachette::pattern!` expand to: an escaped
/// `Key`, `Tag` or `Pattern` built from a `format!`-like template. Use those macros (see the
/// facade's documentation); this one's input format is theirs to change.
#[doc(hidden)]
#[proc_macro]
pub fn __escaped(input: TokenStream) -> TokenStream {
    builder::expand(input.into()).into()
}
