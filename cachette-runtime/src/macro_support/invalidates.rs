//! What `#[invalidates]` calls after a successful body.

use super::*;

/// What an `#[invalidates]` function invalidates after its body.
#[derive(Debug, Default)]
pub struct Invalidation<'a> {
    /// Tags to invalidate.
    pub tags: &'a [String],
    /// Exact key bodies to delete.
    pub keys: &'a [String],
    /// Glob patterns (key bodies) to delete with SCAN.
    pub patterns: &'a [String],
    /// Entries of cached calls (`calls = [get_user(db, id)]`), captured before the body ran.
    pub calls: &'a [Result<CallKey, CallError>],
}

/// Runs an invalidation after an `#[invalidates]` function's body succeeded: tags first (the
/// race-free part), then keys, then patterns. Each operation is retried by the runtime; one
/// that still fails is logged and counted there (`invalidation_failures`), logged here with the
/// function's name, and does not stop the others nor the function's result.
pub async fn invalidate(cache: &Cache, name: &'static str, what: Invalidation<'_>) {
    if !what.tags.is_empty()
        && let Err(e) = cache.invalidate_tags(what.tags).await
    {
        invalidation_failed(name, "tags", &e);
    }
    for key in what.keys {
        if let Err(e) = cache.delete(key).await {
            invalidation_failed(name, "key", &e);
        }
    }
    invalidate_calls(name, what.calls).await;
    for pattern in what.patterns {
        if let Err(e) = cache.invalidate_pattern(pattern).await {
            invalidation_failed(name, "pattern", &e);
        }
    }
}

pub(crate) fn invalidation_failed(name: &'static str, what: &'static str, e: &Error) {
    rate_limited!(
        error,
        function = name, what, error = %e,
        "invalidation after a successful call failed; the call's result is returned anyway"
    );
}
