//! The round trip of the cluster store: commands addressed by slot, grouped into one pipeline
//! per primary and sent to the primaries in parallel (one round trip of latency), within one
//! operation timeout. Inside it, redirections are followed (`MOVED`: the topology is read
//! again; `ASK`: the command goes to the importing node after `ASKING`; `TRYAGAIN`: again
//! after a short pause). An outage (a connection that fails, a node that became a replica,
//! `CLUSTERDOWN`) reads the topology again: the commands are sent again if it changed (a
//! failover done), and the error is returned at once otherwise. Every command's reply
//! comes with the identity of the server process that gave it.

use super::ClusterStore;
use super::topology::{Node, Topology, normalized};
use crate::backend::redis::connections::connection_lost;
use crate::backend::redis::round_trip::{Op, guard};
use crate::error::{Error, Result};
use redis::{ErrorKind, ServerErrorKind};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A command and the slot of its keys. The command is built for the identity of the node it
/// is sent to (an entry is stored under its node's identity, see the module above).
pub(super) struct Routed {
    pub(super) slot: u16,
    pub(super) build: Box<dyn Fn(u64) -> redis::Cmd + Send + Sync>,
}

impl Routed {
    /// A command that is the same whichever node it is sent to.
    pub(super) fn fixed(slot: u16, cmd: redis::Cmd) -> Routed {
        Routed {
            slot,
            build: Box::new(move |_| cmd.clone()),
        }
    }
}

/// A reply and the identity of the server process that gave it.
pub(super) type Answer = (redis::Value, u64);

/// The longest pause between two attempts.
const MAX_PAUSE: Duration = Duration::from_millis(100);

/// The shortest time between two readings of the topology.
const REFRESH_GAP: Duration = Duration::from_millis(50);

/// What one attempt on one node gave: each command's reply, the node's identity, and the
/// replicas a trailing `WAIT` counted.
type NodeAnswers = (Vec<redis::RedisResult<redis::Value>>, u64, Option<usize>);

impl ClusterStore {
    /// Sends `cmds` (`wait`: each node's pipeline ends with `WAIT n ms`, on its waiting
    /// connection, and fewer replicas than `n` is [`Error::NotReplicated`]) within `timeout`,
    /// passing the circuit breaker, counted as one round trip and timed under `op`.
    pub(super) async fn send(
        &self,
        op: Op,
        cmds: &[Routed],
        wait: Option<(usize, Duration)>,
        timeout: Duration,
    ) -> Result<Vec<Answer>> {
        let attempts = self.attempts(cmds, wait);
        guard(&self.breaker, &self.round_trips, op, timeout, attempts).await
    }

    /// Attempts until every command is answered (or one is refused).
    async fn attempts(
        &self,
        cmds: &[Routed],
        wait: Option<(usize, Duration)>,
    ) -> Result<Vec<Answer>> {
        let mut answers: Vec<Option<Answer>> = vec![None; cmds.len()];
        // Where an `ASK` sent a command: that node, after `ASKING`, for one attempt.
        let mut asked: Vec<Option<String>> = vec![None; cmds.len()];
        let mut pause = Duration::from_millis(2);
        loop {
            let topology = self.topology().await?;
            let mut groups: Vec<(Arc<Node>, Vec<usize>)> = Vec::new();
            let mut unrouted = false;
            for (i, cmd) in cmds.iter().enumerate() {
                if answers.get(i).is_some_and(Option::is_some) {
                    continue;
                }
                let node = match asked.get(i).and_then(Option::as_deref) {
                    Some(addr) => topology.node_at(addr),
                    None => topology.node(cmd.slot),
                };
                let Some(node) = node else {
                    unrouted = true;
                    continue;
                };
                match groups.iter_mut().find(|(n, _)| Arc::ptr_eq(n, node)) {
                    Some((_, group)) => group.push(i),
                    None => groups.push((Arc::clone(node), vec![i])),
                }
            }
            let mut rounds = Vec::with_capacity(groups.len());
            for (node, group) in &groups {
                rounds.push(self.on_node(node, group, cmds, &asked, wait));
            }
            let results = futures_util::future::join_all(rounds).await;
            // A redirection is followed; an outage (a node that fails, `CLUSTERDOWN`, a slot
            // no primary serves) is retried only once the topology changed (a failover done),
            // and otherwise returned at once, as one server that fails: calls degrade within
            // the failover instead of waiting it out.
            let mut refresh = unrouted;
            let mut outage = unrouted.then(|| {
                Error::redis(redis::RedisError::from((
                    ErrorKind::ClusterConnectionNotFound,
                    "no primary serves the slot",
                )))
            });
            for ((node, group), result) in groups.iter().zip(results) {
                let (replies, ident, acked) = match result {
                    Ok(r) => r,
                    Err(e) if connection_lost(&e) => {
                        node.forget();
                        refresh = true;
                        outage = Some(e);
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                if let (Some((wanted, _)), Some(acked)) = (wait, acked)
                    && acked < wanted
                {
                    return Err(Error::NotReplicated { wanted, acked });
                }
                for (&i, reply) in group.iter().zip(replies) {
                    let was_asked = asked.get_mut(i).and_then(Option::take).is_some();
                    match reply {
                        Ok(v) => {
                            if let Some(a) = answers.get_mut(i) {
                                *a = Some((v, ident));
                            }
                        }
                        Err(e) => match e.kind() {
                            ErrorKind::Server(ServerErrorKind::Ask) if !was_asked => {
                                if let (Some(a), Some((addr, _))) =
                                    (asked.get_mut(i), e.redirect_node())
                                {
                                    *a = Some(normalized(addr));
                                }
                            }
                            // The slot moved, or the node is a replica now: its connection
                            // is forgotten (it learns the node's identity again) and the
                            // topology read again.
                            ErrorKind::Server(ServerErrorKind::Moved | ServerErrorKind::Ask)
                            | ErrorKind::Server(ServerErrorKind::ReadOnly) => {
                                node.forget();
                                refresh = true;
                            }
                            ErrorKind::Server(ServerErrorKind::TryAgain) => refresh = true,
                            ErrorKind::Server(ServerErrorKind::ClusterDown) => {
                                refresh = true;
                                outage = Some(Error::redis(e));
                            }
                            _ => return Err(Error::redis(e)),
                        },
                    }
                }
            }
            if answers.iter().all(Option::is_some) {
                return Ok(answers.into_iter().flatten().collect());
            }
            if refresh {
                // A failed reading leaves the topology as it was.
                let now = self.refresh(Some(&topology)).await;
                if let Some(e) = outage
                    && now.is_ok_and(|now| Arc::ptr_eq(&now, &topology))
                {
                    return Err(e);
                }
            }
            tokio::time::sleep(pause).await;
            pause = pause.saturating_mul(2).min(MAX_PAUSE);
        }
    }

    /// One pipeline on `node`: the commands of `group` (each after `ASKING` where an `ASK`
    /// sent it), then `WAIT` when asked for.
    async fn on_node(
        &self,
        node: &Node,
        group: &[usize],
        cmds: &[Routed],
        asked: &[Option<String>],
        wait: Option<(usize, Duration)>,
    ) -> Result<NodeAnswers> {
        let (mut conn, ident) = node.conn(wait.is_some(), self.op_timeout).await?;
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        let mut kept = Vec::with_capacity(group.len());
        for &i in group {
            let Some(cmd) = cmds.get(i) else { continue };
            if asked.get(i).is_some_and(Option::is_some) {
                pipe.cmd("ASKING");
                kept.push(false);
            }
            pipe.add_command((cmd.build)(ident));
            kept.push(true);
        }
        if let Some((wanted, wait)) = wait {
            pipe.cmd("WAIT")
                .arg(wanted)
                .arg(crate::backend::redis::replies::millis(wait));
        }
        let mut replies: Vec<redis::RedisResult<redis::Value>> =
            pipe.query_async(&mut conn).await.map_err(Error::redis)?;
        let acked = match wait {
            Some(_) => match replies.pop() {
                Some(Ok(v)) => Some(redis::from_redis_value::<usize>(v).unwrap_or(0)),
                Some(Err(e)) => return Err(Error::redis(e)),
                None => Some(0),
            },
            None => None,
        };
        let replies = replies
            .into_iter()
            .zip(kept)
            .filter_map(|(r, keep)| keep.then_some(r))
            .collect();
        Ok((replies, ident, acked))
    }

    /// One command on one node (`SCAN`, `INFO`, `PING`: what is asked of every primary),
    /// within the operation timeout, passing the breaker.
    pub(super) async fn on_primary<T: redis::FromRedisValue>(
        &self,
        op: Op,
        node: &Node,
        cmd: redis::Cmd,
    ) -> Result<T> {
        let attempt = async {
            let (mut conn, _) = node.conn(false, self.op_timeout).await?;
            cmd.query_async::<T>(&mut conn).await.map_err(Error::redis)
        };
        let r = guard(
            &self.breaker,
            &self.round_trips,
            op,
            self.op_timeout,
            attempt,
        )
        .await;
        if r.as_ref().is_err_and(connection_lost) {
            node.forget();
        }
        r
    }

    /// The topology, read on first use.
    pub(super) async fn topology(&self) -> Result<Arc<Topology>> {
        match self.topology.load_full() {
            Some(t) => Ok(t),
            None => self.refresh(None).await,
        }
    }

    /// Reads the topology again (`CLUSTER SLOTS`, asked of the known primaries, then of the
    /// seeds), unless it changed since `seen` or was read less than [`REFRESH_GAP`] ago.
    pub(super) async fn refresh(&self, seen: Option<&Arc<Topology>>) -> Result<Arc<Topology>> {
        let mut last = self.refreshed.lock().await;
        let current = self.topology.load_full();
        if let Some(current) = &current {
            let changed = seen.is_some_and(|s| !Arc::ptr_eq(s, current));
            if changed || last.is_some_and(|at| at.elapsed() < REFRESH_GAP) {
                return Ok(Arc::clone(current));
            }
        }
        let mut asked: Vec<String> = Vec::new();
        if let Some(t) = &current {
            asked.extend(t.nodes.iter().map(|n| n.addr.clone()));
        }
        asked.extend(self.seeds.iter().cloned());
        // One operation timeout for the whole reading, whoever asks (a call's round trip, or
        // a pattern invalidation, a statistics request, `connect`, which read it first).
        let started = Instant::now();
        let mut error = None;
        for addr in asked {
            let left = self.op_timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                error = Some(Error::Timeout(self.op_timeout));
                break;
            }
            let reply = tokio::time::timeout(left, self.cluster_slots(&addr)).await;
            match reply {
                Ok(Ok(reply)) => {
                    let t = Arc::new(Topology::from_reply(
                        reply,
                        current.as_deref(),
                        &self.template,
                    )?);
                    self.topology.store(Some(Arc::clone(&t)));
                    *last = Some(Instant::now());
                    return Ok(t);
                }
                Ok(Err(e)) => error = Some(e),
                Err(_) => error = Some(Error::Timeout(self.op_timeout)),
            }
        }
        *last = Some(Instant::now());
        Err(error.unwrap_or_else(|| Error::Config("no seed node".to_owned())))
    }

    /// `CLUSTER SLOTS`, asked of the node at `addr` on a connection of its own.
    async fn cluster_slots(&self, addr: &str) -> Result<redis::Value> {
        let client = self.template.client_for(addr)?;
        let config = crate::backend::redis::connections::connection_config(self.op_timeout);
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(Error::redis)?;
        redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query_async(&mut conn)
            .await
            .map_err(Error::redis)
    }
}
