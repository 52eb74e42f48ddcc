//! The runtime's error type.

use std::time::Duration;

/// Everything that can go wrong in cachette's manual API and configuration.
///
/// The cached-call path ([`Cache::get_or_compute`](crate::Cache::get_or_compute) and the
/// macros) never returns these: a failing backend there is logged, counted and bypassed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Redis URL could not be parsed. The message never contains its credentials.
    #[error("invalid Redis URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL with every credential (user, password, `pass`/`user` parameters) replaced
        /// by `***`.
        url: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A configuration value is out of range or malformed (only configuration: faults at run
    /// time have variants of their own).
    #[error("invalid cachette configuration: {0}")]
    Config(String),
    /// The backend answered with an error, or the connection failed.
    #[error("cache backend error: {0}")]
    Backend(#[source] BackendError),
    /// Redis refused the credentials of the URL (wrong password or ACL user).
    #[error("Redis at {url} refused the credentials: {reason}")]
    Auth {
        /// The URL with every credential (user, password, `pass`/`user` parameters) replaced
        /// by `***`.
        url: String,
        /// What Redis said.
        reason: String,
    },
    /// The backend did not answer within the per-operation timeout.
    #[error("cache backend did not answer within {0:?}")]
    Timeout(Duration),
    /// The circuit breaker is open: Redis failed repeatedly and is skipped for a while.
    #[error("cache backend skipped: the circuit breaker is open after repeated failures")]
    CircuitOpen,
    /// A value could not be serialized.
    #[error("cannot serialize value: {0}")]
    Encode(#[from] serde_json::Error),
    /// The serialized value is larger than the configured maximum.
    #[error("serialized value is {size} bytes, over the maximum of {max} bytes")]
    TooLarge {
        /// Size of the serialized entry.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// Arguments could not be hashed into a key.
    #[error(transparent)]
    Hash(#[from] crate::keys::hash::HashError),
    /// An invalidation was applied by the Redis primary, but fewer replicas than
    /// [`CacheBuilder::wait_for_replicas`](crate::CacheBuilder::wait_for_replicas) asked for
    /// acknowledged it in time: a failover now could lose it. Reported like any failed
    /// invalidation (retried, then kept).
    #[error("invalidation acknowledged by {acked} replica(s), {wanted} required")]
    NotReplicated {
        /// Replicas required.
        wanted: usize,
        /// Replicas that acknowledged within the wait.
        acked: usize,
    },
    /// The Redis store was used outside a Tokio runtime (its connections are Tokio tasks).
    #[error("cachette's Redis backend must be used from within a Tokio runtime")]
    NoRuntime,
    /// A tag's version key vanished between its creation and the write that needed it
    /// (evicted or deleted at once, under memory pressure): nothing was stored.
    #[error("a tag version vanished while it was being created; nothing was stored")]
    TagVersionLost,
    /// The batched lookup this call's lookup travelled in failed with an error that only its
    /// sender holds; this is its text.
    #[error("the batched lookup failed: {0}")]
    Batched(String),
    /// The near cache could not prove an entry fresh: the `PING` on its tracking connection
    /// failed (the connection is being re-made). The call reads Redis instead.
    #[error("the near cache's tracking connection did not answer its barrier")]
    NearBarrier,
    /// [`install_default`](crate::install_default) was called after a default cache existed.
    #[error("a default cache is already installed (or was already created from the environment)")]
    DefaultAlreadySet,
}

/// A failure the Redis client reported: Redis refused a command (an error reply), or the
/// connection failed. Its text says which; [`code`](Self::code) gives the server's error code.
///
/// It wraps the client's error without naming its type, so that cachette's API does not
/// change with the Redis client's.
#[derive(Debug, Clone)]
pub struct BackendError(redis::RedisError);

impl BackendError {
    /// The server's error code when Redis refused a command (`OOM`, `NOPERM`, `READONLY`,
    /// `WRONGTYPE`, ...); `None` for a connection failure.
    pub fn code(&self) -> Option<&str> {
        self.0.code()
    }

    /// Whether the connection failed (refused, reset, dropped, timed out) rather than Redis
    /// refusing one command.
    pub fn is_connection(&self) -> bool {
        self.0.is_io_error()
            || self.0.is_timeout()
            || self.0.is_connection_dropped()
            || self.0.is_connection_refusal()
    }

    /// The client's error, for the backends.
    pub(crate) fn redis(&self) -> &redis::RedisError {
        &self.0
    }
}

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for BackendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.0)
    }
}

impl Error {
    /// A failure of the Redis client.
    pub(crate) fn redis(e: redis::RedisError) -> Error {
        Error::Backend(BackendError(e))
    }
}

/// Short alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A stable, low-cardinality label for metrics and rate-limited logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidUrl { .. } => "invalid_url",
            Error::Config(_) => "config",
            Error::Backend(e) if e.redis().is_timeout() => "timeout",
            Error::Backend(e) if e.redis().is_io_error() || e.redis().is_connection_dropped() => {
                "connection"
            }
            Error::Backend(_) => "backend",
            Error::Auth { .. } => "auth",
            Error::Timeout(_) => "timeout",
            Error::CircuitOpen => "circuit_open",
            Error::Encode(_) => "encode",
            Error::TooLarge { .. } => "too_large",
            Error::Hash(_) => "hash",
            Error::NotReplicated { .. } => "not_replicated",
            Error::DefaultAlreadySet => "default_already_set",
            Error::NoRuntime => "no_runtime",
            Error::TagVersionLost => "tag_version_lost",
            Error::Batched(_) => "batched",
            Error::NearBarrier => "near_barrier",
        }
    }

    /// Whether another attempt now would only wait again: an [outage](Self::is_outage), the
    /// circuit breaker open, or no Tokio runtime to reach Redis from. A write that meets one
    /// leaves the rest to the background worker.
    pub(crate) fn is_unreachable(&self) -> bool {
        self.is_outage() || matches!(self, Error::CircuitOpen | Error::NoRuntime)
    }

    /// Whether this failure says the backend cannot be reached or used: a timeout, an I/O or
    /// connection error (refused, reset, dropped), a connection that could not be set up
    /// (authentication, a garbled stream). Only these count toward the circuit breaker.
    ///
    /// An error *reply* is not one: the server answered, at once, and refused one command
    /// (`NOPERM` from an ACL, `WRONGTYPE`, `OOM` under `maxmemory`, `READONLY` from a replica,
    /// `ERR invalid expire time`, `EXECABORT`, a script error, `LOADING`, `BUSY`...). Skipping
    /// Redis would not make such calls faster, and would cost every healthy key its cache.
    pub(crate) fn is_outage(&self) -> bool {
        use redis::ErrorKind as K;
        match self {
            Error::Timeout(_) => true,
            Error::Backend(e) => {
                e.is_connection()
                    || matches!(
                        e.redis().kind(),
                        K::Parse
                            | K::AuthenticationFailed
                            | K::ClusterConnectionNotFound
                            | K::MasterNameNotFoundBySentinel
                            | K::NoValidReplicasFoundBySentinel
                    )
            }
            _ => false,
        }
    }
}

/// The URL with every credential it may carry replaced by `***`, for `Debug`, `Display` and
/// logs, whether or not it parses.
///
/// Redis URLs carry credentials in two places (redis-rs reads both): the user information of
/// the authority (`redis://user:password@host`, also `rediss://`), and the query parameters
/// of the Unix forms (`redis+unix:///path.sock?user=u&pass=p`, `unix://...`). Both are hidden,
/// user names included:
///
/// - everything between `://` (the start, without one) and the **last** `@` of the URL: a
///   password may hold `/`, `?`, `#`, `:` or `@` (unescaped, the URL does not parse, which is
///   precisely when it is printed in [`Error::InvalidUrl`]), so no character before the last
///   `@` can be told not to be part of it. A URL with an `@` in its path or query is hidden up
///   to that `@`: more than needed, never less;
/// - the value of every query parameter named `pass`, `password`, `user` or `username` (after
///   percent-decoding the name, ignoring case, tabs and line breaks as the URL parser does), up
///   to the next `&` (a `#` does not end it: a password may contain one).
#[allow(
    clippy::arithmetic_side_effects,
    reason = "offsets into `url`, each at most its length"
)]
pub(crate) fn redact_url(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let mut hidden = vec![false; url.len()];
    if let Some(at) = url[start..].rfind('@') {
        hidden[start..start + at].fill(true);
    }
    if let Some(q) = url[start..].find('?') {
        let mut pos = start + q + 1;
        for pair in url[pos..].split('&') {
            if let Some(eq) = pair.find('=')
                && is_credential_param(&pair[..eq])
            {
                hidden[pos + eq + 1..pos + pair.len()].fill(true);
            }
            pos += pair.len() + 1;
        }
    }
    let mut out = String::with_capacity(url.len());
    let mut in_hidden = false;
    for (i, c) in url.char_indices() {
        match (hidden[i], in_hidden) {
            (true, false) => out.push_str("***"),
            (true, true) => {}
            (false, _) => out.push(c),
        }
        in_hidden = hidden[i];
    }
    out
}

/// Whether a query parameter name (as written in the URL) names a credential.
fn is_credential_param(name: &str) -> bool {
    let mut decoded = Vec::with_capacity(name.len());
    let mut bytes = name.bytes().filter(|b| !matches!(b, b'\t' | b'\n' | b'\r'));
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let hi = bytes.next();
                let lo = bytes.next();
                let digit = |d: Option<u8>| d.and_then(|d| (d as char).to_digit(16));
                match (digit(hi), digit(lo)) {
                    (Some(h), Some(l)) => {
                        decoded.extend(u8::try_from(h.saturating_mul(16).saturating_add(l)));
                    }
                    // Not an escape: kept as written (it matches no credential name).
                    _ => decoded.extend([b'%'].into_iter().chain(hi).chain(lo)),
                }
            }
            b'+' => decoded.push(b' '),
            b => decoded.push(b),
        }
    }
    let decoded = String::from_utf8_lossy(&decoded).to_ascii_lowercase();
    matches!(decoded.as_str(), "pass" | "password" | "user" | "username")
}

#[cfg(test)]
mod tests {
    use super::{Error, redact_url};
    use std::time::Duration;

    #[test]
    fn only_transport_failures_are_outages() {
        let io = |kind| Error::redis(std::io::Error::new(kind, "x").into());
        assert!(io(std::io::ErrorKind::ConnectionRefused).is_outage());
        assert!(io(std::io::ErrorKind::ConnectionReset).is_outage());
        assert!(io(std::io::ErrorKind::TimedOut).is_outage());
        assert!(Error::Timeout(Duration::from_millis(1)).is_outage());
        assert!(
            Error::redis((redis::ErrorKind::AuthenticationFailed, "wrong password").into())
                .is_outage()
        );
        let reply = |code: &str| Error::redis(redis::make_extension_error(code.to_owned(), None));
        assert!(!reply("OOM").is_outage());
        assert!(!reply("WRONGTYPE").is_outage());
        let known = |kind| Error::redis((redis::ErrorKind::Server(kind), "refused").into());
        assert!(!known(redis::ServerErrorKind::NoPerm).is_outage());
        assert!(!known(redis::ServerErrorKind::ReadOnly).is_outage());
        assert!(!known(redis::ServerErrorKind::ResponseError).is_outage());
        assert!(!known(redis::ServerErrorKind::ExecAbort).is_outage());
        assert!(!Error::CircuitOpen.is_outage());
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact_url("redis://:pw@h:1/0"), "redis://***@h:1/0");
        assert_eq!(redact_url("redis://u:p@ss@h/"), "redis://***@h/");
        assert_eq!(redact_url("redis://token@h/"), "redis://***@h/");
        assert_eq!(redact_url("redis://h:6379/"), "redis://h:6379/");
        assert_eq!(redact_url("garbage"), "garbage");
    }

    /// Issue 13: a `/` in the password, and the `pass` parameter of the Unix forms.
    #[test]
    fn redacts_passwords_with_slashes_and_query_credentials() {
        assert_eq!(
            redact_url("redis://app:s3cr/t@host/0"),
            "redis://***@host/0"
        );
        assert_eq!(
            redact_url("redis://app:a?b#c:d@e/f@host:1/0?protocol=3"),
            "redis://***@host:1/0?protocol=3"
        );
        assert_eq!(
            redact_url("redis+unix:///tmp/r.sock?pass=X"),
            "redis+unix:///tmp/r.sock?pass=***"
        );
        assert_eq!(
            redact_url("unix:///tmp/r.sock?db=1&user=u&password=a#b&p%61ss=c&PASS=d&username=&x=y"),
            "unix:///tmp/r.sock?db=1&user=***&password=***&p%61ss=***&PASS=***&username=&x=y"
        );
        // An `@` in a password parameter hides everything before it too: never less.
        assert_eq!(
            redact_url("unix:///tmp/r.sock?pass=a@b&db=2"),
            "unix://***&db=2"
        );
        assert_eq!(redact_url("h:1?pass=x"), "h:1?pass=***");
        assert_eq!(
            super::Error::InvalidUrl {
                url: redact_url("redis://app:s3cr/t@host/0"),
                reason: "invalid port number".to_owned()
            }
            .to_string(),
            "invalid Redis URL `redis://***@host/0`: invalid port number"
        );
    }
}
