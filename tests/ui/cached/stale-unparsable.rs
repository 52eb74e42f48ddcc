use cachette::cached;

#[cached(key = "user:{id}", ttl = "10m", stale = "half a minute")]
async fn get_user(id: u64) -> String {
    format!("user {id}")
}

fn main() {}
