//! Credentials in Redis URLs never reach `Debug`, `Display` or logs, whatever the form of the
//! URL (`redis`, `rediss`, `redis+unix`, `unix`; user and password in the authority, where the
//! password may hold `/`, `@`, `:`, `?`, `#` and percent-escapes; `pass`, `password`, `user`
//! and `username` query parameters), and whether or not it parses.
//!
//! Every generated secret starts with `Zq` and ends with `Qz`, which nothing else in a
//! generated URL or in cachette's output contains: finding either marker means some part of a
//! secret was printed.

#[path = "support/redis_server.rs"]
mod redis_server;

use cachette::{Cache, CacheBuilder, Error, Options};
use proptest::prelude::*;
use redis_server::RedisServer;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a `tracing` subscriber wrote during a test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

/// Runs `f` on a current-thread runtime (so every task it spawns logs on this thread) with a
/// subscriber that records every event and span at every level; returns what it recorded.
fn traced<F: std::future::Future<Output = ()>>(f: impl FnOnce() -> F) -> String {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(f());
    drop(rt);
    captured.text()
}

/// A secret: the markers around characters that parse in a URL (`parses`) or any printable
/// ones (`/`, `?`, `#`... make most URLs unparsable, which must not print them either).
fn secret(parses: bool) -> impl Strategy<Value = String> {
    let any = prop_oneof![
        "[A-Za-z0-9]",
        Just("%2F".to_owned()),
        Just("%40".to_owned()),
        Just("%3A".to_owned()),
        Just("%25".to_owned()),
        "[-._~!$'()*+,;=]",
        Just("@".to_owned()),
        Just(":".to_owned()),
    ];
    let printable = prop_oneof![
        4 => any.clone(),
        1 => "[/?#&%\\[\\]]",
    ];
    let body = if parses {
        proptest::collection::vec(any, 0..10).boxed()
    } else {
        proptest::collection::vec(printable, 0..10).boxed()
    };
    body.prop_map(|chars| format!("Zq{}Qz", chars.concat()))
}

/// A query parameter value: no `&` (it would end the value; what follows is another parameter,
/// which Redis never receives as a credential).
fn query_secret() -> impl Strategy<Value = String> {
    secret(false).prop_map(|s| s.replace('&', "%26"))
}

/// A Redis URL on `host` (`host:port` for TCP, a socket path for Unix) carrying secrets, and
/// the secrets.
fn url_on(
    tcp: String,
    socket: String,
    parses: bool,
) -> impl Strategy<Value = (String, Vec<String>)> {
    let authority = (
        prop_oneof![Just("redis"), Just("rediss")],
        proptest::option::of(secret(parses)),
        secret(parses),
        prop_oneof![Just(""), Just("/"), Just("/0"), Just("/3?protocol=resp3")],
    )
        .prop_map({
            let tcp = tcp.clone();
            move |(scheme, user, pass, tail)| {
                let (url, secrets) = match user {
                    Some(user) => (
                        format!("{scheme}://{user}:{pass}@{tcp}{tail}"),
                        vec![user, pass],
                    ),
                    None => (format!("{scheme}://:{pass}@{tcp}{tail}"), vec![pass]),
                };
                (url, secrets)
            }
        });
    let user_only =
        secret(parses).prop_map(move |user| (format!("redis://{user}@{tcp}/"), vec![user]));
    let query = (
        prop_oneof![Just("redis+unix://"), Just("unix://")],
        prop_oneof![
            Just("pass"),
            Just("password"),
            Just("user"),
            Just("username"),
            Just("p%61ss")
        ],
        query_secret(),
        prop_oneof![Just(""), Just("db=1&"), Just("protocol=resp2&")],
        prop_oneof![Just(""), Just("&db=2")],
    )
        .prop_map(move |(scheme, key, value, before, after)| {
            (
                format!("{scheme}{socket}?{before}{key}={value}{after}"),
                vec![value],
            )
        });
    prop_oneof![authority, user_only, query]
}

fn assert_no_secret(what: &str, text: &str, url: &str, secrets: &[String]) {
    for marker in ["Zq", "Qz"] {
        assert!(
            !text.contains(marker),
            "{what} prints (part of) a secret of {url:?} {secrets:?}:\n{text}"
        );
    }
}

/// Builds a cache on `url`, prints the builder and the cache or the error, and, when it
/// built, makes it fail to connect through a cached call and `connect()`.
fn check(url: &str, secrets: &[String], op_timeout: Duration) -> Option<Error> {
    let builder: CacheBuilder = Cache::builder()
        .redis(url)
        .op_timeout(op_timeout)
        .breaker(None);
    assert_no_secret(
        "Debug of the builder",
        &format!("{builder:?}"),
        url,
        secrets,
    );
    let cache = match builder.build() {
        Ok(cache) => cache,
        Err(e) => {
            assert!(matches!(e, Error::InvalidUrl { .. }), "{e:?}");
            assert_no_secret("Display of InvalidUrl", &e.to_string(), url, secrets);
            assert_no_secret("Debug of InvalidUrl", &format!("{e:?}"), url, secrets);
            return None;
        }
    };
    assert_no_secret("Debug of the cache", &format!("{cache:?}"), url, secrets);
    let mut connect_error = None;
    let logs = traced(|| async {
        let v: u64 = cache
            .get_or_compute("k", &Options::new().name("secrets"), || async { 7 })
            .await;
        assert_eq!(v, 7);
        let _ = cache.get::<u64>("k").await;
        let e = cache.connect().await.expect_err("nothing to connect to");
        assert_no_secret("Display of connect()'s error", &e.to_string(), url, secrets);
        assert_no_secret(
            "Debug of connect()'s error",
            &format!("{e:?}"),
            url,
            secrets,
        );
        connect_error = Some(e);
    });
    assert!(
        logs.contains("cache miss"),
        "the subscriber saw the call: {logs}"
    );
    assert_no_secret("tracing output", &logs, url, secrets);
    connect_error
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Nothing listens on TCP port 1 nor at the socket path: every connection fails.
    #[test]
    fn secrets_of_unreachable_urls_are_never_printed(
        (url, secrets) in prop_oneof![
            url_on("127.0.0.1:1".to_owned(), "/nonexistent/cachette.sock".to_owned(), true),
            url_on("127.0.0.1:1".to_owned(), "/nonexistent/cachette.sock".to_owned(), false),
        ]
    ) {
        check(&url, &secrets, Duration::from_millis(500));
    }
}

/// A server that requires a password (on TCP and on a Unix socket): the generated wrong
/// credentials make `connect()` fail with [`Error::Auth`], which prints none of them.
#[test]
fn secrets_refused_by_redis_are_never_printed() {
    let dir = std::env::temp_dir().join(format!("cachette-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("redis.sock").to_string_lossy().into_owned();
    let server = RedisServer::start_with(&[
        "--requirepass",
        "right",
        "--unixsocket",
        &socket,
        "--unixsocketperm",
        "700",
    ]);
    let tcp = format!("127.0.0.1:{}", server.port());
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(48));
    let result = runner.run(&url_on(tcp, socket, true), |(url, secrets)| {
        if let Some(e) = check(&url, &secrets, Duration::from_secs(2)) {
            // A redis:// URL sends its credentials and is refused. (A rediss:// one fails
            // otherwise, with no TLS server; the Unix forms send no password with only
            // `user`/`password`/`username`, which redis-rs does not read there.)
            if url.starts_with("redis://") {
                prop_assert!(matches!(e, Error::Auth { .. }), "{url}: {e:?}");
            }
        }
        Ok(())
    });
    let _ = std::fs::remove_dir_all(&dir);
    result.unwrap();
}

/// The two cases of issue 13, spelled out.
#[test]
fn slash_in_password_and_pass_parameter() {
    for url in [
        "redis://app:Zqs3cr/tQz@127.0.0.1:1/0",
        "redis+unix:///nonexistent/cachette.sock?pass=ZqXQz",
        "unix:///nonexistent/cachette.sock?db=1&pass=ZqXQz",
    ] {
        check(url, &[], Duration::from_millis(500));
    }
}
