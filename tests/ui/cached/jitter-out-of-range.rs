use cachette::cached;

#[cached(key = "user:{id}", jitter = 1.5)]
async fn get_user(id: u64) -> String {
    format!("user {id}")
}

fn main() {}
