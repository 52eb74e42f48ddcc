//! Kept invalidations: an invalidation that failed is kept (in `pending.rs`'s queue) and
//! applied by a background worker, a task of the runtime that kept it (restarted from any
//! runtime if that one ends), until it succeeds.

use crate::Cache;
use crate::backend::Store;
use crate::clock::Backoff;
use crate::pending::Item;
use crate::stats::Event;
use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::time::Duration;

impl Cache {
    /// Keeps the delete of `key` for the background worker without attempting it now (what a
    /// write-through whose store met an outage does): until it is applied this process reads
    /// around the key.
    pub(crate) fn keep_delete(&self, key: &str) {
        self.defer([Item::Key(self.full_key(key))]);
    }

    /// Keeps failed invalidations and makes sure the retry worker runs.
    pub(crate) fn defer(&self, items: impl IntoIterator<Item = Item>) {
        if self.inner.pending.add(items) {
            self.spawn_pending_worker();
        }
    }

    /// Starts the retry worker if invalidations are kept and none runs: the worker is a task
    /// of the runtime that kept them, and goes when that runtime shuts down, so every lookup
    /// and invalidation that finds kept items checks (one atomic load when nothing is kept).
    pub(crate) fn ensure_pending_worker(&self) {
        let pending = &self.inner.pending;
        if pending.any()
            && !pending.worker_running.load(Ordering::Acquire)
            && !pending.worker_running.swap(true, Ordering::AcqRel)
        {
            self.spawn_pending_worker();
        }
    }

    /// Spawns the retry worker on the current runtime (the caller set `worker_running`).
    fn spawn_pending_worker(&self) {
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                // Moved into the task, so dropped with it even if it never ran.
                let lease = WorkerLease(Some(self.clone()));
                handle.spawn(async move { apply_pending(lease).await });
            }
            Err(_) => self
                .inner
                .pending
                .worker_running
                .store(false, Ordering::Release),
        }
    }

    /// The retry worker: applies kept invalidations until none is left, backing off from
    /// 50 ms to 2 s between rounds.
    async fn apply_pending(&self, lease: &mut WorkerLease) {
        self.attributed(&Cow::Borrowed("deferred"), self.apply_pending_raw(lease))
            .await
    }

    async fn apply_pending_raw(&self, lease: &mut WorkerLease) {
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(2));
        loop {
            let snapshot = self.inner.pending.snapshot();
            let mut applied = Vec::with_capacity(snapshot.len());
            let tags: Vec<&(Item, u64)> = snapshot
                .iter()
                .filter(|(i, _)| matches!(i, Item::Tag(_)))
                .collect();
            if !tags.is_empty() {
                let keys: Vec<String> = tags
                    .iter()
                    .filter_map(|(i, _)| match i {
                        Item::Tag(t) => Some(t.clone()),
                        _ => None,
                    })
                    .collect();
                if self
                    .inner
                    .backend
                    .bump_tags(&keys, self.inner.config.tag_ttl)
                    .await
                    .is_ok()
                {
                    applied.extend(tags.into_iter().cloned());
                }
            }
            for entry in &snapshot {
                let ok = match &entry.0 {
                    Item::Tag(_) => continue,
                    Item::Key(k) => self
                        .inner
                        .backend
                        .delete(k, self.inner.config.fence_ttl)
                        .await
                        .is_ok(),
                    Item::Pattern(p) => self.inner.backend.delete_matching(p, true).await.is_ok(),
                    Item::All => self.clear_raw().await.is_ok(),
                };
                if ok {
                    applied.push(entry.clone());
                }
            }
            if !applied.is_empty() {
                tracing::info!(applied = applied.len(), "deferred invalidations applied");
                self.inner
                    .stats
                    .record(Event::Invalidation, &Cow::Borrowed("deferred"));
            }
            if !self.inner.pending.applied(&applied) {
                self.inner
                    .pending
                    .worker_running
                    .store(false, Ordering::Release);
                // Something added meanwhile saw the worker running: take it over.
                if self.inner.pending.len() == 0
                    || self
                        .inner
                        .pending
                        .worker_running
                        .swap(true, Ordering::AcqRel)
                {
                    lease.0 = None; // released above, or taken by another worker
                    return;
                }
            }
            if applied.len() < snapshot.len() {
                backoff.sleep(None).await;
            }
        }
    }
}

/// Runs the retry worker of the lease's cache.
async fn apply_pending(mut lease: WorkerLease) {
    if let Some(cache) = lease.0.clone() {
        cache.apply_pending(&mut lease).await;
    }
}

/// The retry worker's hold on `worker_running`: released if the worker's task is dropped
/// before it finishes, run or not (its runtime shut down), so that the next lookup or
/// invalidation starts another.
struct WorkerLease(Option<Cache>);

impl Drop for WorkerLease {
    fn drop(&mut self) {
        if let Some(cache) = &self.0 {
            cache
                .inner
                .pending
                .worker_running
                .store(false, Ordering::Release);
        }
    }
}
