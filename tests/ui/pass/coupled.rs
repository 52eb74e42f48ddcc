//! Writers coupled to cached calls: every reader and writer shape, methods, free functions,
//! generic readers, trait `impl`s; the writers' futures stay `Send`.
use cachette::{Cache, CacheValue, cache_put, cached, invalidates};
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize)]
pub struct User {
    pub id: u64,
}

pub struct Repo {
    cache: Cache,
    writes: u64,
}

impl Repo {
    #[cached(key = "user:{id}", tags = ["users"], cache = self.cache)]
    pub async fn user(&self, id: u64) -> Result<User, String> {
        Ok(User { id })
    }

    #[cached(key = "find:{id}", cache_none(ttl = "30s"), cache = self.cache)]
    pub async fn find(&self, id: u64) -> Option<User> {
        Some(User { id })
    }

    #[cached(cache = self.cache)]
    pub async fn lookup(&self, id: u64) -> Result<Option<User>, std::io::Error> {
        Ok(Some(User { id }))
    }

    #[cached(cache = self.cache)]
    pub async fn count(&self) -> u64 {
        0
    }

    /// Result writer, Result reader, other error type.
    #[cache_put(self.user(id))]
    pub async fn save(&self, id: u64) -> Result<User, std::io::Error> {
        Ok(User { id })
    }

    /// Plain writer, Option reader.
    #[cache_put(self.find(user.id))]
    pub async fn store(&self, user: User) -> User {
        user
    }

    /// Option writer, Result<Option> reader.
    #[cache_put(self.lookup(id), name = "repo.upsert")]
    pub async fn upsert(&self, id: u64) -> Option<User> {
        Some(User { id })
    }

    /// Result<Option> writer, Option reader (`Ok(None)` deletes the entry).
    #[cache_put(self.find(id))]
    pub async fn remove(&self, id: u64) -> Result<Option<User>, String> {
        let _ = id;
        Ok(None)
    }

    /// A `&mut self` writer whose body mutates `self`: the call is made after the body.
    #[cache_put(self.user(id))]
    pub async fn bump(&mut self, id: u64) -> Result<User, String> {
        self.writes += 1;
        Ok(User { id })
    }

    /// Plain reader.
    #[cache_put(self.count())]
    pub async fn set_count(&self, n: u64) -> u64 {
        n
    }

    #[invalidates(calls = [self.user(id), self.find(id), self.count()])]
    pub async fn forget(&self, id: u64) -> Result<(), String> {
        let _ = id;
        Ok(())
    }

    /// Stacked with a key-based invalidation, tags and calls in one attribute.
    #[invalidates(tags = ["users"], calls = [self.lookup(id)], cache = self.cache)]
    #[cache_put(self.user(id))]
    pub async fn rename(&mut self, id: u64) -> Result<User, String> {
        Ok(User { id })
    }
}

#[cached(key = "item:{T}:{id}")]
async fn item<T: CacheValue + Default>(id: u64) -> T {
    let _ = id;
    T::default()
}

/// A generic reader, instantiated by the call.
#[cache_put(item::<String>(id))]
async fn set_item(id: u64, value: String) -> String {
    let _ = id;
    value
}

#[invalidates(calls = [item::<u32>(id), item::<String>(id)])]
async fn drop_items(id: u64) {
    let _ = id;
}

pub trait Store {
    fn save(&self, id: u64) -> impl std::future::Future<Output = Result<User, String>> + Send;
}

impl Store for Repo {
    #[cache_put(self.user(id))]
    async fn save(&self, id: u64) -> Result<User, String> {
        Ok(User { id })
    }
}

fn assert_send<T: Send>(_: T) {}

fn main() {
    let mut repo = Repo { cache: Cache::disabled(), writes: 0 };
    assert_send(repo.save(1));
    assert_send(repo.store(User { id: 1 }));
    assert_send(repo.upsert(1));
    assert_send(repo.remove(1));
    assert_send(repo.set_count(1));
    assert_send(repo.forget(1));
    assert_send(Store::save(&repo, 1));
    assert_send(set_item(1, String::new()));
    assert_send(drop_items(1));
    assert_send(repo.rename(1));
    assert_send(repo.bump(1));
}
