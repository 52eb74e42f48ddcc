use cachette::cached;

#[cached(key = "")]
async fn get_user(id: u64) -> String {
    format!("user {id}")
}

fn main() {}
