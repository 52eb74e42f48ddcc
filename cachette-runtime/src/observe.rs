//! What a cached call did, for the HTTP layer (`X-Cache`, `ETag`), without changing the
//! cached function's signature.
//!
//! ```
//! use cachette_runtime::{Cache, Options, observe::{capture_outcome, etag, CallOutcome}};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let cache = Cache::memory(1 << 20);
//! let opts = Options::new();
//! let load = || cache.get_or_compute("user:1", &opts, || async { "Ada".to_owned() });
//!
//! let (user, outcome) = capture_outcome(load()).await;
//! assert_eq!(outcome, Some(CallOutcome::Miss));
//! let (again, outcome) = capture_outcome(load()).await;
//! assert_eq!(outcome.map(CallOutcome::as_header), Some("HIT"));
//! assert_eq!(etag(&user).unwrap(), etag(&again).unwrap());
//! # }
//! ```

use crate::keys::hash::{HashError, stable_hash_hex};
use serde::Serialize;
use std::cell::Cell;
use std::future::Future;

/// What one cached call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallOutcome {
    /// Served a fresh value from the cache.
    Hit,
    /// Ran the computation (a miss, or an early refresh by this caller).
    Miss,
    /// Served a stale value (stale-while-revalidate, or stale-if-error).
    Stale,
    /// Waited for another caller's computation of the same key and got its value.
    Coalesced,
    /// The cache is disabled: the computation ran.
    Bypass,
}

impl CallOutcome {
    /// The conventional `X-Cache` value: `HIT`, `MISS`, `STALE` or `BYPASS` (a coalesced call
    /// is a `MISS`: the value was computed for it, if not by it).
    pub fn as_header(self) -> &'static str {
        match self {
            CallOutcome::Hit => "HIT",
            CallOutcome::Miss | CallOutcome::Coalesced => "MISS",
            CallOutcome::Stale => "STALE",
            CallOutcome::Bypass => "BYPASS",
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Hit => "hit",
            CallOutcome::Miss => "miss",
            CallOutcome::Stale => "stale",
            CallOutcome::Coalesced => "coalesced",
            CallOutcome::Bypass => "bypass",
        }
    }
}

tokio::task_local! {
    static OUTCOME: Cell<Option<CallOutcome>>;
}

/// Runs `fut` and returns its output with the outcome of the last cached call made inside
/// it (`None` if it made none). Works through any number of function layers: the cached
/// function keeps its plain signature.
pub async fn capture_outcome<F: Future>(fut: F) -> (F::Output, Option<CallOutcome>) {
    OUTCOME
        .scope(Cell::new(None), async {
            let out = fut.await;
            (out, OUTCOME.with(Cell::get))
        })
        .await
}

/// Records the outcome for [`capture_outcome`] and on the current `cachette.call` span.
pub(crate) fn report(outcome: CallOutcome) {
    let _ = OUTCOME.try_with(|c| c.set(Some(outcome)));
    // With every level off (no subscriber), no span is enabled: nothing to record on.
    if tracing::level_filters::LevelFilter::current() != tracing::level_filters::LevelFilter::OFF {
        tracing::Span::current().record("outcome", outcome.as_str());
    }
}

/// A strong HTTP entity tag for `value`: the stable 128-bit hash of its canonical
/// serialization, quoted. The same value gives the same tag in every process and release,
/// whether it came from the cache or from the computation.
pub fn etag<T: Serialize + ?Sized>(value: &T) -> Result<String, HashError> {
    Ok(format!("\"{}\"", stable_hash_hex(value)?))
}
