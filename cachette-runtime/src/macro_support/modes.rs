//! Call modes: polling a call of a cached function once with a thread-local mode set, for
//! `key_of`, `evict`, `refresh` and `put` (see the parent module's docs).

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Normal,
    Refresh,
    Capture,
    Put,
}

/// What a `Capture` poll found.
pub(super) enum Captured {
    Key {
        cache: Cache,
        key: Result<String, HashError>,
    },
    /// An `#[invalidates]` or `#[cache_put]` function refused the capture.
    NotCached(&'static str),
}

thread_local! {
    pub(super) static MODE: Cell<Mode> = const { Cell::new(Mode::Normal) };
    pub(super) static CAPTURED: RefCell<Option<Captured>> = const { RefCell::new(None) };
}

pub(super) fn take_mode() -> Mode {
    MODE.with(|m| m.replace(Mode::Normal))
}

/// Sets the mode for one poll and resets it (and the capture slot) when dropped, even if the
/// poll unwinds.
pub(super) struct ModeGuard;

impl ModeGuard {
    pub(super) fn set(mode: Mode) -> ModeGuard {
        MODE.with(|m| m.set(mode));
        CAPTURED.with(|c| c.borrow_mut().take());
        ModeGuard
    }

    /// Whether nobody took the mode.
    pub(super) fn untaken(&self) -> bool {
        MODE.with(|m| m.get() != Mode::Normal)
    }
}

impl Drop for ModeGuard {
    fn drop(&mut self) {
        MODE.with(|m| m.set(Mode::Normal));
        CAPTURED.with(|c| c.borrow_mut().take());
    }
}

/// Why a call driver could not act on a call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The future is not a call of a `#[cached]` function.
    #[error(
        "not a call of a #[cached] function{}",
        if .0.is_empty() { String::new() } else { format!(" (`{}` is an #[invalidates] or #[cache_put] function)", .0) }
    )]
    NotCached(&'static str),
    /// The call's arguments could not be hashed into its key.
    #[error(transparent)]
    Hash(#[from] HashError),
    /// The cache failed.
    #[error(transparent)]
    Cache(#[from] Error),
    /// A value given to [`put`] does not decode as the type the cached call stores (the
    /// compile-time check relates the types by the call's return type; a `returns = ...`
    /// override or a type alias can still make them differ). Nothing was stored.
    #[error("the value does not decode as the type the cached call stores: {0}")]
    WrongType(String),
    /// A value given to [`put`] would not read back from JSON as given (`Some(NaN)`,
    /// `Some(None)` stored as an `Option`, ...). Nothing was stored.
    #[error(
        "the value would not read back from the cache as given (e.g. Some(NaN) or Some(None)); not stored"
    )]
    Lossy,
}

/// Polls `call` once in `Capture` mode: the cache and key a `#[cached]` call would use.
pub(super) fn capture<F: Future>(call: F) -> Result<(Cache, String), CallError> {
    let mut call = pin!(call);
    let guard = ModeGuard::set(Mode::Capture);
    let mut cx = Context::from_waker(Waker::noop());
    // The generated code captures before its first `.await`, so one poll is enough; its
    // result (pending forever for a cached call) is irrelevant.
    let _ = call.as_mut().poll(&mut cx);
    let captured = CAPTURED.with(|c| c.borrow_mut().take());
    drop(guard);
    match captured {
        Some(Captured::Key { cache, key }) => {
            let full = key?;
            let body = cache.key_body(&full).to_owned();
            Ok((cache, body))
        }
        Some(Captured::NotCached(name)) => Err(CallError::NotCached(name)),
        None => Err(CallError::NotCached("")),
    }
}

/// The key body (without the namespace prefix) of the entry `call` reads and writes; see
/// `cachette::key_of`.
pub fn key_of<F: Future>(call: F) -> Result<String, CallError> {
    capture(call).map(|(_, key)| key)
}

/// Removes the entry of `call`; see `cachette::evict`.
pub async fn evict<F: Future>(call: F) -> Result<bool, CallError> {
    let (cache, key) = capture(call)?;
    Ok(cache.delete(&key).await?)
}

/// Runs `call` recomputing and storing its entry without a lookup; see `cachette::refresh`.
pub async fn refresh<F: Future>(call: F) -> F::Output {
    let mut call = pin!(call);
    let mut first = true;
    std::future::poll_fn(move |cx| {
        if first {
            first = false;
            let guard = ModeGuard::set(Mode::Refresh);
            let polled = call.as_mut().poll(cx);
            if guard.untaken() {
                warn_not_cached();
            }
            polled
        } else {
            call.as_mut().poll(cx)
        }
    })
    .await
}

pub(super) fn warn_not_cached() {
    metrics::counter!("cachette_refresh_not_cached_total").increment(1);
    rate_limited!(
        warn,
        "cachette::refresh was given a call that is not a #[cached] function; it ran without the cache"
    );
}

/// First statement of `#[invalidates]` and `#[cache_put]` functions: refuses a `Capture` or
/// `Put` poll (never returning, so the body does not run); takes a `Refresh` mode so that it
/// does not reach a cached call of the body (the writer then runs as usual, and `refresh`
/// warns that it was not given a cached call); otherwise does nothing.
pub async fn refuse_capture(name: &'static str) {
    match MODE.with(Cell::get) {
        Mode::Capture | Mode::Put => {
            MODE.with(|m| m.set(Mode::Normal));
            CAPTURED.with(|c| *c.borrow_mut() = Some(Captured::NotCached(name)));
            std::future::pending::<()>().await;
        }
        Mode::Refresh => {
            MODE.with(|m| m.set(Mode::Normal));
            warn_not_cached();
        }
        Mode::Normal => {}
    }
}
