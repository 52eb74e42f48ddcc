// The attribute is wrong, but the function is still emitted: the only error is the one in
// the attribute, not "cannot find function `get_user`" at every caller.
use cachette::cached;

#[cached(key = "user:{idd}")]
async fn get_user(id: u64) -> String {
    format!("user {id}")
}

async fn caller() -> String {
    get_user(1).await
}

fn main() {
    let _ = caller();
}
