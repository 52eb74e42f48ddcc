//! Naming: the backend keys of entries, tags and locks under the cache's namespace, and the
//! TTL a call's options resolve to.

use super::*;

impl Cache {
    /// The backend key of an entry: `namespace[:version]:body`.
    ///
    /// ```
    /// # use cachette_runtime::Cache;
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), cachette_runtime::Error> {
    /// let cache = Cache::builder().namespace("shop").version("v2").build()?;
    /// assert_eq!(cache.full_key("cart:1"), "shop:v2:cart:1");
    /// # Ok(()) }
    /// ```
    pub fn full_key(&self, body: &str) -> String {
        prefixed(&self.inner.prefix, body)
    }

    /// The `namespace[:version]:` prefix of entry keys.
    pub(crate) fn key_prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The body of a full key (the full key itself if it lacks the prefix).
    pub(crate) fn key_body<'k>(&self, full_key: &'k str) -> &'k str {
        full_key
            .strip_prefix(self.inner.prefix.as_str())
            .unwrap_or(full_key)
    }

    /// The Redis key holding the current version of `tag`: `namespace#tag:tag` (the memory
    /// store, one cache's alone, keys its versions by the tag itself).
    ///
    /// ```
    /// # use cachette_runtime::Cache;
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), cachette_runtime::Error> {
    /// let cache = Cache::builder().namespace("shop").build()?;
    /// assert_eq!(cache.tag_key("users"), "shop#tag:users");
    /// # Ok(()) }
    /// ```
    pub fn tag_key(&self, tag: &str) -> String {
        prefixed(&self.inner.tag_prefix, tag)
    }

    /// The key under which the store keeps the version of `tag`: [`tag_key`](Self::tag_key),
    /// or the tag itself on the memory store.
    /// What the store's tag keys start with (empty on the memory store, whose tag keys are
    /// the tags).
    pub(crate) fn store_tag_prefix(&self) -> &str {
        &self.inner.store_tag_prefix
    }

    pub(crate) fn store_tag_key(&self, tag: &str) -> String {
        prefixed(&self.inner.store_tag_prefix, tag)
    }

    /// The backend key of a fill lock or a user lock: `namespace#lock:name`.
    pub(crate) fn lock_key(&self, name: &str) -> String {
        format!("{}#lock:{}", self.inner.config.namespace, name)
    }

    /// The duration a [`Ttl`] stands for in this cache. An unknown profile gives the default
    /// TTL (logged and counted, see [`StatsSnapshot::unknown_profiles`]).
    ///
    /// ```
    /// # use cachette_runtime::Cache;
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), cachette_runtime::Error> {
    /// use cachette_runtime::Ttl;
    /// let cache = Cache::builder()
    ///     .default_ttl(Duration::from_secs(60))
    ///     .ttl_profile("session", Duration::from_secs(3600))
    ///     .build()?;
    /// assert_eq!(cache.resolve_ttl(&Ttl::Default), Duration::from_secs(60));
    /// assert_eq!(cache.resolve_ttl(&Ttl::Profile("session".into())), Duration::from_secs(3600));
    /// # Ok(()) }
    /// ```
    pub fn resolve_ttl(&self, ttl: &Ttl) -> Duration {
        self.ttl_for(ttl, &Cow::Borrowed("manual"))
    }

    pub(crate) fn ttl_for(&self, ttl: &Ttl, name: &Cow<'static, str>) -> Duration {
        let c = &self.inner.config;
        match ttl {
            Ttl::Default => c.default_ttl,
            Ttl::Fixed(d) if d.is_zero() => c.default_ttl,
            Ttl::Fixed(d) => (*d).min(MAX_DURATION),
            Ttl::Profile(p) => match c.profiles.get(p.as_ref()) {
                Some(d) => *d,
                None => {
                    self.inner.stats.record(Event::UnknownProfile, name);
                    if let Some(held) = self.inner.stats.log_profile.allow() {
                        tracing::warn!(
                            cache = %name, profile = %p, suppressed = held,
                            "unknown TTL profile; using the default TTL"
                        );
                    }
                    c.default_ttl
                }
            },
        }
    }

    /// The backend keys of a call's tags: on the memory store the tags themselves, borrowed;
    /// elsewhere built once per options value and cache (the options of a `#[cached]` call
    /// site whose tags interpolate no argument live in a static, so its calls build no tag
    /// key; options built per call build them per call).
    #[inline]
    pub(crate) fn call_tag_keys<'o>(&'o self, opts: &'o Options) -> Cow<'o, [String]> {
        if opts.tags.is_empty() {
            return Cow::Borrowed(&self.inner.base_tag_keys);
        }
        if self.tags_are_store_keys() {
            return Cow::Borrowed(&opts.tags);
        }
        self.built_tag_keys(opts)
    }

    /// Whether the store's tag keys are the tags themselves, with no base key (the memory
    /// store): a lookup then reads a call's tags as they are.
    #[inline]
    pub(crate) fn tags_are_store_keys(&self) -> bool {
        self.inner.store_tag_prefix.is_empty() && self.inner.base_tag_keys.is_empty()
    }

    /// [`call_tag_keys`](Self::call_tag_keys) of options with tags.
    fn built_tag_keys<'o>(&'o self, opts: &'o Options) -> Cow<'o, [String]> {
        let id = self.inner.stats.id();
        let (built_for, keys) = opts
            .tag_keys
            .get_or_init(|| (id, self.lookup_keys(&opts.tags).into_boxed_slice()));
        if *built_for == id {
            Cow::Borrowed(keys)
        } else {
            // Options shared by calls of several caches: the first cache's keys are kept.
            Cow::Owned(self.lookup_keys(&opts.tags))
        }
    }

    /// The keys a lookup of an entry carrying `tags` reads: the tag keys, then the base keys.
    fn lookup_keys(&self, tags: &[String]) -> Vec<String> {
        let mut keys = self.tag_keys(tags);
        keys.extend(self.inner.base_tag_keys.iter().cloned());
        keys
    }

    #[inline]
    pub(crate) fn tag_keys(&self, tags: &[String]) -> Vec<String> {
        if tags.is_empty() {
            return Vec::new();
        }
        tags.iter().map(|t| self.store_tag_key(t)).collect()
    }
}

/// `prefix` then `text`, in one allocation.
fn prefixed(prefix: &str, text: &str) -> String {
    let mut k = String::with_capacity(prefix.len().saturating_add(text.len()));
    k.push_str(prefix);
    k.push_str(text);
    k
}
