use cachette::cache_put;

#[cache_put(ttl = "1h")]
async fn save_user(id: u64, name: String) -> Result<String, String> {
    let _ = id;
    Ok(name)
}

fn main() {}
