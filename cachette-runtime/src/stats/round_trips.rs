//! Which call a Redis round trip is timed under: each entry point (a cached call, the manual
//! API, the admin operations, the retry worker) runs its backend work inside
//! [`attributed`], a task-local naming the call, and [`record_round_trip`] times every round
//! trip into `cachette_backend_seconds{cache,backend,op}` under that name, or `internal` when
//! there is none. A batched lookup carries other calls' lookups too: it is timed once, under
//! the name of the call that sent it.

use super::names::{NameCounters, RoundTripTimers, round_trip_timers};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

tokio::task_local! {
    /// The counters of the call whose Redis round trips the current task makes (`None`: not
    /// named, on a backend that makes none).
    static ROUND_TRIPS_OF: Option<Arc<NameCounters>>;
}

/// `fut`, with its Redis round trips timed under the name `counters` belong to (see
/// [`record_round_trip`]). Not an `async fn`: an `async fn` keeps its argument beside the
/// future it awaits, so each wrapping level would add a copy of `fut` to the call's future
/// (a cached call's boxed future grew from ~9 KB to ~23 KB that way).
pub(crate) fn attributed<F: std::future::Future>(
    counters: Option<Arc<NameCounters>>,
    fut: F,
) -> impl std::future::Future<Output = F::Output> {
    ROUND_TRIPS_OF.scope(counters, fut)
}

/// Times one Redis round trip of kind `op` (an index of
/// [`BACKEND_OPS`](super::names::BACKEND_OPS)) into
/// `cachette_backend_seconds`, under the name of the call that made it, or `internal` when
/// no call is known (see [`attributed`]).
pub(crate) fn record_round_trip(op: usize, elapsed: Duration) {
    let secs = elapsed.as_secs_f64();
    let attributed = ROUND_TRIPS_OF
        .try_with(|c| {
            c.as_ref()
                .and_then(|c| c.round_trip_timers().get(op))
                .map(|h| h.record(secs))
        })
        .ok()
        .flatten();
    if attributed.is_none() {
        static INTERNAL: OnceLock<RoundTripTimers> = OnceLock::new();
        let timers = INTERNAL.get_or_init(|| round_trip_timers("internal".into()));
        if let Some(h) = timers.get(op) {
            h.record(secs);
        }
    }
}
