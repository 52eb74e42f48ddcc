use cachette::cache_put;

struct Pool;

#[cache_put(key = "user:{id}", skip(pool))]
async fn save_user(pool: &Pool, id: u64, name: String) -> Result<String, String> {
    let _ = (pool, id);
    Ok(name)
}

fn main() {}
