use cachette::cached;

struct Repo {
    cache: String,
}

impl Repo {
    #[cached(key = "user:{id}", cache = self.cache)]
    async fn get_user(&self, id: u64) -> String {
        format!("user {id}")
    }
}

fn main() {}
