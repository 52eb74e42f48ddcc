use cachette::cached;

#[cached(key = "user:{id}", lock(ttl = "10s", timeout = "5s"))]
async fn get_user(id: u64) -> String {
    format!("user {id}")
}

fn main() {}
