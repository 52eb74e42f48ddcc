//! Waiting on another process's fill lock: polling the entry and the lock in one round trip
//! until the value is there, the lock is ours, or the wait times out.

use super::*;

impl<R, P: ReturnPolicy<R>> Call<'_, R, P> {
    /// A miss under a distributed lock: one process computes, the others poll (lookup and
    /// lock attempt in one round trip) until the value is there, the lock is theirs, or
    /// `lock.wait` has passed, after which they compute themselves.
    pub(super) async fn locked_fill<F: Compute<R>>(
        &self,
        lock: LockOptions,
        guard: LeaderGuard,
        compute: F,
        fallback: Option<P::Stored>,
    ) -> R {
        let (cache, opts, policy) = (self.cache, self.opts, self.policy);
        let (full_key, tag_keys) = (self.full_key.as_str(), &self.tag_keys[..]);
        let stats = &cache.recorder();
        let lock_key = cache.lock_key(full_key);
        let token = new_version();
        let deadline = crate::clock::instant_after(Instant::now(), lock.wait);
        let mut backoff = Backoff::new(LOCK_POLL_MIN, LOCK_POLL_MAX);
        let mut waited = false;
        let mut last = (None, None);
        // The stale-if-error fallback of the last poll: a fallback is shared with the flight's
        // followers under the basis of the read that found it, never under a later one.
        let mut last_fallback = None;
        loop {
            // The basis of a value this poll finds, should it be shared with this flight's
            // followers: the poll's own read.
            let started = guard.tick();
            match cache
                .store()
                .lookup_and_lock(full_key, tag_keys, &lock_key, &token, lock.ttl)
                .await
            {
                Ok((fetched, locked)) => {
                    let (state, _) = cache
                        .classify::<P::Stored>(full_key, &fetched, opts, self.decoded)
                        .await;
                    let seen = Seen::found(fetched.entry, fetched.patterns);
                    let poll_fallback = match state {
                        Freshness::Fresh(v, _) => Ok(v),
                        Freshness::Stale(v) => Err(Some(v)),
                        Freshness::Missing { fallback } => Err(fallback),
                    };
                    if let Ok(v) = poll_fallback {
                        if locked {
                            cache.release_quietly(&lock_key, &token, &opts.name).await;
                        }
                        let basis = Basis {
                            started,
                            versions: basis_versions(&fetched.versions, tag_keys.len()),
                            seen: Some(seen),
                        };
                        share_found(guard, &v, basis);
                        return policy.restore(v);
                    }
                    if locked {
                        let fill = self
                            .prepare_fill(
                                (Some(fetched.versions), Some(seen)),
                                Some(guard),
                                compute,
                            )
                            .await;
                        let fallback = poll_fallback.err().flatten();
                        let r = cache.fill(fill, policy, opts, fallback, None).await;
                        cache.release_quietly(&lock_key, &token, &opts.name).await;
                        return r;
                    }
                    last = (Some(fetched.versions), Some(seen));
                    last_fallback = Some(poll_fallback.err().flatten());
                    if !waited {
                        waited = true;
                        stats.record(Event::LockWait, &opts.name);
                    }
                }
                Err(e) => {
                    cache.log_error(&stats.log_backend, &opts.name, "lock", &e);
                    break;
                }
            }
            if Instant::now() >= deadline {
                stats.record(Event::LockTimeout, &opts.name);
                break;
            }
            backoff.sleep(Some(deadline)).await;
        }
        let fill = self.prepare_fill(last, Some(guard), compute).await;
        // No poll answered: the first lookup's fallback, under no basis (no follower takes it).
        let fallback = last_fallback.unwrap_or(fallback);
        cache.fill(fill, policy, opts, fallback, None).await
    }
}

impl Cache {
    pub(super) async fn release_quietly(
        &self,
        lock_key: &str,
        token: &str,
        name: &Cow<'static, str>,
    ) {
        if let Err(e) = self.store().release_lock(lock_key, token).await {
            self.log_error(&self.recorder().log_backend, name, "unlock", &e);
        }
    }
}
