use cachette::cached;

#[cached(key = "user:{id}", ttl = 60, ttl = "10m")]
async fn get_user(id: u64) -> String {
    format!("user {id}")
}

fn main() {}
