use cachette::{Cache, cached};

pub struct Repo {
    cache: Cache,
}

impl Repo {
    #[cached(key = "user:{id}", background_refresh, cache = self.cache)]
    pub async fn user(&self, id: u64) -> u64 {
        id
    }
}

fn main() {}
