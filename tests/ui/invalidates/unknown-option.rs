use cachette::invalidates;

#[invalidates(tag = ["user:{id}"])]
async fn update_user(id: u64) -> Result<(), String> {
    let _ = id;
    Ok(())
}

fn main() {}
