use cachette::cached;

#[cached(key = "user:{id}", cache_none)]
async fn get_user(id: u64) -> String {
    format!("user {id}")
}

fn main() {}
