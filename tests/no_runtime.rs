//! A Redis cache polled outside a Tokio runtime (another executor, or none) fails with a typed
//! error, `Error::NoRuntime`, instead of panicking in Tokio's timer (issue 14: run-time faults
//! have variants of their own, `Error::Config` is for configuration only).

use cachette::{Cache, Error, Options};
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// Polls `fut` once on this thread, with no runtime entered.
fn poll_once<F: Future>(fut: F) -> Poll<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    pin!(fut).poll(&mut cx)
}

#[test]
fn manual_calls_outside_a_runtime_are_a_typed_error() -> Result<(), Error> {
    // Nothing listens there; the error must come before any connection attempt.
    let cache = Cache::redis("redis://127.0.0.1:1/0")?;
    for (what, outcome) in [
        ("connect", poll_once(cache.connect())),
        (
            "exists",
            poll_once(cache.exists("k")).map(|r| r.map(|_| ())),
        ),
        ("set", poll_once(cache.set("k", &1u32, &Options::new()))),
        (
            "delete",
            poll_once(cache.delete("k")).map(|r| r.map(|_| ())),
        ),
    ] {
        assert!(
            matches!(outcome, Poll::Ready(Err(Error::NoRuntime))),
            "{what}: {outcome:?}"
        );
    }
    Ok(())
}

#[test]
fn a_cached_call_outside_a_runtime_computes() -> Result<(), Error> {
    let cache = Cache::redis("redis://127.0.0.1:1/0")?;
    let out = poll_once(cache.get_or_compute("k", &Options::new(), || async { 7u32 }));
    assert_eq!(out, Poll::Ready(7));
    assert_eq!(cache.stats().backend_errors, 1);
    Ok(())
}
