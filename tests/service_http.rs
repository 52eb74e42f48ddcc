//! `examples/service.rs` end to end: the real app on a loopback port, driven over HTTP/1.1 by a
//! minimal client, on the embedded store and on a real `redis-server`.
//!
//! The Prometheus recorder is process-wide: it is installed once, before any cached call, and
//! the tests sharing it read its counters as lower bounds (the other tests add to them). The
//! per-cache numbers (`/admin/cache/stats`) are exact: each test has its own cache.

#[path = "../examples/service.rs"]
#[allow(dead_code)]
mod service;

#[path = "support/redis_server.rs"]
mod redis_server;

use cachette::Cache;
use metrics_exporter_prometheus::PrometheusHandle;
use redis_server::RedisServer;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A guard against a hung server, not a timing assertion.
const REQUEST_DEADLINE: Duration = Duration::from_secs(20);

fn metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| service::install_metrics().expect("the only recorder of this process"))
        .clone()
}

/// The app, served on `127.0.0.1:0` by a task of the test's runtime.
struct Running {
    addr: SocketAddr,
    state: service::AppState,
    _redis: Option<RedisServer>,
}

impl Running {
    async fn memory() -> Running {
        Self::start(Cache::memory(16 << 20), None, None).await
    }

    async fn redis() -> Running {
        let server = RedisServer::start();
        let cache = Cache::builder()
            .redis(server.url())
            .namespace("service")
            .build()
            .expect("valid configuration");
        Self::start(cache, Some(server), None).await
    }

    async fn start(cache: Cache, redis: Option<RedisServer>, token: Option<&str>) -> Running {
        let metrics = metrics(); // before the first cached call
        let state = service::AppState::start(cache, metrics, token.map(str::to_owned))
            .await
            .expect("database opens and seeds");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let app = service::app(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Running {
            addr,
            state,
            _redis: redis,
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, &[], None).await
    }

    async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send("GET", path, headers, None).await
    }

    async fn put_json(&self, path: &str, body: Value) -> Reply {
        self.send("PUT", path, &[], Some(body.to_string())).await
    }

    async fn post_json(&self, path: &str, body: Value) -> Reply {
        self.send("POST", path, &[], Some(body.to_string())).await
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Reply {
        tokio::time::timeout(
            REQUEST_DEADLINE,
            request(self.addr, method, path, headers, body),
        )
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no answer"))
    }

    fn db_queries(&self) -> u64 {
        self.state.users.db.queries()
    }

    fn cache(&self) -> &Cache {
        self.state.cache()
    }
}

// ----- a minimal HTTP/1.1 client ----------------------------------------------------------------

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn x_cache(&self) -> &str {
        self.header("x-cache").unwrap_or("<none>")
    }

    fn etag(&self) -> String {
        self.header("etag").expect("an ETag").to_owned()
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8 body")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }
}

/// One request on its own connection (`Connection: close`), the answer read to the end.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> Reply {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let body = body.unwrap_or_default();
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).await.expect("write");
    stream.write_all(body.as_bytes()).await.expect("write");

    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of the head");
    let head = std::str::from_utf8(&raw[..split]).expect("ASCII head");
    let rest = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        match headers.iter().find(|(n, _)| n == "content-length") {
            Some((_, len)) => rest[..len.parse::<usize>().expect("length")].to_vec(),
            None => rest.to_vec(),
        }
    };
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size_line = std::str::from_utf8(&rest[..eol]).expect("ASCII chunk size");
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
            .expect("hex chunk size");
        rest = &rest[eol + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// The value of the counter `name{cache="<cache>"}` in a Prometheus text rendering.
fn counter(rendered: &str, name: &str, cache: &str) -> u64 {
    let label = format!("cache=\"{cache}\"");
    rendered
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(&format!("{name}{{")) && l.contains(&label))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as u64)
        .unwrap_or_else(|| panic!("no {name}{{{label}}} in\n{rendered}"))
}

// ----- scenarios (each runs on both backends) -------------------------------------------------

/// The must-show list: MISS then HIT with the same ETag, 304 on `If-None-Match`, PUT then
/// MISS with the new data, `/metrics` with the hit and miss counters.
async fn read_through_etag_put(app: Running) {
    let first = app.get("/users/1").await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.x_cache(), "MISS");
    assert_eq!(first.header("cache-control"), Some(service::CACHE_CONTROL));
    assert_eq!(
        first.json(),
        json!({"id": 1, "name": "Ada Lovelace", "email": "ada@example.com"})
    );
    let tag = first.etag();
    assert!(
        tag.starts_with('"') && tag.ends_with('"'),
        "strong tag: {tag}"
    );
    let queries = app.db_queries();

    let second = app.get("/users/1").await;
    assert_eq!(second.status, 200);
    assert_eq!(second.x_cache(), "HIT");
    assert_eq!(second.etag(), tag, "same value, same ETag");
    assert_eq!(second.body, first.body);
    assert_eq!(
        app.db_queries(),
        queries,
        "a hit does not query the database"
    );

    // Conditional requests: exact, weak, in a list, `*` -> 304 without a body.
    let weak = format!("W/{tag}");
    let listed = format!("\"something-else\", {tag}");
    for candidate in [tag.as_str(), weak.as_str(), listed.as_str(), "*"] {
        let not_modified = app
            .get_with("/users/1", &[("If-None-Match", candidate)])
            .await;
        assert_eq!(not_modified.status, 304, "If-None-Match: {candidate}");
        assert!(not_modified.body.is_empty());
        assert_eq!(not_modified.etag(), tag);
        assert_eq!(not_modified.x_cache(), "HIT");
        assert_eq!(
            not_modified.header("cache-control"),
            Some(service::CACHE_CONTROL)
        );
    }
    let other = app
        .get_with("/users/1", &[("If-None-Match", "\"something-else\"")])
        .await;
    assert_eq!(other.status, 200, "a tag that does not match");
    assert_eq!(app.db_queries(), queries, "all of those were hits");

    // The update invalidates the tag `user:1`; the next read computes and sees the new row.
    let put = app
        .put_json(
            "/users/1",
            json!({"name": "Ada King", "email": "ada@lovelace.example"}),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text());
    let new_tag = put.etag();
    assert_ne!(new_tag, tag);

    let after = app.get("/users/1").await;
    assert_eq!(after.status, 200);
    assert_eq!(after.x_cache(), "MISS", "invalidated by the PUT");
    assert_eq!(
        after.json(),
        json!({"id": 1, "name": "Ada King", "email": "ada@lovelace.example"})
    );
    assert_eq!(
        after.etag(),
        new_tag,
        "the PUT announced the ETag of the new value"
    );
    let stale_validator = app
        .get_with("/users/1", &[("If-None-Match", tag.as_str())])
        .await;
    assert_eq!(
        stale_validator.status, 200,
        "the old ETag no longer matches"
    );
    assert_eq!(stale_validator.x_cache(), "HIT");
    let fresh_validator = app
        .get_with("/users/1", &[("If-None-Match", new_tag.as_str())])
        .await;
    assert_eq!(fresh_validator.status, 304);

    // Other users were not touched by that invalidation.
    assert_eq!(app.get("/users/2").await.x_cache(), "MISS");
    assert_eq!(app.get("/users/2").await.x_cache(), "HIT");

    // This cache: 9 hits (1 + 4 conditional + 1 + 1 + 1 + users/2), 3 misses.
    let stats = app.cache().stats();
    assert_eq!((stats.hits, stats.misses), (9, 3), "{stats:?}");

    // The process-wide Prometheus counters include this test's calls (and maybe others').
    let scraped = app.get("/metrics").await;
    assert_eq!(scraped.status, 200);
    assert!(
        scraped
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/plain")),
        "{:?}",
        scraped.header("content-type")
    );
    let rendered = scraped.text();
    assert!(counter(&rendered, "cachette_hits_total", "users.get") >= 9);
    assert!(counter(&rendered, "cachette_misses_total", "users.get") >= 3);
    assert!(counter(&rendered, "cachette_stores_total", "users.get") >= 3);
}

/// The admin routes: stats numbers, keys, one entry, invalidating tags, clearing.
async fn admin_routes(app: Running, backend: &str) {
    assert_eq!(app.get("/users/1").await.x_cache(), "MISS");
    assert_eq!(app.get("/users/1").await.x_cache(), "HIT");
    assert_eq!(app.get("/users/2").await.x_cache(), "MISS");
    let missing = app.get("/users/99").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.x_cache(), "MISS");

    // Counters: totals, per name, hit rate, and the backend's own view.
    let stats = app.get("/admin/cache/stats").await;
    assert_eq!(stats.status, 200, "{}", stats.text());
    let stats = stats.json();
    assert_eq!(stats["backend"], backend);
    assert_eq!(stats["totals"]["hits"], 1);
    assert_eq!(stats["totals"]["misses"], 3);
    assert_eq!(
        stats["totals"]["stores"], 3,
        "users 1, 2 and the missing 99"
    );
    assert_eq!(stats["totals"]["hit_rate"], 0.25);
    let by_name = &stats["by_name"]["users.get"];
    assert_eq!(by_name["hits"], 1, "{stats}");
    assert_eq!(by_name["misses"], 3);
    assert_eq!(by_name["hit_rate"], 0.25);
    assert_eq!(stats["pending_invalidations"], 0);
    assert_eq!(stats["breaker_open"], false);
    assert!(stats["backend_error"].is_null(), "{stats}");
    let backend_keys = stats["backend_stats"]["keys"].as_u64().expect("key count");
    assert!(backend_keys >= 3, "{stats}");
    assert!(stats["backend_stats"]["used_memory_bytes"].as_u64() > Some(0));
    if backend == "redis" {
        assert!(stats["backend_stats"]["connected_clients"].as_u64() >= Some(1));
        assert!(stats["backend_stats"]["keyspace_hits"].is_u64());
        assert!(
            stats["backend_stats"]["maxmemory_bytes"].is_u64(),
            "{stats}"
        );
        assert!(
            stats["backend_stats"]["eviction_policy"].is_string(),
            "{stats}"
        );
    } else {
        assert_eq!(
            stats["backend_stats"]["maxmemory_bytes"],
            16 << 20,
            "{stats}"
        );
    }

    // Keys by pattern, bounded.
    let keys = app.get("/admin/cache/keys?pattern=user:*&limit=100").await;
    assert_eq!(keys.status, 200, "{}", keys.text());
    let keys = keys.json();
    assert_eq!(keys["keys"], json!(["user:1", "user:2", "user:99"]));
    assert_eq!(keys["truncated"], false);
    let one = app
        .get("/admin/cache/keys?pattern=user:*&limit=1")
        .await
        .json();
    assert_eq!(one["keys"].as_array().map(Vec::len), Some(1));
    assert_eq!(one["truncated"], true);
    let capped = app.get("/admin/cache/keys?limit=1000000").await.json();
    assert_eq!(capped["limit"], service::MAX_KEYS);
    let none = app.get("/admin/cache/keys?pattern=guild:*").await.json();
    assert_eq!(none["keys"], json!([]));

    // One entry: value, tags, validity, remaining TTL (10 minutes at most, jitter shortens).
    let entry = app.get("/admin/cache/entry/user:1").await;
    assert_eq!(entry.status, 200, "{}", entry.text());
    let entry = entry.json();
    assert_eq!(entry["key"], "user:1");
    assert_eq!(
        entry["value"],
        json!({"id": 1, "name": "Ada Lovelace", "email": "ada@example.com"})
    );
    assert_eq!(entry["valid"], true);
    let tags: Vec<&str> = entry["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(|t| t["tag"].as_str())
        .collect();
    assert!(
        tags.contains(&"users") && tags.contains(&"user:1"),
        "{entry}"
    );
    let ttl_ms = entry["ttl_ms"].as_u64().expect("ttl_ms");
    assert!(ttl_ms > 0 && ttl_ms <= 600_000, "{entry}");
    let negative = app.get("/admin/cache/entry/user:99").await.json();
    assert_eq!(negative["value"], Value::Null, "a cached `None`");
    assert_eq!(negative["valid"], true);
    let absent = app.get("/admin/cache/entry/user:12345").await;
    assert_eq!(absent.status, 404);
    assert!(absent.json()["error"].is_string());

    // Invalidate one user's tag: that entry is invalid, the next read misses; others hit.
    let done = app
        .post_json("/admin/cache/invalidate", json!({"tags": ["user:1"]}))
        .await;
    assert_eq!(done.status, 200, "{}", done.text());
    assert_eq!(done.json(), json!({"invalidated": ["user:1"]}));
    let entry = app.get("/admin/cache/entry/user:1").await.json();
    assert_eq!(entry["valid"], false, "{entry}");
    assert_eq!(app.get("/users/1").await.x_cache(), "MISS");
    assert_eq!(app.get("/users/2").await.x_cache(), "HIT");

    // The `users` tag covers every user entry, the negative one included.
    app.post_json("/admin/cache/invalidate", json!({"tags": ["users"]}))
        .await;
    assert_eq!(app.get("/users/2").await.x_cache(), "MISS");
    assert_eq!(app.get("/users/99").await.x_cache(), "MISS");
    let bad = app
        .post_json("/admin/cache/invalidate", json!({"tags": []}))
        .await;
    assert_eq!(bad.status, 422);

    // Clear the namespace: no key left, everything misses again.
    let cleared = app.post_json("/admin/cache/clear", json!({})).await;
    assert_eq!(cleared.status, 200, "{}", cleared.text());
    assert!(
        cleared.json()["removed"].as_u64() >= Some(3),
        "{}",
        cleared.text()
    );
    let keys = app.get("/admin/cache/keys?pattern=*").await.json();
    assert_eq!(keys["keys"], json!([]), "{keys}");
    assert_eq!(app.get("/users/1").await.x_cache(), "MISS");
    assert_eq!(app.get("/users/1").await.x_cache(), "HIT");

    let totals = &app.get("/admin/cache/stats").await.json()["totals"];
    assert_eq!(totals["hits"], 3, "{totals}");
    assert_eq!(totals["misses"], 7, "{totals}");
}

// ----- tests ----------------------------------------------------------------------------------

#[tokio::test]
async fn memory_miss_hit_etag_304_put_metrics() {
    read_through_etag_put(Running::memory().await).await;
}

#[tokio::test]
async fn redis_miss_hit_etag_304_put_metrics() {
    read_through_etag_put(Running::redis().await).await;
}

#[tokio::test]
async fn memory_admin_routes() {
    admin_routes(Running::memory().await, "memory").await;
}

#[tokio::test]
async fn redis_admin_routes() {
    admin_routes(Running::redis().await, "redis").await;
}

#[tokio::test]
async fn missing_user_is_negatively_cached_until_created() {
    let app = Running::memory().await;
    let first = app.get("/users/42").await;
    assert_eq!(first.status, 404);
    assert_eq!(first.x_cache(), "MISS");
    assert!(first.header("etag").is_none());
    assert_eq!(first.json(), json!({"error": "no user 42"}));
    let queries = app.db_queries();
    let second = app.get("/users/42").await;
    assert_eq!(second.status, 404);
    assert_eq!(second.x_cache(), "HIT", "the absence is cached");
    assert_eq!(app.db_queries(), queries);

    // Creating the user invalidates the cached absence (same tag).
    let created = app
        .put_json(
            "/users/42",
            json!({"name": "Barbara Liskov", "email": "barbara@example.com"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let found = app.get("/users/42").await;
    assert_eq!(found.status, 200);
    assert_eq!(found.x_cache(), "MISS");
    assert_eq!(found.json()["name"], "Barbara Liskov");
    assert_eq!(found.etag(), created.etag());
}

#[tokio::test]
async fn bad_requests_are_rejected_without_touching_the_cache() {
    let app = Running::memory().await;
    assert_eq!(app.get("/users/not-a-number").await.status, 400);
    let blank = app
        .put_json("/users/1", json!({"name": " ", "email": "a@b.c"}))
        .await;
    assert_eq!(blank.status, 422);
    assert!(blank.json()["error"].is_string());
    let no_at = app
        .put_json("/users/1", json!({"name": "A", "email": "nope"}))
        .await;
    assert_eq!(no_at.status, 422);
    let malformed = app
        .send("PUT", "/users/1", &[], Some("{not json".to_owned()))
        .await;
    assert_eq!(malformed.status, 400);
    let stats = app.cache().stats();
    assert_eq!((stats.hits, stats.misses), (0, 0), "{stats:?}");
    // The rejected writes changed nothing.
    assert_eq!(app.get("/users/1").await.json()["name"], "Ada Lovelace");
}

#[tokio::test]
async fn admin_routes_require_the_token_when_set() {
    let app = Running::start(Cache::memory(16 << 20), None, Some("s3cret")).await;
    let anonymous = app.get("/admin/cache/stats").await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.header("www-authenticate"), Some("Bearer"));
    let wrong = app
        .get_with("/admin/cache/stats", &[("Authorization", "Bearer nope")])
        .await;
    assert_eq!(wrong.status, 401);
    let cleared = app.send("POST", "/admin/cache/clear", &[], None).await;
    assert_eq!(cleared.status, 401, "writes are protected too");
    let allowed = app
        .get_with("/admin/cache/stats", &[("Authorization", "Bearer s3cret")])
        .await;
    assert_eq!(allowed.status, 200);
    assert_eq!(allowed.json()["backend"], "memory");
    // The public routes stay public.
    assert_eq!(app.get("/users/1").await.status, 200);
    assert_eq!(app.get("/metrics").await.status, 200);
}
