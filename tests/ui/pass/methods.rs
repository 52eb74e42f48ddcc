//! Methods: every receiver, inherent and trait `impl`s, `cache = self.cache`.
use cachette::{Cache, cached};
use std::future::Future;
use std::sync::Arc;

pub struct Repo {
    cache: Cache,
    shared: Arc<Cache>,
    tenant: String,
    hits: u64,
}

impl Repo {
    #[cached(key = "{self.tenant}:user:{id}", cache = self.cache)]
    pub async fn by_ref(&self, id: u64) -> String {
        format!("{}{id}", self.tenant)
    }

    #[cached(key = "count:{id}", cache = self.cache)]
    pub async fn by_mut(&mut self, id: u64) -> u64 {
        self.hits += 1;
        id + self.hits
    }

    #[cached(cache = self.shared)]
    pub async fn by_arc(self: Arc<Self>, id: u64) -> String {
        format!("{}{id}", self.tenant)
    }

    #[cached(key = "owned:{id}", cache = self.cache)]
    pub async fn by_value(self, id: u64) -> String {
        format!("{}{id}", self.tenant)
    }

    #[cached(key = "assoc:{id}")]
    pub async fn associated(id: u64) -> u64 {
        id
    }

    #[cached(cache = self.cache)]
    pub async fn hashed_method(&self, id: u64, name: &str) -> Result<String, String> {
        Ok(format!("{}{id}{name}", self.tenant))
    }
}

/// A trait whose method must return a `Send` future.
trait Users {
    fn name(&self, id: u64) -> impl Future<Output = String> + Send;
    async fn age(&self, id: u64) -> Option<u8>;
}

impl Users for Repo {
    #[cached(key = "name:{id}", cache = self.cache)]
    async fn name(&self, id: u64) -> String {
        format!("{}{id}", self.tenant)
    }

    #[cached(key = "age:{id}", cache_none, cache = self.cache)]
    async fn age(&self, id: u64) -> Option<u8> {
        u8::try_from(id).ok()
    }
}

fn assert_send<T: Send>(_: T) {}

fn main() {
    let repo = Repo {
        cache: Cache::disabled(),
        shared: Arc::new(Cache::disabled()),
        tenant: String::new(),
        hits: 0,
    };
    assert_send(repo.by_ref(1));
    assert_send(repo.name(1));
    assert_send(Repo::associated(1));
}
