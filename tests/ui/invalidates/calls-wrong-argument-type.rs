use cachette::{cached, invalidates};

#[cached(key = "user:{id}")]
async fn get_user(id: u64) -> String {
    id.to_string()
}

#[invalidates(calls = [get_user(name)])]
async fn rename(name: &str) {
    let _ = name;
}

fn main() {}
