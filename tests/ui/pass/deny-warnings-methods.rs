//! Warning-free expansions (issue 13): methods with every receiver, in inherent and trait
//! `impl`s, readers and writers, with one-line bodies, under `#![deny(warnings)]`.
#![deny(warnings)]

use cachette::{Cache, cache_put, cached, invalidates};
use std::sync::Arc;

#[derive(Debug)]
pub struct DbError;

pub struct Repo {
    cache: Cache,
    shared: Arc<Cache>,
    tenant: String,
}

impl Repo {
    #[cached(key = "{self.tenant}:user:{id}", cache = self.cache)]
    pub async fn by_ref(&self, id: u64) -> Result<u64, DbError> { Ok(id) }

    #[cached(key = "mut:{id}", cache = self.cache)]
    pub async fn by_mut(&mut self, id: u64) -> u64 { id }

    #[cached(cache = self.shared)]
    pub async fn by_arc(self: Arc<Self>, id: u64) -> Option<u64> { Some(id) }

    #[cached(key = "owned:{id}", cache = self.cache)]
    pub async fn by_value(self, id: u64) -> String { format!("{}{id}", self.tenant) }

    #[cached(cache = self.cache)]
    pub async fn hashed(&self, id: u64) -> Result<u64, DbError> { Ok(id) }

    #[cached(key = "assoc:{id}")]
    pub async fn associated(id: u64) -> u64 { id }

    #[invalidates(tags = ["users"], cache = self.cache)]
    pub async fn rename(&self, id: u64) -> Result<u64, DbError> { Ok(id) }

    #[cache_put(key = "{self.tenant}:user:{id}", cache = self.cache)]
    pub async fn save(&self, id: u64) -> Result<u64, DbError> { Ok(id) }

    #[invalidates(tags = ["users"], cache = self.cache)]
    #[cache_put(key = "{self.tenant}:user:{id}", tags = ["users"], cache = self.cache)]
    pub async fn create(&self, id: u64) -> Result<u64, DbError> { Ok(id) }
}

trait Users {
    async fn age(&self, id: u64) -> Option<u8>;
    async fn name(&self, id: u64) -> Result<String, DbError>;
}

impl Users for Repo {
    #[cached(key = "age:{id}", cache_none, cache = self.cache)]
    async fn age(&self, id: u64) -> Option<u8> { u8::try_from(id).ok() }

    #[cached(key = "name:{id}", cache = self.cache)]
    async fn name(&self, id: u64) -> Result<String, DbError> { Ok(format!("{id}")) }
}

fn main() {
    let mut repo = Repo { cache: Cache::disabled(), shared: Arc::new(Cache::disabled()), tenant: String::new() };
    let _ = repo.by_mut(1);
    let _ = (repo.by_ref(1), repo.hashed(1), Repo::associated(1), repo.rename(1), repo.save(1), repo.create(1));
    let _ = (repo.age(1), repo.name(1));
    let owned = Repo { cache: Cache::disabled(), shared: Arc::new(Cache::disabled()), tenant: String::new() };
    let _ = Arc::new(owned).by_arc(1);
    let _ = repo.by_value(1);
}
