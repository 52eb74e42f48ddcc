use cachette::invalidates;

fn user_key(id: u64) -> String {
    format!("user:{id}")
}

/// `calls` takes calls of `#[cached]` functions, not key builders.
#[invalidates(calls = [user_key(id)])]
async fn delete(id: u64) {
    let _ = id;
}

fn main() {}
