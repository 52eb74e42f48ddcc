use cachette::cached;

#[cached(key = "user:{id}", early_refresh = false, background_refresh)]
async fn user(id: u64) -> u64 {
    id
}

fn main() {}
