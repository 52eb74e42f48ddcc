//! Generic functions: hashed keys include the type parameters; templates name them.
use cachette::cached;
use serde::Serialize;
use serde::de::DeserializeOwned;

#[cached]
async fn hashed<T: Default + Serialize + DeserializeOwned + Send>() -> T {
    T::default()
}

#[cached(key = "list:{T}:{n}")]
async fn templated<T>(n: usize) -> Vec<T>
where
    T: Default + Clone + Serialize + DeserializeOwned,
{
    vec![T::default(); n]
}

#[cached(key = "arr:{N}")]
async fn const_generic<const N: usize>() -> Vec<u8> {
    vec![0; N]
}

/// `D` is not in the return type: it need not be in the key.
#[cached(key = "count:{id}")]
async fn generic_handle<D: AsRef<str>>(db: D, id: u64) -> u64 {
    db.as_ref().len() as u64 + id
}

#[cached]
async fn generic_arg<T: Serialize + std::fmt::Debug>(value: T) -> String {
    format!("{value:?}")
}

fn main() {
    let _ = hashed::<u32>();
    let _ = templated::<String>(2);
    let _ = const_generic::<4>();
    let _ = generic_handle("db", 1);
    let _ = generic_arg(1u8);
}
