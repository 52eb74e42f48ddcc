use cachette::cache_put;

#[cache_put(key = "user:{id}")]
async fn save_user(id: u64, name: String) {
    let _ = (id, name);
}

fn main() {}
