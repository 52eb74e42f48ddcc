//! The runtime's error type.

use std::time::Duration;

/// Everything that can go wrong in cachette's manual API and configuration.
///
/// The cached-call path ([`Cache::get_or_compute`](crate::Cache::get_or_compute) and the
/// macros) never returns these: a failing backend there is logged, counted and bypassed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Redis URL could not be parsed. The message never contains the password.
    #[error("invalid Redis URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL with any password replaced by `***`.
        url: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A configuration value is out of range or malformed.
    #[error("invalid cachette configuration: {0}")]
    Config(String),
    /// The backend answered with an error, or the connection failed.
    #[error("cache backend error: {0}")]
    Backend(#[from] redis::RedisError),
    /// Redis refused the credentials of the URL (wrong password or ACL user).
    #[error("Redis at {url} refused the credentials: {reason}")]
    Auth {
        /// The URL with any password replaced by `***`.
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
    /// [`install_default`](crate::install_default) was called after a default cache existed.
    #[error("a default cache is already installed (or was already created from the environment)")]
    DefaultAlreadySet,
}

/// Short alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A stable, low-cardinality label for metrics and rate-limited logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidUrl { .. } => "invalid_url",
            Error::Config(_) => "config",
            Error::Backend(e) if e.is_timeout() => "timeout",
            Error::Backend(e) if e.is_io_error() || e.is_connection_dropped() => "connection",
            Error::Backend(_) => "backend",
            Error::Auth { .. } => "auth",
            Error::Timeout(_) => "timeout",
            Error::CircuitOpen => "circuit_open",
            Error::Encode(_) => "encode",
            Error::TooLarge { .. } => "too_large",
            Error::Hash(_) => "hash",
            Error::NotReplicated { .. } => "not_replicated",
            Error::DefaultAlreadySet => "default_already_set",
        }
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
                e.is_io_error()
                    || e.is_timeout()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || matches!(
                        e.kind(),
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

/// Replaces the password of a `redis://user:password@host` URL with `***`.
pub(crate) fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &authority[..at];
    let redacted = match userinfo.find(':') {
        Some(colon) => format!("{}:***", &userinfo[..colon]),
        None => "***".to_owned(),
    };
    format!("{}{}{}", &url[..scheme_end + 3], redacted, &rest[at..])
}

#[cfg(test)]
mod tests {
    use super::{Error, redact_url};
    use std::time::Duration;

    #[test]
    fn only_transport_failures_are_outages() {
        let io = |kind| Error::Backend(std::io::Error::new(kind, "x").into());
        assert!(io(std::io::ErrorKind::ConnectionRefused).is_outage());
        assert!(io(std::io::ErrorKind::ConnectionReset).is_outage());
        assert!(io(std::io::ErrorKind::TimedOut).is_outage());
        assert!(Error::Timeout(Duration::from_millis(1)).is_outage());
        assert!(
            Error::Backend((redis::ErrorKind::AuthenticationFailed, "wrong password").into())
                .is_outage()
        );
        let reply = |code: &str| Error::Backend(redis::make_extension_error(code.to_owned(), None));
        assert!(!reply("OOM").is_outage());
        assert!(!reply("WRONGTYPE").is_outage());
        let known = |kind| Error::Backend((redis::ErrorKind::Server(kind), "refused").into());
        assert!(!known(redis::ServerErrorKind::NoPerm).is_outage());
        assert!(!known(redis::ServerErrorKind::ReadOnly).is_outage());
        assert!(!known(redis::ServerErrorKind::ResponseError).is_outage());
        assert!(!known(redis::ServerErrorKind::ExecAbort).is_outage());
        assert!(!Error::CircuitOpen.is_outage());
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact_url("redis://:pw@h:1/0"), "redis://:***@h:1/0");
        assert_eq!(redact_url("redis://u:p@ss@h/"), "redis://u:***@h/");
        assert_eq!(redact_url("redis://token@h/"), "redis://***@h/");
        assert_eq!(redact_url("redis://h:6379/"), "redis://h:6379/");
        assert_eq!(redact_url("garbage"), "garbage");
    }
}
