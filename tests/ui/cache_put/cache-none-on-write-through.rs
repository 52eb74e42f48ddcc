use cachette::cache_put;

#[cache_put(key = "user:{id}", cache_none)]
async fn save_user(id: u64, name: String) -> Option<String> {
    let _ = id;
    Some(name)
}

fn main() {}
