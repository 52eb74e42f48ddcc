use cachette::cached;

struct Pool;

#[cached]
async fn count_users(pool: &Pool, active: bool) -> u64 {
    let _ = pool;
    u64::from(active)
}

fn main() {}
