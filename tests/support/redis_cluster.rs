//! Test harness: a throw-away Redis Cluster (3 primaries, 3 replicas) per test.
//!
//! Include it from an integration test together with the single-server harness it builds on:
//! ```ignore
//! #[path = "support/redis_server.rs"]
//! mod redis_server;
//! #[path = "support/redis_cluster.rs"]
//! mod redis_cluster;
//! ```
//! It depends only on `std`, the `redis` crate and `redis-cli` on `PATH`.
//!
//! [`RedisCluster::start`] starts 6 nodes with [`RedisServer::start_with`] (free loopback port,
//! own temp dir, no persistence, watchdog; see `redis_server.rs`) plus `--cluster-enabled yes
//! --cluster-node-timeout 1000`, a `nodes.conf` in the node's own dir (`--cluster-config-file`
//! is relative to it; the port is only known once the node runs), an explicit free
//! `--cluster-port` (the default bus port, port + 10000, may be taken, or above 65535 for the
//! ephemeral ports the harness picks) and `--repl-diskless-sync-delay 0` (see `NODE_ARGS`).
//! Then `redis-cli --cluster create ... --cluster-replicas 1 --cluster-yes` joins them, and
//! `start` waits until the cluster is stable ([`RedisCluster::wait_until_stable`]): about 2 s.
//!
//! Node handles ([`ClusterNode`]) are snapshots of `CLUSTER NODES`: take a fresh one after a
//! failover. Dropping a [`RedisCluster`] kills every node and removes their dirs.
#![allow(dead_code)]

use super::redis_server::RedisServer;
use std::fs::{self, File};
use std::net::{Ipv4Addr, TcpListener};
use std::panic::{self, AssertUnwindSafe};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const NODES: usize = 6;
/// Slots of a Redis Cluster.
pub const SLOTS: u16 = 16384;
/// Bound of `start`'s `redis-cli --cluster create` and of every wait for a stable cluster.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(30);
/// Fresh bus ports tried per node when its start fails (port race between parallel tests).
const NODE_ATTEMPTS: usize = 3;
const POLL: Duration = Duration::from_millis(50);
const CREATE_LOG: &str = "cluster-create.log";
/// Given to every node after its `--cluster-port` (`RedisServer` already passes `--save ""
/// --appendonly no`). `--repl-diskless-sync-delay 0`: a replica's first sync starts at once,
/// not 5 s later.
const NODE_ARGS: &str = "--cluster-enabled yes --cluster-node-timeout 1000 \
    --cluster-config-file nodes.conf --repl-diskless-sync-delay 0";

/// One node as `CLUSTER NODES` showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    /// The node's 40-character id (kept across `restart`: `nodes.conf` stays in its dir).
    pub id: String,
    pub port: u16,
    /// Whether it serves slots (a `master` not flagged `fail`).
    pub primary: bool,
    /// A replica's primary id.
    pub primary_id: Option<String>,
    /// Slot ranges served (inclusive), empty for replicas.
    pub slots: Vec<(u16, u16)>,
}

impl ClusterNode {
    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn serves(&self, slot: u16) -> bool {
        self.slots.iter().any(|&(lo, hi)| (lo..=hi).contains(&slot))
    }
}

/// A running Redis Cluster owned by a test. See the module docs.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    /// Node ids, by index in `nodes`.
    ids: Vec<String>,
    /// Every node's `requirepass` (and `masterauth`), if any.
    password: Option<String>,
}

impl RedisCluster {
    /// Starts 6 nodes, creates the cluster (3 primaries with one replica each) and waits until
    /// it is stable. Panics with `redis-cli`'s output and the nodes' log tails on failure.
    pub fn start() -> RedisCluster {
        Self::start_inner(None)
    }

    /// [`RedisCluster::start`] with every node requiring `password` (`--requirepass`, and
    /// `--masterauth` for the replicas); the harness's own connections use it, `urls` do not.
    pub fn start_with_password(password: &str) -> RedisCluster {
        Self::start_inner(Some(password))
    }

    fn start_inner(password: Option<&str>) -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..NODES).map(|_| start_node(password)).collect();
        let ids = nodes
            .iter()
            .map(|n| n.cmd::<String>(&["CLUSTER", "MYID"]))
            .collect();
        let cluster = RedisCluster {
            nodes,
            ids,
            password: password.map(str::to_owned),
        };
        cluster.create();
        cluster.wait_until_stable("cluster start");
        cluster
    }

    /// Seed URLs `redis://127.0.0.1:P`, one per node (killed ones included).
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port()))
            .collect()
    }

    /// The current topology (`CLUSTER NODES` of the first running node), failed nodes left out.
    pub fn nodes(&self) -> Vec<ClusterNode> {
        let text: String = self.any_running().cmd(&["CLUSTER", "NODES"]);
        parse_nodes(&text)
            .into_iter()
            .filter(|(_, flags)| !flags.contains("fail"))
            .map(|(node, _)| node)
            .collect()
    }

    pub fn primaries(&self) -> Vec<ClusterNode> {
        self.nodes().into_iter().filter(|n| n.primary).collect()
    }

    pub fn replicas(&self) -> Vec<ClusterNode> {
        self.nodes().into_iter().filter(|n| !n.primary).collect()
    }

    /// The primary serving `slot` now. Panics if none does.
    pub fn primary_for_slot(&self, slot: u16) -> ClusterNode {
        let nodes = self.nodes();
        nodes
            .iter()
            .find(|n| n.primary && n.serves(slot))
            .cloned()
            .unwrap_or_else(|| panic!("no primary serves slot {slot}: {nodes:#?}"))
    }

    /// `CLUSTER KEYSLOT key`.
    pub fn keyslot(&self, key: &str) -> u16 {
        self.any_running().cmd(&["CLUSTER", "KEYSLOT", key])
    }

    pub fn primary_for_key(&self, key: &str) -> ClusterNode {
        self.primary_for_slot(self.keyslot(key))
    }

    /// The harness's handle on a node's process, e.g. for `cmd`, `connection` or `log_tail`.
    /// (`cmd` of a key another node serves fails with `MOVED`; a replica needs `READONLY`.)
    pub fn server(&self, node: &ClusterNode) -> &RedisServer {
        &self.nodes[self.index(node)]
    }

    /// SIGKILL the node's process (see [`RedisServer::kill`]); no-op if it is not running.
    pub fn kill(&mut self, node: &ClusterNode) {
        let i = self.index(node);
        self.nodes[i].kill();
    }

    /// After [`RedisCluster::kill`] of a primary: waits until a replica has taken over its
    /// slots, i.e. until the cluster is stable without it. Returns the time it took.
    pub fn wait_for_failover(&self) -> Duration {
        self.wait_until_stable("failover")
    }

    /// Starts a killed node again on its port with its `nodes.conf` (same id, no data) and
    /// waits until the cluster is stable with it (a former primary comes back as a replica of
    /// the node that took over). Returns the time the wait took.
    pub fn restart(&mut self, node: &ClusterNode) -> Duration {
        let i = self.index(node);
        self.nodes[i].restart();
        self.wait_until_stable("restart")
    }

    /// Waits (up to 30 s) until, on every running node: `CLUSTER INFO` says `cluster_state:ok`
    /// with all 16384 slots ok; `CLUSTER NODES` shows every slot served by a running primary,
    /// every running node, none flagged failing, no primary without slots, and the same roles,
    /// primaries and slots as on the other nodes (so every node's view matches each node's own
    /// view of itself: a replica `redis-cli` has just told to replicate may still look like an
    /// empty primary to the others); and a replica's `master_link_status` is `up`. Returns the
    /// time it took; panics with the last reason and the nodes' log tails otherwise.
    pub fn wait_until_stable(&self, what: &str) -> Duration {
        let started = Instant::now();
        loop {
            let why = match self.unstable_reason() {
                None => return started.elapsed(),
                Some(why) => why,
            };
            if started.elapsed() >= CLUSTER_TIMEOUT {
                panic!(
                    "{what}: the cluster is not stable after {CLUSTER_TIMEOUT:?}: {why}\n{}",
                    self.log_tails()
                );
            }
            thread::sleep(POLL);
        }
    }

    /// Every node's port, id, state and log tail (for panic messages).
    pub fn log_tails(&self) -> String {
        let mut out = String::new();
        for (server, id) in self.nodes.iter().zip(&self.ids) {
            let state = if server.is_running() {
                "running"
            } else {
                "down"
            };
            out.push_str(&format!(
                "--- node {id} port {} ({state}) log tail:\n{}\n",
                server.port(),
                server.log_tail()
            ));
        }
        out
    }

    // ---- internals ----

    fn index(&self, node: &ClusterNode) -> usize {
        self.nodes
            .iter()
            .position(|n| n.port() == node.port)
            .unwrap_or_else(|| panic!("no node of this cluster listens on {}", node.port))
    }

    fn any_running(&self) -> &RedisServer {
        self.nodes
            .iter()
            .find(|n| n.is_running())
            .unwrap_or_else(|| panic!("no node of the cluster is running"))
    }

    /// Runs `redis-cli --cluster create` (bounded), its output kept in the first node's dir.
    fn create(&self) {
        let mut args = vec!["create".to_owned()];
        args.extend(self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port())));
        args.extend(["--cluster-replicas", "1", "--cluster-yes"].map(String::from));
        self.redis_cli_cluster(&args, CREATE_LOG);
    }

    /// Moves `slots` slots (and their keys, `MIGRATE`d by `redis-cli`) from the primary
    /// `from` to the primary `to` with `redis-cli --cluster reshard`, then waits until the
    /// cluster is stable. Returns the time it took.
    pub fn reshard(&self, from: &ClusterNode, to: &ClusterNode, slots: u16) -> Duration {
        let started = Instant::now();
        let args = [
            "reshard".to_owned(),
            format!("127.0.0.1:{}", to.port),
            "--cluster-from".to_owned(),
            from.id.clone(),
            "--cluster-to".to_owned(),
            to.id.clone(),
            "--cluster-slots".to_owned(),
            slots.to_string(),
            "--cluster-yes".to_owned(),
        ];
        self.redis_cli_cluster(&args, "cluster-reshard.log");
        self.wait_until_stable("reshard");
        started.elapsed()
    }

    /// SIGSTOP the node's process (see [`RedisServer::pause`]).
    pub fn pause(&self, node: &ClusterNode) {
        self.nodes[self.index(node)].pause();
    }

    /// SIGCONT the node's process.
    pub fn resume(&self, node: &ClusterNode) {
        self.nodes[self.index(node)].resume();
    }

    /// Runs `redis-cli --cluster <args>` (bounded by [`CLUSTER_TIMEOUT`]), its output kept
    /// in `log` in the first running node's dir; panics with it if it fails.
    fn redis_cli_cluster(&self, args: &[String], log: &str) {
        let log_path = self.any_running().dir().join(log);
        let log = File::create(&log_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_path.display()));
        let log_err = log
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot clone log file handle: {e}"));
        let mut command = Command::new("redis-cli");
        if let Some(p) = &self.password {
            command.args(["-a", p, "--no-auth-warning"]);
        }
        command
            .arg("--cluster")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        let mut child = command.spawn().unwrap_or_else(|e| {
            panic!("cannot run redis-cli (install it with `apt-get install redis-tools`): {e}")
        });
        let deadline = Instant::now() + CLUSTER_TIMEOUT;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(POLL),
                Ok(None) | Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
            }
        };
        if !status.is_some_and(|s| s.success()) {
            let output = fs::read_to_string(&log_path).unwrap_or_default();
            panic!(
                "`redis-cli --cluster {}` failed ({status:?}, None = timed out after \
                 {CLUSTER_TIMEOUT:?}):\n{output}\n{}",
                args.first().map_or("", String::as_str),
                self.log_tails()
            );
        }
    }

    /// Why the cluster is not stable yet, or `None` if it is (see `wait_until_stable`).
    fn unstable_reason(&self) -> Option<String> {
        let running: Vec<(&RedisServer, &String)> = self
            .nodes
            .iter()
            .zip(&self.ids)
            .filter(|(n, _)| n.is_running())
            .collect();
        let mut first_view: Option<Vec<ClusterNode>> = None;
        for (server, _) in &running {
            let port = server.port();
            let info = match query(server, &["CLUSTER", "INFO"]) {
                Ok(info) => info,
                Err(e) => return Some(format!("CLUSTER INFO on {port}: {e}")),
            };
            if !info.contains("cluster_state:ok") || !info.contains("cluster_slots_ok:16384") {
                return Some(format!("CLUSTER INFO on {port}:\n{info}"));
            }
            let text = match query(server, &["CLUSTER", "NODES"]) {
                Ok(text) => text,
                Err(e) => return Some(format!("CLUSTER NODES on {port}: {e}")),
            };
            let nodes = parse_nodes(&text);
            let mut view = Vec::new();
            let mut covered = 0u32;
            for (node, flags) in &nodes {
                let alive = running.iter().any(|(_, id)| **id == node.id);
                if alive && flags.contains("fail") {
                    return Some(format!("{port} sees running {} as {flags}", node.port));
                }
                for &(lo, hi) in &node.slots {
                    if !alive || flags.contains("fail") {
                        return Some(format!("{port} sees slots {lo}-{hi} on down {}", node.id));
                    }
                    covered += u32::from(hi - lo) + 1;
                }
                if alive {
                    if node.primary && node.slots.is_empty() {
                        return Some(format!(
                            "{port} sees {} as a primary without slots",
                            node.port
                        ));
                    }
                    view.push(node.clone());
                }
            }
            if view.len() != running.len() {
                return Some(format!(
                    "{port} knows {} of {} nodes",
                    view.len(),
                    running.len()
                ));
            }
            if covered != u32::from(SLOTS) {
                return Some(format!("{port} sees {covered} slots served:\n{text}"));
            }
            view.sort_by(|a, b| a.id.cmp(&b.id));
            match &first_view {
                None => first_view = Some(view),
                Some(first) if *first != view => {
                    return Some(format!("{port} disagrees on roles or slots:\n{text}"));
                }
                Some(_) => {}
            }
            if let Some((node, _)) = nodes
                .iter()
                .find(|(n, f)| f.contains("myself") && !n.primary)
            {
                let repl = match query(server, &["INFO", "replication"]) {
                    Ok(repl) => repl,
                    Err(e) => return Some(format!("INFO replication on {port}: {e}")),
                };
                if !repl.contains("master_link_status:up") {
                    return Some(format!("replica {} not in sync:\n{repl}", node.port));
                }
            }
        }
        None
    }
}

/// One cluster node: `RedisServer::start_with` on a fresh bus port, retried on a new bus port
/// (up to 3 times) when the start fails, e.g. because that port was taken meanwhile.
fn start_node(password: Option<&str>) -> RedisServer {
    let mut last = String::new();
    for _ in 0..NODE_ATTEMPTS {
        let bus = free_port().to_string();
        let mut args: Vec<&str> = NODE_ARGS.split_whitespace().collect();
        args.extend(["--cluster-port", bus.as_str()]);
        if let Some(p) = password {
            args.extend(["--requirepass", p, "--masterauth", p]);
        }
        match panic::catch_unwind(AssertUnwindSafe(|| RedisServer::start_with(&args))) {
            Ok(server) => return server,
            Err(payload) => {
                last = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_default()
            }
        }
    }
    panic!("cluster node failed to start {NODE_ATTEMPTS} times; last failure:\n{last}");
}

/// A raw command on a fresh connection, as a string (non-panicking, for the waits).
fn query(server: &RedisServer, args: &[&str]) -> redis::RedisResult<String> {
    let mut con = server.try_connection(Duration::from_secs(1), Duration::from_secs(2))?;
    let mut cmd = redis::cmd(args.first().copied().unwrap_or("PING"));
    for arg in args.iter().skip(1) {
        cmd.arg(*arg);
    }
    cmd.query(&mut con)
}

/// `CLUSTER NODES` lines: `<id> <ip:port@bus> <flags> <primary|-> <ping> <pong> <epoch> <link>
/// <slot ranges...>` -> each node with its flags. Migrating/importing entries (`[...]`) are
/// skipped.
fn parse_nodes(text: &str) -> Vec<(ClusterNode, String)> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (id, addr, flags, primary_id) = (
                fields.first()?,
                fields.get(1)?,
                fields.get(2)?,
                fields.get(3)?,
            );
            let port = addr.split('@').next()?.rsplit(':').next()?.parse().ok()?;
            let primary = flags.contains("master") && !flags.contains("fail");
            let slots = fields
                .iter()
                .skip(8)
                .filter(|s| !s.starts_with('['))
                .filter_map(|s| match s.split_once('-') {
                    Some((lo, hi)) => Some((lo.parse().ok()?, hi.parse().ok()?)),
                    None => s.parse().ok().map(|slot| (slot, slot)),
                })
                .collect();
            let node = ClusterNode {
                id: id.to_string(),
                port,
                primary,
                primary_id: (*primary_id != "-").then(|| primary_id.to_string()),
                slots,
            };
            Some((node, flags.to_string()))
        })
        .collect()
}

/// A port that was free a moment ago (bind 127.0.0.1:0, read the port, release it).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0 to pick a free port: {e}"))
}
