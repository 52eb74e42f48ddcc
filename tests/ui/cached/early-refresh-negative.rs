use cachette::cached;

#[cached(key = "user:{id}", early_refresh = -1.0)]
async fn get_user(id: u64) -> String {
    format!("user {id}")
}

fn main() {}
