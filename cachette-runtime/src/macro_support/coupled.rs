//! Writers coupled to a cached call: `#[cache_put(get_user(db, id))]`, `cachette::put` and
//! `#[invalidates(calls = [get_user(db, id)])]`.
//!
//! A writer names the call whose entry it fills instead of restating that call's key template,
//! tags, TTL options and stored type. The value is stored by the call's own generated code:
//!
//! 1. [`put`] encodes the writer's value as the call's stored type ([`Fills`], checked at
//!    compile time), then polls the call (not yet awaited by anyone) with the `Put` mode set
//!    and the encoded value in a thread-local slot.
//! 2. The generated code of the `#[cached]` function takes the mode and the value at the start
//!    of its first poll, before any `.await` (the same place `Capture` and `Refresh` are read),
//!    and, instead of looking up or running the function's body, [`store_here`]: decodes the
//!    value as its stored type, asks its return policy whether and for how long it is stored
//!    (`None` without `cache_none` is not: the entry is deleted instead), and writes it with
//!    its own cache, key and options through `Cache::write_through`, the write of
//!    `Cache::set`: unconditional, so every fill whose lookup came before it loses its
//!    compare-and-set (ARCHITECTURE, *Keys, write-through, patterns*). It then returns the
//!    value, so the call completes without its body.
//! 3. The outcome travels back through a shared slot handed over with the value (the call may
//!    complete on another thread than the one that polled it first).
//!
//! Anything that prevents the store once the key is known (the value does not decode as the
//! stored type, would not read back as given, or the backend fails) deletes the entry instead,
//! so that readers do not keep the value the writer just replaced. A future that is not a call
//! of a `#[cached]` function is [`CallError::NotCached`]: it is polled once (like
//! `cachette::key_of`) and dropped.
//!
//! # Evicting: `#[invalidates(calls = [...])]`
//!
//! [`call_key`] captures a call's cache and key with one `Capture` poll, before the writer's
//! body runs; [`invalidate_calls`] deletes each entry (in its call's own cache) after `Ok`. A
//! call that cannot be captured is logged and counted, and the others are still evicted.
//!
//! # The type relation
//!
//! [`Fills<V>`] holds for the call's output `R` when a `V` is what `R`'s function stores:
//! `R = V` (`-> T`), `R = Result<V, E>`, `R = Option<V>` and `R = Result<Option<V>, E>` (the
//! value is stored as `Some(v)`). The reader's error type is unrelated to the writer's. The
//! relation reads the shape from the type, where the macro reads it from the return type's
//! last path segment or `returns = ...`: they agree except for an override (`returns = plain`
//! on a `Result`) or an alias, which the decode in step 2 catches at run time
//! ([`CallError::WrongType`]).

use super::{CAPTURED, CallError, Captured, Mode, ModeGuard, capture, invalidation_failed};
use crate::config::Options;
use crate::error::Error;
use crate::keys::hash::HashError;
use crate::lossless;
use crate::policy::{CacheValue, ReturnPolicy};
use crate::stats::Event;
use crate::stats::rate_limited;
use crate::{Cache, codec};
use serde::Serialize;
use serde_json::value::RawValue;
use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;

/// Relates the output `Self` of a call of a `#[cached]` function to a value `V` a writer
/// stores in its entry, and encodes `V` as what that function stores.
#[diagnostic::on_unimplemented(
    message = "the cached call returns `{Self}`: its entry cannot hold the `{V}` this writer stores",
    label = "the entry of this call holds another type than `{V}`",
    note = "the value written (the value a `-> T` writer returns, a `Result` writer's `Ok` value, an `Option` writer's `Some` value) must be the `T` the cached function stores: it returns `T`, `Result<T, E>`, `Option<T>` or `Result<Option<T>, E>` (the error types may differ)"
)]
pub trait Fills<V> {
    /// `value` as the stored type's JSON, and (when that JSON contains a `null`) the stable
    /// hash of `value`, for the check that it reads back as given.
    fn encode(value: &V) -> Result<Encoded, CallError>;
}

/// A writer's value, encoded as the stored type of the call it fills.
#[derive(Debug)]
pub struct Encoded {
    raw: Box<RawValue>,
    /// `Some` when the JSON contains `null`: the hash the decoded value must have.
    hash: Option<Result<u128, HashError>>,
}

fn encode<S: Serialize + ?Sized>(repr: &S) -> Result<Encoded, CallError> {
    let raw = codec::encode_value(repr).map_err(Error::Encode)?;
    let hash = lossless::fingerprint(repr, &raw);
    Ok(Encoded { raw, hash })
}

#[diagnostic::do_not_recommend]
impl<T: CacheValue> Fills<T> for T {
    fn encode(value: &T) -> Result<Encoded, CallError> {
        encode(value)
    }
}

#[diagnostic::do_not_recommend]
impl<T: CacheValue, E> Fills<T> for Result<T, E> {
    fn encode(value: &T) -> Result<Encoded, CallError> {
        encode(value)
    }
}

#[diagnostic::do_not_recommend]
impl<T: CacheValue> Fills<T> for Option<T> {
    fn encode(value: &T) -> Result<Encoded, CallError> {
        encode(&Some(value))
    }
}

#[diagnostic::do_not_recommend]
impl<T: CacheValue, E> Fills<T> for Result<Option<T>, E> {
    fn encode(value: &T) -> Result<Encoded, CallError> {
        encode(&Some(value))
    }
}

type Outcome = Arc<Mutex<Option<Result<(), CallError>>>>;

/// What [`put`] hands to the generated code of the call it polls.
struct Request {
    value: Encoded,
    outcome: Outcome,
}

impl Request {
    fn finish(self, result: Result<(), CallError>) {
        *self.outcome.lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
    }
}

thread_local! {
    static REQUEST: RefCell<Option<Request>> = const { RefCell::new(None) };
}

/// Stores `value` in the entry of `call` (a call of a `#[cached]` function, not awaited),
/// under that call's key, tags and options and as its stored type, by the call's own generated
/// code; the function's body does not run. See the module's documentation.
pub async fn put<F, V>(call: F, value: &V) -> Result<(), CallError>
where
    F: Future,
    F::Output: Fills<V>,
{
    let value = <F::Output as Fills<V>>::encode(value)?;
    put_encoded(call, value).await
}

async fn put_encoded<F: Future>(call: F, value: Encoded) -> Result<(), CallError> {
    let outcome: Outcome = Arc::default();
    let mut request = Some(Request {
        value,
        outcome: outcome.clone(),
    });
    let mut call = pin!(call);
    std::future::poll_fn(move |cx| {
        let polled = match request.take() {
            Some(request) => {
                let guard = ModeGuard::set(Mode::Put);
                REQUEST.with(|r| *r.borrow_mut() = Some(request));
                let polled = call.as_mut().poll(cx);
                REQUEST.with(|r| r.borrow_mut().take());
                let refused = CAPTURED.with(|c| c.borrow_mut().take());
                let untaken = guard.untaken();
                drop(guard);
                if let Some(Captured::NotCached(name)) = refused {
                    return Poll::Ready(Err(CallError::NotCached(name)));
                }
                if untaken {
                    return Poll::Ready(Err(CallError::NotCached("")));
                }
                polled
            }
            None => call.as_mut().poll(cx),
        };
        let done = outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match (done, polled) {
            (Some(result), _) => Poll::Ready(result),
            // The generated code always reports before completing; a future that completes
            // without (a plain `async fn` that called a cached function) stored nothing.
            (None, Poll::Ready(_)) => Poll::Ready(Err(CallError::NotCached(""))),
            (None, Poll::Pending) => Poll::Pending,
        }
    })
    .await
}

/// A `#[cache_put(call)]` write, its types checked (one synchronous bound, so that a mismatch
/// is one error at the call): the call, and the value encoded as the call stores it.
#[derive(Debug)]
pub struct Filling<F> {
    call: F,
    value: Result<Encoded, CallError>,
}

fn filling<F, V>(call: F, value: &V) -> Filling<F>
where
    F: Future,
    F::Output: Fills<V>,
{
    let value = <F::Output as Fills<V>>::encode(value);
    Filling { call, value }
}

/// `#[cache_put(call)]` on `-> T`: the value is written to the entry of `call`.
pub fn fill_plain<F, V>(call: F, ret: &V) -> Option<Filling<F>>
where
    F: Future,
    F::Output: Fills<V>,
{
    Some(filling(call, ret))
}

/// `#[cache_put(call)]` on `-> Result<T, E>`: the `Ok` value is written.
pub fn fill_fallible<F, V, E>(call: F, ret: &Result<V, E>) -> Option<Filling<F>>
where
    F: Future,
    F::Output: Fills<V>,
{
    ret.as_ref().ok().map(|v| filling(call, v))
}

/// `#[cache_put(call)]` on `-> Option<T>`: the `Some` value is written.
pub fn fill_optional<F, V>(call: F, ret: &Option<V>) -> Option<Filling<F>>
where
    F: Future,
    F::Output: Fills<V>,
{
    ret.as_ref().map(|v| filling(call, v))
}

/// Writes a `#[cache_put(call)]` value (nothing after `Err` or `None`). What cannot be written
/// is logged and counted: here when the call could not be acted on (not a `#[cached]` call, its
/// key could not be built, the value does not fit its type), where the key was known when the
/// store failed.
pub async fn put_filling<F: Future>(name: &'static str, filling: Option<Filling<F>>) {
    let Some(Filling { call, value }) = filling else {
        return;
    };
    let result = match value {
        Ok(value) => put_encoded(call, value).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) | Err(CallError::Cache(_)) => {}
        Err(e) => coupled_call_failed(name, "cache_put", &e),
    }
}

/// The `Put` mode in the generated code of a `#[cached]` function: stores the value [`put`]
/// handed over and returns it, or reports why not and never completes (the driver drops it).
pub(super) async fn store_here<R, P: ReturnPolicy<R>>(
    cache: &Cache,
    key: Result<String, HashError>,
    opts: &Options,
    policy: &P,
    keep_decoded: bool,
) -> R {
    let Some(request) = REQUEST.with(|r| r.borrow_mut().take()) else {
        // Not polled by `put` (cannot happen: the mode and the request are set together).
        return std::future::pending().await;
    };
    let key = match key {
        Ok(key) => key,
        Err(e) => {
            // The call never caches: there is no entry to write or delete.
            request.finish(Err(CallError::Hash(e)));
            return std::future::pending().await;
        }
    };
    let stored = match decode::<P::Stored>(&request.value) {
        Ok(stored) => stored,
        Err(e) => {
            if matches!(e, CallError::Lossy) {
                lossy(cache, opts);
            }
            let _ = cache.delete(cache.key_body(&key)).await;
            request.finish(Err(e));
            return std::future::pending().await;
        }
    };
    let ret = policy.restore(stored);
    let result = match policy.to_store(&ret) {
        Some((value, ttl)) => match codec::encode_value(value) {
            Ok(raw) => {
                cache
                    .write_through(&key, &raw, opts, ttl, keep_decoded)
                    .await
            }
            Err(e) => Err(Error::Encode(e)),
        },
        // The policy does not store this value (`None` without `cache_none`): the entry must
        // not keep the value it replaces.
        None => cache.delete(cache.key_body(&key)).await.map(|_| ()),
    };
    if let Err(e) = &result {
        put_failed(cache, &key, opts, e).await;
    }
    request.finish(result.map_err(CallError::Cache));
    ret
}

/// The writer's value as the stored type `S`, checked to be the value given.
fn decode<S: CacheValue>(value: &Encoded) -> Result<S, CallError> {
    let stored: S =
        serde_json::from_str(value.raw.get()).map_err(|e| CallError::WrongType(e.to_string()))?;
    if lossless::matches(&stored, value.hash.as_ref()) {
        Ok(stored)
    } else {
        Err(CallError::Lossy)
    }
}

pub(super) fn lossy(cache: &Cache, opts: &Options) {
    cache.recorder().record(Event::Lossy, &opts.name);
    if let Some(held) = cache.recorder().log_lossy.allow() {
        tracing::warn!(
            cache = %opts.name, suppressed = held,
            "write-through value would not read back from JSON as given (e.g. Some(NaN), Some(None)); deleting the entry instead"
        );
    }
}

/// A write-through that could not store: the entry is deleted instead (retried by the
/// runtime), so that readers do not keep the value the writer just replaced. After an outage
/// (a timeout, a lost connection, the breaker open) the delete is kept for the background
/// worker at once, not attempted: the writer's caller waits one operation timeout at most.
pub(super) async fn put_failed(cache: &Cache, full_key: &str, opts: &Options, e: &Error) {
    metrics::counter!("cachette_put_failures_total", "cache" => crate::stats::label(&opts.name))
        .increment(1);
    rate_limited!(
        warn,
        cache = %opts.name, error = %e,
        "write-through store failed; deleting the entry instead"
    );
    if e.is_unreachable() {
        cache.keep_delete(cache.key_body(full_key));
    } else {
        let _ = cache.delete(cache.key_body(full_key)).await;
    }
}

// ----- #[invalidates(calls = [...])] ----------------------------------------------------------

/// The cache and key of a call of a `#[cached]` function, captured by [`call_key`].
#[derive(Debug)]
pub struct CallKey {
    cache: Cache,
    key: String,
}

/// The entry `call` (a call of a `#[cached]` function, not awaited) reads and writes, captured
/// without running the function's body: what an `#[invalidates(calls = [...])]` function
/// evicts after its body succeeded. The generated code captures before the body runs, so
/// that the call sees the arguments as they were passed.
pub fn call_key<F: Future>(call: F) -> Result<CallKey, CallError> {
    capture(call).map(|(cache, key)| CallKey { cache, key })
}

/// Evicts the entries of captured calls (each in its call's own cache) after an
/// `#[invalidates]` function's body succeeded. A call that could not be captured (not a
/// `#[cached]` call, or its key could not be built) is logged at error level and counted
/// (`cachette_coupled_call_errors_total`); the others are still evicted.
pub async fn invalidate_calls(name: &'static str, calls: &[Result<CallKey, CallError>]) {
    for call in calls {
        match call {
            Ok(CallKey { cache, key }) => {
                if let Err(e) = cache.delete(key).await {
                    invalidation_failed(name, "call", &e);
                }
            }
            Err(e) => coupled_call_failed(name, "invalidates", e),
        }
    }
}

/// A call named by `#[cache_put(call)]` or `#[invalidates(calls = [...])]` that could not be
/// acted on: logged at error level (rate-limited) and counted.
fn coupled_call_failed(name: &'static str, attr: &'static str, e: &CallError) {
    metrics::counter!("cachette_coupled_call_errors_total", "function" => name, "attribute" => attr)
        .increment(1);
    rate_limited!(
        error,
        function = name, attribute = attr, error = %e,
        "the cached call named by this writer could not be acted on; the call's result is returned anyway"
    );
}
