//! Fill locks: taken with `SET NX PX` (alone, or in the round trip of the lookup), released
//! and extended by compare-and-delete and compare-and-expire scripts that act only for the
//! token holding the lock.

use super::RedisBackend;
use super::replies::{millis, patterns_count, version_from_bytes};
use super::round_trip::Op;
use crate::backend::{Fetched, Patterns};
use crate::error::Result;
use std::time::Duration;

/// Compare-and-delete (`KEYS`: the lock; `ARGV`: the token).
pub(super) const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/// Compare-and-expire (`KEYS`: the lock; `ARGV`: the token, the TTL in ms).
pub(super) const EXTEND: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";

impl RedisBackend {
    /// `SET lock token NX PX ttl`: whether the lock was taken.
    pub(crate) async fn try_lock(
        &self,
        lock_key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<bool> {
        let mut pipe = redis::pipe();
        pipe.add_command(lock_cmd(lock_key, token, ttl));
        let (ok,): (Option<String>,) = self.run(Op::Lock, &pipe).await?;
        Ok(ok.is_some())
    }

    /// The lookup of `fetch` and `try_lock` in one round trip.
    pub(crate) async fn fetch_and_lock(
        &self,
        key: &str,
        tag_keys: &[String],
        lock_key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<(Fetched, bool)> {
        let mut pipe = redis::pipe();
        pipe.add_command(lock_cmd(lock_key, token, ttl));
        pipe.get(key);
        for t in tag_keys {
            pipe.get(t);
        }
        pipe.get(&self.patterns_key);
        let mut replies: Vec<redis::Value> = self.run(Op::Lock, &pipe).await?;
        let patterns = patterns_count(replies.pop());
        let locked = !matches!(replies.first(), None | Some(redis::Value::Nil));
        let mut bytes = replies.drain(..).skip(1).map(|v| match v {
            redis::Value::BulkString(b) => Some(b),
            _ => None,
        });
        let entry = bytes.next().flatten().map(bytes::Bytes::from);
        Ok((
            Fetched {
                entry,
                versions: bytes.map(version_from_bytes).collect(),
                patterns: Patterns::count(patterns),
            },
            locked,
        ))
    }

    /// Compare-and-delete: releases the lock only if `token` still holds it.
    pub(crate) async fn release_lock(&self, lock_key: &str, token: &str) -> Result<bool> {
        static SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
        let script = SCRIPT.get_or_init(|| redis::Script::new(RELEASE));
        Ok(self
            .run_script(Op::Unlock, script, lock_key, &[token])
            .await?
            == 1)
    }

    /// Compare-and-expire: extends the lock only if `token` still holds it.
    pub(crate) async fn extend_lock(
        &self,
        lock_key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<bool> {
        static SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
        let script = SCRIPT.get_or_init(|| redis::Script::new(EXTEND));
        let ms = millis(ttl).to_string();
        Ok(self
            .run_script(Op::Lock, script, lock_key, &[token, &ms])
            .await?
            == 1)
    }
}

/// `SET lock token NX PX ttl`: takes the lock only if nobody holds it.
pub(super) fn lock_cmd(lock_key: &str, token: &str, ttl: Duration) -> redis::Cmd {
    let mut cmd = redis::cmd("SET");
    cmd.arg(lock_key)
        .arg(token)
        .arg("NX")
        .arg("PX")
        .arg(millis(ttl));
    cmd
}
