use cachette::cached;

#[cached(key = "{self.tenant}:user:{id}")]
async fn get_user(id: u64) -> String {
    format!("user {id}")
}

fn main() {}
