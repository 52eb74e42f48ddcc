//! Acting on the entry one call of a `#[cached]` function reads and writes, without
//! restating its key template: [`key_of`], [`evict`], [`refresh`] and [`put`] take the call
//! (the future it returns, not awaited). Writers name such calls in their attributes:
//! `#[cache_put(get_user(db, id))]` and `#[invalidates(calls = [get_user(db, id)])]`.

use std::future::Future;

pub use cachette_runtime::calls::{CallError, Fills};

/// The key (body, without the cache's `namespace[:version]:` prefix) of the entry that `call`
/// reads and writes: what [`Cache::get`](crate::Cache::get),
/// [`Cache::exists`](crate::Cache::exists) and [`Cache::delete`](crate::Cache::delete) take.
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
    cachette_runtime::calls::key_of(call)
}

/// Removes the entry of `call` (a call of a `#[cached]` function, not awaited, whose body does
/// not run): whether there was one. See [`key_of`] for how the call is inspected, and
/// [`Cache::delete`](crate::Cache::delete) for what removing guarantees (race-free: the key
/// keeps a tombstone, so a computation that began before cannot store its value afterwards).
pub async fn evict<F: Future>(call: F) -> Result<bool, CallError> {
    cachette_runtime::calls::evict(call).await
}

/// Runs `call` (a call of a `#[cached]` function) without looking its entry up: the function's
/// body runs and its value is stored as on a miss, and returned. For cache warming at start-up,
/// or after an out-of-band change to the data behind an entry.
///
/// Only the outermost cached call is refreshed: cached functions the body calls are looked up
/// as usual. A future that is not a cached call runs normally (a warning is logged).
pub async fn refresh<F: Future>(call: F) -> F::Output {
    cachette_runtime::calls::refresh(call).await
}

/// Stores `value` in the entry of `call` (a call of a `#[cached]` function, not awaited, whose
/// body does not run): under that call's key, tags and TTL options and as the type it stores,
/// exactly as if the call had computed `value`. For cache warming with values at hand, and
/// what `#[cache_put(call)]` does after its body.
///
/// The type is checked at compile time: `value` must be the `T` the function stores, for a
/// function returning `T`, `Result<T, E>`, `Option<T>` (stored as `Some(value)`) or
/// `Result<Option<T>, E>`. The write is the one of [`Cache::set`](crate::Cache::set): a
/// computation of the entry that began before it cannot overwrite it. If it cannot store (the
/// backend fails, or the value would not read back as given, such as `Some(f64::NAN)`), the
/// entry is deleted instead and the error returned. A future that is not a cached call is
/// [`CallError::NotCached`] (it is polled once, see [`key_of`]).
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
    F::Output: cachette_runtime::calls::Fills<V>,
{
    cachette_runtime::calls::put(call, value).await
}
