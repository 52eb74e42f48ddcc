use cachette::cached;

#[cached(key = "user:{name.to_lowercase()}")]
async fn get_user(name: String) -> String {
    name
}

fn main() {}
