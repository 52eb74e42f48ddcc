use cachette::{cache_put, cached};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct User {
    id: u64,
}

#[derive(Serialize, Deserialize)]
struct Admin {
    id: u64,
}

#[cached(key = "user:{id}")]
async fn get_user(id: u64) -> Result<User, String> {
    Ok(User { id })
}

/// Writes an `Admin` into the entry of a function that stores a `User`.
#[cache_put(get_user(id))]
async fn save_admin(id: u64) -> Result<Admin, std::io::Error> {
    Ok(Admin { id })
}

fn main() {}
