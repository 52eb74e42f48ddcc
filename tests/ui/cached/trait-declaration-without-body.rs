use cachette::cached;

trait Users {
    #[cached(key = "user:{id}")]
    async fn get(&self, id: u64) -> String;
}

fn main() {}
