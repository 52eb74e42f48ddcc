use cachette::cached;

struct Session {
    token: String,
}

#[cached(key = "session:{id}")]
async fn session(id: u64) -> Session {
    Session { token: format!("t{id}") }
}

fn main() {}
