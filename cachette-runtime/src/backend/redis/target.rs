//! What the Redis store connects to: one server at a URL, or (feature `sentinel`) the primary
//! that Sentinel names, asked again at every new connection. Either way a new connection
//! then checks the epoch (see *The epoch* above), so a failover Sentinel made is met exactly
//! as a failover behind one address.

use crate::error::Result;
#[cfg(feature = "sentinel")]
use crate::error::{Error, redact_url};

pub(super) enum Target {
    /// One server.
    Server(redis::Client),
    /// The primary of `master` as the sentinels name it (the sentinels' scheme and
    /// credentials reach it too).
    #[cfg(feature = "sentinel")]
    Sentinel(tokio::sync::Mutex<redis::sentinel::SentinelClient>),
}

impl Target {
    /// A client of the server to connect to now.
    pub(super) async fn client(&self) -> Result<redis::Client> {
        match self {
            Target::Server(c) => Ok(c.clone()),
            #[cfg(feature = "sentinel")]
            // Boxed: redis-rs's discovery future is too deep a type to sit inside every future
            // of the engine (rustc's query depth limit).
            Target::Sentinel(s) => {
                let discovery: std::pin::Pin<
                    Box<
                        dyn std::future::Future<Output = redis::RedisResult<redis::Client>>
                            + Send
                            + '_,
                    >,
                > = Box::pin(async move { s.lock().await.async_get_client().await });
                discovery.await.map_err(Error::redis)
            }
        }
    }

    /// The client of the one server (`None` behind Sentinel: its primary changes).
    pub(super) fn fixed(&self) -> Option<&redis::Client> {
        match self {
            Target::Server(c) => Some(c),
            #[cfg(feature = "sentinel")]
            Target::Sentinel(_) => None,
        }
    }

    /// The sentinels at `urls` (`redis://` or `rediss://`, with the credentials and database
    /// of the primary) watching `master`.
    #[cfg(feature = "sentinel")]
    pub(super) fn sentinel(urls: &[String], master: &str) -> Result<Target> {
        use redis::IntoConnectionInfo;
        use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
        let invalid = |url: &str, reason: String| Error::InvalidUrl {
            url: redact_url(url),
            reason,
        };
        let Some(first) = urls.first() else {
            return Err(Error::Config(
                "Sentinel needs at least one sentinel URL".to_owned(),
            ));
        };
        let info = first
            .as_str()
            .into_connection_info()
            .map_err(|e| invalid(first, e.to_string()))?;
        let mut node = SentinelNodeConnectionInfo::default()
            .set_redis_connection_info(info.redis_settings().clone());
        if first.starts_with("rediss://") {
            if !cfg!(feature = "tls") {
                return Err(invalid(
                    first,
                    "rediss:// needs cachette's `tls` feature".to_owned(),
                ));
            }
            node = node.set_tls_mode(redis::TlsMode::Secure);
        }
        // A `String`: what `build` takes without the `tls` feature (`impl AsRef<str>` with it).
        let master = String::from(master);
        let client = SentinelClient::build(
            urls.to_vec(),
            master,
            Some(node),
            SentinelServerType::Master,
        )
        .map_err(|e| invalid(first, e.to_string()))?;
        Ok(Target::Sentinel(tokio::sync::Mutex::new(client)))
    }
}
