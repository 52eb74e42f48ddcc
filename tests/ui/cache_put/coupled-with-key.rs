use cachette::{cache_put, cached};

#[cached(key = "user:{id}", tags = ["users"])]
async fn get_user(id: u64) -> String {
    id.to_string()
}

/// The call already names the key and the tags.
#[cache_put(get_user(id), key = "user:{id}", tags = ["users"], name = "users.save")]
async fn save(id: u64) -> String {
    id.to_string()
}

fn main() {}
