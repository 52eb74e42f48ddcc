//! The cluster's shape: which primary serves each slot (`CLUSTER SLOTS`), and each primary as a
//! [`Node`]: its address, a client for it (the seed URL's scheme, credentials and TLS with the
//! node's address), its connection and the connection of invalidations that `WAIT`. A node's
//! connection learns the node's identity when made (see the module above).

use super::super::connections::{Slot, connection_config, tls_client};
use super::super::replies::info_field;
use super::slots::SLOTS;
use crate::error::{Error, Result};
use redis::aio::MultiplexedConnection;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// One primary.
pub(super) struct Node {
    /// `host:port`, as the cluster names it.
    pub(super) addr: String,
    client: redis::Client,
    conn: Slot,
    /// Invalidations that `WAIT` for replicas: `WAIT` blocks the connection it is sent on.
    waiting: Slot,
}

impl Node {
    fn new(addr: String, template: &UrlTemplate) -> Result<Node> {
        let client = template.client_for(&addr)?;
        Ok(Node {
            addr,
            client,
            conn: Slot::default(),
            waiting: Slot::default(),
        })
    }

    /// The node's connection (`waiting`: the one of waiting invalidations) and the identity of
    /// the server process it reached, made on first use.
    pub(super) async fn conn(
        &self,
        waiting: bool,
        op_timeout: Duration,
    ) -> Result<(MultiplexedConnection, u64)> {
        let slot = if waiting { &self.waiting } else { &self.conn };
        slot.get_or_connect(|| async {
            let mut conn = self
                .client
                .get_multiplexed_async_connection_with_config(&connection_config(op_timeout))
                .await
                .map_err(Error::redis)?;
            let ident = identity(&mut conn).await?;
            Ok((conn, ident))
        })
        .await
    }

    /// Forgets the node's connections (after a failure, a redirection, or when the node is no
    /// longer a primary): the next use connects again and learns the identity again.
    pub(super) fn forget(&self) {
        self.conn.forget();
        self.waiting.forget();
    }
}

/// The identity of the server process a new connection reached: a hash of its `run_id` (new
/// at every start of the process) and of its `master_replid` (new at every promotion). What a
/// node answers is read under it (see the module above). A node that is not a primary is
/// refused: cachette reads nothing from replicas.
async fn identity(conn: &mut MultiplexedConnection) -> Result<u64> {
    let mut pipe = redis::pipe();
    pipe.cmd("INFO")
        .arg("server")
        .cmd("INFO")
        .arg("replication");
    let (server, replication): (String, String) =
        pipe.query_async(conn).await.map_err(Error::redis)?;
    let (Some(run_id), Some(replid), Some(role)) = (
        info_field(&server, "run_id"),
        info_field(&replication, "master_replid"),
        info_field(&replication, "role"),
    ) else {
        return Err(Error::Config(
            "a cluster node's INFO has no run_id, master_replid or role".to_owned(),
        ));
    };
    if role != "master" {
        return Err(Error::redis(redis::RedisError::from((
            redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly),
            "the node is a replica now",
        ))));
    }
    Ok(xxhash_rust::xxh3::xxh3_64(
        format!("{run_id}:{replid}").as_bytes(),
    ))
}

/// Which primary serves each slot.
pub(super) struct Topology {
    /// Index in `nodes` of each slot's primary (`u16::MAX`: no primary known).
    slots: Box<[u16]>,
    pub(super) nodes: Vec<Arc<Node>>,
}

/// No primary known for a slot.
const NONE: u16 = u16::MAX;

impl Topology {
    /// The primary of `slot`, if known.
    pub(super) fn node(&self, slot: u16) -> Option<&Arc<Node>> {
        let i = *self.slots.get(usize::from(slot))?;
        self.nodes.get(usize::from(i))
    }

    /// Each primary and the slots it serves.
    pub(super) fn slots_by_node(&self) -> Vec<(Arc<Node>, Vec<u16>)> {
        let mut by: Vec<(Arc<Node>, Vec<u16>)> = self
            .nodes
            .iter()
            .map(|n| (Arc::clone(n), Vec::new()))
            .collect();
        for (slot, &i) in (0..SLOTS).zip(self.slots.iter()) {
            if let Some((_, slots)) = by.get_mut(usize::from(i)) {
                slots.push(slot);
            }
        }
        by
    }

    /// The primary at `addr`, if it is one.
    pub(super) fn node_at(&self, addr: &str) -> Option<&Arc<Node>> {
        self.nodes.iter().find(|n| n.addr == addr)
    }

    /// The topology `CLUSTER SLOTS` describes, keeping the nodes of `old` that are still
    /// primaries (and their connections); the others are forgotten.
    pub(super) fn from_reply(
        reply: redis::Value,
        old: Option<&Topology>,
        template: &UrlTemplate,
    ) -> Result<Topology> {
        let bad = |what: &str| Error::Config(format!("unexpected CLUSTER SLOTS reply: {what}"));
        let redis::Value::Array(ranges) = reply else {
            return Err(bad("not an array"));
        };
        let mut slots = vec![NONE; usize::from(SLOTS)].into_boxed_slice();
        let mut nodes: Vec<Arc<Node>> = Vec::new();
        let mut index: HashMap<String, u16> = HashMap::new();
        for range in ranges {
            let redis::Value::Array(parts) = range else {
                return Err(bad("a range is not an array"));
            };
            let mut parts = parts.into_iter();
            let (Some(start), Some(end), Some(primary)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(bad("a short range"));
            };
            let start: u16 = redis::from_redis_value(start).map_err(|_| bad("a slot"))?;
            let end: u16 = redis::from_redis_value(end).map_err(|_| bad("a slot"))?;
            let redis::Value::Array(primary) = primary else {
                return Err(bad("a node is not an array"));
            };
            let mut primary = primary.into_iter();
            let (Some(host), Some(port)) = (primary.next(), primary.next()) else {
                return Err(bad("a node without host and port"));
            };
            let host: String = redis::from_redis_value(host).map_err(|_| bad("a host"))?;
            let port: u16 = redis::from_redis_value(port).map_err(|_| bad("a port"))?;
            let addr = address(&host, port);
            let i = match index.get(&addr) {
                Some(&i) => i,
                None => {
                    let node = match old.and_then(|o| o.node_at(&addr)) {
                        Some(n) => Arc::clone(n),
                        None => Arc::new(Node::new(addr.clone(), template)?),
                    };
                    let i = u16::try_from(nodes.len()).map_err(|_| bad("too many nodes"))?;
                    nodes.push(node);
                    index.insert(addr, i);
                    i
                }
            };
            for s in start..=end.min(SLOTS.saturating_sub(1)) {
                if let Some(x) = slots.get_mut(usize::from(s)) {
                    *x = i;
                }
            }
        }
        if let Some(old) = old {
            for n in &old.nodes {
                if !index.contains_key(&n.addr) {
                    n.forget();
                }
            }
        }
        Ok(Topology { slots, nodes })
    }
}

/// A seed URL, made into the URL of any node by replacing its address: the same scheme
/// (`redis://`, `rediss://`), credentials, database and parameters.
pub(super) struct UrlTemplate {
    /// Up to and including `://` and the user information's `@`.
    head: String,
    /// From the first `/` or `?` after the address.
    tail: String,
    root_cert: Option<Vec<u8>>,
}

impl UrlTemplate {
    /// The template of `url`, and the address it names (`host:port`).
    pub(super) fn parse(
        url: &str,
        root_cert: Option<Vec<u8>>,
    ) -> std::result::Result<(Self, String), String> {
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err("no scheme (redis:// or rediss://)".to_owned());
        };
        if scheme != "redis" && scheme != "rediss" {
            return Err(format!(
                "the scheme {scheme}:// is not redis:// or rediss://"
            ));
        }
        if scheme == "redis" && root_cert.is_some() {
            return Err(
                "a TLS root certificate was given for a URL that is not rediss://".to_owned(),
            );
        }
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let user = authority.rfind('@').map_or(0, |at| at.saturating_add(1));
        let (userinfo, _addr) = authority.split_at(user);
        let template = UrlTemplate {
            head: format!("{scheme}://{userinfo}"),
            tail: tail.to_owned(),
            root_cert,
        };
        // Checked now: a malformed seed is a configuration error, not a failure later.
        let parsed = redis::parse_redis_url(url).ok_or_else(|| "not a Redis URL".to_owned())?;
        let host = parsed.host_str().ok_or_else(|| "no host".to_owned())?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Ok((template, address(host, parsed.port().unwrap_or(6379))))
    }

    /// The URL of the node at `addr` (`host:port`).
    pub(super) fn url_for(&self, addr: &str) -> String {
        format!("{}{addr}{}", self.head, self.tail)
    }

    pub(super) fn client_for(&self, addr: &str) -> Result<redis::Client> {
        let url = self.url_for(addr);
        let invalid = |reason: String| Error::InvalidUrl {
            url: crate::error::redact_url(&url),
            reason,
        };
        if self.head.starts_with("rediss://") {
            tls_client(&url, self.root_cert.clone()).map_err(invalid)
        } else {
            redis::Client::open(url.as_str()).map_err(|e| invalid(e.to_string()))
        }
    }
}

/// An address as a redirection names it (`host:port`, an IPv6 host without brackets), as
/// [`address`] writes it.
pub(super) fn normalized(addr: &str) -> String {
    match addr.rsplit_once(':').map(|(h, p)| (h, p.parse::<u16>())) {
        Some((host, Ok(port))) => address(host.trim_start_matches('[').trim_end_matches(']'), port),
        _ => addr.to_owned(),
    }
}

/// `host:port`, with an IPv6 host in brackets (as in a URL).
pub(super) fn address(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}
