use cachette::{cache_put, cached};

#[cached(key = "user:{id}")]
async fn get_user(id: u64) -> String {
    id.to_string()
}

#[cache_put(get_user(user_id))]
async fn save(id: u64) -> String {
    id.to_string()
}

fn main() {}
