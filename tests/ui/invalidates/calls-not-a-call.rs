use cachette::{cached, invalidates};

#[cached(key = "user:{id}")]
async fn get_user(id: u64) -> String {
    id.to_string()
}

#[invalidates(calls = [get_user(id), "user:{id}"])]
async fn delete(id: u64) {
    let _ = id;
}

fn main() {}
