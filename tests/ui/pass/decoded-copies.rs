//! Stored types the generated code probes for `Clone` (to keep decoded copies in the memory
//! store) and types it must not probe because they might not be `'static`: all compile.
use cachette::{Cache, cached};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::borrow::Cow;
use std::marker::PhantomData;

#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct User {
    id: u64,
}

/// Not `Clone`: cached all the same.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Token(String);

#[cached(key = "user:{id}")]
async fn user(id: u64) -> User {
    User { id }
}

#[cached(key = "token:{id}")]
async fn token(id: u64) -> Token {
    Token(id.to_string())
}

#[cached(key = "maybe:{id}", cache_none)]
async fn maybe(id: u64) -> Option<User> {
    Some(User { id })
}

#[cached(key = "static-cow:{id}")]
async fn static_cow(id: u64) -> Cow<'static, str> {
    Cow::Owned(id.to_string())
}

/// A borrowed lifetime in the stored type: not probed.
#[cached(key = "cow:{name}")]
async fn cow<'a>(name: &'a str) -> Cow<'a, str> {
    Cow::Owned(name.to_owned())
}

/// An elided lifetime in the stored type: not probed.
#[cached(key = "elided:{name}")]
async fn elided(name: &str) -> Cow<str> {
    Cow::Owned(name.to_owned())
}

pub struct Repo<T> {
    cache: Cache,
    _t: PhantomData<T>,
}

/// Type parameters of an enclosing `impl`, `Clone + Send + Sync` but not `'static`: not
/// probed (a type parameter is recognised by its one-capital-letter name).
impl<T: Clone + Send + Sync + Serialize + DeserializeOwned + Default> Repo<T> {
    #[cached(cache = self.cache)]
    async fn first(&self) -> T {
        T::default()
    }

    #[cached(key = "all:{n}", cache = self.cache)]
    async fn all(&self, n: usize) -> Vec<T> {
        vec![T::default(); n]
    }
}

/// The function's own type parameter, whatever its name.
#[cached(key = "item:{Item}")]
async fn item<Item: Clone + Send + Sync + Serialize + DeserializeOwned + Default>() -> Item {
    Item::default()
}

fn main() {
    let _ = user(1);
    let _ = token(1);
    let _ = maybe(1);
    let _ = static_cow(1);
    let _ = cow("a");
    let _ = elided("a");
    let _ = item::<u8>();
    let repo = Repo::<u32> {
        cache: Cache::memory(1 << 20),
        _t: PhantomData,
    };
    let _ = repo.first();
    let _ = repo.all(2);
}
