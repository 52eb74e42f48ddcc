use cachette::cached;

#[cached(key = "user:{id}", background_refresh = "yes")]
async fn user(id: u64) -> u64 {
    id
}

fn main() {}
