use cachette::cached;

#[cached(key = "user:{id}", patterns = ["user:*"])]
async fn get_user(id: u64) -> String {
    format!("user {id}")
}

fn main() {}
