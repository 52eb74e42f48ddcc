use cachette::cached;

#[cached(key = "user:{idd}", tll = 60, ttl = "soon", tags = ["users", "user:{id"])]
async fn get_user(id: u64) -> String {
    format!("user {id}")
}

fn main() {}
