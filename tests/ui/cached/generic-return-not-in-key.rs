use cachette::cached;

#[cached(key = "default:{id}")]
async fn default_of<T: Default + serde::Serialize + serde::de::DeserializeOwned>(id: u64) -> T {
    let _ = id;
    T::default()
}

fn main() {}
