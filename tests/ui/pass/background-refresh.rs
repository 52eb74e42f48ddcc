//! `background_refresh` on every return shape, with owned arguments and receivers that own
//! their value (`self: Arc<Self>`, `self`), hashed and templated keys; `= false` is accepted.
use cachette::{Cache, cached};
use std::sync::Arc;

#[derive(Debug)]
pub struct DbError;

#[cached(key = "plain:{id}", background_refresh)]
async fn plain(id: u64) -> u64 {
    id
}

#[cached(background_refresh, stale = "30s")]
async fn hashed(name: String, ids: Vec<u64>) -> Result<usize, DbError> {
    Ok(name.len() + ids.len())
}

#[cached(key = "option:{id}", background_refresh, cache_none(ttl = "30s"))]
async fn option(id: u64) -> Option<u64> {
    Some(id)
}

#[cached(key = "found:{id}", background_refresh = true, stale = "1m", early_refresh = false)]
async fn result_option(id: u64) -> Result<Option<u64>, DbError> {
    Ok(Some(id))
}

#[cached(skip(log), background_refresh)]
async fn static_closure(id: u64, log: fn(&str), name: &'static str) -> u64 {
    log(name);
    id
}

#[cached(key = "off:{name}", background_refresh = false)]
async fn off(name: &str) -> String {
    name.to_owned()
}

pub struct Repo {
    cache: Cache,
    tenant: String,
}

impl Repo {
    #[cached(key = "{self.tenant}:user:{id}", background_refresh, cache = self.cache)]
    pub async fn by_arc(self: Arc<Self>, id: u64) -> Result<String, DbError> {
        Ok(format!("{}{id}", self.tenant))
    }

    #[cached(key = "owned:{id}", background_refresh, cache = self.cache)]
    pub async fn by_value(self, id: u64) -> String {
        format!("{}{id}", self.tenant)
    }
}

fn assert_send<T: Send>(_: T) {}

fn main() {
    assert_send(plain(1));
    assert_send(hashed(String::new(), vec![]));
    assert_send(option(1));
    assert_send(result_option(1));
    assert_send(static_closure(1, |_| {}, "x"));
    assert_send(off("x"));
    let repo = Arc::new(Repo { cache: Cache::disabled(), tenant: String::new() });
    assert_send(repo.by_arc(1));
    let _ = Repo { cache: Cache::disabled(), tenant: String::new() }.by_value(1);
}
