use cachette::cached;

struct Filter {
    active: bool,
}

#[cached(key = "users:{filter}")]
async fn list(filter: Filter) -> Vec<u64> {
    if filter.active { vec![1] } else { vec![] }
}

fn main() {}
