//! The commands of the cached-call path and the manual API: lookups (`fetch`, one `MGET`
//! alone or batched), tag versions (created, bumped, or under `maxmemory` unlinked), entries
//! (stored, compare-and-set, deleted behind a tombstone), and pattern invalidation (`SCAN` +
//! `UNLINK`).

use super::RedisBackend;
use super::connections::ENSURE_EPOCH;
use super::replies::{bulk_strings, fetched, is_oom, millis, replicated, version_from_bytes};
use super::round_trip::{Op, waiting_timeout};
use crate::backend::batch::{Batch, Replies, Waiter};
use crate::backend::{Fetched, Seen, new_version};
use crate::error::{Error, Result};
use std::sync::OnceLock;
use std::time::Duration;

/// Keys removed per `UNLINK` and asked for per `SCAN` step in pattern invalidation.
pub(super) const SCAN_BATCH: usize = 1000;

/// The compare-and-set of a fill (`KEYS`: the entry, the pattern count; `ARGV`: the bytes,
/// the TTL in ms, `same` or `absent`, what was seen): stores only if the entry still holds the
/// bytes seen, or is still absent with the pattern count seen. 1 if stored.
pub(super) const STORE_IF: &str = "local ok \
     if ARGV[3] == 'same' then ok = redis.call('GET', KEYS[1]) == ARGV[4] \
     else ok = redis.call('EXISTS', KEYS[1]) == 0 and \
       (redis.call('GET', KEYS[2]) or '0') == ARGV[4] end \
     if ok then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end \
     return 0";

/// A delete (`KEYS`: the entry; `ARGV`: the tombstone, its TTL in ms, what a tombstone starts
/// with): leaves the tombstone; 1 if an entry (not a tombstone) was there.
pub(super) const FENCE: &str = "local old = redis.call('GET', KEYS[1]) \
     redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) \
     if old and string.sub(old, 1, string.len(ARGV[3])) ~= ARGV[3] then return 1 end \
     return 0";

impl RedisBackend {
    /// The entry at `key` (if any) and the versions of `tag_keys`: one `MGET`, alone or
    /// batched with the lookups of other callers (see [`crate::backend::batch`]).
    pub(crate) async fn fetch(&self, key: Option<&str>, tag_keys: &[String]) -> Result<Fetched> {
        if key.is_none() && tag_keys.is_empty() {
            return Ok(Fetched::default());
        }
        // With an entry, the pattern count last (see `Seen::Absent`).
        let patterns = key.map(|_| self.patterns_key.as_str());
        let keys = || {
            key.into_iter()
                .chain(tag_keys.iter().map(String::as_str))
                .chain(patterns)
        };
        let replies = self
            .batcher
            .lookup(keys, self.op_timeout, |keys, waiters, timeout| {
                self.mget(keys, waiters, timeout)
            })
            .await;
        Ok(fetched(key.is_some(), replies?))
    }

    /// [`fetch`](Self::fetch) of an entry for a near cache, never batched: the `MGET` and, in
    /// the same pipeline (one round trip), the `PTTL` of the entry and of each tag key. With
    /// the time the entry may be kept in this process: the shortest of those (a key without
    /// one does not shorten it; `None`: a key is gone, keep nothing).
    pub(crate) async fn fetch_expiring(
        &self,
        key: &str,
        tag_keys: &[String],
    ) -> Result<(Fetched, Option<Duration>)> {
        let mut pipe = redis::pipe();
        let mget = pipe.cmd("MGET").arg(key);
        for t in tag_keys {
            mget.arg(t);
        }
        mget.arg(&self.patterns_key);
        pipe.cmd("PTTL").arg(key);
        for t in tag_keys {
            pipe.cmd("PTTL").arg(t);
        }
        let (mget, ttls): (redis::Value, Vec<i64>) = self
            .guarded(Op::Fetch, |mut conn| async move {
                let mut replies: Vec<redis::Value> = pipe.query_async(&mut conn).await?;
                let ttls = replies
                    .split_off(1.min(replies.len()))
                    .into_iter()
                    .map(|v| redis::from_redis_value::<i64>(v).unwrap_or(-2))
                    .collect();
                let mget = replies.pop().unwrap_or(redis::Value::Nil);
                Ok((mget, ttls))
            })
            .await?;
        let keep = ttls.iter().try_fold(None::<u64>, |shortest, &ms| match ms {
            // No expiry.
            -1 => Some(shortest),
            ms => {
                let ms = u64::try_from(ms).ok().filter(|&ms| ms > 0)?;
                Some(Some(shortest.map_or(ms, |s| s.min(ms))))
            }
        });
        let keep = keep.map(|ms| ms.map_or(crate::config::MAX_DURATION, Duration::from_millis));
        Ok((fetched(true, bulk_strings(mget)), keep))
    }

    /// One `MGET` of `keys` and of every waiter's keys, within `timeout`; delivers the
    /// waiters' replies and returns those of `keys`.
    pub(super) async fn mget<'a>(
        &self,
        keys: impl Iterator<Item = &'a str>,
        waiters: Vec<Waiter>,
        timeout: Duration,
    ) -> Result<Replies> {
        let mut cmd = redis::cmd("MGET");
        let batch = Batch::new(keys, &waiters, |k| {
            cmd.arg(k);
        });
        let replies = self
            .guarded_on(None, Op::Fetch, timeout, |mut conn| async move {
                let v: redis::Value = cmd.query_async(&mut conn).await?;
                Ok(bulk_strings(v))
            })
            .await;
        batch.deliver(waiters, replies)
    }

    pub(crate) async fn ensure_tags(
        &self,
        tag_keys: &[String],
        ttl: Duration,
    ) -> Result<Vec<Option<String>>> {
        if tag_keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for t in tag_keys {
            if *t == self.epoch_key {
                // The epoch is made by the server process it names (see the module's docs).
                pipe.cmd("EVAL")
                    .arg(ENSURE_EPOCH)
                    .arg(1)
                    .arg(t)
                    .arg(new_version());
                continue;
            }
            pipe.cmd("SET")
                .arg(t)
                .arg(new_version())
                .arg("NX")
                .arg("PX")
                .arg(millis(ttl))
                .ignore();
            pipe.get(t);
        }
        let replies: Vec<Option<Vec<u8>>> = self.run(Op::CreateTags, &pipe).await?;
        Ok(replies.into_iter().map(version_from_bytes).collect())
    }

    /// Invalidates by deleting the tag keys: what `bump_tags` falls back to when Redis, full
    /// under `maxmemory` with `noeviction`, refuses the `SET` of new versions (`OOM`) but not
    /// `UNLINK`. A missing tag key matches no stored version, so every entry carrying the tag
    /// is invalid, as after a new version (and the version created later is random, so it
    /// revives none). One more round trip.
    async fn unlink_tags(&self, tag_keys: &[String], refused: &Error) -> Result<()> {
        metrics::counter!("cachette_tag_unlink_fallbacks_total").increment(1);
        if let Some(held) = self.log_oom.allow() {
            tracing::warn!(
                tags = tag_keys.len(), error = %refused, suppressed = held,
                "Redis is out of memory and refused new tag versions; invalidating by deleting the tag keys"
            );
        }
        let mut pipe = redis::pipe();
        for t in tag_keys {
            // One key per command, as the `SET`s: a cluster client can route each.
            pipe.cmd("UNLINK").arg(t).ignore();
        }
        self.run::<()>(Op::Invalidate, &pipe).await
    }

    pub(crate) async fn bump_tags(&self, tag_keys: &[String], ttl: Duration) -> Result<()> {
        if tag_keys.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for t in tag_keys {
            pipe.cmd("SET")
                .arg(t)
                .arg(new_version())
                .arg("PX")
                .arg(millis(ttl))
                .ignore();
        }
        let applied = match self.wait_replicas {
            None => self.run::<()>(Op::Invalidate, &pipe).await,
            // On the same connection, in the same round trip: WAIT counts the replicas that
            // have this connection's writes so far.
            Some((wanted, wait)) => {
                pipe.cmd("WAIT").arg(wanted).arg(millis(wait));
                self.guarded_on(
                    Some(&self.waiting),
                    Op::Invalidate,
                    waiting_timeout(self.op_timeout, 1, wait),
                    |mut conn| {
                        let pipe = &pipe;
                        async move { pipe.query_async::<(usize,)>(&mut conn).await }
                    },
                )
                .await
                .and_then(|(acked,)| replicated(wanted, acked))
            }
        };
        match applied {
            // Under OOM the UNLINKs are not waited for: they are reported as applied by the
            // primary only (see `unlink_tags`).
            Err(e) if is_oom(&e) => self.unlink_tags(tag_keys, &e).await,
            r => r,
        }
    }

    /// `SET key bytes PX ttl`, unconditionally (`expect` is `None`) or only if the key still
    /// holds what `expect` saw: `NX` when it was absent, a compare-and-set script otherwise.
    /// Whether it was stored.
    pub(crate) async fn store(
        &self,
        key: &str,
        bytes: Vec<u8>,
        ttl: Duration,
        expect: Option<&Seen>,
    ) -> Result<bool> {
        // The compare-and-set: the same bytes as the lookup saw, or still absent with no
        // pattern invalidation since the lookup.
        let (mode, expected) = match expect {
            Some(Seen::Bytes(old)) => ("same", old.to_vec()),
            Some(Seen::Absent { patterns }) => ("absent", patterns.count.to_string().into_bytes()),
            // Redis never hands out a parsed entry: nothing to compare with.
            Some(Seen::Entry(_)) => return Ok(false),
            None => return self.set(key, bytes, ttl).await.map(|()| true),
        };
        static SCRIPT: OnceLock<redis::Script> = OnceLock::new();
        let script = SCRIPT.get_or_init(|| redis::Script::new(STORE_IF));
        let ms = millis(ttl);
        let stored = self
            .guarded(Op::Store, |mut conn| async move {
                script
                    .key(key)
                    .key(&self.patterns_key)
                    .arg(bytes)
                    .arg(ms)
                    .arg(mode)
                    .arg(expected)
                    .invoke_async::<i64>(&mut conn)
                    .await
            })
            .await?;
        Ok(stored == 1)
    }

    /// `SET key bytes PX ttl`.
    async fn set(&self, key: &str, bytes: Vec<u8>, ttl: Duration) -> Result<()> {
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(key)
            .arg(bytes)
            .arg("PX")
            .arg(millis(ttl))
            .ignore();
        self.run::<()>(Op::Store, &pipe).await
    }

    /// Replaces what is at `key` by a tombstone living `fence_ttl` (one script, one round
    /// trip); whether an entry (not a tombstone) was there.
    pub(crate) async fn delete(&self, key: &str, fence_ttl: Duration) -> Result<bool> {
        static SCRIPT: OnceLock<redis::Script> = OnceLock::new();
        let script = SCRIPT.get_or_init(|| redis::Script::new(FENCE));
        let tomb = crate::codec::tombstone();
        let prefix = crate::codec::TOMBSTONE_PREFIX;
        let ms = millis(fence_ttl);
        let wait = self.wait_replicas;
        // The script, then WAIT: two round trips and the wait.
        let timeout = match wait {
            Some((_, w)) => waiting_timeout(self.op_timeout, 2, w),
            None => self.op_timeout,
        };
        // With a wait, on the connection of waiting invalidations (see `waiting`).
        let slot = wait.map(|_| &self.waiting);
        let (existed, acked) = self
            .guarded_on(slot, Op::Delete, timeout, |mut conn| async move {
                let existed = script
                    .key(key)
                    .arg(tomb)
                    .arg(ms)
                    .arg(prefix)
                    .invoke_async::<i64>(&mut conn)
                    .await?;
                let acked = match wait {
                    Some((wanted, wait)) => Some(
                        redis::cmd("WAIT")
                            .arg(wanted)
                            .arg(millis(wait))
                            .query_async::<usize>(&mut conn)
                            .await?,
                    ),
                    None => None,
                };
                Ok((existed, acked))
            })
            .await?;
        if let (Some((wanted, _)), Some(acked)) = (wait, acked) {
            replicated(wanted, acked)?;
        }
        Ok(existed == 1)
    }

    /// One `SCAN cursor MATCH pattern COUNT 1000` step: the next cursor and the keys found.
    pub(super) async fn scan_step(
        &self,
        pattern: &str,
        cursor: u64,
    ) -> Result<(u64, Vec<Vec<u8>>)> {
        let mut pipe = redis::pipe();
        pipe.cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(SCAN_BATCH);
        let (step,): ((u64, Vec<Vec<u8>>),) = self.run(Op::Scan, &pipe).await?;
        Ok(step)
    }

    /// `SCAN MATCH` + `UNLINK` in batches; never `KEYS`. Each step is one round trip with its
    /// own timeout, so a large keyspace takes several timeouts' worth in total.
    /// With `fence`, the pattern count is bumped first (see `Seen::Absent`).
    pub(crate) async fn delete_matching(&self, pattern: &str, fence: bool) -> Result<u64> {
        if fence {
            let mut pipe = redis::pipe();
            pipe.cmd("INCR").arg(&self.patterns_key).ignore();
            self.run::<()>(Op::Invalidate, &pipe).await?;
        }
        let mut cursor: u64 = 0;
        let mut deleted = 0u64;
        loop {
            let (next, keys) = self.scan_step(pattern, cursor).await?;
            for chunk in keys.chunks(SCAN_BATCH) {
                let mut pipe = redis::pipe();
                pipe.cmd("UNLINK").arg(chunk);
                let (n,): (u64,) = self.run(Op::Delete, &pipe).await?;
                deleted = deleted.saturating_add(n);
            }
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    }
}
