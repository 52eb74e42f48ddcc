//! `#[invalidates]` and `#[cache_put]` in every form, stacked, on methods and free functions.
use cachette::{Cache, cache_put, invalidates};
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize)]
pub struct User {
    pub id: u64,
    pub guild: String,
}

pub struct Repo {
    cache: Cache,
}

impl Repo {
    #[invalidates(tags = ["user:{id}", "users"], cache = self.cache)]
    pub async fn update(&self, id: u64) -> Result<(), String> {
        let _ = id;
        Ok(())
    }

    #[invalidates(keys = ["user:{id}"], cache = self.cache)]
    pub async fn touch(&mut self, id: u64) {
        let _ = id;
    }

    #[invalidates(patterns = ["guild:{guild}:*"], name = "guilds.reset", cache = self.cache)]
    pub async fn reset_guild(&self, guild: &str) -> usize {
        guild.len()
    }

    #[cache_put(key = "user:{user.id}", ttl = "10m", tags = ["users"], cache = self.cache)]
    pub async fn save(&self, user: User) -> Result<User, String> {
        Ok(user)
    }

    #[cache_put(key = "user:{id}", ttl = profile("users"), cache = self.cache)]
    pub async fn find(&self, id: u64) -> Option<User> {
        (id > 0).then(|| User { id, guild: String::new() })
    }

    /// Stacked, run top first: the list tag is invalidated, then the entry is written.
    #[invalidates(tags = ["user-lists"], cache = self.cache)]
    #[cache_put(key = "user:{user.id}", cache = self.cache)]
    pub async fn create(&self, user: User) -> Result<User, String> {
        Ok(user)
    }
}

type ApiResult<T> = Result<T, String>;

/// A type alias of `Result`: `returns = result` keeps the "after `Ok` only" rule.
#[invalidates(tags = ["users"], returns = result)]
async fn aliased() -> ApiResult<u64> {
    Ok(1)
}

#[cache_put(key = "plain:{id}")]
async fn plain_put(id: u64) -> u64 {
    id
}

fn assert_send<T: Send>(_: T) {}

fn main() {
    let repo = Repo { cache: Cache::disabled() };
    assert_send(repo.update(1));
    assert_send(repo.reset_guild("g"));
    assert_send(repo.save(User { id: 1, guild: String::new() }));
    assert_send(repo.create(User { id: 1, guild: String::new() }));
    assert_send(aliased());
    assert_send(plain_put(1));
}
