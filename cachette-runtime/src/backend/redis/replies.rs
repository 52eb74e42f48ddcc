//! Reading Redis's replies, and writing its millisecond arguments: tag versions from bytes,
//! a lookup's replies as [`Fetched`], the pattern count, bulk strings of an `MGET`, the
//! outcome of a `WAIT`, `OOM` refusals, and durations as `PX` milliseconds.

use crate::backend::batch::Replies;
use crate::backend::{BackendStats, Fetched, Patterns};
use crate::config::MAX_DURATION;
use crate::error::{Error, Result};
use std::time::Duration;

/// The value of `name` in an `INFO` reply (its `name:value` lines).
pub(super) fn info_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

/// What a server's `INFO` (all sections) and `DBSIZE` tell of it, as `backend`.
pub(super) fn stats_from_info(backend: &'static str, info: &str, dbsize: u64) -> BackendStats {
    let field = |name: &str| info_field(info, name).and_then(|v| v.parse::<u64>().ok());
    BackendStats {
        backend,
        used_memory_bytes: field("used_memory"),
        evicted_keys: field("evicted_keys"),
        keyspace_hits: field("keyspace_hits"),
        keyspace_misses: field("keyspace_misses"),
        connected_clients: field("connected_clients"),
        keys: Some(dbsize),
        maxmemory_bytes: field("maxmemory"),
        eviction_policy: info_field(info, "maxmemory_policy")
            .filter(|p| !p.is_empty())
            .map(str::to_owned),
    }
}

/// `Ok` when at least `wanted` replicas acknowledged.
pub(super) fn replicated(wanted: usize, acked: usize) -> Result<()> {
    if acked >= wanted {
        Ok(())
    } else {
        Err(Error::NotReplicated { wanted, acked })
    }
}

/// Whether Redis refused a command (or one of a pipeline) for `maxmemory`: `OOM command not
/// allowed when used memory > 'maxmemory'`.
pub(super) fn is_oom(e: &Error) -> bool {
    match e {
        Error::Backend(e) => e
            .redis()
            .clone()
            .into_server_errors()
            .is_some_and(|errors| errors.iter().any(|(_, e)| e.code() == "OOM")),
        _ => false,
    }
}

/// Milliseconds of a duration for `PX`, `PEXPIRE` and `WAIT`: at least 1, at most
/// [`MAX_DURATION`]. Redis takes a TTL `n` only while `now_ms + n` fits in an `i64`
/// ("invalid expire time"; 7.0 refuses `PX 9223372036854775807` and takes
/// `PX <i64::MAX - now_ms - 10000>`), and no `n` past `i64::MAX` ("value is not an integer or
/// out of range"); 100 years stays far below both for the next 292 million years.
pub(super) fn millis(d: Duration) -> u64 {
    crate::clock::millis(d.min(MAX_DURATION)).max(1)
}

/// What a version read from bytes that are not kept as they are starts with (see
/// [`version_from_bytes`]).
const HEX_VERSION_PREFIX: &str = "\u{fffd}hex:";

/// A tag key's value as a version, one to one: distinct bytes give distinct versions, so an
/// entry filled under some bytes is invalid once the key holds others. UTF-8 is kept as it is;
/// bytes that are not UTF-8 (planted by another writer), or that begin with
/// [`HEX_VERSION_PREFIX`], are that prefix followed by their hex digits (so no kept UTF-8
/// version can be mistaken for an encoded one).
pub(super) fn version_from_bytes<B: AsRef<[u8]>>(v: Option<B>) -> Option<String> {
    v.map(|b| {
        let b = b.as_ref();
        match std::str::from_utf8(b) {
            Ok(s) if !s.starts_with(HEX_VERSION_PREFIX) => s.to_owned(),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let mut s = String::with_capacity(
                    HEX_VERSION_PREFIX
                        .len()
                        .saturating_add(b.len().saturating_mul(2)),
                );
                s.push_str(HEX_VERSION_PREFIX);
                for byte in b {
                    s.push(char::from(HEX[usize::from(byte >> 4)]));
                    s.push(char::from(HEX[usize::from(byte & 0xf)]));
                }
                s
            }
        }
    })
}

/// A lookup's replies: the entry first when there is an entry key, then the tag versions.
pub(super) fn fetched(has_entry: bool, mut replies: Replies) -> Fetched {
    // With an entry, the pattern count came last.
    let patterns = if has_entry {
        replies
            .pop()
            .flatten()
            .and_then(|b| std::str::from_utf8(&b).ok()?.parse().ok())
            .unwrap_or(0)
    } else {
        0
    };
    let mut replies = replies.into_iter();
    let entry = if has_entry {
        replies.next().flatten()
    } else {
        None
    };
    // Not collected in place: that would shrink the replies' allocation (a reallocation) even
    // when no tag version is left.
    let mut versions = Vec::new();
    if replies.len() > 0 {
        versions.reserve_exact(replies.len());
        versions.extend(replies.map(version_from_bytes));
    }
    Fetched {
        entry,
        versions,
        patterns: Patterns::count(patterns),
    }
}

/// The pattern count from a `GET` reply (missing: none yet).
pub(super) fn patterns_count(reply: Option<redis::Value>) -> u64 {
    match reply {
        Some(redis::Value::BulkString(b)) => std::str::from_utf8(&b)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}

/// The elements of an array reply (`MGET`) as bytes, without copying them; anything but a bulk
/// string (nil, or a type no cachette key holds) is `None`.
pub(super) fn bulk_strings(v: redis::Value) -> Replies {
    match v {
        redis::Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                redis::Value::BulkString(b) => Some(bytes::Bytes::from(b)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_distinct_bytes_are_distinct() {
        let v = |b: &[u8]| version_from_bytes(Some(b));
        assert_eq!(v(b"5f0c"), Some("5f0c".to_owned()));
        assert_eq!(v(b"\xff\x00"), Some("\u{fffd}hex:ff00".to_owned()));
        assert_ne!(v(b"\xff\xfeA"), v(b"\xff\xfeB"));
        // UTF-8 that looks like an encoded version is encoded too, so it differs from it.
        let looks_encoded = "\u{fffd}hex:ff00".as_bytes();
        assert_ne!(v(looks_encoded), v(b"\xff\x00"));
        assert_eq!(version_from_bytes::<&[u8]>(None), None);
    }

    #[test]
    fn millis_are_what_redis_takes() {
        assert_eq!(millis(Duration::ZERO), 1, "PX 0 is refused");
        assert_eq!(millis(Duration::from_micros(1_500)), 1);
        assert_eq!(millis(Duration::from_secs(2)), 2_000);
        let bound = MAX_DURATION.as_secs() * 1000;
        assert_eq!(millis(MAX_DURATION), bound);
        assert_eq!(millis(Duration::MAX), bound, "past the bound: the bound");
        assert!(bound < i64::MAX as u64 / 2, "far from what Redis refuses");
    }
}
