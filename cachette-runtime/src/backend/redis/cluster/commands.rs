//! The cluster store's commands: lookups (batched, then one `MGET` per slot), tag versions,
//! entries (stored under the identity of their primary, compare-and-set, deleted behind a
//! tombstone), locks, and what is asked of every primary (`SCAN`, `INFO`, `PING`).

use super::ClusterStore;
use super::router::{Answer, Routed};
use super::slots::{SLOTS, slot_of, slot_tag};
use crate::backend::batch::{Batch, Replies};
use crate::backend::redis::commands::{FENCE, SCAN_BATCH, STORE_IF};
use crate::backend::redis::locks::{EXTEND, RELEASE, lock_cmd};
use crate::backend::redis::replies::{is_oom, millis, version_from_bytes};
use crate::backend::redis::round_trip::{Op, waiting_timeout};
use crate::backend::{Fetched, Patterns, Seen, new_version};
use crate::error::{Error, Result};
use bytes::Bytes;
use std::time::Duration;

/// Moves each count named in `ARGV` (the slots' pattern counts one primary serves: not
/// declared as keys, which must share a slot); how many.
const FENCE_EVERY_SLOT: &str = "#!lua flags=allow-cross-slot-keys
for i = 1, #ARGV do redis.call('INCR', ARGV[i]) end
return #ARGV";

/// Bytes put before each value a lookup hands over: the identity it was read under
/// (big-endian), then 1 if the key held a string, 0 if not.
const IDENT: usize = 9;

/// Bytes of what an entry is stored after: `#` and the identity in hex.
const PREFIX: usize = 17;

/// What an entry stored on the primary of identity `ident` starts with.
fn entry_prefix(ident: u64) -> String {
    format!("#{ident:016x}")
}

/// `bytes` as stored on the primary of identity `ident`: after its prefix.
fn prefixed(ident: u64, bytes: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(PREFIX.saturating_add(bytes.len()));
    v.extend_from_slice(entry_prefix(ident).as_bytes());
    v.extend_from_slice(bytes);
    v
}

/// The identity a reply was read under and the value, if the key held one (see
/// [`with_ident`]).
fn split(v: Bytes) -> (u64, Option<Bytes>) {
    let ident = v
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_be_bytes);
    let value = (v.get(8) == Some(&1)).then(|| v.slice(IDENT.min(v.len())..));
    (ident, value)
}

/// What the bytes of an entry not stored under the identity it is read under are handed over
/// after: they never decode (a miss), and a fill's compare-and-set then expects them as they
/// are (see [`expected`]).
const FOREIGN: u8 = 0;

/// An entry read under `ident`: its envelope when it was stored under that identity; its bytes
/// after [`FOREIGN`] otherwise (stored under another identity, or not by cachette).
fn entry_read(ident: u64, raw: Bytes) -> Bytes {
    if raw.starts_with(entry_prefix(ident).as_bytes()) {
        raw.slice(PREFIX..)
    } else {
        let mut out = Vec::with_capacity(raw.len().saturating_add(1));
        out.push(FOREIGN);
        out.extend_from_slice(&raw);
        Bytes::from(out)
    }
}

/// What a compare-and-set on the primary of identity `ident` expects at the key, given what
/// a lookup handed over ([`entry_read`]).
fn expected(ident: u64, seen: &[u8]) -> Vec<u8> {
    match seen.split_first() {
        Some((&FOREIGN, raw)) => raw.to_vec(),
        _ => prefixed(ident, seen),
    }
}

/// A tag version read under `ident`: `identity/version`.
fn version_read(ident: u64, raw: &[u8]) -> Option<String> {
    version_from_bytes(Some(raw)).map(|v| format!("{ident:016x}/{v}"))
}

/// A lookup's replies (each value after its identity): the entry first when there is one,
/// then the tag versions, then the pattern count when there is an entry.
fn fetched(has_entry: bool, mut replies: Replies) -> Fetched {
    // The count under the identity it was read under: a fill's compare-and-set stores only on
    // that server process (a count a failover lost must not let it through).
    let patterns = if has_entry {
        let (ident, count) = replies.pop().flatten().map_or((0, None), split);
        let count = count.and_then(|c| std::str::from_utf8(&c).ok()?.parse().ok());
        fence(ident, count.unwrap_or(0))
    } else {
        Patterns::default()
    };
    let mut replies = replies.into_iter().map(|r| r.map_or((0, None), split));
    let entry = if has_entry {
        replies
            .next()
            .and_then(|(ident, raw)| Some(entry_read(ident, raw?)))
    } else {
        None
    };
    let versions = replies
        .map(|(ident, raw)| version_read(ident, &raw?))
        .collect();
    Fetched {
        entry,
        versions,
        patterns,
    }
}

/// A pattern count read under `ident`, as a lookup reports it ([`Seen::Absent`]).
fn fence(ident: u64, count: u64) -> Patterns {
    Patterns {
        count,
        read_on: ident,
    }
}

/// What a compare-and-set of an absent key on the primary of identity `ident` expects the
/// pattern count to be: the count a lookup saw if it saw it there; otherwise nothing a count
/// can be.
fn expected_count(ident: u64, seen: Patterns) -> Vec<u8> {
    if seen.read_on == ident {
        seen.count.to_string().into_bytes()
    } else {
        b"-".to_vec()
    }
}

/// A reply's bulk string, if it is one.
fn bulk(v: redis::Value) -> Option<Bytes> {
    match v {
        redis::Value::BulkString(b) => Some(Bytes::from(b)),
        _ => None,
    }
}

impl ClusterStore {
    /// The entry at `key` (if any) and the versions of `tag_keys`: one `MGET` per slot, alone
    /// or batched with the lookups of other callers (see [`crate::backend::batch`]).
    pub(super) async fn fetch(&self, key: Option<&str>, tag_keys: &[String]) -> Result<Fetched> {
        if key.is_none() && tag_keys.is_empty() {
            return Ok(Fetched::default());
        }
        let patterns = key.map(|k| self.patterns_key(k));
        let keys = || {
            key.into_iter()
                .chain(tag_keys.iter().map(String::as_str))
                .chain(patterns.as_deref())
        };
        let replies = self
            .batcher
            .lookup(keys, self.op_timeout, |keys, waiters, timeout| async move {
                let mut sent: Vec<String> = Vec::new();
                let batch = Batch::new(keys, &waiters, |k| sent.push(k.to_owned()));
                let replies = self.mget(&sent, timeout).await;
                batch.deliver(waiters, replies)
            })
            .await;
        Ok(fetched(key.is_some(), replies?))
    }

    /// The values of `keys`, each after the identity it was read under ([`with_ident`]): one
    /// `MGET` per slot, in one round trip.
    async fn mget(&self, keys: &[String], timeout: Duration) -> Result<Replies> {
        let mut by_slot: Vec<(u16, Vec<usize>)> = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            let s = slot_of(k.as_bytes());
            match by_slot.iter_mut().find(|(x, _)| *x == s) {
                Some((_, at)) => at.push(i),
                None => by_slot.push((s, vec![i])),
            }
        }
        let cmds: Vec<Routed> = by_slot
            .iter()
            .map(|(s, at)| {
                let mut cmd = redis::cmd("MGET");
                for &i in at {
                    cmd.arg(keys.get(i).map_or("", String::as_str));
                }
                Routed::fixed(*s, cmd)
            })
            .collect();
        let answers = self.send(Op::Fetch, &cmds, None, timeout).await?;
        let mut replies: Replies = vec![None; keys.len()];
        for ((_, at), (value, ident)) in by_slot.iter().zip(answers) {
            let redis::Value::Array(values) = value else {
                continue;
            };
            for (&i, v) in at.iter().zip(values) {
                if let Some(r) = replies.get_mut(i) {
                    *r = with_ident((v, ident));
                }
            }
        }
        Ok(replies)
    }

    pub(super) async fn ensure_tags(
        &self,
        tag_keys: &[String],
        ttl: Duration,
    ) -> Result<Vec<Option<String>>> {
        if tag_keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmds = Vec::with_capacity(tag_keys.len().saturating_mul(2));
        for t in tag_keys {
            let s = slot_of(t.as_bytes());
            let mut set = redis::cmd("SET");
            set.arg(t)
                .arg(new_version())
                .arg("NX")
                .arg("PX")
                .arg(millis(ttl));
            cmds.push(Routed::fixed(s, set));
            let mut get = redis::cmd("GET");
            get.arg(t);
            cmds.push(Routed::fixed(s, get));
        }
        let answers = self
            .send(Op::CreateTags, &cmds, None, self.op_timeout)
            .await?;
        Ok(answers
            .into_iter()
            .skip(1)
            .step_by(2)
            .map(|(v, ident)| bulk(v).and_then(|b| version_read(ident, &b)))
            .collect())
    }

    pub(super) async fn bump_tags(&self, tag_keys: &[String], ttl: Duration) -> Result<()> {
        if tag_keys.is_empty() {
            return Ok(());
        }
        let cmds: Vec<Routed> = tag_keys
            .iter()
            .map(|t| {
                let mut set = redis::cmd("SET");
                set.arg(t).arg(new_version()).arg("PX").arg(millis(ttl));
                Routed::fixed(slot_of(t.as_bytes()), set)
            })
            .collect();
        let timeout = match self.wait_replicas {
            Some((_, wait)) => waiting_timeout(self.op_timeout, 1, wait),
            None => self.op_timeout,
        };
        match self
            .send(Op::Invalidate, &cmds, self.wait_replicas, timeout)
            .await
        {
            Err(e) if is_oom(&e) => self.unlink_tags(tag_keys, &e).await,
            r => r.map(|_| ()),
        }
    }

    /// As the single server's: deletes the tag keys when Redis, full, refuses new versions.
    async fn unlink_tags(&self, tag_keys: &[String], refused: &Error) -> Result<()> {
        metrics::counter!("cachette_tag_unlink_fallbacks_total").increment(1);
        if let Some(held) = self.log_oom.allow() {
            tracing::warn!(
                tags = tag_keys.len(), error = %refused, suppressed = held,
                "Redis is out of memory and refused new tag versions; invalidating by deleting the tag keys"
            );
        }
        let cmds: Vec<Routed> = tag_keys
            .iter()
            .map(|t| {
                let mut c = redis::cmd("UNLINK");
                c.arg(t);
                Routed::fixed(slot_of(t.as_bytes()), c)
            })
            .collect();
        self.send(Op::Invalidate, &cmds, None, self.op_timeout)
            .await
            .map(|_| ())
    }

    /// As the single server's `store`, the entry stored under the identity of its primary.
    pub(super) async fn store(
        &self,
        key: &str,
        bytes: Vec<u8>,
        ttl: Duration,
        expect: Option<&Seen>,
    ) -> Result<bool> {
        let ms = millis(ttl);
        let key_owned = key.to_owned();
        let build: Box<dyn Fn(u64) -> redis::Cmd + Send + Sync> = match expect {
            None => Box::new(move |ident| {
                let mut c = redis::cmd("SET");
                c.arg(&key_owned)
                    .arg(prefixed(ident, &bytes))
                    .arg("PX")
                    .arg(ms);
                c
            }),
            Some(Seen::Entry(_)) => return Ok(false),
            Some(seen) => {
                // The bytes seen (made what the key holds for the node it is sent to), or the
                // pattern count seen.
                let seen = match seen {
                    Seen::Bytes(old) => Ok(old.to_vec()),
                    Seen::Absent { patterns } => Err(*patterns),
                    Seen::Entry(_) => return Ok(false),
                };
                let patterns_key = self.patterns_key(key);
                Box::new(move |ident| {
                    let (mode, expected) = match &seen {
                        Ok(old) => ("same", expected(ident, old)),
                        Err(patterns) => ("absent", expected_count(ident, *patterns)),
                    };
                    let mut c = redis::cmd("EVAL");
                    c.arg(STORE_IF)
                        .arg(2)
                        .arg(&key_owned)
                        .arg(&patterns_key)
                        .arg(prefixed(ident, &bytes))
                        .arg(ms)
                        .arg(mode)
                        .arg(expected);
                    c
                })
            }
        };
        let cmds = [Routed {
            slot: slot_of(key.as_bytes()),
            build,
        }];
        let answers = self.send(Op::Store, &cmds, None, self.op_timeout).await?;
        Ok(match answers.into_iter().next() {
            Some((redis::Value::Okay, _)) if expect.is_none() => true,
            Some((v, _)) => redis::from_redis_value::<i64>(v).unwrap_or(0) == 1,
            None => false,
        })
    }

    /// As the single server's `delete`: a tombstone under the identity of the primary.
    pub(super) async fn delete(&self, key: &str, fence_ttl: Duration) -> Result<bool> {
        let ms = millis(fence_ttl);
        let key_owned = key.to_owned();
        let cmds = [Routed {
            slot: slot_of(key.as_bytes()),
            build: Box::new(move |ident| {
                let mut c = redis::cmd("EVAL");
                c.arg(FENCE)
                    .arg(1)
                    .arg(&key_owned)
                    .arg(prefixed(ident, &crate::codec::tombstone()))
                    .arg(ms)
                    .arg(prefixed(ident, crate::codec::TOMBSTONE_PREFIX));
                c
            }),
        }];
        let timeout = match self.wait_replicas {
            Some((_, wait)) => waiting_timeout(self.op_timeout, 1, wait),
            None => self.op_timeout,
        };
        let answers = self
            .send(Op::Delete, &cmds, self.wait_replicas, timeout)
            .await?;
        Ok(answers
            .into_iter()
            .next()
            .is_some_and(|(v, _)| redis::from_redis_value::<i64>(v).unwrap_or(0) == 1))
    }

    /// `SCAN` every primary and `UNLINK` what matches; with `fence`, the pattern count of
    /// every slot is moved first (see `Seen::Absent`). The primaries are scanned again when
    /// the topology changed during the scan (a key moved by a resharding may have been missed).
    pub(super) async fn delete_matching(&self, pattern: &str, fence: bool) -> Result<u64> {
        if fence {
            self.fence_every_slot().await?;
        }
        let mut deleted = 0u64;
        for _ in 0..3 {
            let before = self.topology().await?;
            let keys = self.scan(pattern, usize::MAX).await?;
            for chunk in keys.chunks(SCAN_BATCH) {
                let cmds: Vec<Routed> = chunk
                    .iter()
                    .map(|k| {
                        let mut c = redis::cmd("UNLINK");
                        c.arg(k.as_slice());
                        Routed::fixed(slot_of(k), c)
                    })
                    .collect();
                let answers = self.send(Op::Delete, &cmds, None, self.op_timeout).await?;
                for (v, _) in answers {
                    let n = redis::from_redis_value::<u64>(v).unwrap_or(0);
                    deleted = deleted.saturating_add(n);
                }
            }
            let after = self.topology().await?;
            if std::sync::Arc::ptr_eq(&before, &after) {
                break;
            }
        }
        Ok(deleted)
    }

    /// Moves the pattern count of every slot (see `Seen::Absent`): one script per primary over
    /// the counts of the slots it serves (`allow-cross-slot-keys`, Redis 7), the primaries in
    /// parallel; one `INCR` per slot, grouped by slot, when a script fails (an older Redis, a
    /// slot that moved). A count moved twice fences all the same.
    async fn fence_every_slot(&self) -> Result<()> {
        let count_key = |s: u16| format!("{}{}", self.patterns_prefix, slot_tag(s));
        let topology = self.topology().await?;
        let by_node = topology.slots_by_node();
        let mut scripts = Vec::with_capacity(by_node.len());
        for (node, slots) in &by_node {
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(FENCE_EVERY_SLOT).arg(0);
            for &s in slots {
                cmd.arg(count_key(s));
            }
            scripts.push(self.on_primary::<u64>(Op::Invalidate, node, cmd));
        }
        let moved: u64 = futures_util::future::join_all(scripts)
            .await
            .into_iter()
            .map(|r| r.unwrap_or(0))
            .sum();
        if moved == u64::from(SLOTS) {
            return Ok(());
        }
        let cmds: Vec<Routed> = (0..SLOTS)
            .map(|s| {
                let mut c = redis::cmd("INCR");
                c.arg(count_key(s));
                Routed::fixed(s, c)
            })
            .collect();
        self.send(Op::Invalidate, &cmds, None, self.op_timeout)
            .await
            .map(|_| ())
    }

    /// Keys matching `pattern` on every primary (`SCAN`, never `KEYS`), at most `limit`.
    pub(super) async fn scan(&self, pattern: &str, limit: usize) -> Result<Vec<Vec<u8>>> {
        let topology = self.topology().await?;
        let mut out = Vec::new();
        for node in &topology.nodes {
            let mut cursor: u64 = 0;
            loop {
                let mut cmd = redis::cmd("SCAN");
                cmd.arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(SCAN_BATCH);
                let (next, keys): (u64, Vec<Vec<u8>>) =
                    self.on_primary(Op::Scan, node, cmd).await?;
                for k in keys {
                    if out.len() >= limit {
                        return Ok(out);
                    }
                    out.push(k);
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(out)
    }

    pub(super) async fn try_lock(
        &self,
        lock_key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<bool> {
        let cmds = [Routed::fixed(
            slot_of(lock_key.as_bytes()),
            lock_cmd(lock_key, token, ttl),
        )];
        let answers = self.send(Op::Lock, &cmds, None, self.op_timeout).await?;
        Ok(answers
            .into_iter()
            .next()
            .is_some_and(|(v, _)| !matches!(v, redis::Value::Nil)))
    }

    /// The lookup of `fetch` and `try_lock` in one round trip.
    pub(super) async fn fetch_and_lock(
        &self,
        key: &str,
        tag_keys: &[String],
        lock_key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<(Fetched, bool)> {
        let mut cmds = vec![Routed::fixed(
            slot_of(lock_key.as_bytes()),
            lock_cmd(lock_key, token, ttl),
        )];
        let patterns = self.patterns_key(key);
        for k in std::iter::once(key)
            .chain(tag_keys.iter().map(String::as_str))
            .chain([patterns.as_str()])
        {
            let mut get = redis::cmd("GET");
            get.arg(k);
            cmds.push(Routed::fixed(slot_of(k.as_bytes()), get));
        }
        let mut answers = self
            .send(Op::Lock, &cmds, None, self.op_timeout)
            .await?
            .into_iter();
        let locked = answers
            .next()
            .is_some_and(|(v, _)| !matches!(v, redis::Value::Nil));
        let replies: Replies = answers.map(with_ident).collect();
        Ok((fetched(true, replies), locked))
    }

    pub(super) async fn release_lock(&self, lock_key: &str, token: &str) -> Result<bool> {
        let mut c = redis::cmd("EVAL");
        c.arg(RELEASE).arg(1).arg(lock_key).arg(token);
        self.one_int(Op::Unlock, lock_key, c).await.map(|n| n == 1)
    }

    pub(super) async fn extend_lock(
        &self,
        lock_key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<bool> {
        let mut c = redis::cmd("EVAL");
        c.arg(EXTEND)
            .arg(1)
            .arg(lock_key)
            .arg(token)
            .arg(millis(ttl));
        self.one_int(Op::Lock, lock_key, c).await.map(|n| n == 1)
    }

    /// One command on the slot of `key`, its integer reply.
    async fn one_int(&self, op: Op, key: &str, cmd: redis::Cmd) -> Result<i64> {
        let cmds = [Routed::fixed(slot_of(key.as_bytes()), cmd)];
        let answers = self.send(op, &cmds, None, self.op_timeout).await?;
        Ok(answers
            .into_iter()
            .next()
            .and_then(|(v, _)| redis::from_redis_value::<i64>(v).ok())
            .unwrap_or(0))
    }

    /// The raw bytes at `key` (after its identity prefix when it was stored under the
    /// identity it is read under) and its remaining TTL.
    pub(super) async fn inspect(&self, key: &str) -> Result<Option<(Vec<u8>, Duration)>> {
        let s = slot_of(key.as_bytes());
        let mut get = redis::cmd("GET");
        get.arg(key);
        let mut pttl = redis::cmd("PTTL");
        pttl.arg(key);
        let cmds = [Routed::fixed(s, get), Routed::fixed(s, pttl)];
        let mut answers = self
            .send(Op::Fetch, &cmds, None, self.op_timeout)
            .await?
            .into_iter();
        let (Some((value, ident)), Some((ttl, _))) = (answers.next(), answers.next()) else {
            return Ok(None);
        };
        let left = redis::from_redis_value::<i64>(ttl).unwrap_or(0);
        Ok(bulk(value).map(|b| {
            (
                entry_read(ident, b).to_vec(),
                Duration::from_millis(u64::try_from(left).unwrap_or(0)),
            )
        }))
    }
}

/// A reply as a lookup hands it over: after the identity it was read under and whether the
/// key held a string ([`IDENT`]), so that an absent key too is known to be absent there.
fn with_ident((v, ident): Answer) -> Option<Bytes> {
    let value = bulk(v);
    let mut out = Vec::with_capacity(IDENT.saturating_add(value.as_ref().map_or(0, Bytes::len)));
    out.extend_from_slice(&ident.to_be_bytes());
    out.push(u8::from(value.is_some()));
    if let Some(b) = value {
        out.extend_from_slice(&b);
    }
    Some(Bytes::from(out))
}
