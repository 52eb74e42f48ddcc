use cachette::cached;

type ApiResult<T> = Result<T, String>;

#[cached(key = "user:{id}", returns = reslt)]
async fn get_user(id: u64) -> ApiResult<String> {
    Ok(format!("user {id}"))
}

fn main() {}
