use cachette::{Cache, cached};

async fn make_cache() -> Cache {
    Cache::disabled()
}

#[cached(key = "user:{id}", cache = make_cache().await)]
async fn get_user(id: u64) -> String {
    format!("user {id}")
}

fn main() {}
