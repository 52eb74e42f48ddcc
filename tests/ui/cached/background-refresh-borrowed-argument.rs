use cachette::cached;

#[cached(key = "user:{name}", background_refresh)]
async fn user(name: &str) -> String {
    name.to_owned()
}

fn main() {}
