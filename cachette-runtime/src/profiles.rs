//! The TTL profiles named in code, checked when a cache is built.
//!
//! `#[cached(ttl = profile("session"))]` (and `#[cache_put]`, `cache_none(ttl = ...)`)
//! registers a [`ProfileUse`] at link time with `inventory` (through `__private`, so users
//! need no dependency of their own). [`CacheBuilder::build`](crate::CacheBuilder::build)
//! lists every profile registered by a function linked into the program and defined neither
//! in code nor in `CACHETTE_TTL_PROFILES` as an [`Error::Config`](crate::Error::Config). The
//! process-wide default cache and the constructors that take no profiles
//! ([`Cache::memory`](crate::Cache::memory), [`Cache::redis`](crate::Cache::redis)) log them
//! at error level and count them (`cachette_undefined_profiles_total`) instead, and build the
//! cache: a call naming such a profile then uses the default TTL, counted per call
//! ([`StatsSnapshot::unknown_profiles`](crate::StatsSnapshot::unknown_profiles)).
//! [`Cache::disabled`](crate::Cache::disabled) uses no TTL and does not look.
//!
//! Registration runs before `main` (static constructors, on the platforms `inventory`
//! supports); a profile named only by functions the linker left out is not checked.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

/// One function naming one TTL profile (generated code registers it; not a public API).
#[doc(hidden)]
#[derive(Debug)]
pub struct ProfileUse {
    name: &'static str,
    function: &'static str,
}

impl ProfileUse {
    /// `function` (its path) names the profile `name`.
    pub const fn new(name: &'static str, function: &'static str) -> Self {
        ProfileUse { name, function }
    }
}

inventory::collect!(ProfileUse);

/// The profiles named in code and missing from `defined`, each with the functions naming
/// it, sorted.
pub(crate) fn undefined(
    defined: &HashMap<String, Duration>,
) -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    let mut missing: BTreeMap<&'static str, BTreeSet<&'static str>> = BTreeMap::new();
    for used in inventory::iter::<ProfileUse> {
        if !defined.contains_key(used.name) {
            missing.entry(used.name).or_default().insert(used.function);
        }
    }
    missing
}

/// One sentence per missing profile.
pub(crate) fn describe(missing: &BTreeMap<&'static str, BTreeSet<&'static str>>) -> Vec<String> {
    missing
        .iter()
        .map(|(name, functions)| {
            let by = functions
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "TTL profile `{name}` is named by {by} (`ttl = profile(\"{name}\")`) but defined neither in code (`CacheBuilder::ttl_profile`) nor in CACHETTE_TTL_PROFILES"
            )
        })
        .collect()
}

/// What a cache that is built anyway does about missing profiles: logs them at error level
/// and counts them.
pub(crate) fn report(missing: &BTreeMap<&'static str, BTreeSet<&'static str>>) {
    if missing.is_empty() {
        return;
    }
    metrics::counter!("cachette_undefined_profiles_total").increment(missing.len() as u64);
    for problem in describe(missing) {
        tracing::error!("cachette: {problem}; calls naming it use the default TTL");
    }
}
