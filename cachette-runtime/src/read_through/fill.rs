//! The fill: running the computation, resolving the tag versions it is stored with, and the
//! compare-and-set store.

use super::*;

impl Cache {
    /// Runs the computation, stores what the policy stores, tells the flight's followers,
    /// and falls back to `fallback` when the computation fails and a fallback applies
    /// (stale-if-error; or, with `fallback_on_error`, the value being refreshed).
    pub(super) async fn fill<R, P: ReturnPolicy<R>, F: Compute<R>>(
        &self,
        fill: Fill<F>,
        policy: &P,
        opts: &Options,
        fallback: Option<P::Stored>,
        fallback_on_error: Option<CallOutcome>,
    ) -> R {
        let Fill {
            full_key,
            versions,
            seen,
            looked_at,
            ttl,
            compute,
            guard,
            keep_decoded,
        } = fill;
        // What the computation is made under, for the flight's followers (see `flight.rs`).
        let basis = guard.as_ref().map(|g| {
            Arc::new(Basis {
                started: g.tick(),
                versions: versions
                    .as_ref()
                    .map(|v| v.iter().map(|(_, v)| Box::from(v.as_str())).collect()),
                seen: seen.clone(),
            })
        });
        let started = Instant::now();
        let result = compute().await;
        let elapsed = started.elapsed();
        let compute_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.recorder()
            .name(&opts.name)
            .compute_seconds
            .record(elapsed.as_secs_f64());

        if policy.is_error(&result)
            && let Some(stale) = fallback
        {
            if fallback_on_error.is_none() {
                self.recorder().record(Event::StaleIfError, &opts.name);
                tracing::debug!(cache = %opts.name, key = %full_key, "computation failed; serving the stale value");
            }
            report(fallback_on_error.unwrap_or(CallOutcome::Stale));
            if let (Some(guard), Some(basis)) = (guard, basis) {
                // The fallback was checked by the leader's lookup, not computed: it serves
                // only followers that read the same versions and key state.
                let basis = Basis {
                    started: 0,
                    versions: basis.versions.clone(),
                    seen: basis.seen.clone(),
                };
                share_found(guard, &stale, basis);
            }
            return policy.restore(stale);
        }

        let raw = policy.share(&result).and_then(|v| match codec::encode_value(v) {
            Ok(raw) if lossless::reads_back(v, &raw) => Some(raw),
            Ok(_) => {
                // Neither stored nor shared as bytes: followers would read the same wrong value.
                self.recorder().record(Event::Lossy, &opts.name);
                if let Some(held) = self.recorder().log_lossy.allow() {
                    tracing::warn!(
                        cache = %opts.name, suppressed = held,
                        "value would not read back from JSON as computed (e.g. Some(NaN), Some(None)); not stored"
                    );
                }
                None
            }
            Err(e) => {
                if let Some(held) = self.recorder().log_oversize.allow() {
                    tracing::warn!(cache = %opts.name, error = %e, suppressed = held, "value does not serialize; not stored");
                }
                None
            }
        });
        if let (Some(raw), Some((_, ttl_override)), Some(versions)) =
            (&raw, policy.to_store(&result), versions)
        {
            let ttl = match ttl_override {
                Some(t) => self.ttl_for(t, &opts.name),
                None => ttl,
            };
            let fence_ttl = self.config().fence_ttl;
            let outlived_fence = matches!(seen, Some(Seen::Absent { .. }))
                && looked_at.elapsed() >= fence_ttl.checked_div(2).unwrap_or_default();
            let stored = match (&seen, outlived_fence) {
                (Some(seen), false) => {
                    let entry = ToStore {
                        full_key: &full_key,
                        raw,
                        versions: &versions,
                        ttl,
                        compute_us,
                        keep_decoded,
                    };
                    self.store_raw(entry, opts, Some(seen)).await.map(Some)
                }
                _ => Ok(None),
            };
            match stored {
                Ok(Some(true)) => {}
                Ok(Some(false) | None) => {
                    self.recorder().record(Event::FillFenced, &opts.name);
                    tracing::debug!(
                        cache = %opts.name, key = %full_key,
                        "the key was written or deleted since the computation began; not stored"
                    );
                }
                Err(Error::TooLarge { .. }) => {}
                Err(e) => self.log_error(&self.recorder().log_backend, &opts.name, "store", &e),
            }
        }
        if let (Some(guard), Some(basis)) = (guard, basis) {
            let outcome = match raw {
                Some(raw) => Outcome::Value(Arc::from(raw.get().as_bytes()), basis),
                None => match policy.share_error(&result) {
                    Some(shared) => Outcome::Shared(shared, basis),
                    None => Outcome::Unshareable,
                },
            };
            guard.finish(outcome);
        }
        result
    }

    /// The tag versions a fill starting now is stored with; creates missing tag keys.
    /// `None`: do not store (the backend failed).
    pub(crate) async fn fill_versions(
        &self,
        tags: &[String],
        tag_keys: &[String],
        fetched: Option<Vec<Option<String>>>,
        entry_ttl: Duration,
        name: &Cow<'static, str>,
    ) -> Option<Vec<(String, String)>> {
        let known = fetched?;
        match self
            .resolve_versions(tags, tag_keys, known, entry_ttl)
            .await
        {
            Ok(versions) => versions,
            Err(e) => {
                self.log_error(&self.recorder().log_backend, name, "create_tags", &e);
                None
            }
        }
    }

    /// The tag versions an entry is stored with (what a fill and a write-through share):
    /// `known`, read by a lookup (`None` where a tag key was missing; the write-through knows
    /// none), with the missing tag keys created. `Ok(None)`: a tag key vanished while it was
    /// created.
    pub(crate) async fn resolve_versions(
        &self,
        tags: &[String],
        tag_keys: &[String],
        mut known: Vec<Option<String>>,
        entry_ttl: Duration,
    ) -> Result<Option<Vec<(String, String)>>, crate::Error> {
        known.resize(tag_keys.len(), None);
        let missing: Vec<usize> = (0..tag_keys.len())
            .filter(|&i| known[i].is_none())
            .collect();
        if !missing.is_empty() {
            let keys: Vec<String> = missing.iter().map(|&i| tag_keys[i].clone()).collect();
            let ttl = self.config().tag_ttl.max(entry_ttl);
            let created = self.store().ensure_tags(&keys, ttl).await?;
            for (&i, v) in missing.iter().zip(created) {
                known[i] = v;
            }
        }
        Ok(named_versions(tags, known))
    }

    /// Stores a serialized value: fresh for `ttl` shortened by jitter, kept by the backend
    /// for the stale windows beyond that.
    /// With `expect`, only if the key is still in that state (see [`Seen`]); whether it was
    /// stored.
    pub(crate) async fn store_raw(
        &self,
        entry: ToStore<'_>,
        opts: &Options,
        expect: Option<&Seen>,
    ) -> Result<bool> {
        let ToStore {
            full_key,
            raw,
            versions,
            ttl,
            compute_us,
            keep_decoded,
        } = entry;
        let config = &self.config();
        let jitter = opts.jitter.unwrap_or(config.jitter).clamp(0.0, 1.0);
        let ttl = if jitter > 0.0 {
            let cut = ttl.mul_f64(jitter * config.random.next_f64().clamp(0.0, 1.0));
            ttl.saturating_sub(cut).max(Duration::from_millis(1))
        } else {
            ttl
        };
        let now = config.clock.now_ms();
        let meta = Meta {
            created_ms: now,
            fresh_until_ms: now.saturating_add(millis(ttl)),
            compute_us,
        };
        let bytes = codec::encode_raw(raw, versions, meta)?;
        let max = config.max_value_bytes;
        if bytes.len() > max {
            self.recorder().record(Event::Oversize, &opts.name);
            if let Some(held) = self.recorder().log_oversize.allow() {
                tracing::warn!(
                    cache = %opts.name, size = bytes.len(), max, suppressed = held,
                    "value over the size limit; not stored"
                );
            }
            return Err(Error::TooLarge {
                size: bytes.len(),
                max,
            });
        }
        let mut keep = ttl
            .saturating_add(opts.stale.max(opts.stale_if_error))
            .min(MAX_DURATION);
        if expect.is_none() {
            // An unconditional write (`set`, `#[cache_put]`) is also a fence: a computation
            // that found the key absent before it must not find it absent again when it
            // stores, so the entry stays (as a miss once past its windows) for at least the
            // fence TTL, like a delete's tombstone.
            keep = keep.max(self.config().fence_ttl);
        }
        let stored = self
            .store()
            .store(full_key, bytes, keep, keep_decoded, expect)
            .await?;
        if stored {
            self.recorder().record(Event::Store, &opts.name);
        }
        Ok(stored)
    }
}

/// What [`Cache::store_raw`] stores.
pub(crate) struct ToStore<'a> {
    pub full_key: &'a str,
    pub raw: &'a RawValue,
    /// The tags with the versions the entry is stored under.
    pub versions: &'a [(String, String)],
    /// Fresh for this long (before jitter).
    pub ttl: Duration,
    /// What the computation took (0: unknown), for early refresh.
    pub compute_us: u64,
    /// The store may keep a decoded copy of the value.
    pub keep_decoded: bool,
}

/// Versions named by their tags, in order: the call's tags, then (on Redis) the epoch;
/// `None` when one is missing.
pub(crate) fn named_versions(
    tags: &[String],
    versions: Vec<Option<String>>,
) -> Option<Vec<(String, String)>> {
    versions
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let name = tags.get(i).map_or(EPOCH_TAG, String::as_str);
            v.map(|v| (name.to_owned(), v))
        })
        .collect()
}
