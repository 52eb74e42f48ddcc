use cachette::cached;

#[cached(key = "user:{id}")]
fn get_user(id: u64) -> String {
    format!("user {id}")
}

fn main() {}
