use cachette::cached;

#[cached(key = "user:{user_di}")]
async fn get_user(user_id: u64, lang: &str) -> String {
    format!("user {user_id} {lang}")
}

fn main() {}
