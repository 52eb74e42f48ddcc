//! A small HTTP service with cachette in front of its database: an axum app over an embedded
//! SQLite database (no server to install), with a `users` resource, HTTP caching headers,
//! Prometheus metrics and a cache administration API.
//!
//! ```text
//! cargo run --example service                                   # embedded store, 127.0.0.1:3000
//! PORT=8080 cargo run --example service                         # another port
//! CACHETTE_REDIS_URL=redis://127.0.0.1:6379/ cargo run --example service   # on Redis
//! ADMIN_TOKEN=s3cret cargo run --example service               # protect /admin/cache/*
//! ```
//!
//! Then, in another shell:
//!
//! ```text
//! curl -i localhost:3000/users/1                     # X-Cache: MISS, ETag: "…"
//! curl -i localhost:3000/users/1                     # X-Cache: HIT, the same ETag
//! curl -i localhost:3000/users/1 -H 'If-None-Match: "<etag>"'   # 304 Not Modified
//! curl -i -X PUT localhost:3000/users/1 -H 'Content-Type: application/json' \
//!      -d '{"name":"Ada King","email":"ada@example.com"}'      # invalidates tag user:1
//! curl -i localhost:3000/users/1                     # X-Cache: MISS, the new data, a new ETag
//! curl -i localhost:3000/users/42                    # 404 (and cached: negative caching)
//! curl -s localhost:3000/metrics | grep cachette_    # Prometheus counters, per call name
//!
//! curl -s localhost:3000/admin/cache/stats           # counters, hit rate, the backend's view
//! curl -s 'localhost:3000/admin/cache/keys?pattern=user:*&limit=100'
//! curl -s localhost:3000/admin/cache/entry/user:1    # value, tags, validity, remaining TTL
//! curl -s -X POST localhost:3000/admin/cache/invalidate -H 'Content-Type: application/json' \
//!      -d '{"tags":["users"]}'
//! curl -s -X POST localhost:3000/admin/cache/clear   # every entry of the namespace
//! ```
//!
//! With `ADMIN_TOKEN` set, the admin routes want `-H 'Authorization: Bearer s3cret'`.
//!
//! # What it shows
//!
//! * `UserRepo::get` is a `#[cached]` method: key `user:{id}`, 10 minutes, tags `users` and
//!   `user:{id}`. It returns `Result<Option<User>, DbError>`: a database error is never
//!   stored, a missing user (`Ok(None)`) is, with `cache_none` (negative caching), and a
//!   `PUT` that creates the user invalidates that entry like any other update.
//! * `UserRepo::put` is an `#[invalidates(tags = ["user:{id}"])]` method: once it returns,
//!   no process sharing the cache serves the old value (tags are race-free).
//! * The handler wraps the cached call in [`capture_outcome`] for `X-Cache`, derives a strong
//!   `ETag` from the value with [`etag`] (the same in every process, cached or computed) and
//!   answers `If-None-Match` with `304 Not Modified`.
//! * `/metrics` renders the `metrics` facade through `metrics-exporter-prometheus`: the
//!   recorder is installed before the first cached call, as cachette registers its handles
//!   once per call name.
//! * `/admin/cache/*` maps to [`Cache::stats`], [`Cache::stats_by_name`],
//!   [`Cache::backend_stats`], [`Cache::keys`], [`Cache::inspect`],
//!   [`Cache::invalidate_tags`] and [`Cache::clear`].
//!
//! The database lives in memory and is seeded with three users at start-up; the `users` tag
//! is invalidated right after seeding, so entries a previous run left in Redis are never
//! served against the fresh data.

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cachette::observe::{CallOutcome, capture_outcome, etag};
use cachette::{Cache, cached, invalidates};
use metrics_exporter_prometheus::{BuildError, PrometheusBuilder, PrometheusHandle};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `Cache-Control` of a user (and of a 404 for one).
///
/// `private`: a user's data must not be kept by shared caches (proxies, CDNs). `no-cache`:
/// the client may keep the response but must revalidate it before each reuse. The server-side
/// cache is invalidated the moment a `PUT` commits; a client `max-age` would let a browser
/// show the pre-`PUT` data for that long. With `no-cache`, a reuse costs a conditional request
/// that this service answers with a `304` from its cache (no database query, no body). A
/// resource that may be a little stale would say `private, max-age=30` instead.
pub const CACHE_CONTROL: &str = "private, no-cache";

/// The most keys `/admin/cache/keys` returns, whatever `limit` asks.
pub const MAX_KEYS: usize = 1000;

/// A user, as stored in the database, the cache and the responses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Primary key.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// E-mail address.
    pub email: String,
}

/// The body of `PUT /users/{id}`.
#[derive(Clone, Debug, Deserialize)]
pub struct UserUpdate {
    /// Display name (not blank).
    pub name: String,
    /// E-mail address (must contain `@`).
    pub email: String,
}

/// A failed database operation (never cached: only `Ok` values are stored).
#[derive(Clone, Debug)]
pub struct DbError(String);

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "database error: {}", self.0)
    }
}

impl std::error::Error for DbError {}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError(e.to_string())
    }
}

// ----- the database ---------------------------------------------------------------------------

/// An embedded SQLite database. rusqlite is synchronous: every query runs on Tokio's blocking
/// pool, one at a time on the shared connection.
#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
    queries: Arc<AtomicU64>,
}

impl Db {
    /// A fresh in-memory database with the `users` table.
    pub fn open_in_memory() -> Result<Db, DbError> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(
            "CREATE TABLE users (
                 id    INTEGER PRIMARY KEY,
                 name  TEXT NOT NULL,
                 email TEXT NOT NULL
             );",
        )?;
        Ok(Db {
            conn: Arc::new(Mutex::new(conn)),
            queries: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Queries run so far (reads and writes): what a cache hit saves.
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    /// Runs `f` on the connection on the blocking pool.
    async fn run<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        self.queries.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            // A panic while the lock was held leaves SQLite consistent (statements are
            // atomic), so a poisoned lock is still usable.
            let mut conn = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut conn).map_err(DbError::from)
        })
        .await
        .map_err(|e| DbError(format!("query task failed: {e}")))?
    }

    /// Inserts (or resets) the demo users.
    pub async fn seed(&self) -> Result<(), DbError> {
        self.run(|conn| {
            let tx = conn.transaction()?;
            for (id, name, email) in [
                (1, "Ada Lovelace", "ada@example.com"),
                (2, "Grace Hopper", "grace@example.com"),
                (3, "Alan Turing", "alan@example.com"),
            ] {
                tx.execute(
                    "INSERT OR REPLACE INTO users (id, name, email) VALUES (?1, ?2, ?3)",
                    params![id, name, email],
                )?;
            }
            tx.commit()
        })
        .await
    }

    /// The user `id`, if any.
    pub async fn find_user(&self, id: i64) -> Result<Option<User>, DbError> {
        self.run(move |conn| {
            conn.query_row(
                "SELECT id, name, email FROM users WHERE id = ?1",
                params![id],
                |row| {
                    Ok(User {
                        id: row.get(0)?,
                        name: row.get(1)?,
                        email: row.get(2)?,
                    })
                },
            )
            .optional()
        })
        .await
    }

    /// Creates or replaces user `id`; the stored user and whether it was created.
    pub async fn upsert_user(&self, id: i64, update: UserUpdate) -> Result<(User, bool), DbError> {
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let existed = tx
                .query_row("SELECT 1 FROM users WHERE id = ?1", params![id], |_| Ok(()))
                .optional()?
                .is_some();
            tx.execute(
                "INSERT INTO users (id, name, email) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, email = excluded.email",
                params![id, update.name, update.email],
            )?;
            tx.commit()?;
            Ok((
                User {
                    id,
                    name: update.name,
                    email: update.email,
                },
                !existed,
            ))
        })
        .await
    }
}

// ----- the cached repository ------------------------------------------------------------------

/// The data access layer: the only place that knows about caching.
#[derive(Clone)]
pub struct UserRepo {
    /// The database.
    pub db: Db,
    /// The cache in front of it.
    pub cache: Cache,
}

impl UserRepo {
    /// One user. `Ok(None)` (no such user) is cached too (`cache_none`), under the same tags,
    /// so that a `PUT` creating the user invalidates it.
    #[cached(
        key = "user:{id}",
        ttl = "10m",
        tags = ["users", "user:{id}"],
        cache_none,
        name = "users.get",
        cache = self.cache,
    )]
    pub async fn get(&self, id: i64) -> Result<Option<User>, DbError> {
        self.db.find_user(id).await
    }

    /// Creates or replaces user `id`, then invalidates every entry tagged `user:{id}` (only
    /// after `Ok`: a failed write invalidates nothing).
    #[invalidates(tags = ["user:{id}"], name = "users.put", cache = self.cache)]
    pub async fn put(&self, id: i64, update: UserUpdate) -> Result<(User, bool), DbError> {
        self.db.upsert_user(id, update).await
    }
}

// ----- the application ------------------------------------------------------------------------

/// Everything the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The users, through the cache.
    pub users: UserRepo,
    /// The Prometheus recorder's handle, for `/metrics`.
    pub metrics: PrometheusHandle,
    /// The bearer token the admin routes require, when set.
    pub admin_token: Option<Arc<str>>,
}

impl AppState {
    /// Opens and seeds the database, then invalidates the `users` tag: the database was just
    /// (re)created, so whatever a previous run cached about users (in Redis) is stale.
    pub async fn start(
        cache: Cache,
        metrics: PrometheusHandle,
        admin_token: Option<String>,
    ) -> Result<AppState, DbError> {
        let db = Db::open_in_memory()?;
        db.seed().await?;
        if let Err(e) = cache.invalidate_tags(["users"]).await {
            // Kept and retried by cachette; until it lands this process does not serve
            // entries tagged `users` from the cache.
            tracing::warn!(error = %e, "could not invalidate the users tag at start-up");
        }
        Ok(AppState {
            users: UserRepo { db, cache },
            metrics,
            admin_token: admin_token.filter(|t| !t.is_empty()).map(Arc::from),
        })
    }

    /// The cache the service uses.
    pub fn cache(&self) -> &Cache {
        &self.users.cache
    }
}

/// Installs the Prometheus recorder as the process-wide `metrics` recorder. Call it once,
/// before the first cached call. Its handle renders `/metrics`; run
/// [`PrometheusHandle::run_upkeep`] now and then (as `main` does).
pub fn install_metrics() -> Result<PrometheusHandle, BuildError> {
    PrometheusBuilder::new().install_recorder()
}

/// The routes.
pub fn app(state: AppState) -> Router {
    // A real service puts the admin routes behind its own authentication (or serves them on
    // an internal listener only). Here: a static bearer token from `ADMIN_TOKEN`, required
    // only when it is set.
    let admin = Router::new()
        .route("/stats", get(admin_stats))
        .route("/keys", get(admin_keys))
        .route("/entry/{*key}", get(admin_entry))
        .route("/invalidate", post(admin_invalidate))
        .route("/clear", post(admin_clear))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_admin));
    Router::new()
        .route("/", get(index))
        .route("/users/{id}", get(get_user).put(put_user))
        .route("/metrics", get(metrics))
        .nest("/admin/cache", admin)
        .with_state(state)
}

/// An error answer: a status and a JSON `{"error": ...}` body.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// A 500 whose detail goes to the log, not to the client.
    fn internal(what: &str, e: impl fmt::Display) -> ApiError {
        tracing::error!(error = %e, "{what}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, what)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

async fn index() -> &'static str {
    "cachette example service\n\
     \n\
     GET  /users/{id}                      cached (X-Cache, ETag, If-None-Match -> 304)\n\
     PUT  /users/{id}                      {\"name\":..,\"email\":..}, invalidates tag user:{id}\n\
     GET  /metrics                         Prometheus\n\
     GET  /admin/cache/stats               counters, hit rate, the backend's view\n\
     GET  /admin/cache/keys?pattern=&limit= keys by glob (bounded)\n\
     GET  /admin/cache/entry/{key}         one entry: value, tags, validity, TTL\n\
     POST /admin/cache/invalidate          {\"tags\":[..]}\n\
     POST /admin/cache/clear               every entry of the namespace\n"
}

/// Whether `If-None-Match` matches `tag` (weak comparison, as RFC 9110 asks for this header).
pub fn if_none_match(headers: &HeaderMap, tag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|candidate| {
            candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == tag
        })
}

/// `X-Cache` and `Cache-Control` on a user response.
fn cache_headers(headers: &mut HeaderMap, outcome: Option<CallOutcome>) {
    if let Some(outcome) = outcome {
        headers.insert("x-cache", HeaderValue::from_static(outcome.as_header()));
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
}

async fn get_user(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    request_headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (found, outcome) = capture_outcome(state.users.get(id)).await;
    let found = found.map_err(|e| ApiError::internal("could not load the user", e))?;
    let Some(user) = found else {
        let mut response =
            ApiError::new(StatusCode::NOT_FOUND, format!("no user {id}")).into_response();
        cache_headers(response.headers_mut(), outcome);
        return Ok(response);
    };
    let tag = etag(&user).map_err(|e| ApiError::internal("could not hash the user", e))?;
    let tag_value =
        HeaderValue::from_str(&tag).map_err(|e| ApiError::internal("bad entity tag", e))?;

    let mut response = if if_none_match(&request_headers, &tag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Json(&user).into_response()
    };
    let headers = response.headers_mut();
    cache_headers(headers, outcome);
    headers.insert(header::ETAG, tag_value);
    Ok(response)
}

async fn put_user(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(update): Json<UserUpdate>,
) -> Result<Response, ApiError> {
    if update.name.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "name must not be blank",
        ));
    }
    if !update.email.contains('@') {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "email must contain @",
        ));
    }
    let (user, created) = state
        .users
        .put(id, update)
        .await
        .map_err(|e| ApiError::internal("could not save the user", e))?;
    let tag = etag(&user).map_err(|e| ApiError::internal("could not hash the user", e))?;
    let tag_value =
        HeaderValue::from_str(&tag).map_err(|e| ApiError::internal("bad entity tag", e))?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = (status, Json(&user)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::ETAG, tag_value);
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    Ok(response)
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        state.metrics.render(),
    )
}

// ----- admin ----------------------------------------------------------------------------------

async fn require_admin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, Response> {
    let Some(expected) = &state.admin_token else {
        return Ok(next.run(request).await);
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        Ok(next.run(request).await)
    } else {
        let mut response =
            ApiError::new(StatusCode::UNAUTHORIZED, "admin token required").into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        Err(response)
    }
}

/// Compares without stopping at the first difference (the length is not secret).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The counters of one call name (or of the whole cache), as JSON.
#[derive(Debug, Serialize)]
pub struct Counters {
    hits: u64,
    misses: u64,
    hit_rate: f64,
    stores: u64,
    stale_served: u64,
    stale_if_error: u64,
    coalesced: u64,
    early_refreshes: u64,
    decode_failures: u64,
    oversize: u64,
    backend_errors: u64,
    invalidations: u64,
    invalidation_failures: u64,
    lock_waits: u64,
    lock_timeouts: u64,
}

impl From<cachette::StatsSnapshot> for Counters {
    fn from(s: cachette::StatsSnapshot) -> Counters {
        Counters {
            hits: s.hits,
            misses: s.misses,
            hit_rate: s.hit_rate(),
            stores: s.stores,
            stale_served: s.stale_served,
            stale_if_error: s.stale_if_error,
            coalesced: s.coalesced,
            early_refreshes: s.early_refreshes,
            decode_failures: s.decode_failures,
            oversize: s.oversize,
            backend_errors: s.backend_errors,
            invalidations: s.invalidations,
            invalidation_failures: s.invalidation_failures,
            lock_waits: s.lock_waits,
            lock_timeouts: s.lock_timeouts,
        }
    }
}

/// The backend's own statistics, as JSON (`null` where the backend cannot tell).
#[derive(Debug, Serialize)]
pub struct BackendView {
    used_memory_bytes: Option<u64>,
    evicted_keys: Option<u64>,
    keyspace_hits: Option<u64>,
    keyspace_misses: Option<u64>,
    connected_clients: Option<u64>,
    keys: Option<u64>,
    maxmemory_bytes: Option<u64>,
    eviction_policy: Option<String>,
}

async fn admin_stats(State(state): State<AppState>) -> Json<serde_json::Value> {
    let cache = state.cache();
    let snapshot = cache.stats();
    let by_name: BTreeMap<String, Counters> = cache
        .stats_by_name()
        .into_iter()
        .map(|(name, s)| (name, Counters::from(s)))
        .collect();
    // The backend being down must not hide the counters: its view is then `null`.
    let (backend_stats, backend_error) = match cache.backend_stats().await {
        Ok(b) => (
            Some(BackendView {
                used_memory_bytes: b.used_memory_bytes,
                evicted_keys: b.evicted_keys,
                keyspace_hits: b.keyspace_hits,
                keyspace_misses: b.keyspace_misses,
                connected_clients: b.connected_clients,
                keys: b.keys,
                maxmemory_bytes: b.maxmemory_bytes,
                eviction_policy: b.eviction_policy,
            }),
            None,
        ),
        Err(e) => (None, Some(e.to_string())),
    };
    Json(json!({
        "backend": cache.backend_kind(),
        "totals": Counters::from(snapshot),
        "round_trips": snapshot.round_trips,
        "by_name": by_name,
        "backend_stats": backend_stats,
        "backend_error": backend_error,
        "pending_invalidations": cache.pending_invalidations(),
        "breaker_open": cache.breaker_open(),
    }))
}

/// `GET /admin/cache/keys` query.
#[derive(Debug, Deserialize)]
pub struct KeysQuery {
    /// A glob over key bodies (`user:*`); default `*`.
    pattern: Option<String>,
    /// At most this many keys (default 100, capped at [`MAX_KEYS`]).
    limit: Option<usize>,
}

async fn admin_keys(
    State(state): State<AppState>,
    Query(q): Query<KeysQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let pattern = q.pattern.unwrap_or_else(|| "*".to_owned());
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_KEYS);
    let mut keys = state
        .cache()
        .keys(&pattern, limit)
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    keys.sort();
    Ok(Json(json!({
        "pattern": pattern,
        "limit": limit,
        "truncated": keys.len() >= limit,
        "keys": keys,
    })))
}

/// `GET /admin/cache/entry/{key}`: the key body as cachette stores it (`user:1`); a `%` in an
/// escaped key is sent as `%25`.
async fn admin_entry(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let entry = state
        .cache()
        .inspect(&key)
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no entry {key}")))?;
    let tags: Vec<_> = entry
        .tags
        .iter()
        .map(|(tag, version)| json!({ "tag": tag, "version": version }))
        .collect();
    Ok(Json(json!({
        "key": entry.key,
        "value": entry.value,
        "tags": tags,
        "valid": entry.valid,
        "ttl_ms": u64::try_from(entry.ttl.as_millis()).unwrap_or(u64::MAX),
        "fresh_until_ms": entry.fresh_until_ms,
    })))
}

/// `POST /admin/cache/invalidate` body.
#[derive(Debug, Deserialize)]
pub struct InvalidateBody {
    /// Tags to invalidate, as stored, i.e. already escaped (`users`, `user:1`; the tag of user
    /// `a:b` is `user:a%3Ab`, as `GET /admin/cache/entry/{key}` shows it).
    tags: Vec<String>,
}

async fn admin_invalidate(
    State(state): State<AppState>,
    Json(body): Json<InvalidateBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if body.tags.is_empty() || body.tags.iter().any(String::is_empty) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "tags must be a non-empty list of non-empty tags",
        ));
    }
    match state.cache().invalidate_tags(&body.tags).await {
        Ok(()) => Ok(Json(json!({ "invalidated": body.tags }))),
        // cachette keeps a failed invalidation and retries it in the background; until then
        // this process serves nothing it covers from the cache.
        Err(e) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{e} (queued: retried in the background)"),
        )),
    }
}

async fn admin_clear(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let removed = state
        .cache()
        .clear()
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    Ok(Json(json!({ "removed": removed })))
}

// ----- main -----------------------------------------------------------------------------------

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    // Before the first cached call: cachette registers its metric handles once per call name.
    let metrics = install_metrics()?;
    let upkeep = metrics.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });

    // Redis with CACHETTE_REDIS_URL (or REDIS_URL), the embedded store otherwise;
    // CACHETTE_NAMESPACE overrides the namespace set here.
    let cache = Cache::builder().namespace("service").from_env().build()?;
    let admin_token = std::env::var("ADMIN_TOKEN").ok();
    let protected = admin_token.as_deref().is_some_and(|t| !t.is_empty());
    let state = AppState::start(cache.clone(), metrics, admin_token).await?;

    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p.trim().parse()?,
        Err(_) => 3000,
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    println!(
        "cachette example service on {base} (cache: {}, admin routes {})",
        cache.backend_kind(),
        if protected {
            "need `Authorization: Bearer $ADMIN_TOKEN`"
        } else {
            "open: set ADMIN_TOKEN to protect them"
        },
    );
    println!();
    println!("  curl -i {base}/users/1");
    println!("  curl -i {base}/users/1 -H 'If-None-Match: \"<etag from above>\"'");
    println!(
        "  curl -i -X PUT {base}/users/1 -H 'Content-Type: application/json' -d '{{\"name\":\"Ada King\",\"email\":\"ada@example.com\"}}'"
    );
    println!("  curl -s {base}/metrics | grep cachette_");
    println!("  curl -s {base}/admin/cache/stats");
    println!("  curl -s '{base}/admin/cache/keys?pattern=user:*&limit=100'");
    println!("  curl -s {base}/admin/cache/entry/user:1");
    println!(
        "  curl -s -X POST {base}/admin/cache/invalidate -H 'Content-Type: application/json' -d '{{\"tags\":[\"users\"]}}'"
    );
    println!("  curl -s -X POST {base}/admin/cache/clear");

    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    println!("bye");
    Ok(())
}
