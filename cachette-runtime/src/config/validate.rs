//! The checks of [`CacheBuilder::build`](super::CacheBuilder::build): every setting out of
//! range or malformed, each described in one sentence.

use super::settings::Config;
use crate::clock::MAX_DURATION;
use crate::keys::valid_segment;
use std::time::Duration;

/// What is wrong with `c`, one message per problem (empty: nothing).
pub(super) fn problems(c: &Config) -> Vec<String> {
    let mut errors = Vec::new();
    if !valid_segment(&c.namespace) {
        errors.push(format!(
            "namespace {:?} must be 1-64 ASCII letters, digits, `_`, `-` or `.`",
            c.namespace
        ));
    }
    if let Some(v) = &c.version
        && !valid_segment(v)
    {
        errors.push(format!(
            "version {v:?} must be 1-64 ASCII letters, digits, `_`, `-` or `.`"
        ));
    }
    if c.default_ttl.is_zero() {
        errors.push("default TTL must be greater than zero".to_owned());
    }
    if let Some((name, _)) = c.profiles.iter().find(|(_, d)| d.is_zero()) {
        errors.push(format!("TTL profile `{name}` must be greater than zero"));
    }
    if c.op_timeout.is_zero() {
        errors.push("operation timeout must be greater than zero".to_owned());
    }
    if !(0.0..=1.0).contains(&c.jitter) {
        errors.push(format!("jitter {} must be between 0 and 1", c.jitter));
    }
    if let Some(beta) = c.early_refresh_beta
        && !(beta.is_finite() && beta > 0.0)
    {
        errors.push(format!(
            "early refresh beta {beta} must be a positive number"
        ));
    }
    if let Some(b) = c.breaker
        && (b.failures == 0 || b.cool_down.is_zero())
    {
        errors.push("circuit breaker needs at least 1 failure and a non-zero cool-down".to_owned());
    }
    if c.redis_connections == 0 || c.redis_connections > 64 {
        errors.push(format!(
            "redis_connections {} must be between 1 and 64",
            c.redis_connections
        ));
    }
    if c.tag_ttl.is_zero() {
        errors.push("tag TTL must be greater than zero".to_owned());
    }
    if let Some((n, wait)) = c.wait_replicas
        && (n == 0 || wait.is_zero())
    {
        errors.push("wait_for_replicas needs at least 1 replica and a non-zero timeout".to_owned());
    }
    if c.near_bytes == Some(0) {
        errors.push("near_cache needs a byte budget greater than zero".to_owned());
    }
    if c.near_max_staleness.is_some() && c.near_bytes.is_none() {
        errors.push("near_max_staleness needs near_cache".to_owned());
    }
    if c.near_max_staleness.is_some_and(|d| d.is_zero()) {
        errors.push("near_max_staleness must be greater than zero".to_owned());
    }
    if c.fence_ttl < Duration::from_secs(1) {
        errors.push("fence TTL must be at least 1 s".to_owned());
    }
    let mut profiles: Vec<_> = c.profiles.iter().collect();
    profiles.sort();
    let durations = [
        ("default TTL".to_owned(), c.default_ttl),
        ("tag TTL".to_owned(), c.tag_ttl),
        ("fence TTL".to_owned(), c.fence_ttl),
        ("operation timeout".to_owned(), c.op_timeout),
    ]
    .into_iter()
    .chain(
        profiles
            .into_iter()
            .map(|(name, d)| (format!("TTL profile `{name}`"), *d)),
    )
    .chain(
        c.wait_replicas
            .map(|(_, d)| ("wait_for_replicas timeout".to_owned(), d)),
    )
    .chain(
        c.breaker
            .map(|b| ("circuit breaker cool-down".to_owned(), b.cool_down)),
    )
    .chain(
        c.near_max_staleness
            .map(|d| ("near_max_staleness".to_owned(), d)),
    );
    for (what, d) in durations {
        if d > MAX_DURATION {
            errors.push(format!(
                "{what} {d:?} is longer than MAX_DURATION ({MAX_DURATION:?}, 100 years)"
            ));
        }
    }
    errors
}
