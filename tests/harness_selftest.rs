//! Proves that the `RedisServer` test harness does what the other tests rely on.

#[path = "support/redis_server.rs"]
mod redis_server;

use std::path::Path;
use std::time::{Duration, Instant};

use redis_server::RedisServer;

fn client_connection(url: &str) -> redis::RedisResult<redis::Connection> {
    redis::Client::open(url)?.get_connection_with_timeout(Duration::from_secs(1))
}

fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn set_get_dbsize_and_command_stats() {
    let server = RedisServer::start();
    assert!(server.is_running());
    assert!(server.pid().is_some());
    assert_eq!(
        server.url(),
        format!("redis://127.0.0.1:{}/", server.port())
    );

    // Fresh server: only the harness's own CONFIG RESETSTAT is on record.
    let calls = server.command_calls();
    assert_eq!(calls.get("get"), None, "{calls:?}");
    assert_eq!(calls.get("ping"), None, "{calls:?}");

    assert_eq!(server.cmd::<String>(&["SET", "k", "v"]), "OK");
    assert_eq!(
        server.cmd::<Option<String>>(&["GET", "k"]).as_deref(),
        Some("v")
    );
    assert_eq!(server.cmd::<Option<String>>(&["GET", "missing"]), None);
    assert_eq!(server.dbsize(), 1);

    server.reset_stats();
    assert_eq!(
        server.cmd::<Option<String>>(&["GET", "k"]).as_deref(),
        Some("v")
    );
    let calls = server.command_calls();
    assert_eq!(calls.get("get"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("set"), None, "{calls:?}");
    assert_eq!(calls.get("config|resetstat"), Some(&1), "{calls:?}");
    assert!(
        !calls.keys().any(|k| k.starts_with("client")),
        "harness connections must not send CLIENT SETINFO: {calls:?}"
    );

    // A client built from url() talks to the same server.
    let mut con = client_connection(&server.url()).expect("connect via url()");
    let v: Option<String> = redis::cmd("GET").arg("k").query(&mut con).unwrap();
    assert_eq!(v.as_deref(), Some("v"));
    let dir = server.dir().to_path_buf();
    assert!(dir.join("redis.log").exists());
    drop(con);
    drop(server);
    assert!(!dir.exists(), "temp dir must be removed on drop");
}

#[test]
fn kill_and_stop_then_restart_on_same_port_without_data() {
    let mut server = RedisServer::start();
    let port = server.port();
    let url = server.url();
    let _: () = server.cmd(&["SET", "k", "v"]);
    let pid = server.pid().unwrap();

    server.kill();
    assert!(!server.is_running());
    assert_eq!(server.pid(), None);
    assert!(!process_exists(pid), "killed server must be reaped");
    let err = client_connection(&url)
        .err()
        .expect("connecting to a killed server must fail");
    assert!(err.is_connection_refusal() || err.is_io_error(), "{err:?}");

    server.restart();
    assert_eq!(server.port(), port);
    assert!(server.is_running());
    assert_ne!(server.pid(), Some(pid));
    assert_eq!(server.cmd::<String>(&["PING"]), "PONG");
    assert_eq!(
        server.cmd::<Option<String>>(&["GET", "k"]),
        None,
        "no persistence"
    );
    assert_eq!(server.dbsize(), 0);

    // Graceful stop + restart works the same way.
    let _: () = server.cmd(&["SET", "k2", "v"]);
    let pid = server.pid().unwrap();
    server.stop();
    assert!(!server.is_running());
    assert!(!process_exists(pid), "stopped server must be reaped");
    assert!(client_connection(&url).is_err());
    server.restart();
    assert_eq!(server.port(), port);
    assert_eq!(server.cmd::<String>(&["PING"]), "PONG");
    assert_eq!(server.dbsize(), 0);

    // stop/kill are idempotent.
    server.kill();
    server.kill();
    server.stop();
    assert!(!server.is_running());
}

#[test]
fn pause_makes_the_server_silent_until_resume() {
    let server = RedisServer::start();
    let _: () = server.cmd(&["SET", "k", "v"]);

    // Connect first: a new connection's handshake would itself block on a paused server.
    let mut con = client_connection(&server.url()).expect("connect");
    con.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();

    server.pause();
    assert!(server.is_running(), "a paused server is still running");
    let started = Instant::now();
    let err = redis::cmd("GET")
        .arg("k")
        .query::<Option<String>>(&mut con)
        .expect_err("a paused server must not answer");
    let elapsed = started.elapsed();
    assert!(err.is_timeout(), "expected a read timeout, got {err:?}");
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );

    server.resume();
    let mut con = client_connection(&server.url()).expect("connect after resume");
    con.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let v: Option<String> = redis::cmd("GET").arg("k").query(&mut con).unwrap();
    assert_eq!(v.as_deref(), Some("v"));
}

#[test]
fn drop_kills_a_paused_server() {
    let server = RedisServer::start();
    let pid = server.pid().unwrap();
    let dir = server.dir().to_path_buf();
    server.pause();
    drop(server);
    assert!(
        !process_exists(pid),
        "dropped server must be killed and reaped"
    );
    assert!(!dir.exists());
}

#[test]
fn requirepass_rejects_unauthenticated_clients() {
    let server = RedisServer::start_with(&["--requirepass", "pw"]);
    // The harness itself authenticates.
    assert_eq!(server.cmd::<String>(&["PING"]), "PONG");

    let mut anon = client_connection(&server.url()).expect("TCP connect works without a password");
    let err = redis::cmd("GET")
        .arg("k")
        .query::<Option<String>>(&mut anon)
        .expect_err("unauthenticated GET must fail");
    assert!(
        err.code() == Some("NOAUTH") || err.kind() == redis::ErrorKind::AuthenticationFailed,
        "expected an auth error, got {err:?}"
    );

    let authed_url = format!("redis://:pw@127.0.0.1:{}/", server.port());
    let mut con = client_connection(&authed_url).expect("connect with password");
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut con).unwrap();
    let v: Option<String> = redis::cmd("GET").arg("k").query(&mut con).unwrap();
    assert_eq!(v.as_deref(), Some("v"));

    let wrong = client_connection(&format!("redis://:nope@127.0.0.1:{}/", server.port()));
    assert!(wrong.is_err(), "a wrong password must be rejected");
}

#[test]
fn start_with_passes_arguments_and_defaults_disable_persistence() {
    let server =
        RedisServer::start_with(&["--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru"]);
    let maxmemory: Vec<String> = server.cmd(&["CONFIG", "GET", "maxmemory"]);
    assert_eq!(maxmemory, ["maxmemory", "2097152"]);
    let policy: Vec<String> = server.cmd(&["CONFIG", "GET", "maxmemory-policy"]);
    assert_eq!(policy, ["maxmemory-policy", "allkeys-lru"]);
    let save: Vec<String> = server.cmd(&["CONFIG", "GET", "save"]);
    assert_eq!(save, ["save", ""]);
    let aof: Vec<String> = server.cmd(&["CONFIG", "GET", "appendonly"]);
    assert_eq!(aof, ["appendonly", "no"]);
    let bind: Vec<String> = server.cmd(&["CONFIG", "GET", "bind"]);
    assert_eq!(bind, ["bind", "127.0.0.1"]);
}

#[test]
fn parallel_starts_get_distinct_ports() {
    let servers: Vec<RedisServer> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6).map(|_| s.spawn(RedisServer::start)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut ports: Vec<u16> = servers.iter().map(RedisServer::port).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), servers.len());
    for server in &servers {
        assert_eq!(server.cmd::<String>(&["PING"]), "PONG");
    }
}
