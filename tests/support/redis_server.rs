//! Test harness: a throw-away `redis-server` process per test.
//!
//! Include it from an integration test with
//! `#[path = "support/redis_server.rs"] mod redis_server;`
//! (or from a bench with `#[path = "../tests/support/redis_server.rs"]`).
//! It depends only on `std` and the `redis` crate.
//!
//! Every server listens on 127.0.0.1 on its own free port, runs without persistence
//! (`--save "" --appendonly no`) in its own temp dir (removed on drop) and logs to
//! `<dir>/redis.log`. Dropping a [`RedisServer`] kills and reaps the process. A small `sh`
//! watchdog also SIGKILLs the server if the test process dies without running `Drop`
//! (a `static` server, `SIGKILL`, abort, timeout) and removes its temp dir, so no orphaned
//! redis-server survives a test run.
//!
//! Right after `start`/`restart` the server's command statistics are reset, so
//! `command_calls()` only shows `config|resetstat` until the test sends its own commands.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::IntoConnectionInfo;

const REDIS_SERVER_BIN: &str = "redis-server";
const NOT_FOUND_MSG: &str = "redis-server not found on PATH: install it with `apt-get install redis-server` (tests need a real Redis)";
/// How long to wait for a freshly spawned server to answer PING.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Fresh ports tried by `start` when the server fails to bind (port race between parallel tests).
const START_ATTEMPTS: usize = 5;
/// How long `restart` keeps retrying the same port while it is still in use.
const RESTART_PORT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `stop` waits for a graceful exit before falling back to SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Read/write timeout of connections handed out by `connection()` / used by `cmd()`.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
const LOG_FILE: &str = "redis.log";
const LOG_TAIL_LINES: usize = 40;
const LOOPBACK: &str = "127.0.0.1";

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A running process plus the watchdog that kills it if the test process dies.
struct Proc {
    child: Child,
    /// `sh` waiting on a pipe whose write end only this process holds: when the test process
    /// dies the pipe hits EOF and the watchdog SIGKILLs the server.
    watchdog: Option<Child>,
}

impl Proc {
    /// Kills and reaps the watchdog (before it can act).
    fn dispose_watchdog(&mut self) {
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
    }

    /// SIGKILL + reap the server, then the watchdog. Never panics.
    fn kill_and_reap(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.dispose_watchdog();
    }
}

/// Why one spawn attempt failed.
enum SpawnFailure {
    /// The port was taken (bind failed, or another process answered on it): try another port.
    PortInUse(String),
    /// Anything else (bad arguments, timeout...): give up with this message.
    Fatal(String),
}

/// A `redis-server` child process owned by a test. See the module docs.
pub struct RedisServer {
    proc: Mutex<Option<Proc>>,
    port: u16,
    args: Vec<String>,
    password: Option<String>,
    dir: PathBuf,
    paused: AtomicBool,
    /// A Sentinel: this configuration file (in `dir`) comes first, then `--sentinel`.
    sentinel_conf: Option<PathBuf>,
}

impl RedisServer {
    /// Starts a fresh redis-server on a free loopback port with no persistence and waits
    /// (up to 10 s) until it answers PING. Retries on a new port (up to 5 times) when the
    /// port turns out to be taken. Panics with a clear message if `redis-server` is missing
    /// or the server cannot start (the message includes the tail of the server log).
    pub fn start() -> RedisServer {
        Self::start_with(&[])
    }

    /// Same as [`RedisServer::start`], with extra arguments for redis-server, e.g.
    /// `["--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru"]` or `["--requirepass", "secret"]`.
    /// They come after the harness defaults, so they may override e.g. `--save`.
    /// A `--requirepass` value is remembered and used by the harness's own connections
    /// (`connection`, `cmd`, `command_calls`, `stop`...); `url()` never contains it.
    pub fn start_with(args: &[&str]) -> RedisServer {
        Self::start_inner(args, None)
    }

    /// A Redis Sentinel (`redis-server sentinel.conf --sentinel`) on a free loopback port,
    /// its configuration file (written in its dir, where Sentinel rewrites it) holding
    /// `conf`, e.g. `sentinel monitor m 127.0.0.1 6379 2`.
    pub fn start_sentinel(conf: &str) -> RedisServer {
        Self::start_inner(&[], Some(conf))
    }

    fn start_inner(args: &[&str], sentinel_conf: Option<&str>) -> RedisServer {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "cachette-redis-{}-{}-{}",
            std::process::id(),
            id,
            nanos
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap_or_else(|e| {
            panic!(
                "cannot create temp dir {} for redis-server: {e}",
                dir.display()
            )
        });

        let sentinel_conf = sentinel_conf.map(|conf| {
            let path = dir.join("sentinel.conf");
            fs::write(&path, format!("{conf}\n"))
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
            path
        });
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let password = find_requirepass(&args);
        // Built before the first spawn so that any panic below still cleans up through Drop.
        let mut server = RedisServer {
            proc: Mutex::new(None),
            port: 0,
            args,
            password,
            dir,
            paused: AtomicBool::new(false),
            sentinel_conf,
        };

        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            server.port = free_port();
            match server.spawn_and_wait() {
                Ok(()) => return server,
                Err(SpawnFailure::PortInUse(why)) => failures.push(why),
                Err(SpawnFailure::Fatal(msg)) => panic!("{msg}"),
            }
        }
        panic!(
            "redis-server failed to start after {START_ATTEMPTS} attempts on fresh ports:\n{}",
            failures.join("\n---\n")
        );
    }

    /// The TCP port (stays the same across `restart`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/` (without the password, if `--requirepass` was given).
    pub fn url(&self) -> String {
        format!("redis://{LOOPBACK}:{}/", self.port)
    }

    /// The server's temp dir (holds `redis.log`); removed on drop.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last lines of the server log (for diagnostics in assertion messages).
    pub fn log_tail(&self) -> String {
        log_tail(&self.dir.join(LOG_FILE))
    }

    /// The process id while the server process is alive.
    pub fn pid(&self) -> Option<u32> {
        let mut guard = self.lock_proc();
        refresh(&mut guard);
        guard.as_ref().map(|p| p.child.id())
    }

    /// Whether the server process is alive (a paused server counts as running).
    pub fn is_running(&self) -> bool {
        let mut guard = self.lock_proc();
        refresh(&mut guard);
        guard.is_some()
    }

    /// Graceful stop: `SHUTDOWN NOSAVE` over a connection (SIGTERM if that is impossible),
    /// waits for the process to exit (SIGKILL after 10 s) and for the port to be free.
    /// A paused server is resumed first. No-op if the server is not running.
    pub fn stop(&mut self) {
        let port = self.port;
        let Some(mut proc) = self
            .proc
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return;
        };
        if self.paused.swap(false, Ordering::SeqCst) {
            let _ = send_signal("CONT", proc.child.id());
        }
        if matches!(proc.child.try_wait(), Ok(None)) {
            let sent = self
                .try_connection(Duration::from_secs(1), Duration::from_secs(2))
                .map(|mut con| {
                    // The server closes the connection instead of replying: the error is expected.
                    let _ = redis::cmd("SHUTDOWN")
                        .arg("NOSAVE")
                        .query::<redis::Value>(&mut con);
                })
                .is_ok();
            if !sent {
                let _ = send_signal("TERM", proc.child.id());
            }
            let deadline = Instant::now() + STOP_TIMEOUT;
            while matches!(proc.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(10));
            }
        }
        // Reaps the exited process, or SIGKILLs one that ignored the shutdown.
        proc.kill_and_reap();
        wait_port_free(port, Duration::from_secs(5));
    }

    /// SIGKILL and wait for the process to exit. No-op if the server is not running.
    pub fn kill(&mut self) {
        if let Some(mut proc) = self
            .proc
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            proc.kill_and_reap();
        }
        self.paused.store(false, Ordering::SeqCst);
    }

    /// Starts the server again on the SAME port with the same arguments (after `stop`/`kill`;
    /// if it is still running it is stopped first) and waits for PING. Retries for up to 5 s
    /// while the port is still in use. The data is gone (no persistence).
    pub fn restart(&mut self) {
        if self.is_running() {
            self.stop();
        }
        let deadline = Instant::now() + RESTART_PORT_TIMEOUT;
        loop {
            match self.spawn_and_wait() {
                Ok(()) => return,
                Err(SpawnFailure::PortInUse(why)) => {
                    if Instant::now() >= deadline {
                        panic!(
                            "redis-server could not be restarted on port {} (still in use after {:?}):\n{why}",
                            self.port, RESTART_PORT_TIMEOUT
                        );
                    }
                    thread::sleep(Duration::from_millis(100));
                }
                Err(SpawnFailure::Fatal(msg)) => panic!("{msg}"),
            }
        }
    }

    /// SIGSTOP: the kernel still accepts TCP connections (listen backlog) but nothing answers.
    /// Note that opening a *new* `redis::Connection` then blocks (its handshake gets no reply),
    /// so open connections before pausing.
    pub fn pause(&self) {
        let pid = self.pid().unwrap_or_else(|| {
            panic!("pause(): redis-server on port {} is not running", self.port)
        });
        send_signal("STOP", pid).unwrap_or_else(|e| panic!("pause(): {e}"));
        self.paused.store(true, Ordering::SeqCst);
    }

    /// SIGCONT: undoes [`RedisServer::pause`].
    pub fn resume(&self) {
        let pid = self.pid().unwrap_or_else(|| {
            panic!(
                "resume(): redis-server on port {} is not running",
                self.port
            )
        });
        send_signal("CONT", pid).unwrap_or_else(|e| panic!("resume(): {e}"));
        self.paused.store(false, Ordering::SeqCst);
    }

    /// A fresh synchronous connection (authenticated if `--requirepass` was given) with 10 s
    /// read/write timeouts, for raw inspection and fault injection. Change the timeouts with
    /// `set_read_timeout` / `set_write_timeout`. Panics if the server cannot be reached.
    pub fn connection(&self) -> redis::Connection {
        self.try_connection(Duration::from_secs(5), IO_TIMEOUT)
            .unwrap_or_else(|e| {
                panic!(
                    "cannot connect to redis-server on port {}: {e}\nserver log tail:\n{}",
                    self.port,
                    self.log_tail()
                )
            })
    }

    /// Runs one command on a fresh connection and returns the reply, e.g.
    /// `server.cmd::<Option<String>>(&["GET", "k"])`. Panics on any error.
    pub fn cmd<T: redis::FromRedisValue>(&self, args: &[&str]) -> T {
        let (name, rest) = args
            .split_first()
            .expect("RedisServer::cmd needs at least a command name");
        let mut cmd = redis::cmd(name);
        for arg in rest {
            cmd.arg(*arg);
        }
        let mut con = self.connection();
        cmd.query(&mut con)
            .unwrap_or_else(|e| panic!("redis command {args:?} on port {} failed: {e}", self.port))
    }

    /// Per-command call counts from `INFO commandstats`: lowercased command name (subcommands
    /// as Redis names them, e.g. `"config|resetstat"`) -> `calls`. Commands never called since
    /// the last reset are absent.
    pub fn command_calls(&self) -> HashMap<String, u64> {
        let info: String = self.cmd(&["INFO", "commandstats"]);
        parse_commandstats(&info)
    }

    /// `CONFIG RESETSTAT`.
    pub fn reset_stats(&self) {
        let _: () = self.cmd(&["CONFIG", "RESETSTAT"]);
    }

    /// `DBSIZE`.
    pub fn dbsize(&self) -> u64 {
        self.cmd(&["DBSIZE"])
    }

    // ---- internals ----

    fn lock_proc(&self) -> MutexGuard<'_, Option<Proc>> {
        self.proc.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn connection_info(&self) -> redis::ConnectionInfo {
        let info = redis::ConnectionAddr::Tcp(LOOPBACK.to_string(), self.port)
            .into_connection_info()
            .expect("a TCP address is always a valid connection info");
        // No CLIENT SETINFO on harness connections: it would show up in `command_calls`.
        let mut settings = redis::RedisConnectionInfo::default().set_skip_set_lib_name();
        if let Some(pw) = &self.password {
            settings = settings.set_password(pw);
        }
        info.set_redis_settings(settings)
    }

    /// A connection (with the server's password, if any) that may fail instead of panicking.
    pub fn try_connection(
        &self,
        connect_timeout: Duration,
        io_timeout: Duration,
    ) -> redis::RedisResult<redis::Connection> {
        let client = redis::Client::open(self.connection_info())?;
        let con = client.get_connection_with_timeout(connect_timeout)?;
        con.set_read_timeout(Some(io_timeout))?;
        con.set_write_timeout(Some(io_timeout))?;
        Ok(con)
    }

    /// Spawns redis-server on `self.port` and waits until it answers PING.
    /// On failure nothing is left running.
    fn spawn_and_wait(&mut self) -> Result<(), SpawnFailure> {
        let log_path = self.dir.join(LOG_FILE);
        let log_start = fs::metadata(&log_path).map(|m| m.len()).unwrap_or(0);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| SpawnFailure::Fatal(format!("cannot open {}: {e}", log_path.display())))?;
        let log_err = log
            .try_clone()
            .map_err(|e| SpawnFailure::Fatal(format!("cannot clone log file handle: {e}")))?;

        let port = self.port.to_string();
        let dir = self.dir.to_string_lossy().into_owned();
        let mut command = Command::new(REDIS_SERVER_BIN);
        if let Some(conf) = &self.sentinel_conf {
            command.arg(conf).arg("--sentinel");
        }
        command
            .args(["--port", port.as_str()])
            .args(["--bind", LOOPBACK])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--dir", dir.as_str()])
            .args(["--daemonize", "no"])
            .args(["--logfile", ""])
            .args(&self.args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        let child = match command.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!("{NOT_FOUND_MSG}"),
            Err(e) => panic!("cannot spawn {REDIS_SERVER_BIN}: {e}"),
        };
        let watchdog = spawn_watchdog(child.id(), &self.dir);
        *self.proc.get_mut().unwrap_or_else(|e| e.into_inner()) = Some(Proc { child, watchdog });

        let outcome = self.wait_until_ready(&log_path, log_start);
        if outcome.is_err() {
            self.kill();
        }
        outcome
    }

    fn wait_until_ready(&mut self, log_path: &Path, log_start: u64) -> Result<(), SpawnFailure> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let (pid, exited) = {
                let proc = self
                    .proc
                    .get_mut()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_mut()
                    .expect("spawned process present");
                (proc.child.id(), proc.child.try_wait())
            };
            match exited {
                Ok(None) => {}
                Ok(Some(status)) => {
                    let log = read_from(log_path, log_start);
                    let msg = format!(
                        "redis-server (args {:?}) exited during startup on port {} with {status}; log:\n{}",
                        self.args,
                        self.port,
                        tail_lines(&log, LOG_TAIL_LINES)
                    );
                    return Err(if is_bind_failure(&log) {
                        SpawnFailure::PortInUse(msg)
                    } else {
                        SpawnFailure::Fatal(msg)
                    });
                }
                Err(e) => {
                    return Err(SpawnFailure::Fatal(format!(
                        "cannot poll redis-server: {e}"
                    )));
                }
            }

            if let Ok(mut con) =
                self.try_connection(Duration::from_millis(250), Duration::from_secs(1))
            {
                let pong: redis::RedisResult<String> = redis::cmd("PING").query(&mut con);
                if pong.is_ok() {
                    // Make sure the answer came from *our* process, not from another server that
                    // grabbed the port first (ours will then fail to bind and exit).
                    let info: redis::RedisResult<String> =
                        redis::cmd("INFO").arg("server").query(&mut con);
                    let owner = info.ok().and_then(|i| info_field(&i, "process_id"));
                    if owner == Some(u64::from(pid)) {
                        let _ = redis::cmd("CONFIG").arg("RESETSTAT").query::<()>(&mut con);
                        return Ok(());
                    }
                    if owner.is_some() {
                        return Err(SpawnFailure::PortInUse(format!(
                            "port {} is answered by another redis-server (pid {owner:?}, ours is {pid})",
                            self.port
                        )));
                    }
                }
            }

            if Instant::now() >= deadline {
                return Err(SpawnFailure::Fatal(format!(
                    "redis-server (args {:?}) did not answer PING on port {} within {:?}; log:\n{}",
                    self.args,
                    self.port,
                    START_TIMEOUT,
                    tail_lines(&read_from(log_path, log_start), LOG_TAIL_LINES)
                )));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let proc = self
            .proc
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(mut proc) = proc {
            if self.paused.swap(false, Ordering::SeqCst) {
                let _ = send_signal("CONT", proc.child.id());
            }
            proc.kill_and_reap();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl std::fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisServer")
            .field("port", &self.port)
            .field("args", &self.args)
            .field("dir", &self.dir)
            .field("paused", &self.paused.load(Ordering::SeqCst))
            .finish_non_exhaustive()
    }
}

/// Drops (and reaps) the process if it has exited on its own.
fn refresh(proc: &mut Option<Proc>) {
    let exited = match proc.as_mut() {
        Some(p) => !matches!(p.child.try_wait(), Ok(None)),
        None => false,
    };
    if exited && let Some(mut p) = proc.take() {
        p.kill_and_reap();
    }
}

/// A port that was free a moment ago (bind 127.0.0.1:0, read the port, release it).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0 to pick a free port: {e}"))
}

/// Waits (bounded) until the port can be bound again; gives up silently.
fn wait_port_free(port: u16, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_err() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
}

/// Sends a signal with the shell's builtin `kill` (no libc, works without procps).
fn send_signal(signal: &str, pid: u32) -> Result<(), String> {
    let status = Command::new("sh")
        .args([
            "-c",
            "kill -s \"$1\" \"$2\"",
            "sh",
            signal,
            &pid.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run `sh -c kill`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`kill -s {signal} {pid}` failed: {status}"))
    }
}

/// `sh` that SIGKILLs `pid` and removes `dir` once its stdin (a pipe only we hold) reaches EOF,
/// i.e. when the test process is gone without running `Drop`. Best effort: `None` if it cannot
/// be spawned.
fn spawn_watchdog(pid: u32, dir: &Path) -> Option<Child> {
    Command::new("sh")
        .args([
            "-c",
            "read _ignored; kill -s KILL \"$1\"; sleep 1; rm -rf \"$2\"",
            "sh",
            &pid.to_string(),
        ])
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

fn find_requirepass(args: &[String]) -> Option<String> {
    let mut found = None;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--requirepass" {
            found = iter.next().cloned();
        } else if let Some(value) = arg.strip_prefix("--requirepass=") {
            found = Some(value.to_string());
        }
    }
    found.filter(|p| !p.is_empty())
}

fn is_bind_failure(log: &str) -> bool {
    log.contains("Address already in use") || log.contains("Failed listening on port")
}

fn info_field(info: &str, key: &str) -> Option<u64> {
    info.lines().find_map(|line| {
        line.trim()
            .strip_prefix(key)?
            .strip_prefix(':')?
            .parse()
            .ok()
    })
}

/// `cmdstat_get:calls=3,usec=...` -> `"get" => 3` (also used by `comparisons/`).
pub fn parse_commandstats(info: &str) -> HashMap<String, u64> {
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.trim().strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats
                .split(',')
                .find_map(|kv| kv.strip_prefix("calls="))?
                .parse()
                .ok()?;
            Some((name.to_ascii_lowercase(), calls))
        })
        .collect()
}

/// The log content written from `offset` on (lossy).
fn read_from(path: &Path, offset: u64) -> String {
    let mut buf = Vec::new();
    if let Ok(mut f) = File::open(path)
        && f.seek(SeekFrom::Start(offset)).is_ok()
    {
        let _ = f.read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn log_tail(path: &Path) -> String {
    tail_lines(&read_from(path, 0), LOG_TAIL_LINES)
}

fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    if lines.is_empty() {
        "(empty log)".to_string()
    } else {
        lines[start..].join("\n")
    }
}
