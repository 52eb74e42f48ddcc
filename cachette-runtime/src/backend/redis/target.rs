//! What the Redis store connects to: one server at a URL, or (feature `sentinel`) the primary
//! that Sentinel names, asked again at every new connection. Either way a new connection
//! then checks the epoch (see *The epoch* above), so a failover Sentinel made is met exactly
//! as a failover behind one address.

use super::connections::tls_client;
use crate::error::{Error, Result, redact_url};

pub(crate) enum Target {
    /// One server, and its URL without credentials.
    Server {
        client: redis::Client,
        location: String,
    },
    /// The primary of `master` as the sentinels name it (the sentinels' scheme and
    /// credentials reach it too).
    #[cfg(feature = "sentinel")]
    Sentinel {
        client: tokio::sync::Mutex<redis::sentinel::SentinelClient>,
        /// `master via sentinel,...` (no credentials).
        location: String,
    },
}

impl Target {
    /// The one server at `url` (`rediss://` trusting `root_cert` if given); does not connect.
    pub(crate) fn server(url: &str, root_cert: Option<Vec<u8>>) -> Result<Target> {
        let invalid = |reason: String| Error::InvalidUrl {
            url: redact_url(url),
            reason,
        };
        let client = if url.starts_with("rediss://") {
            tls_client(url, root_cert).map_err(invalid)?
        } else {
            if root_cert.is_some() {
                return Err(invalid(
                    "a TLS root certificate was given for a URL that is not rediss://".to_owned(),
                ));
            }
            redis::Client::open(url).map_err(|e| invalid(e.to_string()))?
        };
        Ok(Target::Server {
            client,
            location: redact_url(url),
        })
    }

    /// Where it is, for logs and `Debug` (no credentials).
    pub(super) fn location(&self) -> String {
        match self {
            Target::Server { location, .. } => location.clone(),
            #[cfg(feature = "sentinel")]
            Target::Sentinel { location, .. } => location.clone(),
        }
    }

    /// A client of the server to connect to now.
    pub(super) async fn client(&self) -> Result<redis::Client> {
        match self {
            Target::Server { client, .. } => Ok(client.clone()),
            #[cfg(feature = "sentinel")]
            // Boxed: redis-rs's discovery future is too deep a type to sit inside every future
            // of the engine (rustc's query depth limit).
            Target::Sentinel { client: s, .. } => {
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
            Target::Server { client, .. } => Some(client),
            #[cfg(feature = "sentinel")]
            Target::Sentinel { .. } => None,
        }
    }

    /// The sentinels at `urls` (`redis://` or `rediss://`, with the credentials and database
    /// of the primary) watching `master`.
    #[cfg(feature = "sentinel")]
    pub(crate) fn sentinel(urls: &[String], master: &str) -> Result<Target> {
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
        let location = format!(
            "{master} via {}",
            urls.iter()
                .map(|u| redact_url(u))
                .collect::<Vec<_>>()
                .join(",")
        );
        // A `String`: what `build` takes without the `tls` feature (`impl AsRef<str>` with it).
        let master = String::from(master);
        let client = SentinelClient::build(
            urls.to_vec(),
            master,
            Some(node),
            SentinelServerType::Master,
        )
        .map_err(|e| invalid(first, e.to_string()))?;
        Ok(Target::Sentinel {
            client: tokio::sync::Mutex::new(client),
            location,
        })
    }
}
