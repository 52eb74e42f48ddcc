use cachette::cached;

#[cached(key = "user:{id}", tll = 60)]
async fn get_user(id: u64) -> String {
    format!("user {id}")
}

fn main() {}
