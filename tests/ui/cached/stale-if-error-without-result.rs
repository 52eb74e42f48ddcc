use cachette::cached;

#[cached(key = "user:{id}", stale_if_error = "5m")]
async fn get_user(id: u64) -> String {
    format!("user {id}")
}

fn main() {}
