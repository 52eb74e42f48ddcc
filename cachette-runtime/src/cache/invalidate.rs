//! Invalidation: `delete`, `invalidate_tags` and `invalidate_pattern`, each retried on an
//! error reply and kept for the background worker (`kept.rs`) when it fails.

use crate::Cache;
use crate::backend::Store;
use crate::error::{Error, Result};
use crate::pending::Item;
use crate::stats::Event;
use std::borrow::Cow;
use std::future::Future;
use std::time::Duration;

/// Delays before the attempts of an invalidation (first attempt at once). Only error replies
/// (`NOPERM`, `READONLY`...) are retried inside the call: after an outage (a timeout, a
/// connection that fails, the breaker open) the caller gets the error at once, about one
/// operation timeout at most, and the kept invalidation is retried in the background.
const INVALIDATION_RETRY_DELAYS: [Duration; 3] = [
    Duration::ZERO,
    Duration::from_millis(25),
    Duration::from_millis(100),
];

impl Cache {
    /// Removes the entry at `key`; whether there was one. Retried like invalidations. `key` as
    /// for [`get`](Self::get).
    ///
    /// Race-free like a tag invalidation: once this returns `Ok`, no read returns a value
    /// whose computation started before it. The key keeps a small tombstone for the fence TTL
    /// ([`CacheBuilder::fence_ttl`](crate::CacheBuilder::fence_ttl), 10 min by default), so
    /// that a computation that began before cannot store its value afterwards (every fill
    /// stores only if its key is still as its lookup saw it).
    ///
    /// ```
    /// # use cachette_runtime::{Cache, Options};
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), cachette_runtime::Error> {
    /// let cache = Cache::memory(1 << 20);
    /// cache.set("k", &1u32, &Options::new()).await?;
    /// assert!(cache.delete("k").await?); // there was an entry
    /// assert!(!cache.delete("k").await?); // there was none
    /// # Ok(()) }
    /// ```
    pub async fn delete(&self, key: impl AsRef<str>) -> Result<bool> {
        let full_key = self.full_key(key.as_ref());
        let r = self
            .retrying("delete", || {
                self.inner
                    .backend
                    .delete(&full_key, self.inner.config.fence_ttl)
            })
            .await;
        if r.is_err() {
            self.defer([Item::Key(full_key)]);
        }
        r
    }

    /// Invalidates every entry carrying any of `tags`, however many there are (one write per
    /// tag). When this returns `Ok`, no read, in this process or any other sharing the
    /// backend, returns a value whose computation started before this call began. A refusal is
    /// retried three times, an outage not (see below); an error means the invalidation may
    /// not have happened.
    ///
    /// `tags`: [`Tag`](crate::Tag)s, built with `cachette::tag!("user:{}", id)` so that values
    /// are escaped as in `#[cached(tags = ["user:{id}"])]`, or strings taken as **already
    /// escaped**: `format!("user:{id}")` misses the entry of user `1:*`, whose tag is
    /// `user:1%3A%2A`.
    ///
    /// When Redis is full (`maxmemory` with `noeviction`) and refuses the new versions
    /// (`OOM`), the tag keys are deleted instead, one more round trip: a missing tag key
    /// invalidates the same entries.
    ///
    /// # When it fails
    ///
    /// Redis down or slow, or refusing the command (`NOPERM` from an ACL, `READONLY` from a
    /// replica): the error is returned after the third attempt (after the first one when
    /// Redis is down, slow or skipped by the circuit breaker, so that the caller waits one
    /// operation timeout at most), logged at error level and counted ([`StatsSnapshot::invalidation_failures`](crate::StatsSnapshot::invalidation_failures)). The invalidation is not dropped: it
    /// is kept, and a background task retries it until Redis accepts it
    /// ([`pending_invalidations`](Self::pending_invalidations), the
    /// `cachette_pending_invalidations` gauge). Until then this process serves no entry
    /// carrying these tags from the cache (reads compute). Other processes sharing Redis cannot
    /// know of it: they may serve those entries until the retry succeeds, for at most the
    /// entries' TTL.
    ///
    /// ```
    /// # use cachette_runtime::{Cache, Options};
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), cachette_runtime::Error> {
    /// let cache = Cache::memory(1 << 20);
    /// let opts = Options::new().tags(["users"]);
    /// let name: String = cache.get_or_compute("user:1", &opts, || async { "Ada".into() }).await;
    /// assert_eq!(name, "Ada");
    /// cache.invalidate_tags(["users"]).await?; // every entry tagged `users` is now a miss
    /// let name: String = cache.get_or_compute("user:1", &opts, || async { "Ada L.".into() }).await;
    /// assert_eq!(name, "Ada L.");
    /// # Ok(()) }
    /// ```
    pub async fn invalidate_tags<I, S>(&self, tags: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let tag_keys: Vec<String> = tags
            .into_iter()
            .map(|t| self.store_tag_key(t.as_ref()))
            .collect();
        if tag_keys.is_empty() {
            return Ok(());
        }
        let ttl = self.inner.config.tag_ttl;
        let r = self
            .retrying("invalidate_tags", || {
                self.inner.backend.bump_tags(&tag_keys, ttl)
            })
            .await;
        if r.is_err() {
            self.defer(tag_keys.into_iter().map(Item::Tag));
        }
        r
    }

    /// Removes every entry whose body matches the Redis glob `pattern` (`user:*`), with
    /// `SCAN` + `UNLINK` (never `KEYS`); how many were removed.
    ///
    /// `pattern`: a [`Pattern`](crate::Pattern), built with
    /// `cachette::pattern!("guild:{}:*", id)` so that an interpolated value matches only
    /// itself, or a string taken as **already escaped**, its every `*`, `?` and `[` a glob:
    /// `format!("guild:{id}:*")` with `id = "a*"` also removes guilds `a` and `ab`.
    ///
    /// Race-free like [`delete`](Self::delete): once this returns `Ok`, no read returns a
    /// value whose computation started before it. A computation whose lookup found a matching
    /// entry cannot store over it (its store compares the key with what it read); and since
    /// `SCAN` cannot see a key that does not exist yet, each pattern invalidation first counts
    /// itself (`namespace#patterns`), and a computation that found its key absent stores only
    /// if no pattern invalidation began since its lookup. The price: a fill of *any* absent key
    /// of the namespace that races a pattern invalidation is not stored (its value is still
    /// returned; counted in [`StatsSnapshot::fills_fenced`](crate::StatsSnapshot::fills_fenced)).
    /// Tags remain the cheaper tool: O(1) whatever the number of entries, and they fence only
    /// what they cover.
    ///
    /// # When it fails
    ///
    /// As for [`invalidate_tags`](Self::invalidate_tags): Redis down, or refusing `SCAN` or
    /// `UNLINK` (`NOPERM` from an ACL that forbids them), is an error after three attempts,
    /// logged at error level and counted; the pattern is kept and retried in the background
    /// until Redis accepts it, and until then this process computes every key matching it
    /// instead of reading it. Other processes may serve those keys meanwhile, for at most their
    /// TTL. A refused command does not open the circuit breaker: the other keys stay cached.
    ///
    /// ```
    /// # use cachette_runtime::{Cache, Options};
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), cachette_runtime::Error> {
    /// let cache = Cache::memory(1 << 20);
    /// for key in ["guild:1:roles", "guild:1:members", "guild:2:roles"] {
    ///     cache.set(key, &1u32, &Options::new()).await?;
    /// }
    /// assert_eq!(cache.invalidate_pattern("guild:1:*").await?, 2);
    /// assert!(cache.exists("guild:2:roles").await?);
    /// # Ok(()) }
    /// ```
    pub async fn invalidate_pattern(&self, pattern: impl AsRef<str>) -> Result<u64> {
        let full = self.full_key(pattern.as_ref());
        let r = self
            .retrying("invalidate_pattern", || {
                self.inner.backend.delete_matching(&full, true)
            })
            .await;
        if r.is_err() {
            self.defer([Item::Pattern(full)]);
        }
        r
    }

    /// Runs an invalidation with retries (error replies only: an outage returns after its first
    /// failed attempt, see [`INVALIDATION_RETRY_DELAYS`]); counts and logs the outcome.
    async fn retrying<T, F, Fut>(&self, op: &'static str, mut f: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let name = Cow::Borrowed(op);
        let mut last = None;
        for delay in INVALIDATION_RETRY_DELAYS {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            match self.attributed(&name, f()).await {
                Ok(v) => {
                    self.inner.stats.record(Event::Invalidation, &name);
                    return Ok(v);
                }
                Err(e) => {
                    self.log_error(&self.inner.stats.log_backend, &name, op, &e);
                    // An outage (a timeout, a connection that fails) or the breaker open: more
                    // attempts would hold the caller for more timeouts, and the background
                    // worker retries the kept invalidation anyway. An error reply is retried.
                    let outage = e.is_unreachable();
                    last = Some(e);
                    if outage {
                        break;
                    }
                }
            }
        }
        self.inner.stats.record(Event::InvalidationFailure, &name);
        let e = last.unwrap_or(Error::Timeout(self.inner.config.op_timeout));
        // Not rate-limited: each one is an invalidation other processes do not see. A refusal
        // (`NOPERM`...) will not go away by itself: it needs the operator.
        tracing::error!(
            op, kind = e.kind(), refused_by_redis = !e.is_outage(), error = %e,
            "invalidation failed after retries; it is kept and retried in the background, and \
             until then this process reads around what it covers (other processes may serve \
             those entries until their TTL)"
        );
        Err(e)
    }
}
