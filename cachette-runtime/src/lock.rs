//! Distributed locks with owner tokens: released (or extended) only by their owner, expiring
//! by themselves when the holder dies.
//!
//! ```
//! use cachette_runtime::Cache;
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), cachette_runtime::Error> {
//! let cache = Cache::memory(1 << 20);
//! let lock = cache.try_lock("rebuild-leaderboard", Duration::from_secs(30)).await?;
//! let lock = lock.expect("nobody else holds it");
//! assert!(cache.try_lock("rebuild-leaderboard", Duration::from_secs(30)).await?.is_none());
//! assert!(lock.release().await?, "released by its owner");
//! assert!(cache.try_lock("rebuild-leaderboard", Duration::from_secs(30)).await?.is_some());
//! # Ok(()) }
//! ```

use crate::Cache;
use crate::backend::Store;
use crate::cache::MANUAL;
use crate::clock::Backoff;
use crate::error::Result;
use std::borrow::Cow;
use std::time::Duration;
use std::time::Instant;

/// A held lock. Release it with [`Lock::release`]; a lock that is dropped unreleased is
/// released in the background when a Tokio runtime is available, and otherwise expires at
/// its TTL.
#[must_use = "a lock is released when dropped; keep it while the protected work runs"]
pub struct Lock {
    pub(crate) cache: Cache,
    pub(crate) key: String,
    pub(crate) token: String,
    pub(crate) released: bool,
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lock")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Lock {
    /// The backend key of the lock.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// This holder's token (unique per acquisition).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Releases the lock if this holder still owns it (compare-and-delete). `Ok(false)` when
    /// the lock had expired and may now belong to someone else, whose lock is left alone.
    pub async fn release(mut self) -> Result<bool> {
        self.released = true;
        self.cache.release_lock_raw(&self.key, &self.token).await
    }

    /// Extends the lock to `ttl` from now if this holder still owns it.
    pub async fn extend(&self, ttl: Duration) -> Result<bool> {
        self.cache
            .extend_lock_raw(&self.key, &self.token, ttl)
            .await
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let cache = self.cache.clone();
            let key = std::mem::take(&mut self.key);
            let token = std::mem::take(&mut self.token);
            handle.spawn(async move {
                let _ = cache.release_lock_raw(&key, &token).await;
            });
        }
    }
}

impl Cache {
    /// Takes the lock `name` for `ttl` if nobody holds it (`SET NX PX` with a fresh random
    /// token). A holder that crashes loses the lock when `ttl` runs out.
    ///
    /// On Redis the lock excludes every process sharing it; on the memory store and on a
    /// [disabled](Self::disabled) cache, which keeps a lock table of its own although it
    /// stores nothing, it excludes within the process (this cache and its clones).
    ///
    /// `name`: a [`Key`](crate::Key) (`cachette::key!("rebuild:{}", id)`) or a string taken as
    /// already escaped, as for [`get`](Self::get).
    ///
    /// ```
    /// # use cachette_runtime::{Cache, Options};
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), cachette_runtime::Error> {
    /// let cache = Cache::memory(1 << 20);
    /// let ttl = Duration::from_secs(30);
    /// let first = cache.try_lock("nightly-report", ttl).await?;
    /// assert!(first.is_some());
    /// assert!(cache.try_lock("nightly-report", ttl).await?.is_none()); // held
    /// if let Some(lock) = first {
    ///     assert!(lock.release().await?);
    /// }
    /// assert!(cache.try_lock("nightly-report", ttl).await?.is_some());
    /// # Ok(()) }
    /// ```
    pub async fn try_lock(&self, name: impl AsRef<str>, ttl: Duration) -> Result<Option<Lock>> {
        let key = self.lock_key(name.as_ref());
        let token = crate::backend::new_version();
        let taken = self
            .attributed(
                &Cow::Borrowed(MANUAL),
                self.store().try_lock(&key, &token, ttl),
            )
            .await?;
        if taken {
            Ok(Some(Lock {
                cache: self.clone(),
                key,
                token,
                released: false,
            }))
        } else {
            Ok(None)
        }
    }

    /// Waits up to `wait` for the lock `name` (polling every 10 to 100 ms); `Ok(None)` when
    /// it stayed taken. It excludes as [`try_lock`](Self::try_lock) does, on a
    /// [disabled](Self::disabled) cache too.
    ///
    /// ```
    /// # use cachette_runtime::{Cache, Options};
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), cachette_runtime::Error> {
    /// let cache = Cache::memory(1 << 20);
    /// let (ttl, wait) = (Duration::from_secs(30), Duration::from_millis(20));
    /// let held = cache.lock("migrate", ttl, wait).await?;
    /// assert!(held.is_some());
    /// // Another holder waits up to `wait`, then gives up.
    /// assert!(cache.lock("migrate", ttl, wait).await?.is_none());
    /// # Ok(()) }
    /// ```
    pub async fn lock(
        &self,
        name: impl AsRef<str>,
        ttl: Duration,
        wait: Duration,
    ) -> Result<Option<Lock>> {
        let name = name.as_ref();
        let deadline = crate::clock::instant_after(Instant::now(), wait);
        let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(100));
        loop {
            if let Some(lock) = self.try_lock(name, ttl).await? {
                return Ok(Some(lock));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            backoff.sleep(Some(deadline)).await;
        }
    }

    pub(crate) async fn release_lock_raw(&self, key: &str, token: &str) -> Result<bool> {
        self.attributed(
            &Cow::Borrowed(MANUAL),
            self.store().release_lock(key, token),
        )
        .await
    }

    pub(crate) async fn extend_lock_raw(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<bool> {
        self.attributed(
            &Cow::Borrowed(MANUAL),
            self.store().extend_lock(key, token, ttl),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use crate::Cache;
    use std::time::Duration;

    /// Issue 13: switching caching off must not switch mutual exclusion off. Returns
    /// `Result` (no `unwrap` in `src`, tests included): a failed call is the test's error.
    #[tokio::test]
    async fn a_disabled_cache_still_excludes() -> crate::Result<()> {
        let cache = Cache::disabled();
        let ttl = Duration::from_secs(60);
        let first = cache.try_lock("job", ttl).await?;
        assert!(first.is_some(), "nobody holds it");
        assert!(
            cache.try_lock("job", ttl).await?.is_none(),
            "a second try_lock of a held lock is refused"
        );
        assert!(
            cache.clone().try_lock("job", ttl).await?.is_none(),
            "clones share the locks"
        );
        assert!(
            cache.lock("job", ttl, Duration::ZERO).await?.is_none(),
            "lock() waits in vain"
        );
        assert!(cache.try_lock("other", ttl).await?.is_some());
        if let Some(first) = first {
            assert!(first.extend(ttl).await?, "the owner extends it");
            assert!(first.release().await?, "released by its owner");
        }
        assert!(cache.try_lock("job", ttl).await?.is_some());
        Ok(())
    }
}
