use cachette::cached;

#[cached(key = "user:{id}", ttl = profil("user_profile"))]
async fn get_user(id: u64) -> String {
    format!("user {id}")
}

fn main() {}
