use cachette::cached;

#[cached(key = "user")]
struct User {
    id: u64,
}

fn main() {}
